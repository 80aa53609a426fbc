"""A small, seeded trainer whose validation is scored by segeval itself.

One model per loss spec, every one from the same seed: the same initial weights, the same crops
and flips in the same order, so that runs differ only by their loss. After each epoch the
validation images are predicted whole and counted where they are predicted (on a CUDA device, on
the device) by a :class:`segeval.Accumulator` into a :class:`Run`; at
the end the predictions are written as PNG masks, the (label-mapped) validation ground truth
beside them, and the run file is made from those files by :func:`score_pairs`, so
``segeval score OUT/pred OUT/gt -k K`` gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

try:
    import torch
except ImportError as exc:  # pragma: no cover - torch is the [train] extra
    raise ImportError("segeval's trainer needs PyTorch; pip install 'segeval-cli[train]'") from exc

from segeval.core.classes import ClassSet
from segeval.errors import SegevalError
from segeval.reading.io import pair_masks
from segeval.scoring.accumulate import Accumulator
from segeval.scoring.evaluate import Run, make_temp_dir, score_pairs
from segeval.scoring.options import ScoreOptions, check_baseline_class
from segeval.train import data as D
from segeval.train import losses as L
from segeval.train.models import build_model

__all__ = ["FLAT_SHARE", "TrainConfig", "EpochLog", "TrainResult", "train", "prepare", "train_one", "score_arrays",
           "flatline", "seeds_of"]


@dataclass
class TrainConfig:
    """Everything ``segeval train`` can be told; see ``segeval train --help``."""

    images: Path
    masks: Path
    out: Path
    losses: list[str] = field(default_factory=lambda: ["ce"])
    epochs: int = 10
    model: str = "unet"
    width: int = 16
    depth: int = 3
    batch_size: int = 4
    lr: float = 1e-3
    crop_size: int | None = None
    crop_schedule: tuple[float, ...] = (0.6, 0.75, 1.0)
    crops_per_image: int = 1
    flips: bool = True
    val_split: float = 0.2
    seed: int = 0
    seeds: tuple[int, ...] = ()
    device: str | None = None
    threads: int | None = None
    amp: bool = False
    n_classes: int | None = None
    classes: ClassSet | None = None
    ignore_index: int = 255
    label_map: dict[int, int] | None = None
    binary_threshold: float | None = None
    binary: bool = False
    baseline_class: int = 0
    mc_dropout: float = 0.5
    overwrite: bool = False

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(images=os.fspath(self.images), masks=os.fspath(self.masks), out=os.fspath(self.out),
                 crop_schedule=list(self.crop_schedule), seeds=list(self.seeds),
                 classes=None if self.classes is None else list(self.classes.names),
                 label_map=None if self.label_map is None else {str(k): v for k, v in self.label_map.items()})
        return d


# An epoch's validation predictions are "nearly all one class" when one class takes at least this
# share of the scored pixels (ground truth not ignored).
FLAT_SHARE = 0.99


@dataclass
class EpochLog:
    """One epoch: its loss and crop side, the mean training loss, the validation scores and the flatline check.

    ``top_class`` is the most predicted class on the validation images and ``top_share`` its share of
    the scored pixels; ``flat`` is True when ``top_share >= FLAT_SHARE`` or the data-set mIoU does not
    beat the baseline (the collapse to one class that IoU losses at a high learning rate are known for).
    """

    epoch: int
    loss: str
    crop: int
    train_loss: float
    miou: float
    baseline_miou: float
    imagewise_miou: float
    seconds: float
    top_class: int = 0
    top_share: float = math.nan
    flat: bool = False


@dataclass
class TrainResult:
    """One trained model: its loss spec, seed, output directory, final run and epoch history."""

    spec: str
    out: Path
    run: Run
    history: list[EpochLog]
    seed: int = 0

    @property
    def flat(self) -> bool:
        """Whether the last epoch flatlined (the written predictions are the collapsed ones)."""
        return bool(self.history) and self.history[-1].flat

    @property
    def flat_epochs(self) -> int:
        return sum(h.flat for h in self.history)


def flatline(run: Run) -> tuple[int, float, bool]:
    """The most predicted class, its share of the scored pixels, and whether the run flatlined.

    Flat: one class takes at least ``FLAT_SHARE`` of the predictions, or the data-set mIoU is not
    above the baseline mIoU (always predicting the baseline class); an undefined mIoU counts as flat.
    """
    k = run.n_classes
    predicted = np.asarray(run.cm)[:, :k].sum(axis=0)  # columns = prediction; the last column (misses) left out
    scored = int(np.asarray(run.cm).sum())
    top = int(np.argmax(predicted))
    share = float(predicted[top] / scored) if scored else math.nan
    flat = bool(share >= FLAT_SHARE) or not run.miou > run.baseline_miou
    return top, share, flat


@dataclass
class Prepared:
    """Data read once and shared by every loss of a comparison."""

    dataset: D.Dataset
    classes: ClassSet
    train: list[D.Sample]
    val: list[D.Sample]
    mean: NDArray[np.float32]
    std: NDArray[np.float32]
    sides: list[int]
    device: torch.device


def _device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SegevalError(None, "--device cuda: no CUDA device is available to this torch "
                           f"({torch.__version__})", "use --device cpu or leave --device out")
    if name not in ("cuda", "cpu"):
        raise SegevalError(None, f"--device {name!r} is not cuda or cpu", "")
    return torch.device(name)


def _check_config(cfg: TrainConfig) -> None:
    if not cfg.crop_schedule or any(not 0 < f <= 1 for f in cfg.crop_schedule):
        shown = ",".join(map(str, cfg.crop_schedule))
        raise SegevalError(None, f"--crop-schedule {shown}: fractions must be in (0, 1]",
                           "e.g. --crop-schedule 0.6,0.75,1")
    if not 0 <= cfg.mc_dropout < 1:
        raise SegevalError(None, f"--mc-dropout must be in [0, 1), got {cfg.mc_dropout}", "")
    if cfg.label_map and cfg.binary_threshold is not None:
        raise SegevalError(None, "--label-map and --binary-threshold both given", "use one of them")


def prepare(cfg: TrainConfig) -> Prepared:
    """Check options, read and split the data, fix crop sides and the device: all before training."""
    _check_config(cfg)
    device = _device(cfg.device)
    if cfg.threads is not None:  # process-wide: float sums, so the numbers, depend on the thread count
        torch.set_num_threads(cfg.threads)
    n_classes = cfg.classes.n_classes if cfg.classes is not None else cfg.n_classes
    if cfg.binary and n_classes not in (None, 2):
        raise SegevalError(None, f"--binary is one sigmoid channel for two classes, not {n_classes}", "")
    ds = D.load(cfg.images, cfg.masks, n_classes=2 if cfg.binary else n_classes, ignore_index=cfg.ignore_index,
                label_map=cfg.label_map, binary_threshold=cfg.binary_threshold)
    classes = cfg.classes or ClassSet.numbered(ds.n_classes)
    check_baseline_class(cfg.baseline_class, cfg.ignore_index, classes.n_classes)
    tr, va = D.split([s.name for s in ds.samples], cfg.val_split, cfg.seed)
    train_set, val_set = [ds.samples[i] for i in tr], [ds.samples[i] for i in va]
    full = cfg.crop_size or min(min(s.mask.shape) for s in train_set)
    mean, std = D.channel_stats(train_set)
    return Prepared(ds, classes, train_set, val_set, mean, std, D.crop_sides(list(cfg.crop_schedule), cfg.epochs, full),
                    device)


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", spec).strip("_") or "loss"


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def score_arrays(names: list[str], gts: list[NDArray], preds: list[NDArray], classes: ClassSet, *,
                 ignore_index: int, settings: dict[str, Any]) -> Run:
    """A :class:`Run` from in-memory masks, counted by a :class:`segeval.Accumulator`."""
    acc = Accumulator(None, ignore_index, classes=classes, baseline_class=settings.get("baseline_class"))
    for name, g, p in zip(names, gts, preds, strict=True):
        acc.update(g, p, name=name)
    return acc.run(settings)


def _predict(model: torch.nn.Module, samples: list[D.Sample], prep: Prepared, cfg: TrainConfig,
             acc: Accumulator | None = None, gts: list[torch.Tensor] | None = None) -> list[NDArray]:
    """Predict every sample whole; with ``acc``, count each prediction against ``gts`` (the samples'
    masks as tensors on the model's device) there, before it is copied to the host."""
    mean = torch.as_tensor(prep.mean, device=prep.device)[:, None, None]
    std = torch.as_tensor(prep.std, device=prep.device)[:, None, None]
    model.eval()
    out = []
    with torch.no_grad(), _autocast(prep.device, cfg.amp):
        for i, s in enumerate(samples):
            x = (torch.from_numpy(s.image).to(prep.device) - mean) / std
            logits = model(x[None]).float()
            pred = (logits[0, 0] > 0) if cfg.binary else logits[0].argmax(0)
            pred = pred.to(torch.uint8 if prep.classes.n_classes <= 256 else torch.int32)
            if acc is not None and gts is not None:
                acc.update(gts[i], pred, name=s.name)
            out.append(pred.cpu().numpy())
    return out


def _autocast(device: torch.device, enabled: bool) -> torch.autocast:
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


def train_one(
    cfg: TrainConfig,
    prep: Prepared,
    spec: str,
    out: Path,
    *,
    on_step: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> TrainResult:
    """Train one model with the loss ``spec``; then write ``out/pred``, ``out/run.json``, ``out/model.pt``
    and the validation ground truth ``cfg.out/gt``."""
    if cfg.epochs < 1:
        raise SegevalError(None, f"--epochs must be at least 1, got {cfg.epochs}", "")
    schedule = L.parse(spec, ignore_index=cfg.ignore_index)
    schedule.check(cfg.epochs)
    _seed_everything(cfg.seed)
    dev = prep.device
    model = build_model(cfg.model, prep.dataset.in_channels, 1 if cfg.binary else prep.classes.n_classes,
                        width=cfg.width, depth=cfg.depth, mc_dropout=cfg.mc_dropout).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and dev.type == "cuda")
    mean = torch.as_tensor(prep.mean, device=dev)[None, :, None, None]
    std = torch.as_tensor(prep.std, device=dev)[None, :, None, None]
    gts = [torch.from_numpy(s.mask).to(dev) for s in prep.val]  # once: validation is counted on the device
    history: list[EpochLog] = []
    n_items = len(prep.train) * cfg.crops_per_image
    steps = -(-n_items // cfg.batch_size)
    preds: list[NDArray] = []
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        loss_fn = schedule.at(epoch)
        rng = np.random.default_rng([cfg.seed, epoch])  # the same crops, flips and order for every loss
        order = rng.permutation(n_items) % len(prep.train)
        model.train()
        total = 0.0
        for step in range(steps):
            batch = [prep.train[i] for i in order[step * cfg.batch_size : (step + 1) * cfg.batch_size]]
            xb, yb = D.crop_batch(batch, prep.sides[epoch], rng, cfg.ignore_index, flips=cfg.flips)
            x = (torch.from_numpy(xb).to(dev) - mean) / std
            y = torch.from_numpy(yb).to(dev)
            with _autocast(dev, cfg.amp):
                feats = model.features(x)
                logits = model.head(feats)
                mc = (lambda f=feats: model.mc_logits(f)) if loss_fn.needs_mc else None
                value = loss_fn(logits, y, mc=mc)
            opt.zero_grad(set_to_none=True)
            scaler.scale(value).backward()
            scaler.step(opt)
            scaler.update()
            v = float(value.detach())
            if not np.isfinite(v):
                raise SegevalError(None, f"loss {spec!r} is {v} at epoch {epoch} step {step}",
                                   "lower --lr, or leave out --amp")
            total += v * len(batch)
            if on_step is not None:
                on_step(step + 1, steps, v)
        acc = Accumulator(None, cfg.ignore_index, classes=prep.classes, baseline_class=cfg.baseline_class)
        preds = _predict(model, prep.val, prep, cfg, acc, gts)
        run = acc.run()
        top, share, flat = flatline(run)
        log = EpochLog(epoch, repr(loss_fn), prep.sides[epoch], total / n_items, run.miou, run.baseline_miou,
                       run.imagewise_miou, time.perf_counter() - start, top, share, flat)
        history.append(log)
        if on_epoch is not None:
            on_epoch(log)
    final = _write_outputs(cfg, prep, spec, out, model, preds, history)
    return TrainResult(spec, out, final, history, cfg.seed)


def _write_png(path: Path, mask: NDArray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    small = mask.min(initial=0) >= 0 and mask.max(initial=0) < 256
    Image.fromarray(mask.astype(np.uint8 if small else np.uint16)).save(path)


def _write_dir(target: Path, names: list[str], masks: list[NDArray]) -> None:
    """Write masks as NAME.png into a temporary directory beside ``target``, then swap it in."""
    tmp: Path | None = None
    try:
        tmp = make_temp_dir(target.parent, f".{target.name}.")  # the umask's mode, not mkdtemp's 0o700
        for name, m in zip(names, masks, strict=True):
            _write_png(tmp / f"{name}.png", m)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_outputs(cfg: TrainConfig, prep: Prepared, spec: str, out: Path, model: torch.nn.Module,
                   preds: list[NDArray], history: list[EpochLog]) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in prep.val]
    gt_dir = cfg.out / "gt"
    _write_dir(gt_dir, names, [s.mask for s in prep.val])  # the same for every loss of a comparison
    _write_dir(out / "pred", names, preds)
    pairs, _ = pair_masks(out / "pred", gt_dir)
    settings = {
        "baseline_class": cfg.baseline_class, "pred_dir": os.fspath(out / "pred"), "gt_dir": os.fspath(gt_dir),
        "train": {
            "loss": spec, **cfg.to_json(), "n_classes": prep.classes.n_classes, "device": str(prep.device),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "train_images": [s.name for s in prep.train], "val_images": names,
            "crop_sides": prep.sides[: cfg.epochs], "history": [asdict(h) for h in history],
        },
    }
    scoring = ScoreOptions(prep.classes, cfg.ignore_index, cfg.baseline_class, workers=1)
    run = score_pairs(pairs, scoring, settings=settings)
    run.save(out / "run.json")
    tmp = out / ".model.pt.tmp"
    try:
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, out / "model.pt")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return run


def _check_out(cfg: TrainConfig) -> None:
    out = cfg.out
    if out.exists() and not out.is_dir():
        raise SegevalError(out, "is a file, not a directory", "give a directory for --out")
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise SegevalError(out, "is not empty", "choose a new directory or pass --overwrite")
    if not out.parent.is_dir():
        raise SegevalError(out, "its parent directory does not exist", "create it first")


def seeds_of(cfg: TrainConfig) -> tuple[int, ...]:
    """The seeds to train with: ``cfg.seeds``, or ``(cfg.seed,)``."""
    return tuple(cfg.seeds) or (cfg.seed,)


def train(
    cfg: TrainConfig,
    *,
    on_start: Callable[[str, int, Prepared], None] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> list[TrainResult]:
    """Train one model per loss in ``cfg.losses`` and seed in :func:`seeds_of`, losses outer, seeds inner.

    The validation split is drawn with the first seed and shared by every run, so that all runs are
    scored on the same images (paired image by image); each seed sets the initial weights, crops,
    flips and data order. One loss and one seed write into ``cfg.out``; several losses into
    ``cfg.out/<loss>``, several seeds into ``.../seed<S>``, each when its training ends. The
    validation ground truth goes to ``cfg.out/gt``.
    """
    if not cfg.losses:
        raise SegevalError(None, "no loss given", f"pass --loss NAME, one of {', '.join(L.names())}")
    if cfg.epochs < 1:
        raise SegevalError(None, f"--epochs must be at least 1, got {cfg.epochs}", "")
    seeds = seeds_of(cfg)
    if len(set(seeds)) != len(seeds):
        raise SegevalError(None, f"--seeds {','.join(map(str, seeds))} repeats a seed", "name each seed once")
    if any(s < 0 for s in seeds):
        raise SegevalError(None, f"--seeds {','.join(map(str, seeds))}: seeds must be 0 or more", "")
    for spec in cfg.losses:  # every spec is read and checked before any training
        L.parse(spec, ignore_index=cfg.ignore_index).check(cfg.epochs)
    loss_dirs = [cfg.out] if len(cfg.losses) == 1 else [cfg.out / _slug(s) for s in cfg.losses]
    if len(set(loss_dirs)) != len(loss_dirs):
        raise SegevalError(None, f"losses {', '.join(cfg.losses)} would share an output directory",
                           "name each loss once, and differently")
    _check_out(cfg)
    prep = prepare(dataclasses.replace(cfg, seed=seeds[0]))
    cfg.out.mkdir(exist_ok=True)
    results = []
    for spec, loss_dir in zip(cfg.losses, loss_dirs, strict=True):
        for seed in seeds:
            out = loss_dir if len(seeds) == 1 else loss_dir / f"seed{seed}"
            if on_start is not None:
                on_start(spec, seed, prep)
            results.append(train_one(dataclasses.replace(cfg, seed=seed), prep, spec, out, on_step=on_step,
                                     on_epoch=on_epoch))
    return results
