"""Two small segmentation models, built from scratch (no weights are downloaded).

Both split into ``features(x)`` (N, width, H, W) and ``head`` (a 1 x 1 convolution to the
logits), so that the trainer can run the last layer again with dropout for the MC-dropout
``uncertainty`` loss: ``mc_logits(feats)`` is one such pass.
"""

from __future__ import annotations

try:
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn
except ImportError as exc:  # pragma: no cover - torch is the [train] extra
    raise ImportError("segeval's trainer needs PyTorch; pip install 'segeval-cli[train]'") from exc

__all__ = ["UNet", "FCN", "build_model", "MODELS"]


def _conv(cin: int, cout: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout), _conv(cout, cout))


class _Segmenter(nn.Module):
    head: nn.Conv2d

    def __init__(self, mc_dropout: float) -> None:
        super().__init__()
        self.mc_dropout = mc_dropout

    def features(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def mc_logits(self, feats: Tensor) -> Tensor:
        """One pass of the last layer with dropout (rate ``mc_dropout``) on its input features."""
        return self.head(F.dropout(feats, self.mc_dropout, training=True))


class UNet(_Segmenter):
    """A small U-Net (Ronneberger et al. 2015): ``depth`` poolings, ``width`` channels at full
    resolution, doubling at each level; 3 x 3 convolutions with batch norm. Any input size works:
    the input is padded to a multiple of ``2 ** depth`` and the features cropped back."""

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 16, depth: int = 3,
                 mc_dropout: float = 0.5) -> None:
        super().__init__(mc_dropout)
        self.depth = depth
        ch = [width * 2**i for i in range(depth + 1)]
        self.enc = nn.ModuleList([_block(in_channels, ch[0])] + [_block(ch[i - 1], ch[i]) for i in range(1, depth + 1)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(ch[i], ch[i - 1], 2, stride=2) for i in range(depth, 0, -1)])
        self.dec = nn.ModuleList([_block(ch[i], ch[i - 1]) for i in range(depth, 0, -1)])
        self.head = nn.Conv2d(width, out_channels, 1)

    def features(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        x = F.pad(x, (0, -w % m, 0, -h % m), mode="replicate")
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x)
            if i < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), skip], 1))
        return x[..., :h, :w]


class FCN(_Segmenter):
    """A tiny fully convolutional network (after Long et al. 2015): ``depth`` stride-2 stages and
    a dilated convolution, a 1 x 1 reduction upsampled bilinearly to the input size, plus a skip
    from the full-resolution stem."""

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 16, depth: int = 3,
                 mc_dropout: float = 0.5) -> None:
        super().__init__(mc_dropout)
        self.stem = _conv(in_channels, width)
        layers, ch = [], width
        for _ in range(depth):
            layers.append(_conv(ch, ch * 2, stride=2))
            ch *= 2
        layers.append(_conv(ch, ch, dilation=2))
        self.body = nn.Sequential(*layers)
        self.reduce = nn.Conv2d(ch, width, 1)
        self.head = nn.Conv2d(width, out_channels, 1)

    def features(self, x: Tensor) -> Tensor:
        stem = self.stem(x)
        deep = F.interpolate(self.reduce(self.body(stem)), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return F.relu(deep + stem)


MODELS = {"unet": UNet, "fcn": FCN}


def build_model(name: str, in_channels: int, out_channels: int, *, width: int = 16, depth: int = 3,
                mc_dropout: float = 0.5) -> _Segmenter:
    """``unet`` or ``fcn``, freshly initialised (seed torch first for repeatable weights)."""
    return MODELS[name](in_channels, out_channels, width=width, depth=depth, mc_dropout=mc_dropout)
