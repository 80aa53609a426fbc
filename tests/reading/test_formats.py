"""Mask formats as people have them: colour masks, label maps, one-hot and score maps, 16-bit and
volume TIFFs, palette PNGs. Generated files are written to tmp_path; real data is read in place
from ../shared/data (tests skip when it is absent) and never copied into the project."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import cli
from PIL import Image

from segeval import load_classes, read_mask, score
from segeval.core.classes import PRESETS, voc_colors
from segeval.errors import MaskError, SegevalError
from segeval.reading import decode
from segeval.reading.decode import CITYSCAPES_LABEL_TO_TRAIN, Decoding, Palette, load_label_map
from segeval.reading.io import read_array

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent (a user's clone); CI has it")
VOC = DATA / "voc2012-deeplabv3plus-gt-and-pred"
STARDIST = DATA / "stardist-dsb2018-nucleus-2d" / "mask2d.tif"
LABELME = DATA / "labelme-voc-format-example" / "data_dataset_voc"
VOID = (224, 224, 192)


def save(path: Path, a: np.ndarray) -> Path:
    """Write an array as the file type its name says (PNG via Pillow, TIFF, NPY, NPZ)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        Image.fromarray(a).save(path)
    elif path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, a, photometric="rgb" if a.ndim == 3 and a.shape[-1] == 3 and a.dtype == np.uint8
                         else "minisblack")
    elif path.suffix == ".npy":
        np.save(path, a)
    else:
        np.savez_compressed(path, mask=a)
    return path


def reference_cm(gt: np.ndarray, pred: np.ndarray, k: int, ignore: int = 255) -> np.ndarray:
    """Obviously right twin: (K, K) counts by np.bincount over valid pixels."""
    g, p = gt.ravel().astype(np.int64), pred.ravel().astype(np.int64)
    keep = g != ignore
    return np.bincount(g[keep] * k + p[keep], minlength=k * k).reshape(k, k)


def labels(shape: tuple[int, ...], k: int, seed: int = 0, dtype: type = np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, k, shape).astype(dtype)


def perturb(a: np.ndarray, k: int, seed: int = 1, share: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = a.copy()
    m = rng.random(a.shape) < share
    out[m] = rng.integers(0, k, int(m.sum()))
    return out


def link_pairs(tmp: Path, pairs: dict[str, tuple[Path, Path]]) -> tuple[Path, Path]:
    """Symlink real files into tmp/pred and tmp/gt (no copies)."""
    (tmp / "pred").mkdir()
    (tmp / "gt").mkdir()
    for name, (pred, gt) in pairs.items():
        (tmp / "pred" / f"{name}{pred.suffix}").symlink_to(pred)
        (tmp / "gt" / f"{name}{gt.suffix}").symlink_to(gt)
    return tmp / "pred", tmp / "gt"


# ----------------------------------------------------------------------------- colour masks


def voc_rgb(lab: np.ndarray) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    lut[:21] = voc_colors(21)
    lut[255] = VOID
    return lut[lab]


@needs_data
def test_voc_colour_masks_match_the_published_reference(tmp_path: Path) -> None:
    """Real RGB ground truth and DeepLabV3+ predictions in the VOC palette, void (224,224,192) = 255;
    per-class IoU as computed independently in the set's SOURCE.md."""
    ids = sorted(p.name.split("_")[0] for p in VOC.glob("*_target.png"))
    pred, gt = link_pairs(tmp_path, {i: (VOC / f"{i}_pred.png", VOC / f"{i}_target.png") for i in ids})
    r = cli("score", pred, gt, "--classes", "voc", "--json", tmp_path / "run.json", "--format", "json")
    assert r.exit_code == 0, r.stderr
    run = json.loads((tmp_path / "run.json").read_text())
    iou = {c["name"]: c["iou"] for c in run["classes"]}
    expected = {"background": 0.9781, "aeroplane": 0.9384, "bicycle": 0.5807, "bird": 0.9494, "bottle": 0.0,
                "bus": 0.9877, "car": 0.8856, "cow": 0.9664, "horse": 0.9329, "motorbike": 0.9263,
                "person": 0.9058, "sheep": 0.9658}
    for name, value in expected.items():
        assert iou[name] == pytest.approx(value, abs=5e-5), name
    assert run["miou"] == pytest.approx(0.8347, abs=5e-5)
    assert run["n_images"] == 14
    # void is 1.6 %..12.3 % of each target, and never in a prediction
    assert 0.016 * run["pixels"] < run["ignored_pixels"] < 0.123 * run["pixels"]
    # exactly the void-coloured target pixels, counted with Pillow
    targets = [np.asarray(Image.open(VOC / f"{i}_target.png").convert("RGB")) for i in ids]
    assert run["pixels"] == sum(t.shape[0] * t.shape[1] for t in targets)
    assert run["ignored_pixels"] == sum(int((t == VOID).all(-1).sum()) for t in targets)
    assert run["settings"]["void_colors"] == [list(VOID)]


@needs_data
def test_voc_colour_decoding_agrees_with_a_pixel_loop() -> None:
    cs = PRESETS["voc"]
    d = Decoding(21, 255, Palette.from_classes(cs, 255))
    rgb = np.asarray(Image.open(VOC / "120_target.png"))
    got = read_mask(VOC / "120_target.png", d, role="gt")
    lookup = {c: i for i, c in enumerate(cs.colors)} | {VOID: 255}
    sub = rgb[::7, ::7]
    want = np.array([[lookup[tuple(px)] for px in row] for row in sub.tolist()])
    assert got.dtype == np.uint8 and got.shape == (513, 513)
    np.testing.assert_array_equal(got[::7, ::7], want)
    assert {0, 2, 5, 255} <= set(np.unique(got).tolist())  # background, bicycle, bottle, void


@needs_data
def test_a_photo_is_not_a_colour_mask(tmp_path: Path) -> None:
    """A real photo given as prediction: exit 2 naming the file, an unknown colour and its pixels."""
    pred, gt = link_pairs(tmp_path, {"0": (VOC / "0_image.png", VOC / "0_target.png")})
    r = cli("score", pred, gt, "--classes", "voc")
    assert r.exit_code == 2
    msg = r.stderr.strip()
    assert "\n" not in msg and "pred/0.png" in msg and "not in the palette of --classes" in msg
    assert " pixels" in msg and "--unknown-color ignore" in msg


def test_generated_voc_rgb_and_rgba_decode_exactly(tmp_path: Path) -> None:
    gt = labels((40, 50), 21, seed=3)
    gt[:5] = 255
    pred = perturb(gt, 21)
    pred[:5] = gt[:5]
    rgba = np.dstack([voc_rgb(pred), np.full(pred.shape, 255, np.uint8)])
    save(tmp_path / "gt" / "x.png", voc_rgb(gt))
    save(tmp_path / "pred" / "x.png", rgba)  # the alpha channel is dropped
    run = score(tmp_path / "pred", tmp_path / "gt", classes="voc", workers=1)
    np.testing.assert_array_equal(run.cm[:, :21], reference_cm(gt, pred, 21))
    assert run.ignored == 5 * 50


def test_unknown_colour_is_an_error_or_ignored(tmp_path: Path) -> None:
    gt = labels((30, 30), 21, seed=4)
    rgb = voc_rgb(gt)
    rgb[0, :7] = (10, 20, 30)
    save(tmp_path / "gt" / "x.png", rgb)
    save(tmp_path / "pred" / "x.png", voc_rgb(gt))
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "--classes", "voc")
    assert r.exit_code == 2
    assert "gt/x.png" in r.stderr and "(10, 20, 30) in 7 pixels" in r.stderr
    r = cli("score",
            tmp_path / "pred", tmp_path / "gt", "--classes", "voc", "--unknown-color", "ignore",
            "--format", "json")
    assert r.exit_code == 0, r.stderr
    run = json.loads(r.stdout)
    assert run["ignored_pixels"] == 7 and run["miou"] == 1.0
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "--classes", "voc", "--unknown-color", "maybe")
    assert r.exit_code == 2 and "--unknown-color" in r.stderr


def test_user_palette_with_a_void_entry(tmp_path: Path) -> None:
    spec = [{"name": "sky", "color": [0, 0, 255]}, {"name": "grass", "color": "#00ff00"},
            {"name": "edge", "color": [9, 9, 9], "void": True}]
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(spec))
    cs = load_classes(str(classes))
    assert cs.names == ("sky", "grass") and cs.void_colors == ((9, 9, 9),)
    lut = np.array([(0, 0, 255), (0, 255, 0), (9, 9, 9)], np.uint8)
    gt = labels((20, 20), 3, seed=5)
    save(tmp_path / "gt" / "a.png", lut[gt])
    save(tmp_path / "pred" / "a.png", lut[np.where(gt == 2, 0, gt)])
    run = score(tmp_path / "pred", tmp_path / "gt", classes=str(classes), workers=1)
    assert run.ignored == int((gt == 2).sum()) and run.miou == 1.0
    # --void-color replaces the file's void colours: (9, 9, 9) is now unknown
    with pytest.raises(MaskError, match=r"\(9, 9, 9\) in \d+ pixels"):
        score(tmp_path / "pred", tmp_path / "gt", classes=str(classes), void_colors=["1,2,3"], workers=1)
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "--classes", classes, "--void-color", "300,0,0")
    assert r.exit_code == 2 and "--void-color" in r.stderr


def test_void_colour_must_not_be_a_class_colour(tmp_path: Path) -> None:
    save(tmp_path / "gt" / "a.png", voc_rgb(labels((4, 4), 2)))
    with pytest.raises(SegevalError, match="also the colour of class background"):
        score(tmp_path / "gt", tmp_path / "gt", classes="voc", void_colors=[(0, 0, 0)])


def test_cityscapes_colour_preset_with_void_colours(tmp_path: Path) -> None:
    cs = PRESETS["cityscapes"]
    lut = np.zeros((256, 3), np.uint8)
    lut[:19] = cs.colors
    lut[255] = (111, 74, 0)  # "dynamic": no train id
    gt = labels((30, 40), 19, seed=6)
    gt[:3] = 255
    pred = perturb(gt, 19)
    pred[:3] = gt[:3]
    save(tmp_path / "gt" / "a.png", lut[gt])
    save(tmp_path / "pred" / "a.png", lut[pred])
    run = score(tmp_path / "pred", tmp_path / "gt", classes="cityscapes", workers=1)
    np.testing.assert_array_equal(run.cm[:, :19], reference_cm(gt, pred, 19))


def test_colour_tiff(tmp_path: Path) -> None:
    gt = labels((16, 24), 21, seed=7)
    save(tmp_path / "a.tif", voc_rgb(gt))
    a, color = read_array(tmp_path / "a.tif")
    assert color and a.shape == (16, 24, 3)
    d = Decoding(21, 255, Palette.from_classes(PRESETS["voc"], 255))
    np.testing.assert_array_equal(read_mask(tmp_path / "a.tif", d), gt)


def test_colour_lookup_scales(tmp_path: Path) -> None:
    """A 2-megapixel colour mask decodes in well under a second (vectorised lookup)."""
    import time

    d = Decoding(21, 255, Palette.from_classes(PRESETS["voc"], 255))
    lab = np.repeat(labels((1024, 32), 21, seed=8), 64, axis=1)
    rgb = voc_rgb(lab)
    t = time.perf_counter()
    got = decode.to_labels("x", rgb, color=True, decoding=d)
    assert time.perf_counter() - t < 1.0
    np.testing.assert_array_equal(got, lab)


# ----------------------------------------------------------------------------- palette PNGs


def _p_png(path: Path, idx: np.ndarray, palette: list[int]) -> None:
    im = Image.frombytes("P", (idx.shape[1], idx.shape[0]), idx.tobytes())
    im.putpalette(palette)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def test_palette_pngs_compare_indices_not_colours(tmp_path: Path) -> None:
    idx = labels((32, 48), 5, seed=9)
    rng = np.random.default_rng(0)
    _p_png(tmp_path / "gt" / "a.png", idx, [int(v) for v in rng.integers(0, 256, 768)])
    _p_png(tmp_path / "pred" / "a.png", idx, [int(v) for v in rng.integers(0, 256, 768)])
    assert Image.open(tmp_path / "gt" / "a.png").getpalette() != Image.open(tmp_path / "pred" / "a.png").getpalette()
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "-k", "5", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["miou"] == 1.0
    # the classes' colours play no part either: indices are labels even with --classes voc
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "--classes", "voc", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["miou"] == 1.0


@needs_data
def test_real_palette_pngs_against_int32_npy_with_minus_one(tmp_path: Path) -> None:
    """labelme's P-mode PNGs (255 = ignore) against its int32 .npy exports (-1 = ignore)."""
    names = ["2011_000003", "2011_000006", "2011_000025"]
    pred, gt = link_pairs(tmp_path, {n: (LABELME / "SegmentationClass" / f"{n}.png",
                                         LABELME / "SegmentationClassNpy" / f"{n}.npy") for n in names})
    r = cli("score", pred, gt, "--classes", "voc", "--format", "json")
    assert r.exit_code == 2 and "-1 (" in r.stderr and "gt/2011_000003.npy" in r.stderr
    r = cli("score", pred, gt, "--classes", "voc", "--map", '{"-1": "ignore"}', "--format", "json")
    assert r.exit_code == 0, r.stderr
    run = json.loads(r.stdout)
    assert run["miou"] == 1.0 and run["ignored_pixels"] > 0
    npys = [np.load(LABELME / "SegmentationClassNpy" / f"{n}.npy") for n in names]
    assert run["ignored_pixels"] == sum(int((a == -1).sum()) for a in npys)
    assert run["confusion_matrix"] == np.diag(np.bincount(np.concatenate([a[a >= 0] for a in npys]),
                                                          minlength=21)).tolist()
    assert run["settings"]["map"] == '{"-1": "ignore"}'


# ----------------------------------------------------------------------------- label maps

CITYSCAPES_TABLE = {  # labelId -> trainId, from cityscapesScripts' labels.py (255: no train id)
    -1: 255, 0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255, 11: 2,
    12: 3, 13: 4, 14: 255, 15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17, 33: 18,
}


def test_cityscapes_ids_preset_on_every_label_id() -> None:
    m = load_label_map("cityscapes-ids")
    ids = np.array(sorted(CITYSCAPES_TABLE), np.int16).reshape(5, 7)
    got = m.apply(ids, 255)
    want = np.vectorize(CITYSCAPES_TABLE.get)(ids)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.uint8
    assert len(CITYSCAPES_LABEL_TO_TRAIN) == 19
    # uint8 labelId PNGs go through a lookup table over all 256 values
    u8 = np.arange(34, dtype=np.uint8).reshape(2, 17)
    np.testing.assert_array_equal(m.apply(u8, 255), np.vectorize(CITYSCAPES_TABLE.get)(u8))


# trainId -> labelId from the cityscapesScripts table above (not from segeval's own table)
TRAIN_TO_LABEL_ID = np.zeros(256, np.uint8)
for _lid, _tid in CITYSCAPES_TABLE.items():
    if _tid != 255:
        TRAIN_TO_LABEL_ID[_tid] = _lid
VOID_LABEL_IDS = np.array([lid for lid, tid in CITYSCAPES_TABLE.items() if tid == 255 and lid >= 0], np.uint8)


def test_cityscapes_label_ids_score_like_train_ids(tmp_path: Path) -> None:
    to_label = TRAIN_TO_LABEL_ID.copy()
    to_label[255] = 0
    gt = labels((24, 32), 19, seed=10)
    gt[:2] = 255
    pred = perturb(gt, 19)
    for name, a in (("gt", gt), ("pred", pred)):
        save(tmp_path / name / "a.png", a)
        save(tmp_path / f"{name}_ids" / "a.png", to_label[a])
    want = score(tmp_path / "pred", tmp_path / "gt", classes="cityscapes", workers=1)
    got = score(tmp_path / "pred_ids", tmp_path / "gt_ids", classes="cityscapes", label_map="cityscapes-ids",
                workers=1)
    np.testing.assert_array_equal(got.cm, want.cm)
    np.testing.assert_array_equal(got.cm[:, :19], reference_cm(gt, pred, 19))
    assert not got.cm[:, 19].any()  # the prediction is 255 only where the ground truth is ignored
    assert got.settings["map"] == "cityscapes-ids"


def _street_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """trainIds in 16 x 16 blocks (compressible, like real masks), the bottom rows void (an ego-vehicle hood)."""
    a = np.repeat(np.repeat(rng.integers(0, 19, (h // 16, w // 16)), 16, 0), 16, 1).astype(np.uint8)
    a[h - h // 8 :] = 255
    return a


def test_cityscapes_ids_on_large_label_id_files(tmp_path: Path) -> None:
    """Full-size label-id PNGs (the uint8 pair-histogram path and the fast PNG path), void written as every
    labelId without a train id, scored with --map cityscapes-ids against np.bincount on the trainIds."""
    rng = np.random.default_rng(26)
    total = np.zeros((19, 19), np.int64)
    for i in range(2):
        gt = _street_like(rng, 512, 1024)
        pred = np.where(gt == 255, rng.integers(0, 19, gt.shape), gt).astype(np.uint8)
        swap = rng.random(gt.shape) < 0.1
        pred[swap] = rng.integers(0, 19, int(swap.sum()))
        gt_ids = TRAIN_TO_LABEL_ID[gt]
        void = gt == 255
        gt_ids[void] = VOID_LABEL_IDS[rng.integers(0, VOID_LABEL_IDS.size, int(void.sum()))]
        save(tmp_path / "gt" / f"cs_{i}.png", gt)
        save(tmp_path / "pred" / f"cs_{i}.png", pred)
        save(tmp_path / "gt_labelIds" / f"cs_{i}.png", gt_ids)
        save(tmp_path / "pred_labelIds" / f"cs_{i}.png", TRAIN_TO_LABEL_ID[pred])
        m = Decoding(19, 255, label_map=load_label_map("cityscapes-ids"))
        np.testing.assert_array_equal(read_mask(tmp_path / "gt_labelIds" / f"cs_{i}.png", m), gt)
        total += reference_cm(gt, pred, 19)
    got = score(tmp_path / "pred_labelIds", tmp_path / "gt_labelIds", classes="cityscapes",
                label_map="cityscapes-ids")
    np.testing.assert_array_equal(got.cm[:, :19], total)
    assert not got.cm[:, 19].any() and got.ignored == 2 * (512 // 8) * 1024
    want = score(tmp_path / "pred", tmp_path / "gt", classes="cityscapes")
    np.testing.assert_array_equal(got.cm, want.cm)


def test_map_from_a_file_applies_to_both_sides(tmp_path: Path) -> None:
    gt = np.where(labels((20, 20), 2, seed=11) == 1, 255, 0).astype(np.uint8)  # stored as {0, 255}
    pred = np.where(perturb(gt // 255, 2) == 1, 255, 0).astype(np.uint8)
    save(tmp_path / "gt" / "a.png", gt)
    save(tmp_path / "pred" / "a.png", pred)
    mfile = tmp_path / "map.json"
    mfile.write_text('{"255": 1}')
    r = cli("score",
            tmp_path / "pred", tmp_path / "gt", "-k", "2", "--map", mfile, "--ignore-index", "7", "--format", "json")
    assert r.exit_code == 0, r.stderr
    cm = np.array(json.loads(r.stdout)["confusion_matrix"])
    np.testing.assert_array_equal(cm, reference_cm(gt // 255, pred // 255, 2, ignore=7))


@pytest.mark.parametrize("spec, what", [
    ("{not json", "not valid JSON"), ('{"a": 1}', "not an integer id"), ('{"1": -4}', "not a class id"),
    ("[1, 2]", "non-empty JSON object"), ("no-such-file.json", "neither a label-map file"),
])
def test_bad_maps_are_one_line_errors(tmp_path: Path, spec: str, what: str) -> None:
    save(tmp_path / "a.png", labels((4, 4), 2))
    r = cli("score", tmp_path / "a.png", tmp_path / "a.png", "-k", "2", "--map", spec)
    assert r.exit_code == 2 and what in r.stderr and r.stderr.count("\n") == 1


def test_wide_int32_ids_map_through_a_search() -> None:
    a = np.array([[-(2**30), 5], [2**30, 7]], np.int32)
    got = load_label_map({"5": 1, "1073741824": "ignore"}).apply(a, 255)
    np.testing.assert_array_equal(got, [[-(2**30), 1], [255, 7]])
    i8 = np.array([[-128, 5], [127, 0]], np.int8)  # a lookup table over -128..127
    np.testing.assert_array_equal(load_label_map({"5": 1, "-128": "ignore"}).apply(i8, 255), [[255, 1], [127, 0]])


# ----------------------------------------------------------------------------- one-hot and score maps


def test_one_hot_masks_channels_last_and_first(tmp_path: Path) -> None:
    gt = labels((12, 16), 4, seed=12)
    pred = perturb(gt, 4)
    onehot_last = (np.arange(4) == pred[..., None]).astype(np.uint8)  # (H, W, C), inferred: C = K = 4
    save(tmp_path / "gt" / "a.png", gt)
    save(tmp_path / "pred" / "a.npy", onehot_last)
    save(tmp_path / "gt" / "b.png", gt)
    save(tmp_path / "pred" / "b.npz", np.moveaxis(onehot_last, -1, 0).astype(bool))  # (C, H, W) bool
    run = score(tmp_path / "pred", tmp_path / "gt", 4, workers=1)
    np.testing.assert_array_equal(run.cm[:, :4], 2 * reference_cm(gt, pred, 4))


def test_one_hot_pixels_with_no_class_are_ignored_and_several_are_an_error(tmp_path: Path) -> None:
    gt = labels((8, 8), 3, seed=13)
    oh = (np.arange(3) == gt[..., None]).astype(np.uint8)
    oh[0] = 0  # no class set: the ignore index
    save(tmp_path / "gt.npy", oh)
    d = Decoding(3, 255, channels="last")
    got = read_mask(tmp_path / "gt.npy", d, role="gt")
    assert (got[0] == 255).all() and (got[1:] == gt[1:]).all()
    oh[1, 1] = 1
    save(tmp_path / "bad.npy", oh)
    with pytest.raises(MaskError, match="more than one class set"):
        read_mask(tmp_path / "bad.npy", d)
    # without the flag, an array that is not strictly one-hot is a label volume
    assert read_mask(tmp_path / "gt.npy", Decoding(3)).shape == (8, 8, 3)


def test_probability_and_logit_maps_argmax(tmp_path: Path) -> None:
    k = 5
    gt = labels((10, 14), k, seed=14)
    rng = np.random.default_rng(15)
    logits = rng.normal(size=(10, 14, k)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    want = logits.argmax(-1)
    save(tmp_path / "gt" / "a.png", gt)
    save(tmp_path / "pred" / "a.npy", probs)  # (H, W, C)
    save(tmp_path / "gt" / "b.png", gt)
    save(tmp_path / "pred" / "b.tif", np.moveaxis(logits, -1, 0))  # (C, H, W) float TIFF
    save(tmp_path / "gt" / "c.png", gt)
    save(tmp_path / "pred" / "c.npz", np.moveaxis(probs, -1, 0).astype(np.float16))
    run = score(tmp_path / "pred", tmp_path / "gt", k, workers=1)
    np.testing.assert_array_equal(run.cm[:, :k], 3 * reference_cm(gt, want, k))


def test_ambiguous_class_axis_needs_a_flag(tmp_path: Path) -> None:
    k = 3
    gt = labels((5, 3), k, seed=16)  # H = 5, W = 3 = K: a (K, H, W) map is (3, 5, 3)
    scores = np.random.default_rng(17).random((k, 5, 3)).astype(np.float32)
    save(tmp_path / "gt" / "a.png", gt)
    save(tmp_path / "pred" / "a.npy", scores)
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "-k", k)
    assert r.exit_code == 2 and "pred/a.npy" in r.stderr and "--channels-first" in r.stderr
    assert "both its first and last axes" in r.stderr
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "-k", k, "--channels-first", "--format", "json")
    assert r.exit_code == 0, r.stderr
    cm = np.array(json.loads(r.stdout)["confusion_matrix"])
    np.testing.assert_array_equal(cm, reference_cm(gt, scores.argmax(0), k))
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "-k", k, "--channels-last", "--format", "json")
    assert r.exit_code == 2  # argmax over W gives a (3, 5) map, not (5, 3)


def test_channel_count_must_be_k(tmp_path: Path) -> None:
    save(tmp_path / "p.npy", np.zeros((4, 6, 6), np.float32))
    with pytest.raises(MaskError, match="neither its first nor its last axis has K=5"):
        read_mask(tmp_path / "p.npy", Decoding(5), role="pred")
    with pytest.raises(MaskError, match="has 4 channels on its first axis"):
        read_mask(tmp_path / "p.npy", Decoding(5, channels="first"), role="pred")


def test_binary_threshold(tmp_path: Path) -> None:
    gt = labels((16, 16), 2, seed=18)
    prob = np.random.default_rng(19).random((16, 16)).astype(np.float32)
    save(tmp_path / "gt" / "a.png", gt)
    save(tmp_path / "pred" / "a.npy", prob[..., None])  # (H, W, 1) is single-channel too
    for t in (0.5, 0.8):
        run = score(tmp_path / "pred", tmp_path / "gt", 2, threshold=t, workers=1)
        np.testing.assert_array_equal(run.cm[:, :2], reference_cm(gt, (prob > t).astype(np.uint8), 2))
    with pytest.raises(MaskError, match="only a binary task"):
        score(tmp_path / "pred", tmp_path / "gt", 3, workers=1)


# ----------------------------------------------------------------------------- 16-bit, TIFF volumes, K limits


def test_16_bit_png_labels_above_255(tmp_path: Path) -> None:
    k = 300
    gt = labels((20, 30), k, seed=20, dtype=np.uint16)
    pred = perturb(gt, k)
    save(tmp_path / "gt" / "a.png", gt)
    save(tmp_path / "pred" / "a.tif", pred)
    a = read_mask(tmp_path / "gt" / "a.png")
    assert a.dtype == np.uint16 and int(a.max()) > 255
    run = score(tmp_path / "pred", tmp_path / "gt", k, ignore_index=65535, workers=1)
    np.testing.assert_array_equal(run.cm[:, :k], reference_cm(gt, pred, k, ignore=65535))


@needs_data
def test_stardist_uint16_instance_tiff_against_itself_and_as_binary(tmp_path: Path) -> None:
    m = read_mask(STARDIST)
    assert m.dtype == np.uint16 and m.shape == (512, 512) and int(m.max()) == 183
    k = int(m.max()) + 1
    r = cli("score", STARDIST, STARDIST, "-k", k, "--ignore-index", 65535, "--format", "json")
    assert r.exit_code == 0, r.stderr
    run = json.loads(r.stdout)
    present = [c for c in run["classes"] if c["iou"] is not None]
    assert run["miou"] == 1.0 and len(present) == 126  # 125 nuclei + background
    # binary: mask > 0, via the nonzero map, against the mask shifted by 3 pixels
    shifted = np.roll(m, 3, axis=1)
    save(tmp_path / "pred" / "mask2d.npy", shifted)
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "mask2d.tif").symlink_to(STARDIST)
    run2 = score(tmp_path / "pred", tmp_path / "gt", 2, label_map="nonzero", workers=1)
    fg = (m > 0).astype(np.uint8)
    assert fg.mean() == pytest.approx(0.199, abs=1e-3)
    np.testing.assert_array_equal(run2.cm[:, :2], reference_cm(fg, (shifted > 0).astype(np.uint8), 2))


def test_multi_page_tiff_is_scored_as_a_volume(tmp_path: Path) -> None:
    k = 4
    gt = labels((3, 20, 24), k, seed=21)
    pred = perturb(gt, k)
    save(tmp_path / "gt" / "vol.tif", gt)
    save(tmp_path / "pred" / "vol.tif", pred)
    with tifffile.TiffFile(tmp_path / "gt" / "vol.tif") as tf:
        assert len(tf.pages) == 3
    assert read_mask(tmp_path / "gt" / "vol.tif").shape == (3, 20, 24)
    run = score(tmp_path / "pred", tmp_path / "gt", k, workers=1)
    assert run.image_names == ["vol"]
    np.testing.assert_array_equal(run.cm[:, :k], reference_cm(gt, pred, k))


def test_too_many_classes_for_memory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save(tmp_path / "a.png", labels((4, 4), 2, dtype=np.uint16))
    monkeypatch.setattr(decode, "memory_bytes", lambda: 16 << 30)
    r = cli("score", tmp_path / "a.png", tmp_path / "a.png", "-k", 65536)
    assert r.exit_code == 2
    assert "65536 x 65537" in r.stderr and "quarter" in r.stderr and r.stderr.count("\n") == 1
    # within the limit but too large for 8 threads' matrices: fewer threads
    assert decode.check_matrix_memory(20_000, 8) == 1
    assert decode.check_matrix_memory(19, 8) == 8


# ----------------------------------------------------------------------------- other PNG kinds


@pytest.mark.parametrize("kind", ["interlaced", "1-bit", "4-bit-palette", "grey+alpha", "16-bit-interlaced"])
def test_other_png_kinds(tmp_path: Path, kind: str) -> None:
    a = labels((9, 13), 2 if kind == "1-bit" else 16, seed=22)
    path = tmp_path / "a.png"
    if kind == "interlaced":
        Image.fromarray(a).save(path, interlace=1)
    elif kind == "1-bit":
        Image.fromarray(a.astype(bool)).save(path)
    elif kind == "4-bit-palette":
        im = Image.frombytes("P", (a.shape[1], a.shape[0]), a.tobytes())
        im.putpalette([v for i in range(16) for v in (i * 16, 255 - i * 16, i)])
        im.save(path, bits=4)
        assert path.read_bytes()[24] == 4  # bit depth in the header
    elif kind == "grey+alpha":
        Image.fromarray(np.dstack([a, np.full_like(a, 255)])).save(path)
    else:
        a = a.astype(np.uint16) * 1000
        Image.fromarray(a).save(path, interlace=1)
    got = read_mask(path)
    assert got.dtype.kind in "iu"
    np.testing.assert_array_equal(got, a)


def test_numpy_dtypes_people_save(tmp_path: Path) -> None:
    a = labels((5, 6), 3, seed=23)
    for dt in (">u2", "<i4", "u8", "bool"):
        b = (a > 0) if dt == "bool" else a.astype(dt)
        save(tmp_path / f"{dt.strip('<>')}.npy", b)
        got = read_mask(tmp_path / f"{dt.strip('<>')}.npy")
        assert got.dtype.isnative and got.dtype.kind in "iu"
        np.testing.assert_array_equal(got, b.astype(np.int64))


def test_npz_with_one_array(tmp_path: Path) -> None:
    a = labels((5, 6), 3, seed=24)
    np.savez(tmp_path / "a.npz", anything=a)
    np.testing.assert_array_equal(read_mask(tmp_path / "a.npz"), a)


def test_default_read_mask_is_unchanged_for_plain_labels(tmp_path: Path) -> None:
    a = labels((7, 9), 200, seed=25)
    save(tmp_path / "a.png", a)
    written = (tmp_path / "a.png").read_bytes()
    got = read_mask(tmp_path / "a.png")
    assert got.dtype == np.uint8 and got.shape == (7, 9)
    np.testing.assert_array_equal(got, a)
    # read in place: the file unchanged, no copy left behind
    assert (tmp_path / "a.png").read_bytes() == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
