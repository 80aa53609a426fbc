"""segeval.losses against slow references written as loops over pixels, brute-force Lovász
extensions, gradcheck, ignored pixels, and the combination / schedule parser."""

from __future__ import annotations

import itertools
import math
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from reference import loop_iou  # noqa: E402

from segeval import SegevalError  # noqa: E402
from segeval import losses as L  # noqa: E402

IGNORE = 255


# ----------------------------------------------------------------------------- references (plain loops)


def _probs(lg: list, n: int, i: int, j: int) -> list[float]:
    """Softmax over classes at one pixel; one binary channel z is the two classes (0, z)."""
    zs = [0.0, lg[n][0][i][j]] if len(lg[n]) == 1 else [lg[n][c][i][j] for c in range(len(lg[n]))]
    top = max(zs)
    e = [math.exp(z - top) for z in zs]
    return [x / sum(e) for x in e]


def _pixels(t: list):
    for n in range(len(t)):
        for i in range(len(t[n])):
            for j in range(len(t[n][i])):
                yield n, i, j


def ref_ce(logits, target, weight=None, ignore=IGNORE, pixel_weight=None):
    lg, t = logits.tolist(), target.tolist()
    num = den = 0.0
    for n, i, j in _pixels(t):
        y = t[n][i][j]
        if y == ignore:
            continue
        w = (1.0 if weight is None else weight[y]) * (1.0 if pixel_weight is None else pixel_weight[n][i][j])
        num += w * -math.log(_probs(lg, n, i, j)[y])
        den += w
    return num / den if den else 0.0


def ref_focal(logits, target, alpha=None, gamma=2.0, ignore=IGNORE):
    lg, t = logits.tolist(), target.tolist()
    total, count = 0.0, 0
    for n, i, j in _pixels(t):
        y = t[n][i][j]
        if y == ignore:
            continue
        pt = _probs(lg, n, i, j)[y]
        a = 1.0 if alpha is None else alpha[y]
        total += -a * (1 - pt) ** gamma * math.log(pt)
        count += 1
    return total / count


def _groups(t, per_image):
    """Lists of (n, i, j) valid pixels: one per image, or one for the batch."""
    pix = list(_pixels(t))
    if per_image:
        return [[p for p in pix if p[0] == n] for n in range(len(t))]
    return [pix]


def ref_overlap(logits, target, kind, per_image=False, classes="present", smooth=0.0, ignore=IGNORE):
    """Soft IoU (``1 - I/U``), log IoU (``-log(I/U)``) or Dice, textbook formulas, pixel by pixel."""
    lg, t = logits.tolist(), target.tolist()
    k = max(len(lg[0]), 2)
    group_losses = []
    for group in _groups(t, per_image):
        group = [p for p in group if t[p[0]][p[1]][p[2]] != ignore]
        if not group:
            continue
        terms = []
        for c in range(k):
            inter = union = psum = ysum = 0.0
            for n, i, j in group:
                p = _probs(lg, n, i, j)[c]
                y = 1.0 if t[n][i][j] == c else 0.0
                inter += p * y
                union += p + y - p * y
                psum += p
                ysum += y
            keep = ysum > 0 if classes == "present" else (True if classes == "all" else c in classes)
            if not keep:
                continue
            if kind == "dice":
                terms.append(1 - (2 * inter + smooth) / (psum + ysum + smooth))
            elif kind == "soft_iou":
                terms.append(1 - (inter + smooth) / (union + smooth))
            else:
                terms.append(-math.log((inter + smooth) / (union + smooth)))
        if terms:
            group_losses.append(sum(terms) / len(terms))
    return sum(group_losses) / len(group_losses) if group_losses else 0.0


def jaccard_set_loss(mistakes: frozenset, fg: frozenset) -> float:
    """Delta(M) = |M| / |F u M|, the Jaccard loss of a set M of mispredicted pixels; Delta({}) = 0."""
    return len(mistakes) / len(fg | mistakes) if mistakes else 0.0


def lovasz_choquet(m: list[float], fg: frozenset) -> float:
    """Lovász extension as the Choquet integral: sum over level sets {m >= v} of (v - next v) Delta."""
    levels = sorted({v for v in m if v > 0}, reverse=True) + [0.0]
    return sum((levels[a] - levels[a + 1]) * jaccard_set_loss(frozenset(i for i, v in enumerate(m) if v >= levels[a]),
                                                              fg) for a in range(len(levels) - 1))


def lovasz_max_over_orders(m: list[float], fg: frozenset) -> float:
    """Lovász extension of a submodular set function: the largest greedy sum over all orders (Edmonds)."""
    best = -math.inf
    for order in itertools.permutations(range(len(m))):
        total, prev = 0.0, 0.0
        for a in range(len(order)):
            cur = jaccard_set_loss(frozenset(order[: a + 1]), fg)
            total += m[order[a]] * (cur - prev)
            prev = cur
        best = max(best, total)
    return best


def ref_lovasz(logits, target, per_image=False, classes="present", ignore=IGNORE, extension=lovasz_choquet):
    lg, t = logits.tolist(), target.tolist()
    binary = len(lg[0]) == 1
    group_losses = []
    for group in _groups(t, per_image):
        group = [p for p in group if t[p[0]][p[1]][p[2]] != ignore]
        if not group:
            continue
        if binary:
            fg = frozenset(a for a, (n, i, j) in enumerate(group) if t[n][i][j] == 1)
            m = [max(0.0, 1 - lg[n][0][i][j] * (1 if t[n][i][j] == 1 else -1)) for n, i, j in group]
            group_losses.append(extension(m, fg))
            continue
        terms = []
        for c in range(len(lg[0])):
            fg = frozenset(a for a, (n, i, j) in enumerate(group) if t[n][i][j] == c)
            keep = bool(fg) if classes == "present" else (True if classes == "all" else c in classes)
            if keep:
                m = [abs((1.0 if t[n][i][j] == c else 0.0) - _probs(lg, n, i, j)[c]) for n, i, j in group]
                terms.append(extension(m, fg))
        if terms:
            group_losses.append(sum(terms) / len(terms))
    return sum(group_losses) / len(group_losses) if group_losses else 0.0


def ref_boundary_weights(target, radius, weight, ignore=IGNORE):
    t = target.tolist()
    out = [[[0.0] * len(t[0][0]) for _ in t[0]] for _ in t]
    for n, i, j in _pixels(t):
        if t[n][i][j] == ignore:
            continue
        labels = {t[n][a][b] for a in range(max(0, i - radius), min(len(t[n]), i + radius + 1))
                  for b in range(max(0, j - radius), min(len(t[n][0]), j + radius + 1)) if t[n][a][b] != ignore}
        out[n][i][j] = weight if len(labels) > 1 else 1.0
    return out


def ref_uncertainty(logits, target, mc_logits, factor, background=0, ignore=IGNORE):
    lg, t, mc = logits.tolist(), target.tolist(), mc_logits.tolist()
    total, count = 0.0, 0
    for n, i, j in _pixels(t):
        if t[n][i][j] == ignore:
            continue
        passes = [_probs(m, n, i, j) for m in mc]
        k = len(passes[0])
        var = 0.0
        for c in range(k):
            mean = sum(q[c] for q in passes) / len(passes)
            var += sum((q[c] - mean) ** 2 for q in passes) / len(passes)
        total += var / k * (1 - _probs(lg, n, i, j)[background])
        count += 1
    return ref_ce(logits, target) + factor * total / count


# ----------------------------------------------------------------------------- inputs


def make(n=2, c=3, h=3, w=4, seed=0, ignore_frac=0.2, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * scale).requires_grad_()
    target = torch.randint(0, max(c, 2), (n, h, w), generator=g)
    target[torch.rand(n, h, w, generator=g) < ignore_frac] = IGNORE
    return logits, target


CASES = [
    # (name, options, reference)
    ("ce", {}, lambda x, t: ref_ce(x, t)),
    ("ce", {"weight": [0.5, 2.0, 1.0]}, lambda x, t: ref_ce(x, t, weight=[0.5, 2.0, 1.0])),
    ("focal", {}, lambda x, t: ref_focal(x, t)),
    ("focal", {"gamma": 0.5, "alpha": [0.2, 0.3, 0.5]}, lambda x, t: ref_focal(x, t, [0.2, 0.3, 0.5], 0.5)),
    ("boundary_ce", {"radius": 1, "boundary_weight": 3.0},
     lambda x, t: ref_ce(x, t, pixel_weight=ref_boundary_weights(t, 1, 3.0))),
] + [
    (kind, {"per_image": per_image, "classes": classes, "smooth": smooth},
     partial(ref_overlap, kind=kind, per_image=per_image, classes=classes, smooth=smooth))
    for kind in ("soft_iou", "log_iou", "dice")
    for per_image in (False, True)
    for classes, smooth in (("present", 0.0), ("all", 0.5), ([0, 2], 1.0))
] + [
    ("lovasz", {"per_image": per_image, "classes": classes},
     partial(ref_lovasz, per_image=per_image, classes=classes))
    for per_image in (False, True)
    for classes in ("present", "all", [1])
]


@pytest.mark.parametrize(("name", "opts", "ref"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_multiclass_matches_loop_reference(name, opts, ref):
    for seed in range(3):
        x, t = make(seed=seed)
        t[1, :, :2] = 2 if seed == 1 else t[1, :, :2]  # some images lack a class, some have few
        assert L.get(name, **opts)(x, t).item() == pytest.approx(ref(x, t), rel=1e-10, abs=1e-12)


BINARY = [
    ("bce", {}, lambda x, t: ref_ce(x, t)),
    ("ce", {"weight": [1.0, 3.0]}, lambda x, t: ref_ce(x, t, weight=[1.0, 3.0])),
    ("focal", {"alpha": 0.25}, lambda x, t: ref_focal(x, t, [0.75, 0.25])),
    ("soft_iou", {}, lambda x, t: ref_overlap(x, t, "soft_iou")),
    ("dice", {"per_image": True}, lambda x, t: ref_overlap(x, t, "dice", True)),
    ("lovasz", {}, lambda x, t: ref_lovasz(x, t)),
    ("lovasz", {"per_image": True}, lambda x, t: ref_lovasz(x, t, True)),
]


@pytest.mark.parametrize(("name", "opts", "ref"), BINARY, ids=[f"{c[0]}-{i}" for i, c in enumerate(BINARY)])
def test_binary_matches_loop_reference(name, opts, ref):
    for seed in range(3):
        x, t = make(c=1, seed=seed)
        assert L.get(name, **opts)(x, t).item() == pytest.approx(ref(x, t), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("name", ["ce", "focal", "soft_iou", "log_iou", "dice", "boundary_ce"])
def test_one_sigmoid_channel_is_two_softmax_channels(name):
    x, t = make(c=1, seed=4)
    two = torch.cat([torch.zeros_like(x), x], 1)
    assert L.get(name)(x, t).item() == pytest.approx(L.get(name)(two, t).item(), rel=1e-12)


def test_ce_and_bce_match_torch():
    x, t = make(seed=5)
    w = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
    expect = F.cross_entropy(x, t, weight=w, ignore_index=IGNORE)
    assert L.ce(x, t, weight=w).item() == pytest.approx(expect.item(), rel=1e-12)
    z, tb = make(c=1, seed=6)
    valid = tb != IGNORE
    expect = F.binary_cross_entropy_with_logits(z[:, 0][valid], tb[valid].double())
    assert L.bce(z, tb).item() == pytest.approx(expect.item(), rel=1e-12)


def test_uncertainty_matches_loop_reference():
    x, t = make(seed=7)
    g = torch.Generator().manual_seed(1)
    mc = x.detach() + torch.randn(4, *x.shape, generator=g, dtype=torch.float64)
    got = L.uncertainty(x, t, mc, base="ce", factor=0.7)
    assert got.item() == pytest.approx(ref_uncertainty(x, t, mc, 0.7), rel=1e-10)
    # the registry form draws its passes through mc=, the trainer's callable
    draws = iter(mc)
    assert L.get("uncertainty", passes=4, factor=0.7)(x, t, mc=lambda: next(draws)).item() == pytest.approx(got.item())
    with pytest.raises(ValueError, match="needs mc="):
        L.get("uncertainty")(x, t)


# ----------------------------------------------------------------------------- Lovász, brute force


@pytest.mark.parametrize("seed", range(4))
def test_lovasz_is_the_exact_lovasz_extension(seed):
    """Six pixels: the loss equals the Choquet integral and the maximum greedy sum over all 720 orders."""
    x, t = make(n=1, c=3, h=2, w=3, seed=seed, ignore_frac=0.0, scale=1.5)
    got = L.lovasz(x, t, classes="all").item()
    assert got == pytest.approx(ref_lovasz(x, t, classes="all"), rel=1e-10)
    assert got == pytest.approx(ref_lovasz(x, t, classes="all", extension=lovasz_max_over_orders), rel=1e-10)
    z, tb = make(n=1, c=1, h=2, w=3, seed=seed, ignore_frac=0.0)
    got = L.lovasz(z, tb).item()
    assert got == pytest.approx(ref_lovasz(z, tb, extension=lovasz_max_over_orders), rel=1e-10)


def test_lovasz_ties_do_not_change_the_value():
    """Equal errors can sort either way; the extension's value does not depend on it."""
    x = torch.zeros(1, 2, 2, 3, dtype=torch.float64)
    t = torch.tensor([[[0, 1, 0], [1, 1, 0]]])
    assert L.lovasz(x, t).item() == pytest.approx(ref_lovasz(x, t, extension=lovasz_max_over_orders))


# ----------------------------------------------------------------------------- one-hot and perfect inputs


def _hard_logits(labels: torch.Tensor, c: int) -> torch.Tensor:
    """Logits whose softmax is one-hot to float64 precision (exp(-80) ~ 2e-35)."""
    return 80.0 * F.one_hot(labels, c).permute(0, 3, 1, 2).double()


def test_iou_losses_on_one_hot_inputs_are_one_minus_iou():
    gt = torch.tensor([[[0, 0, 1, 1, 2], [0, 1, 1, 2, 2], [IGNORE, 0, 1, 2, 2]]])
    pred = torch.tensor([[[0, 1, 1, 1, 2], [0, 0, 1, 2, 1], [2, 0, 1, 2, 0]]])
    # counted by hand over the 14 valid pixels (the ignored one is predicted 2, which does not count):
    # class 0: tp 3, fp 2, fn 1; class 1: tp 4, fp 2, fn 1; class 2: tp 3, fp 0, fn 2
    iou = np.array([3 / 6, 4 / 7, 3 / 5])
    dsc = np.array([6 / 9, 8 / 11, 6 / 8])
    np.testing.assert_allclose(iou, loop_iou(gt.numpy(), pred.numpy(), 3, IGNORE), rtol=1e-15)
    x = _hard_logits(pred, 3)
    assert L.soft_iou(x, gt).item() == pytest.approx(1 - iou.mean(), abs=1e-12)
    assert L.log_iou(x, gt).item() == pytest.approx(-np.log(iou).mean(), abs=1e-12)
    assert L.dice(x, gt).item() == pytest.approx(1 - dsc.mean(), abs=1e-12)
    assert L.lovasz(x, gt).item() == pytest.approx(1 - iou.mean(), abs=1e-12)  # errors 0/1: Delta of the mistakes
    # per image: mean over images of each image's 1 - mIoU over the classes in its target
    two = torch.cat([gt, gt.flip(-1)]), torch.cat([pred, pred.flip(-1)])
    per = [1 - np.nanmean(loop_iou(g.numpy(), p.numpy(), 3, IGNORE)) for g, p in zip(*two, strict=True)]
    assert L.soft_iou(_hard_logits(two[1], 3), two[0], per_image=True).item() == pytest.approx(np.mean(per))


@pytest.mark.parametrize("name", ["ce", "focal", "soft_iou", "log_iou", "dice", "lovasz", "boundary_ce"])
@pytest.mark.parametrize("c", [1, 3])
def test_zero_on_perfect_predictions(name, c):
    _, t = make(c=c, seed=8)
    x = _hard_logits(torch.where(t == IGNORE, 0, t), max(c, 2))
    if c == 1:
        x = 4.0 * (2.0 * (t == 1).double() - 1.0)[:, None]  # hinge margin 4 > 1; sigmoid(4) is not one-hot
        if name in ("lovasz",):
            assert L.get(name)(x, t).item() == 0.0
            return
        x = 80.0 * x
    assert abs(L.get(name)(x, t).item()) < 1e-12


def test_uncertainty_minimum_is_the_base_loss():
    _, t = make(seed=9)
    x = _hard_logits(torch.where(t == IGNORE, 0, t), 3)
    assert L.uncertainty(x, t, torch.stack([x, x, x])).item() == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- gradients


GRAD_LOSSES = [
    ("ce", {"weight": [0.5, 2.0, 1.0]}), ("focal", {"gamma": 2.0}), ("soft_iou", {}), ("soft_iou", {"per_image": True}),
    ("log_iou", {}), ("dice", {"classes": "all", "smooth": 1.0}), ("lovasz", {}), ("lovasz", {"per_image": True}),
    ("boundary_ce", {"radius": 1}),
]


@pytest.mark.parametrize(("name", "opts"), GRAD_LOSSES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(GRAD_LOSSES)])
def test_gradcheck(name, opts):
    """float64 finite differences; random logits keep Lovász's sort away from ties."""
    x, t = make(seed=10)
    loss = L.get(name, **opts)
    assert torch.autograd.gradcheck(lambda z: loss(z, t), (x,), eps=1e-6, atol=1e-7)
    binary = L.get(name, **{k: v for k, v in opts.items() if k != "weight"})  # weights are per class
    z, tb = make(c=1, seed=11)
    assert torch.autograd.gradcheck(lambda v: binary(v, tb), (z,), eps=1e-6, atol=1e-7)


def test_gradcheck_uncertainty():
    """The variance term through the dropout passes; p(background) is detached, so the term sends
    nothing back through ``logits`` and their gradient is the base loss's alone."""
    x, t = make(seed=12)
    g = torch.Generator().manual_seed(2)
    mc = (x.detach() + torch.randn(3, *x.shape, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda m: L.uncertainty(x.detach(), t, m, factor=2.0), (mc,), eps=1e-6, atol=1e-7)
    (grad,) = torch.autograd.grad(L.uncertainty(x, t, mc.detach(), factor=2.0), x)
    (expect,) = torch.autograd.grad(L.ce(x, t), x)
    assert torch.equal(grad, expect)


ALL = [("ce", {}), ("focal", {"alpha": [1.0, 2.0, 3.0]}), ("soft_iou", {}), ("log_iou", {"per_image": True}),
       ("dice", {"classes": "all", "smooth": 1.0}), ("lovasz", {}), ("lovasz", {"per_image": True, "classes": "all"}),
       ("boundary_ce", {"radius": 2})]


@pytest.mark.parametrize(("name", "opts"), ALL, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ALL)])
@pytest.mark.parametrize("c", [1, 3])
def test_ignored_pixels_get_no_gradient_and_change_nothing(name, opts, c):
    x, t = make(c=c, seed=13, ignore_frac=0.4)
    opts = {k: v for k, v in opts.items() if not (c == 1 and isinstance(v, list))}  # per-class weights
    ignored = (t == IGNORE)[:, None].expand_as(x)
    loss = L.get(name, **opts)
    value = loss(x, t)
    value.backward()
    assert ignored.any() and (x.grad[ignored] == 0).all()
    assert x.grad[~ignored].abs().sum() > 0
    moved = torch.where(ignored, x.detach() * -7 + 3, x.detach())
    assert loss(moved, t).item() == pytest.approx(value.item(), rel=1e-12)


@pytest.mark.parametrize("name", L.names())
def test_a_batch_without_valid_pixels_gives_zero(name):
    x, t = make(seed=14)
    t[:] = IGNORE
    kwargs = {"mc": lambda: x * 1.0} if name == "uncertainty" else {}
    x_in = x[:, :1] if name == "bce" else x
    value = L.get(name)(x_in, t, **kwargs)
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(x.grad).all() and (x.grad == 0).all()


def test_half_precision_logits_are_computed_in_float32():
    x, t = make(seed=15)
    for name in ("ce", "soft_iou", "lovasz", "dice"):
        got = L.get(name)(x.detach().to(torch.bfloat16), t)
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(L.get(name)(x.detach().to(torch.bfloat16).double(), t).item(), rel=1e-5)


# ----------------------------------------------------------------------------- boundary weights


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_boundary_weights_match_window_loops(radius):
    g = torch.Generator().manual_seed(16)
    t = torch.randint(0, 2, (2, 7, 9), generator=g)
    t[0, :4, :4] = 0
    t[1, 3:, :] = IGNORE  # an ignore region is no boundary
    t[1, :3, :] = 1
    got = L.boundary_weights(t, radius=radius, boundary_weight=4.0)
    assert got.tolist() == ref_boundary_weights(t, radius, 4.0)
    if radius == 0:
        assert got[t != IGNORE].eq(1).all()


# ----------------------------------------------------------------------------- input checks


def test_bad_inputs_are_named():
    x, t = make(seed=17)
    with pytest.raises(ValueError, match=r"labels 3 outside 0\.\.2"):
        L.ce(x, torch.where(t == IGNORE, 3, t))
    with pytest.raises(ValueError, match="target must have shape"):
        L.soft_iou(x, t[:, :2])
    with pytest.raises(ValueError, match="integer class ids"):
        L.dice(x, t.double())
    with pytest.raises(ValueError, match="one sigmoid channel"):
        L.bce(x, t)
    with pytest.raises(ValueError, match="one weight per class"):
        L.focal(x, t, alpha=0.25)
    with pytest.raises(ValueError, match="classes must be"):
        L.lovasz(x, t, classes="most")


# ----------------------------------------------------------------------------- parsing


def test_combination_is_the_weighted_sum():
    x, t = make(seed=18)
    combo = L.get("ce + 0.5*lovasz + 2*dice(smooth=1)")
    expect = L.ce(x, t) + 0.5 * L.lovasz(x, t) + 2 * L.dice(x, t, smooth=1.0)
    assert combo(x, t).item() == pytest.approx(expect.item(), rel=1e-12)
    assert repr(combo) == "ce+0.5*lovasz+2*dice(smooth=1)"
    assert repr(L.get("focal(gamma=1, alpha=[0.2, 0.3, 0.5])")) == "focal(gamma=1,alpha=[0.2, 0.3, 0.5])"
    assert L.get("uncertainty(base=dice, factor=0.1, passes=3)").needs_mc
    assert L.get("ce+0.1*uncertainty(base=None)").needs_mc and not L.get("ce+lovasz").needs_mc


def test_schedule_picks_the_loss_by_epoch():
    s = L.parse("ce@0-10, lovasz+dice@10-")
    assert [repr(s.at(e)) for e in (0, 9, 10, 500)] == ["ce", "ce", "lovasz+dice", "lovasz+dice"]
    s.check(12)
    gap = L.parse("dice@5-,ce@0-3")
    assert [p.start for p in gap.phases] == [0, 5]
    with pytest.raises(SegevalError, match="no loss for epoch 3"):
        gap.check(6)
    assert L.parse("soft_iou(per_image=True)").at(7).kwargs == {"per_image": True}
    ignore = L.parse("ce+lovasz@0-", ignore_index=0).at(0)
    assert all(loss.kwargs["ignore_index"] == 0 for _, loss in ignore.terms)


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty"), ("crossentropy", "unknown loss 'crossentropy'"), ("ce+", "cannot read ''"),
    ("focal(gama=2)", "no option gama"), ("ce@0-5,lovasz@4-", "overlap"), ("ce@3-3", "empty"),
    ("ce,lovasz@4-", "has no epoch range"), ("ce@x", "cannot read the epoch range"), ("-1*ce", "cannot read"),
    ("focal(2)", "name=value"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(SegevalError, match=message):
        L.parse(spec)


def test_an_open_range_from_epoch_0_is_one_phase():
    s = L.parse("ce@0-")
    assert [(ph.start, ph.end, repr(ph.loss)) for ph in s.phases] == [(0, None, "ce")]
    assert repr(s.at(0)) == repr(s.at(10_000)) == "ce"
    assert repr(L.get("ce@0-")) == "ce"  # the same as no range at all


def test_get_refuses_a_schedule():
    with pytest.raises(SegevalError, match="schedule"):
        L.get("ce@0-3,lovasz@3-")


# ----------------------------------------------------------------------------- saturated and non-finite logits


def _every_option() -> list[tuple[str, dict, int]]:
    """(name, options, C) for every loss of the registry and every option it has."""
    out: list[tuple[str, dict, int]] = []
    for c in (1, 3):
        k = max(c, 2)
        weights = [0.5, 2.0] if c == 1 else [0.5, 2.0, 1.0]
        out += [("ce", {}, c), ("ce", {"weight": weights}, c)]
        for gamma in (0.0, 0.25, 0.5, 1.0, 2.0, 5.0):
            out.append(("focal", {"gamma": gamma}, c))
        out.append(("focal", {"gamma": 0.5, "alpha": [0.2, 0.3, 0.5][:k]}, c))
        if k == 2:
            out.append(("focal", {"gamma": 0.3, "alpha": 0.25}, c))
        for kind in ("soft_iou", "log_iou", "dice"):
            for per_image in (False, True):
                for classes in ("present", "all", [1]):
                    for smooth in (0.0, 1.0):
                        out.append((kind, {"per_image": per_image, "classes": classes, "smooth": smooth}, c))
        for per_image in (False, True):
            for classes in ("present", "all", [1]):
                out.append(("lovasz", {"per_image": per_image, "classes": classes}, c))
        out += [("boundary_ce", {"radius": 0}, c), ("boundary_ce", {"radius": 2, "boundary_weight": 0.0}, c),
                ("boundary_ce", {"radius": 1, "weight": weights}, c)]
        for base in ("ce", "focal(gamma=0.5)", "dice", None):
            out.append(("uncertainty", {"base": base, "factor": 2.0, "passes": 2}, c))
        out.append(("uncertainty", {"background": 1, "passes": 3}, c))
    out += [("bce", {}, 1), ("bce", {"weight": [0.3, 0.7]}, 1)]
    return out


EVERY = _every_option()


def _call(loss, x, t):
    if loss.needs_mc:
        g = torch.Generator().manual_seed(5)
        return loss(x, t, mc=lambda: x + torch.randn(x.shape, generator=g, dtype=x.dtype))
    return loss(x, t)


def test_every_loss_has_saturation_cases():
    assert {name for name, _, _ in EVERY} == set(L.names())


def _saturated(c: int, margin: float, dtype: torch.dtype, right: bool):
    """Logits whose softmax rounds to one-hot: the target class (or a wrong one) ahead by ``margin``."""
    x, t = make(c=c, seed=21, ignore_frac=0.25)
    k = max(c, 2)
    t_safe = torch.where(t == IGNORE, 0, t)
    pick = t_safe if right else (t_safe + 1) % k
    if c == 1:
        z = torch.where(pick == 1, margin, -margin)[:, None]
    else:
        z = F.one_hot(pick, k).permute(0, 3, 1, 2).to(torch.float64) * margin
    return z.to(dtype).requires_grad_(), t


@pytest.mark.parametrize(("name", "opts", "c"), EVERY, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(EVERY)])
def test_saturated_logits_give_finite_losses_and_gradients(name, opts, c):
    loss = L.get(name, **opts)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        for margin in (17.0, 40.0, 1e4, 1e30):
            for right in (True, False):
                x, t = _saturated(c, margin, dtype, right)
                value = _call(loss, x, t)
                value.backward()
                what = f"{dtype} margin {margin} {'right' if right else 'wrong'}"
                assert torch.isfinite(value), what
                assert torch.isfinite(x.grad).all(), what


@pytest.mark.parametrize(("name", "opts", "c"), EVERY, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(EVERY)])
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_inf_and_nan_at_ignored_pixels_change_nothing(name, opts, c, bad):
    """An ignored pixel's logits may hold anything (padding); the loss and the other gradients are as if
    they were finite, and the ignored pixels get a gradient of exactly 0."""
    x, t = make(c=c, seed=22, ignore_frac=0.3)
    ignored = (t == IGNORE)[:, None].expand_as(x)
    assert ignored.any() and not ignored.all()
    loss = L.get(name, **opts)
    clean = x.detach().clone().requires_grad_()
    expect = _call(loss, clean, t)
    expect.backward()
    dirty = torch.where(ignored, torch.full_like(x, bad), x.detach()).requires_grad_()
    value = _call(loss, dirty, t)
    value.backward()
    assert torch.isfinite(value) and value.item() == pytest.approx(expect.item(), rel=1e-12, abs=1e-15)
    assert torch.isfinite(dirty.grad).all() and (dirty.grad[ignored] == 0).all()
    torch.testing.assert_close(dirty.grad, clean.grad, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9, 1.0, 2.0])
@pytest.mark.parametrize("c", [1, 2, 3])
def test_focal_near_p_t_1_matches_float64(gamma, c):
    """Where float32 rounds p_t to 1 (margin 17..30), focal's value and gradient are those of the float64
    computation (which does not round there), not NaN; the issue's one-pixel case among them."""
    for margin in (17.0, 20.0, 30.0):
        z64 = torch.zeros(1, c, 1, 1, dtype=torch.float64)
        if c == 1:
            z64[0, 0] = -margin  # target 0: p_t = 1 - sigmoid(z)
        else:
            z64[0, 0] = margin
        z64.requires_grad_()
        t = torch.zeros(1, 1, 1, dtype=torch.long)
        v64 = L.focal(z64, t, gamma=gamma)
        v64.backward()
        z32 = z64.detach().float().requires_grad_()
        v32 = L.focal(z32, t, gamma=gamma)
        v32.backward()
        assert torch.isfinite(z32.grad).all(), (gamma, c, margin)
        # float32's log p_t rounds to 0 here: value and gradient agree to float32's resolution, not NaN
        torch.testing.assert_close(v32.double(), v64, rtol=1e-3, atol=1e-6)
        torch.testing.assert_close(z32.grad.double(), z64.grad, rtol=1e-3, atol=1e-6)


def test_focal_gamma_half_issue_case():
    x = torch.zeros(1, 2, 1, 1)
    x[0, 0] = 17.0
    x.requires_grad_()
    L.focal(x, torch.zeros(1, 1, 1, dtype=torch.long), gamma=0.5).backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().max() < 1e-6  # the exact gradient is about 1.5 * (e^-17)^1.5, below 1e-11


@pytest.mark.parametrize("name", ["soft_iou", "log_iou", "dice", "lovasz"])
@pytest.mark.parametrize("c", [1, 3])
def test_an_image_without_valid_pixels_counts_for_nothing_per_image(name, c):
    """With per_image=True the mean is over the images that have valid pixels: appending an all-ignored
    image changes neither the loss nor the gradient of the others."""
    x, t = make(n=3, c=c, seed=23)
    loss = L.get(name, per_image=True)
    alone = loss(x[:2], t[:2])
    t_more = t.clone()
    t_more[2] = IGNORE
    assert loss(x, t_more).item() == pytest.approx(alone.item(), rel=1e-12)
    (g_alone,) = torch.autograd.grad(alone, x)
    (g_more,) = torch.autograd.grad(loss(x, t_more), x)
    torch.testing.assert_close(g_more[:2], g_alone[:2], rtol=1e-12, atol=1e-15)
    assert (g_more[2] == 0).all()
