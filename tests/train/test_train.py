"""segeval train on a tiny generated data set (CPU, seconds): the loss falls, runs repeat, the run
file and predictions agree with segeval score, and torch stays out of ``import segeval``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import file_mode, umask
from PIL import Image
from reference import bincount_cm
from typer.testing import CliRunner

from segeval import Run, read_mask, score
from segeval.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_import_and_help_do_not_load_torch():
    code = (
        "import sys\n"
        "import segeval\n"
        "assert 'torch' not in sys.modules, 'import segeval loaded torch'\n"
        "from segeval.cli import main\n"
        "for argv in (['segeval', '--help'], ['segeval', 'train', '--help']):\n"
        "    sys.argv = argv\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "    assert 'torch' not in sys.modules, f'{argv} loaded torch'\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


torch = pytest.importorskip("torch")

from segeval.comparing.compare import randomization_test  # noqa: E402
from segeval.core.classes import ClassSet  # noqa: E402
from segeval.train import data as D  # noqa: E402
from segeval.train.models import build_model  # noqa: E402
from segeval.train.trainer import TrainConfig, flatline, train  # noqa: E402


def make_data(root: Path, n: int = 10, size: int = 32, seed: int = 0, values: tuple[int, int] = (0, 1)) -> Path:
    """Bright disks on a noisy dark background; mask = disk, a few ignored pixels (255) when values are 0/1."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx, r = rng.integers(8, size - 8, 2).tolist() + [int(rng.integers(4, 8))]
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img = np.clip(60 + 120 * disk + rng.normal(0, 25, disk.shape), 0, 255).astype(np.uint8)
        mask = np.where(disk, values[1], values[0]).astype(np.uint8)
        if values == (0, 1):
            mask[0, :3] = 255
        Image.fromarray(img).save(root / "images" / f"{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("tiny"))


def config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(images=data / "images", masks=data / "masks", out=out, epochs=4, width=4, depth=2, batch_size=4,
                lr=1e-2, crop_schedule=(0.75, 1.0), crops_per_image=2, val_split=0.2, seed=3, device="cpu")
    return TrainConfig(**{**base, **kw})


def test_loss_falls_and_the_run_file_matches_segeval_score(tiny, tmp_path):
    (res,) = train(config(tiny, tmp_path / "out", losses=["ce"], epochs=6))
    losses = [h.train_loss for h in res.history]
    assert losses[-1] < 0.6 * losses[0], losses
    assert [h.crop for h in res.history] == [24, 24, 24, 32, 32, 32]
    assert res.history[-1].miou > res.history[-1].baseline_miou
    assert not res.flat and not res.history[-1].flat and res.history[-1].top_share < 0.99  # a healthy run
    loaded = Run.load(tmp_path / "out" / "run.json")
    # the run file is made from the written PNGs; it equals the last epoch's in-memory count ...
    assert loaded.miou == pytest.approx(res.history[-1].miou)
    np.testing.assert_array_equal(loaded.cm, res.run.cm)
    # ... and what segeval score finds in the written directories
    again = score(tmp_path / "out" / "pred", tmp_path / "out" / "gt", 2)
    np.testing.assert_array_equal(again.cm, loaded.cm)
    # ... and what np.bincount finds in the written PNGs, read with Pillow
    ref = sum(bincount_cm(np.asarray(Image.open(tmp_path / "out" / "gt" / f"{n}.png")),
                          np.asarray(Image.open(tmp_path / "out" / "pred" / f"{n}.png")), 2, 255)
              for n in loaded.image_names)
    np.testing.assert_array_equal(loaded.cm, ref)
    assert loaded.settings["train"]["history"][-1]["miou"] == pytest.approx(loaded.miou)
    assert sorted(p.stem for p in (tmp_path / "out" / "pred").glob("*.png")) == loaded.image_names
    for name in loaded.image_names:  # the validation ground truth, ignore pixels and all
        np.testing.assert_array_equal(read_mask(tmp_path / "out" / "gt" / f"{name}.png"),
                                      read_mask(tiny / "masks" / f"{name}.png"))
    assert (tmp_path / "out" / "model.pt").is_file()


def test_same_seed_same_run(tiny, tmp_path):
    runs = [train(config(tiny, tmp_path / str(i), losses=["ce+0.5*lovasz"], epochs=2))[0] for i in range(2)]
    assert [h.train_loss for h in runs[0].history] == [h.train_loss for h in runs[1].history]
    for name in runs[0].run.image_names:
        a = read_mask(tmp_path / "0" / "pred" / f"{name}.png")
        np.testing.assert_array_equal(a, read_mask(tmp_path / "1" / "pred" / f"{name}.png"))
    other = train(config(tiny, tmp_path / "2", losses=["ce+0.5*lovasz"], epochs=2, seed=4))[0]
    assert [h.train_loss for h in other.history] != [h.train_loss for h in runs[0].history]


def test_schedule_uncertainty_fcn_and_binary_train(tiny, tmp_path):
    (res,) = train(config(tiny, tmp_path / "a", losses=["ce@0-1,lovasz+0.1*uncertainty(base=None,passes=3)@1-"],
                          epochs=2, model="fcn", amp=True))  # bfloat16 autocast on CPU
    assert [h.loss for h in res.history] == ["ce", "lovasz+0.1*uncertainty(passes=3,base=None)"]
    (res,) = train(config(tiny, tmp_path / "b", losses=["lovasz(per_image=True)"], epochs=1, binary=True))
    assert res.run.n_classes == 2 and np.isfinite(res.history[0].train_loss)


def test_cli_compares_losses(tiny, tmp_path):
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["train", str(tiny), "--losses", "ce,soft_iou,focal(gamma=1,alpha=0.25)",
                                 "--epochs", "2", "--out", str(out), "--width", "4", "--depth", "2", "--device", "cpu",
                                 "--no-progress"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    subdirs = {"ce": "ce", "soft_iou": "soft_iou", "focal(gamma=1,alpha=0.25)": "focal_gamma=1_alpha=0.25"}
    for spec, sub in subdirs.items():
        assert spec in r.stdout
        run = Run.load(out / sub / "run.json")
        assert run.settings["train"]["loss"] == spec
    assert "baseline" in r.stdout and "IoU 1" in r.stdout
    assert len((out / "comparison.csv").read_text().splitlines()) == 4
    first = json.loads((out / "ce" / "run.json").read_text())["settings"]["train"]
    second = json.loads((out / "soft_iou" / "run.json").read_text())["settings"]["train"]
    assert first["val_images"] == second["val_images"] and first["crop_sides"] == second["crop_sides"]


def test_cli_losses_times_seeds_table_and_p(tmp_path):
    data = make_data(tmp_path / "d", n=16, seed=5)  # 3 validation images: exact over 2^3 assignments
    out = tmp_path / "ls"
    r = CliRunner().invoke(app, ["train", str(data), "--losses", "ce,soft_iou", "--seeds", "0,1", "--epochs", "1",
                                 "--out", str(out), "--width", "4", "--depth", "2", "--device", "cpu", "--lr", "0.01",
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    runs = {(loss, seed): Run.load(out / loss / f"seed{seed}" / "run.json") for loss in ("ce", "soft_iou")
            for seed in (0, 1)}
    # every loss with every seed, all on the same validation images (the split of the first seed)
    assert {tuple(run.image_names) for run in runs.values()} == {tuple(runs["ce", 0].image_names)}
    assert len(runs["ce", 0].image_names) == 3
    assert {(run.settings["train"]["loss"], run.settings["train"]["seed"]) for run in runs.values()} == set(runs)
    def train_losses(run: Run) -> list[float]:
        return [h["train_loss"] for h in run.settings["train"]["history"]]

    assert train_losses(runs["ce", 0]) != train_losses(runs["ce", 1])  # the seed changes weights and crops
    out_text = " ".join(r.stdout.split())
    assert "2 losses x 2 seeds (0,1), validation on 3 images" in out_text
    # mean ± sample sd over the seeds, from the run files
    for loss in ("ce", "soft_iou"):
        m = [runs[loss, s].miou for s in (0, 1)]
        assert f"{np.mean(m):.4f} ± {np.std(m, ddof=1):.4f}" in out_text, loss
    # p of soft_iou against ce: the randomization test on the images' counts summed over the seeds
    pooled = {loss: runs[loss, 0].image_counts + runs[loss, 1].image_counts for loss in ("ce", "soft_iou")}
    test = randomization_test(pooled["ce"], pooled["soft_iou"])
    assert test.method == "exact" and test.assignments == 8
    diff = np.mean([runs["soft_iou", s].miou for s in (0, 1)]) - np.mean([runs["ce", s].miou for s in (0, 1)])
    row = next(line for line in r.stdout.splitlines() if line.strip().startswith("soft_iou "))
    assert f"{diff:+.4f}" in row and f"{test.miou:.4f}" in row, row
    assert "exact over all 2^3 = 8 swap assignments" in out_text
    assert len((out / "comparison.csv").read_text().splitlines()) == 5  # one row per loss and seed
    assert "[soft_iou seed 1] epoch 1/1" in r.stderr


def test_flatline_is_said_on_the_epoch_line_and_marked_in_the_table(tiny, tmp_path):
    # a very high learning rate collapses soft IoU to one class: provoked on purpose
    out = tmp_path / "flat"
    r = CliRunner().invoke(app, ["train", str(tiny), "--losses", "soft_iou,ce", "--epochs", "2", "--lr", "3",
                                 "--seed", "3", "--out", str(out), "--width", "4", "--depth", "2", "--device", "cpu",
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("[soft_iou] epoch 2/2")]
    assert len(lines) == 1
    m = re.search(r"FLATLINE: (\d+\.\d)% of the pixels predicted '(\d)'", lines[0])
    assert m, lines[0]
    # the share, counted independently in the written predictions (scored pixels: ground truth not 255)
    run = Run.load(out / "soft_iou" / "run.json")
    preds = [np.asarray(Image.open(out / "soft_iou" / "pred" / f"{n}.png")) for n in run.image_names]
    gts = [np.asarray(Image.open(out / "gt" / f"{n}.png")) for n in run.image_names]
    scored = np.concatenate([p[g != 255] for p, g in zip(preds, gts, strict=True)])
    top = np.bincount(scored, minlength=2).argmax()
    assert int(m.group(2)) == top and float(m.group(1)) == pytest.approx(100 * np.mean(scored == top), abs=0.05)
    assert float(m.group(1)) >= 99.0
    row = next(line for line in r.stdout.splitlines() if line.strip().startswith("soft_iou"))
    assert "FLAT 1/1" in row
    history = json.loads((out / "soft_iou" / "run.json").read_text())["settings"]["train"]["history"]
    assert history[-1]["flat"] is True and history[-1]["top_share"] >= 0.99
    assert "flat" in (out / "comparison.csv").read_text().splitlines()[0]


def test_flatline_rule_on_hand_made_runs():
    def run_of(cm: list[list[int]], baseline_class: int = 0) -> Run:
        cm_arr = np.asarray(cm, np.int64)
        k = cm_arr.shape[0]
        counts = np.stack([np.diag(cm_arr[:, :k]), cm_arr[:, :k].sum(0) - np.diag(cm_arr[:, :k]),
                           cm_arr.sum(1) - np.diag(cm_arr[:, :k])])[None]
        return Run(classes=ClassSet.numbered(k), cm=cm_arr, image_names=["a"], image_counts=counts,
                   pixels=int(cm_arr.sum()), ignored=0, settings={"ignore_index": 255, "n_classes": k,
                                                                  "baseline_class": baseline_class})
    # rows ground truth, columns prediction (+ misses): all predicted 0 -> 100 %, and mIoU = baseline
    assert flatline(run_of([[90, 0, 0], [10, 0, 0]])) == (0, 1.0, True)
    # a good run: 80 + 8 of 100 right, predictions split 82 / 18
    top, share, flat = flatline(run_of([[80, 2, 0], [2, 8, 0]]))
    assert (top, flat) == (0, False) and share == pytest.approx(82 / 92)
    # 99.5 % of the pixels one class (and some right): nearly all one class
    top, share, flat = flatline(run_of([[995, 0, 0], [4, 1, 0]]))
    assert (top, flat) == (0, True) and share == pytest.approx(0.999)
    # mixed predictions that are no better than the baseline: flat by the second rule
    assert flatline(run_of([[50, 40, 0], [9, 1, 0]]))[2] is True
    # the share threshold is inclusive at 99 % exactly (990 of 1,000 pixels predicted 0, mIoU 0.66 above the
    # baseline's 0.495), and 98.9 % is not flat
    assert flatline(run_of([[985, 5, 0], [5, 5, 0]])) == (0, 0.99, True)
    assert flatline(run_of([[984, 6, 0], [5, 5, 0]])) == (0, 0.989, False)
    # misses (the ignore index predicted) are scored pixels but no class's predictions
    top, share, flat = flatline(run_of([[400, 0, 590], [0, 10, 0]]))
    assert (top, flat) == (0, False) and share == pytest.approx(0.4)


def test_train_tables_are_120_columns_in_a_pipe(tiny, tmp_path):
    r = CliRunner().invoke(app, ["train", str(tiny), "--losses", "ce,focal(gamma=1,alpha=0.25)", "--epochs", "1",
                                 "--out", str(tmp_path / "w"), "--width", "4", "--depth", "2", "--device", "cpu",
                                 "--no-progress"], env={"COLUMNS": None})
    assert r.exit_code == 0, r.output
    width = max(len(line) for line in r.stdout.splitlines())
    assert 80 < width <= 120, width
    assert "focal(gamma=1,alpha=0.25)" in r.stdout  # not cut


def test_cli_binary_255_masks_need_a_label_map(tmp_path):
    data = make_data(tmp_path / "d", n=6, values=(0, 255))
    args = ["train", str(data), "--epochs", "1", "--width", "4", "--depth", "2", "--device", "cpu", "--no-progress"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o1")])
    assert r.exit_code == 2, r.output
    assert "only the values 0 and 255" in r.output and "--binary-threshold 127" in r.output
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o2"), "--binary-threshold", "127"])
    assert r.exit_code == 0, r.output
    run = Run.load(tmp_path / "o2" / "run.json")
    masks = [np.asarray(Image.open(data / "masks" / f"{n}.png")) for n in run.image_names]
    disk_share = sum(int((m == 255).sum()) for m in masks) / sum(m.size for m in masks)
    assert run.gt_share[1] == pytest.approx(disk_share) and disk_share < 0.5  # disks (255) became class 1
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o3"), "--label-map", "0:1,255:0"])
    assert r.exit_code == 0, r.output
    run = Run.load(tmp_path / "o3" / "run.json")
    masks = [np.asarray(Image.open(data / "masks" / f"{n}.png")) for n in run.image_names]
    background_share = sum(int((m == 0).sum()) for m in masks) / sum(m.size for m in masks)
    assert run.gt_share[1] == pytest.approx(background_share) and background_share > 0.5  # background became 1


@pytest.mark.parametrize(("extra", "message"), [
    (["--loss", "lovaz"], "unknown loss 'lovaz'"),
    (["--loss", "ce@0-1"], "no loss for epoch 1"),
    (["--label-map", "0-1"], "cannot read '0-1'"),
    (["--crop-schedule", "0.5,2"], "fractions must be in (0, 1]"),
    (["--val-split", "1"], "--val-split must be between 0 and 1"),
    (["--num-classes", "1"], ("x>=2", "greater than or equal to 2")),  # typer < 0.29, typer 0.29's pydantic
    (["--losses", "ce,ce"], "name each loss once"),
    (["--seeds", "0,x"], "--seeds '0,x' is not a comma-separated list"),
    (["--seeds", "1,1"], "repeats a seed"),
    (["--seeds", "-1"], "seeds must be 0 or more"),
    (["--device", "tpu"], "'tpu' is not one of"),
])
def test_cli_bad_options_exit_2_before_training(tiny, tmp_path, extra, message):
    r = CliRunner().invoke(app, ["train", str(tiny), "--epochs", "2", "--out", str(tmp_path / "o"), "--no-progress",
                                 *extra], env={"COLUMNS": "200"})
    assert r.exit_code == 2, r.output
    assert any(m in r.output for m in ((message,) if isinstance(message, str) else message)), r.output
    assert not (tmp_path / "o" / "run.json").exists()


def test_cli_refuses_a_non_empty_out_and_a_missing_gpu(tiny, tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    r = CliRunner().invoke(app, ["train", str(tiny), "--out", str(tmp_path / "o"), "--no-progress"])
    assert r.exit_code == 2 and "is not empty" in r.output, r.output
    if not torch.cuda.is_available():
        r = CliRunner().invoke(app, ["train", str(tiny), "--out", str(tmp_path / "p"), "--device", "cuda"])
        assert r.exit_code == 2 and "no CUDA device" in r.output, r.output
    r = CliRunner().invoke(app, ["train", str(tmp_path / "o"), "--out", str(tmp_path / "q")])
    assert r.exit_code == 2 and "no image directory" in r.output, r.output


def test_data_helpers():
    assert D.crop_sides([0.6, 0.75, 1.0], 6, 100) == [60, 60, 75, 75, 100, 100]
    assert D.crop_sides([0.5, 1.0], 3, 64) == [32, 32, 64]
    assert D.parse_label_map("0:1, 255:0") == {0: 1, 255: 0}
    names = [str(i) for i in range(30)]
    tr, va = D.split(names, 0.2, seed=0)
    assert len(va) == 6 and sorted(tr + va) == list(range(30)) and (tr, va) == D.split(names, 0.2, 0)
    mask = np.array([[0, 255, 7]], np.uint8)
    np.testing.assert_array_equal(D.map_labels(mask, None, 127), [[0, 1, 0]])
    np.testing.assert_array_equal(D.map_labels(mask, {255: 1}, None), [[0, 1, 7]])
    s = D.Sample("a", np.ones((1, 5, 6), np.float32), np.ones((5, 6), np.int64))
    x, y = D.crop_batch([s], 8, np.random.default_rng(0), 255)  # larger than the image: padded with ignore
    assert x.shape == (1, 1, 8, 8) and (y == 255).sum() == 64 - 30 and x.sum() == 30


@pytest.mark.parametrize("name", ["unet", "fcn"])
def test_models_keep_any_input_size(name):
    torch.manual_seed(0)
    net = build_model(name, 3, 5, width=4, depth=3)
    for h, w in ((37, 45), (8, 8), (64, 30)):
        assert net(torch.randn(2, 3, h, w)).shape == (2, 5, h, w)
    feats = net.features(torch.randn(1, 3, 16, 16))
    assert not torch.equal(net.mc_logits(feats), net.mc_logits(feats))  # dropout: a fresh mask each pass


def test_table_p_and_delta_against_brute_force_over_seeds_and_names():
    """The loss table's p: each loss's validation counts summed over its seeds, image by image (paired
    by name, whatever order a run lists them in), then the one-sided exact randomization p over all
    2^N swaps, computed here in fractions; Δ: mean over seeds of the mIoU minus the first loss's."""
    from conftest import make_run, random_cms
    from reference import brute_force_p, loop_miou
    from rich.console import Console

    from segeval.train.command import comparison_table
    from segeval.train.trainer import TrainResult

    n = 5
    names = [f"v{i}" for i in range(n)]
    gt_cms = random_cms(n, k=3, seed=60)

    def worse(cms: np.ndarray, seed: int, loss: int) -> np.ndarray:
        out = cms.copy()  # move some true positives of class 1 to class 2 (the same ground truth)
        moved = np.random.default_rng([seed, loss]).integers(0, 6 + 4 * loss, n)
        moved = np.minimum(moved, out[:, 1, 1])
        out[:, 1, 1] -= moved
        out[:, 1, 2] += moved
        return out

    results, counts = [], {}
    for loss, spec in enumerate(("ce", "lovasz")):
        for seed in (0, 1):
            cms = worse(gt_cms, seed, loss)
            order = np.arange(n) if loss == 0 else np.array([3, 0, 4, 1, 2])  # NEW lists its images shuffled
            run = make_run(cms[order], names=("a", "b", "c"), image_names=[names[i] for i in order])
            results.append(TrainResult(spec, Path(spec), run, [], seed))
            counts[spec, seed] = make_run(cms, names=("a", "b", "c")).image_counts  # in name order
    pooled = {s: counts[s, 0] + counts[s, 1] for s in ("ce", "lovasz")}
    p, _ = brute_force_p(pooled["ce"], pooled["lovasz"])
    delta = np.mean([loop_miou(counts["lovasz", s]) for s in (0, 1)]) - np.mean(
        [loop_miou(counts["ce", s]) for s in (0, 1)])
    assert delta < 0 and 1 / 32 <= p < 1

    console = Console(width=200, record=True)
    console.print(comparison_table(results))
    text = console.export_text()
    row = next(line for line in text.splitlines() if line.strip().startswith("lovasz "))
    assert f"{delta:+.4f}" in row and f"{float(p):.4f}" in row, (row, float(p))
    assert "exact over all 2^5 = 32 swap assignments" in " ".join(text.split())


def test_train_run_files_follow_the_umask(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from segeval.train.trainer import train

    data = make_data(tmp_path / "data", n=5, size=24)
    with umask(0o022):
        (res,) = train(config(data, tmp_path / "out", losses=["ce"], epochs=1))
    for name in ("run.json", "model.pt"):
        assert file_mode(res.out / name) == 0o644, name
    for folder in ("pred", "gt"):  # swapped in from temporary directories
        d = res.out / folder if folder == "pred" else tmp_path / "out" / folder
        assert d.is_dir() and file_mode(d) == 0o755, folder
