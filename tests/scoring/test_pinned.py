"""Tests that pin behaviour one-line bugs used to slip past (see tests/mutants.py), the modes of the
files segeval writes, and the atomic writer under a signal at every step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, file_mode, umask
from PIL import Image
from reference import bincount_cm
from typer.testing import CliRunner

from segeval import score
from segeval.cli import app
from segeval.core.kernels import accumulate, confusion_matrix
from segeval.errors import MaskError
from segeval.reading.io import read_mask
from segeval.scoring import evaluate
from segeval.scoring.evaluate import Run, make_temp_dir, write_atomic

runner = CliRunner()


def _save(path: Path, a: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


# ----------------------------------------------------------------------------- a label equal to K


@pytest.mark.parametrize("side", ["gt", "pred"])
@pytest.mark.parametrize("shape", [(7, 9), (600, 700)])  # the per-pixel loop and the uint8 pair-histogram path
def test_a_label_equal_to_k_is_an_error_on_every_path(shape: tuple[int, int], side: str) -> None:
    k = 5
    rng = np.random.default_rng(1)
    gt = rng.integers(0, k, shape).astype(np.uint8)
    pred = rng.integers(0, k, shape).astype(np.uint8)
    np.testing.assert_array_equal(confusion_matrix(gt, pred, k), bincount_cm(gt, pred, k, 255))
    (gt if side == "gt" else pred)[3, 4] = k  # one pixel, the first value past the last class
    with pytest.raises(MaskError, match=f"{'ground truth' if side == 'gt' else 'prediction'} has labels outside "
                                        rf"0\.\.{k - 1}: {k} \(1 px\)"):
        confusion_matrix(gt, pred, k)


@pytest.mark.parametrize("shape", [(7, 9), (600, 700)])
def test_labels_k_minus_1_and_the_ignore_index_are_counted(shape: tuple[int, int]) -> None:
    k = 5
    rng = np.random.default_rng(2)
    gt = rng.integers(0, k, shape).astype(np.uint8)
    pred = rng.integers(0, k, shape).astype(np.uint8)
    gt[0, :3] = 255
    pred[1, :4] = 255
    gt[2, 0], pred[2, 0] = k - 1, k - 1
    cm = confusion_matrix(gt, pred, k)
    np.testing.assert_array_equal(cm, bincount_cm(gt, pred, k, 255))
    assert cm.sum() == (gt != 255).sum()


@pytest.mark.parametrize("shape", [(7, 9), (600, 700)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_accumulate_adds_to_the_counts_it_is_given(shape: tuple[int, int], dtype: type) -> None:
    """accumulate adds, never overwrites: summing images one by one gives the matrix of them all."""
    k = 4
    rng = np.random.default_rng(3)
    pairs = [(rng.integers(0, k, shape).astype(dtype), rng.integers(0, k, shape).astype(dtype)) for _ in range(3)]
    out = np.zeros((k, k + 1), np.int64)
    out[1, 2] = 7  # counts already there stay
    for gt, pred in pairs:
        accumulate(gt, pred, k, 255, out)
    expect = sum(bincount_cm(g, p, k, 255) for g, p in pairs)
    expect[1, 2] += 7
    np.testing.assert_array_equal(out, expect)


# ----------------------------------------------------------------------------- --min-miou at equality


def _runs(tmp_path: Path) -> tuple[Path, Path]:
    """Two run files: BASE mIoU 1, NEW mIoU exactly 0.25 (IoU 1/2 and 0/1)."""
    gt = np.array([[0, 1]], np.uint8)
    _save(tmp_path / "gt" / "a.png", gt)
    _save(tmp_path / "base" / "a.png", gt)
    _save(tmp_path / "new" / "a.png", np.array([[0, 0]], np.uint8))
    files = []
    for name in ("base", "new"):
        run = score(tmp_path / name, tmp_path / "gt", 2)
        run.save(tmp_path / f"{name}.json")
        files.append(tmp_path / f"{name}.json")
    assert score(tmp_path / "new", tmp_path / "gt", 2).miou == 0.25
    return files[0], files[1]


@pytest.mark.parametrize(("gate", "code"), [("0.25", 0), ("0.2500001", 1), ("0.2499999", 0), ("1", 1)])
def test_min_miou_gate_passes_at_exact_equality(tmp_path: Path, gate: str, code: int) -> None:
    base, new = _runs(tmp_path)
    r = runner.invoke(app, ["compare", str(base), str(new), "--min-miou", gate])
    assert r.exit_code == code, r.output


@pytest.mark.parametrize(("gate", "code"), [("0.75", 0), ("0.7499999", 1), ("0.7500001", 0), ("0", 1)])
def test_max_drop_gate_passes_at_exact_equality(tmp_path: Path, gate: str, code: int) -> None:
    base, new = _runs(tmp_path)  # the drop is exactly 1 - 0.25 = 0.75
    r = runner.invoke(app, ["compare", str(base), str(new), "--max-drop", gate])
    assert r.exit_code == code, r.output


def test_min_miou_gate_result_at_equality(tmp_path: Path) -> None:
    from segeval.comparing.compare import check_gates, compare_runs

    base, new = _runs(tmp_path)
    cmp = compare_runs([Run.load(base), Run.load(new)], n_bootstrap=0)
    (gate,) = check_gates(cmp, min_miou=0.25)
    assert gate.passed and gate.value == 0.25
    (gate,) = check_gates(cmp, min_miou=np.nextafter(0.25, 1))
    assert not gate.passed


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("ext", [".npy", ".tif"])
def test_a_volume_of_one_slice_is_an_image(tmp_path: Path, ext: str) -> None:
    """(1, H, W) and (H, W, 1) files read as (H, W), so they pair with an (H, W) PNG."""
    import tifffile

    lab = np.random.default_rng(4).integers(0, 3, (5, 6)).astype(np.uint8)
    for i, a in enumerate((lab[None], lab[:, :, None])):
        path = tmp_path / f"p{i}{ext}"
        if ext == ".npy":
            np.save(path, a)
        else:
            tifffile.imwrite(path, a, photometric="minisblack")
        got = read_mask(path)
        assert got.shape == (5, 6) and np.array_equal(got, lab), (i, got.shape)


# ----------------------------------------------------------------------------- the skipped list


def _with_skipped(tmp_path: Path) -> Run:
    good = np.array([[0, 1], [1, 0]], np.uint8)
    for name in ("a", "m", "z"):
        _save(tmp_path / "gt" / f"{name}.png", good)
    _save(tmp_path / "pred" / "m.png", good)
    (tmp_path / "pred" / "a.png").write_bytes(b"not a png")  # fails while reading: appended last
    (tmp_path / "pred" / "z.txt").write_text("notes")  # fails while finding files: appended first
    (tmp_path / "pred" / "z.png").write_bytes(b"")
    return score(tmp_path / "pred", tmp_path / "gt", 2, skip_bad=True)


def test_skipped_list_is_sorted_by_name_then_file(tmp_path: Path) -> None:
    run = _with_skipped(tmp_path)
    pred = tmp_path / "pred"
    assert [(s["name"], s["file"]) for s in run.skipped] == [
        ("a", os.fspath(pred / "a.png")), ("z", os.fspath(pred / "z.png")), ("z", os.fspath(pred / "z.txt"))]
    assert run.image_names == ["m"]


def test_skipped_list_survives_the_run_file(tmp_path: Path) -> None:
    run = _with_skipped(tmp_path)
    run.save(tmp_path / "run.json")
    loaded = Run.load(tmp_path / "run.json")
    assert loaded.skipped == run.skipped and len(loaded.skipped) == 3
    assert json.loads((tmp_path / "run.json").read_text())["skipped"] == run.skipped
    assert Run.from_dict(loaded.to_dict()).skipped == run.skipped


def test_run_file_keeps_missing_and_extra_predictions(tmp_path: Path) -> None:
    good = np.array([[0, 1], [1, 0]], np.uint8)
    for name in ("a", "b"):
        _save(tmp_path / "gt" / f"{name}.png", good)
    _save(tmp_path / "pred" / "a.png", good)
    _save(tmp_path / "pred" / "x.png", good)  # no ground truth: an extra prediction
    run = score(tmp_path / "pred", tmp_path / "gt", 2, allow_missing=True)
    assert run.missing_predictions == ["b"] and run.extra_predictions == ["x"]
    run.save(tmp_path / "run.json")
    loaded = Run.load(tmp_path / "run.json")
    assert loaded.missing_predictions == ["b"] and loaded.extra_predictions == ["x"]
    assert loaded.to_dict() == run.to_dict()


# ----------------------------------------------------------------------------- file modes and the umask


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_score_and_compare_outputs_follow_the_umask(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        out = tmp_path / "out"
        out.mkdir()
        r = runner.invoke(app, ["score", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c",
                                str(FIXTURES / "classes.json"), "--json", str(out / "run.json"), "--csv",
                                str(out / "classes.csv"), "--per-image", str(out / "images.csv")])
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["compare", str(out / "run.json"), str(out / "run.json"), "--markdown",
                                str(out / "cmp.md")])
        assert r.exit_code == 0, r.output
    for name in ("run.json", "classes.csv", "images.csv", "cmp.md"):
        assert file_mode(out / name) == 0o666 & ~mask, name
    assert sorted(p.name for p in out.iterdir()) == ["classes.csv", "cmp.md", "images.csv", "run.json"]


def test_a_replaced_file_keeps_itsfile_mode(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    with umask(0o077):
        write_atomic(target, "new")
    assert target.read_text() == "new" and file_mode(target) == 0o640
    os.chmod(target, 0o604)
    write_atomic(target, "newer")
    assert file_mode(target) == 0o604


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_report_files_and_folders_follow_the_umask(tmp_path: Path, mask: int) -> None:
    out = tmp_path / "report"
    with umask(mask):
        r = runner.invoke(app, ["report", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c",
                                str(FIXTURES / "classes.json"), "--out", str(out), "--worst", "2"])
    assert r.exit_code == 0, r.output
    files = [p for p in out.rglob("*") if p.is_file()]
    dirs = [out, *(p for p in out.rglob("*") if p.is_dir())]
    assert any(p.name == "index.html" for p in files) and any(p.suffix == ".png" for p in files)
    for p in files:
        assert file_mode(p) == 0o666 & ~mask, p
    for p in dirs:
        assert file_mode(p) == 0o777 & ~mask, p


def test_make_temp_dir_follows_the_umask(tmp_path: Path) -> None:
    with umask(0o022):
        d = make_temp_dir(tmp_path, ".x.")
    assert d.is_dir() and d.parent == tmp_path and d.name.startswith(".x.") and file_mode(d) == 0o755
    assert make_temp_dir(tmp_path, ".x.") != d


# ----------------------------------------------------------------------------- a signal at every step


class Interrupt(KeyboardInterrupt):
    pass


_STEPS = [(step, existing) for step in ("os.open", "os.fchmod", "os.fdopen", "write", "os.replace")
          for existing in (False, True) if step != "os.fchmod" or existing]  # the mode is copied from a file replaced


class _Writer:
    """A file object whose write is interrupted (after writing, with ``after``)."""

    def __init__(self, f: object, after: bool) -> None:
        self.f, self.after = f, after

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()  # type: ignore[attr-defined]

    def fileno(self) -> int:
        return self.f.fileno()  # type: ignore[attr-defined, no-any-return]

    def write(self, text: str) -> int:
        if self.after:
            self.f.write(text)  # type: ignore[attr-defined]
        raise Interrupt


@pytest.mark.parametrize(("step", "existing"), _STEPS)
@pytest.mark.parametrize("after", [False, True])
def test_ctrl_c_at_any_step_of_write_atomic_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     step: str, after: bool, existing: bool) -> None:
    """KeyboardInterrupt raised just before or just after each system call of the writer (after os.open:
    the file exists but its descriptor was never returned) leaves the directory as it was, or holding
    the whole new file when the rename happened."""
    target = tmp_path / "run.json"
    if existing:
        target.write_text("previous")
    if step == "write":
        real_fdopen = os.fdopen
        monkeypatch.setattr(evaluate.os, "fdopen", lambda *a, **k: _Writer(real_fdopen(*a, **k), after))
    else:
        name = step.split(".")[1]
        real = getattr(os, name)

        def fake(*args: object, **kwargs: object) -> object:
            if after:
                real(*args, **kwargs)
            raise Interrupt

        monkeypatch.setattr(evaluate.os, name, fake)
    with pytest.raises(Interrupt):
        write_atomic(target, "new contents")
    monkeypatch.undo()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["run.json"] if existing or (step == "os.replace" and after) else []), left
    if existing and not (step == "os.replace" and after):
        assert target.read_text() == "previous"
    elif target.exists():
        assert target.read_text() == "new contents"
