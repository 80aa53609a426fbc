"""Tests of the binary counts file beside a run file (segeval.scoring.counts_file, Run.save/Run.load).

Stored arrays are checked against the in-memory arrays they came from, and read back a second way
with NumPy alone from the layout the README gives (json + numpy.memmap), not through the loader.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, cli, make_run, random_cms

from segeval.core.classes import ClassSet
from segeval.errors import RunFileError
from segeval.scoring import counts_file, evaluate
from segeval.scoring.evaluate import Run

CLASSES = str(FIXTURES / "classes.json")


def numpy_only(path: Path) -> dict[str, np.ndarray]:
    """Read every array of a counts file the way the README says, with json and numpy alone."""
    with open(path, "rb") as f:
        pre = f.read(24)
        assert pre[:8] == b"\x93SEGEVAL" and pre[8] == 1
        header = json.loads(f.read(int.from_bytes(pre[16:24], "little")))
    return {name: np.memmap(path, e["dtype"], "r", e["offset"], tuple(e["shape"])) if e["nbytes"] else
            np.zeros(e["shape"], e["dtype"]) for name, e in header["arrays"].items()}


def sidecar(json_path: Path) -> Path:
    return json_path.with_name(json.loads(json_path.read_text())["counts_file"]["path"])


def full_run(n: int = 7, k: int = 3, top: int = 200, seed: int = 0) -> Run:
    """A run with every per-image array: counts up to ``top``, boundary counts, widths, surface, spacing."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, top + 1, (n, 3, k), dtype=np.int64)
    counts[0, 0, 0] = top
    cm = np.zeros((k, k + 1), np.int64)
    cm[np.arange(k), np.arange(k)] = counts[:, 0].sum(0)
    surface = rng.random((n, 3, k)) * 10
    surface[1, :, 2] = np.nan
    return Run(ClassSet(tuple(f"c{i}" for i in range(k))), cm, [f"dir/ïmage {i}" for i in range(n)], counts,
               int(counts.sum()), 5, settings={"ignore_index": 255, "n_classes": k},
               image_boundary_counts=counts // 3, image_band_width=rng.integers(1, 9, n),
               image_surface=surface, image_spacing=[[1.0, 0.5]] * (n - 1) + [[]])


@pytest.mark.parametrize(("top", "dtype"), [(255, "|u1"), (256, "<u2"), (65535, "<u2"), (65536, "<u4"),
                                            (2**32 - 1, "<u4"), (2**32, "<i8")])
def test_round_trip_at_each_dtype_boundary(tmp_path: Path, top: int, dtype: str) -> None:
    run = full_run(top=top)
    path = tmp_path / "run.json"
    run.save(path, counts="binary")
    d = json.loads(path.read_text())
    assert d["format"] == "segeval-run/2" and "images" not in d
    raw = numpy_only(sidecar(path))
    assert raw["image_counts"].dtype.str == dtype and raw["image_counts"].max() == top
    np.testing.assert_array_equal(raw["image_counts"], run.image_counts)
    assert bytes(raw["image_names"]).decode().split("\0") == run.image_names
    back = Run.load(path)
    assert back.image_names == run.image_names
    for key in ("image_counts", "image_boundary_counts", "image_band_width"):
        got = getattr(back, key)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, getattr(run, key))
    np.testing.assert_array_equal(back.image_surface, run.image_surface)  # NaN where NaN
    assert back.image_spacing == run.image_spacing
    assert back.to_dict() == run.to_dict()  # every summary and per-image value the JSON form would hold


def test_small_runs_stay_json_and_auto_switches_at_the_threshold(tmp_path: Path, monkeypatch) -> None:
    run = make_run(random_cms(5))
    run.save(tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text())["format"] == "segeval-run/1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    monkeypatch.setattr(counts_file, "BINARY_MIN_IMAGES", 5)
    run.save(tmp_path / "b.json")
    assert json.loads((tmp_path / "b.json").read_text())["format"] == "segeval-run/2"
    run.save(tmp_path / "c.json", counts="json")
    assert json.loads((tmp_path / "c.json").read_text())["format"] == "segeval-run/1"
    with pytest.raises(evaluate.SegevalError, match="counts must be one of auto, json, binary"):
        run.save(tmp_path / "d.json", counts="npz")


def test_a_name_with_a_nul_character_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    run = make_run(random_cms(3), image_names=["a", "b\0c", "d"])
    with pytest.raises(evaluate.SegevalError, match=re.escape(repr("b\0c")) + " holds a NUL character"):
        run.save(tmp_path / "run.json", counts="binary")
    assert list(tmp_path.iterdir()) == []
    run.save(tmp_path / "run.json", counts="json")  # JSON holds any name
    assert Run.load(tmp_path / "run.json").image_names == ["a", "b\0c", "d"]


def test_an_old_json_run_file_loads(tmp_path: Path) -> None:
    """A segeval-run/1 file as written before counts files existed (no boundary fields), by hand."""
    old = {"format": "segeval-run/1", "version": "0.1.0", "miou": 0.5, "n_images": 2, "pixels": 20,
           "ignored_pixels": 0, "classes": [{"name": "a"}, {"name": "b"}], "class_colors": None,
           "confusion_matrix": [[6, 1], [2, 9]], "missed": [1, 1],
           "images": [{"name": "x", "tp": [3, 4], "fp": [1, 1], "fn": [1, 1]},
                      {"name": "y", "tp": [3, 5], "fp": [1, 0], "fn": [1, 2]}],
           "settings": {"ignore_index": 255}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    run = Run.load(tmp_path / "old.json")
    assert run.image_names == ["x", "y"]
    np.testing.assert_array_equal(run.image_counts, [[[3, 4], [1, 1], [1, 1]], [[3, 5], [1, 0], [1, 2]]])
    assert run.image_boundary_counts is None and run.image_surface is None


def test_score_writes_the_counts_file_on_request(tmp_path: Path) -> None:
    r_json = cli("score", FIXTURES / "pred", FIXTURES / "gt", "-c", CLASSES, "--json", tmp_path / "a.json")
    r_bin = cli("score", FIXTURES / "pred", FIXTURES / "gt", "-c", CLASSES, "--json", tmp_path / "b.json",
                "--counts", "binary", "--boundary")
    assert r_json.exit_code == 0 and r_bin.exit_code == 0, r_json.output + r_bin.output
    a, b = Run.load(tmp_path / "a.json"), Run.load(tmp_path / "b.json")
    assert a.image_names == b.image_names and len(a.image_names) == 4
    np.testing.assert_array_equal(a.image_counts, b.image_counts)
    assert b.image_boundary_counts is not None and b.image_boundary_counts.shape == (4, 3, 6)


# ----------------------------------------------------------------------------- bad counts files


@pytest.fixture()
def pair(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """Two binary run files in the working directory, base.json and new.json."""
    monkeypatch.chdir(tmp_path)
    cms = random_cms(20, seed=3)
    make_run(cms).save("base.json", counts="binary")
    make_run(cms[::-1].copy()).save("new.json", counts="binary")
    return Path("base.json"), Path("new.json")


def _one_line_exit_2(r, name: str, *words: str) -> None:
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and "Traceback" not in r.output
    assert line.startswith(f"segeval: error: {name}: "), line
    for w in words:
        assert w in line, line


def test_truncated_counts_file_is_one_line_exit_2(pair) -> None:
    base, new = pair
    side = sidecar(new)
    side.write_bytes(side.read_bytes()[:-10])
    _one_line_exit_2(cli("compare", base, new), str(side), "truncated", "new.json expects", "copy the whole file")


def test_counts_file_of_another_run_is_one_line_exit_2(pair) -> None:
    base, new = pair
    os.replace(sidecar(base), sidecar(new))  # same size: the token tells them apart
    _one_line_exit_2(cli("compare", new, new), str(sidecar(new)), "belongs to another run file than new.json")


def test_renamed_or_missing_counts_file_is_one_line_exit_2(pair) -> None:
    base, new = pair
    side = sidecar(new)
    side.rename("moved.counts")
    _one_line_exit_2(cli("compare", base, new), str(side), "is missing", "keep the counts file beside the run file")


def test_damaged_counts_file_is_one_line_exit_2(pair) -> None:
    base, new = pair
    side = sidecar(new)
    raw = bytearray(side.read_bytes())
    raw[-70] ^= 0xFF  # a count byte, same size
    side.write_bytes(bytes(raw))
    _one_line_exit_2(cli("compare", base, new), str(side), "does not match the SHA-256")
    raw[:8] = b"NOTMAGIC"
    side.write_bytes(bytes(raw))
    _one_line_exit_2(cli("compare", base, new), str(side), "not a segeval counts file")


def test_a_counts_file_elsewhere_is_refused(pair) -> None:
    base, new = pair
    d = json.loads(new.read_text())
    d["counts_file"]["path"] = "../" + d["counts_file"]["path"]
    new.write_text(json.dumps(d))
    _one_line_exit_2(cli("compare", base, new), "new.json", "names a counts file outside its directory")


def test_newer_major_version_is_refused(pair) -> None:
    base, _ = pair
    side = sidecar(base)
    raw = bytearray(side.read_bytes())
    raw[8] = 2
    side.write_bytes(bytes(raw))
    with pytest.raises(RunFileError, match=r"version 2\.0; this segeval reads 1\.x; upgrade segeval"):
        counts_file.read_counts(base, json.loads(base.read_text())["counts_file"], verify=False)


# ----------------------------------------------------------------------------- atomic writes


def test_an_interrupted_write_leaves_the_old_files(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "run.json"
    old = full_run(seed=1)
    old.save(path, counts="binary")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    new = full_run(n=9, seed=2)
    real_replace = os.replace
    for fail_on in ("counts", "json"):  # during the counts file's rename, then during the commit

        def replace(src, dst, fail_on=fail_on):
            if str(dst).endswith(".counts" if fail_on == "counts" else ".json"):
                raise KeyboardInterrupt
            return real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            new.save(path, counts="binary")
        monkeypatch.setattr(os, "replace", real_replace)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing new, nothing changed
        assert Run.load(path).to_dict() == old.to_dict()
    new.save(path, counts="binary")  # a completed write replaces both and removes the old counts file
    assert len(list(tmp_path.iterdir())) == 2 and Run.load(path).to_dict() == new.to_dict()
    new.save(path, counts="json")
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_an_interrupted_counts_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:

    path = tmp_path / "run.json"
    monkeypatch.setattr(counts_file, "_IO_ROWS", 2)  # a write per two images; interrupted at the third

    class Digest:
        def __init__(self) -> None:
            self.calls, self.real = 0, hashlib.sha256()

        def update(self, b: bytes) -> None:
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            self.real.update(b)

    class Hashlib:
        sha256 = Digest
        blake2b = staticmethod(hashlib.blake2b)  # the token is computed before the write

    monkeypatch.setattr(counts_file, "hashlib", Hashlib)
    with pytest.raises(KeyboardInterrupt):
        full_run().save(path, counts="binary")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- compare and report alike


def test_compare_and_report_read_a_binary_run_as_its_json_twin(tmp_path: Path, monkeypatch) -> None:
    for form in ("json", "binary"):
        d = tmp_path / form
        d.mkdir()
        for side, preds in (("base", FIXTURES / "gt"), ("new", FIXTURES / "pred")):
            r = cli("score", preds, FIXTURES / "gt", "-c", CLASSES, "--json", d / f"{side}.json", "--counts", form)
            assert r.exit_code == 0, r.output
    outputs = {}
    for form in ("json", "binary"):
        d = tmp_path / form
        monkeypatch.chdir(d)  # the same relative names in both outputs
        got = [cli("compare", "base.json", "new.json", "--format", fmt, "--permutations", "500")
               for fmt in ("json", "table")]
        assert all(r.exit_code in (0, 1) for r in got), [r.output for r in got]
        rep = cli("report", "--run", d / "new.json", FIXTURES / "pred", FIXTURES / "gt", "--out", d / "report",
                  "--worst", "2")
        assert rep.exit_code == 0, rep.output
        files = {p.relative_to(d / "report").as_posix(): p.read_bytes()
                 for p in sorted((d / "report").rglob("*")) if p.is_file()}
        outputs[form] = ([r.output for r in got], files)
    assert outputs["json"][0] == outputs["binary"][0]
    assert outputs["json"][1].keys() == outputs["binary"][1].keys()
    assert all(outputs["json"][1][f] == outputs["binary"][1][f] for f in outputs["json"][1] if f != "index.html")
    html = {form: outputs[form][1]["index.html"].decode().replace(str(tmp_path / form), "DIR")
            for form in outputs}
    assert html["json"] == html["binary"]


def test_the_same_run_writes_the_same_files_byte_for_byte(tmp_path: Path) -> None:
    """The token is a digest of the counts: the same run saved twice (or scored by another engine)
    gives the same JSON and counts file; saving it again over itself leaves one whole pair; another
    run's counts get another name."""
    run = full_run()
    a, b = tmp_path / "a" / "run.json", tmp_path / "b" / "run.json"
    a.parent.mkdir()
    b.parent.mkdir()
    run.save(a, counts="binary")
    run.save(b, counts="binary")
    files_a, files_b = sorted(a.parent.iterdir()), sorted(b.parent.iterdir())
    assert [f.name for f in files_a] == [f.name for f in files_b] and len(files_a) == 2
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(files_a, files_b, strict=True))
    run.save(a, counts="binary")  # over itself: the same two files, still a valid pair
    assert sorted(a.parent.iterdir()) == files_a
    np.testing.assert_array_equal(Run.load(a).image_counts, run.image_counts)
    other = full_run()
    other.image_counts = other.image_counts.copy()
    other.image_counts[0, 0, 0] += 1
    other.save(b, counts="binary")
    assert [f.name for f in sorted(b.parent.iterdir())] != [f.name for f in files_b]
    assert len(list(b.parent.iterdir())) == 2  # the old counts file is gone
