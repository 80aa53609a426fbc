"""Bad input never costs a result: each case exits 2 with one line on stderr naming the file, and
leaves earlier output files byte-identical. ``--skip-bad`` scores the rest. A fuzz test feeds
random and mutated bytes to ``read_mask``: a clear MaskError or a valid array, nothing else, and
that array what an independent decoder reads wherever it accepts the file."""

from __future__ import annotations

import faulthandler
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from reference import stored_values
from typer.testing import CliRunner

from segeval import read_mask, score
from segeval.cli import app
from segeval.core.classes import PRESETS
from segeval.errors import MaskError, SegevalError
from segeval.reading.decode import Decoding, Palette
from segeval.reading.io import read_array
from segeval.scoring import evaluate

K = 3
GOOD = np.random.default_rng(0).integers(0, K, (20, 30)).astype(np.uint8)
PREVIOUS = b'{"previous": "run file"}\n'


def put(path: Path, content: bytes | np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif path.suffix == ".png":
        Image.fromarray(content).save(path)
    elif path.suffix == ".tif":
        tifffile.imwrite(path, content)
    elif path.suffix == ".npy":
        np.save(path, content)
    else:
        np.savez(path, first=content, second=content)
    return path


def png_bytes(a: np.ndarray = GOOD) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def dirs(tmp: Path, pred: dict[str, bytes | np.ndarray], gt: dict[str, bytes | np.ndarray]) -> tuple[Path, Path]:
    """tmp/pred and tmp/gt holding the given files (and always a good pair g.png)."""
    for root, files in (("pred", pred), ("gt", gt)):
        (tmp / root).mkdir(parents=True)
        put(tmp / root / "g.png", GOOD)
        for name, content in files.items():
            put(tmp / root / name, content)
    return tmp / "pred", tmp / "gt"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _unknown_row_filter() -> bytes:
    """GOOD as a PNG whose zlib stream and checksums are intact but whose third row has filter type 7."""
    raw = b"".join(bytes([7 if y == 2 else 0]) + GOOD[y].tobytes() for y in range(GOOD.shape[0]))
    header = struct.pack(">IIBBBBB", GOOD.shape[1], GOOD.shape[0], 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw))
            + _png_chunk(b"IEND", b""))


def _corrupt_idat() -> bytes:
    data = bytearray(png_bytes())
    i = data.index(b"IDAT") + 10
    data[i : i + 20] = bytes(20)
    return bytes(data)


def _corrupt_header() -> bytes:
    data = bytearray(png_bytes())
    data[16:20] = (0).to_bytes(4, "big")  # width 0
    return bytes(data)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _tiff(a: np.ndarray, **kw: object) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, a, **{"photometric": "minisblack", **kw})  # type: ignore[arg-type]
    return buf.getvalue()


def _looping_tiff() -> bytes:
    """A one-page TIFF whose next-page pointer leads back to its first page (tifffile would loop)."""
    data = bytearray(_tiff(GOOD))
    first = int.from_bytes(data[4:8], "little")
    n = int.from_bytes(data[first : first + 2], "little")
    data[first + 2 + 12 * n : first + 6 + 12 * n] = first.to_bytes(4, "little")
    return bytes(data)


def _loop_dir(tmp: Path) -> tuple[Path, Path, str]:
    pred, gt = dirs(tmp, {}, {})
    (pred / "sub").mkdir()
    (pred / "sub" / "loop").symlink_to(pred, target_is_directory=True)
    return pred, gt, "pred/sub/loop"


def _loop_file(tmp: Path) -> tuple[Path, Path, str]:
    pred, gt = dirs(tmp, {}, {})
    (pred / "x.png").symlink_to("x.png")
    return pred, gt, "pred/x.png"


def _broken_link(tmp: Path) -> tuple[Path, Path, str]:
    pred, gt = dirs(tmp, {}, {"b.png": GOOD})
    (pred / "b.png").symlink_to(tmp / "nowhere.png")
    return pred, gt, "pred/b.png"


def _empty(tmp: Path) -> tuple[Path, Path, str]:
    (tmp / "gt").mkdir()
    pred, _ = dirs(tmp / "x", {}, {})
    return pred, tmp / "gt", f"{tmp / 'gt'}: holds no mask files"


def _files(pred: dict[str, bytes | np.ndarray], gt: dict[str, bytes | np.ndarray], named: str,
           *args: object) -> Callable[[Path], tuple[Path, Path, str, tuple[object, ...]]]:
    def make(tmp: Path) -> tuple[Path, Path, str, tuple[object, ...]]:
        p, g = dirs(tmp, pred, gt)
        return p, g, named, args
    return make


def _made(fn: Callable[[Path], tuple[Path, Path, str]]) -> Callable[[Path], tuple[Path, Path, str, tuple[object, ...]]]:
    return lambda tmp: (*fn(tmp), ())


NAN = np.random.default_rng(1).random((20, 30, K)).astype(np.float32)
NAN[3, 4, 1] = np.nan
INF = np.random.default_rng(2).random((20, 30, K)).astype(np.float32)
INF[0, 0, 0] = np.inf
GT_NEG = GOOD.astype(np.int16)
GT_NEG[0, :4] = -3

CASES: dict[str, Callable[[Path], tuple[Path, Path, str, tuple[object, ...]]]] = {
    "empty directory": _made(_empty),
    "README.txt among the masks": _files({"a.png": GOOD, "README.txt": b"notes"}, {"a.png": GOOD},
                                         "pred/README.txt: is not a mask file"),
    ".DS_Store among the masks": _files({"a.png": GOOD}, {"a.png": GOOD, ".DS_Store": b"\0\0\0\1Bud1"},
                                        "gt/.DS_Store: is not a mask file"),
    "truncated PNG": _files({"a.png": png_bytes()[:60]}, {"a.png": GOOD}, "pred/a.png: is a truncated PNG"),
    "corrupt PNG data": _files({"a.png": _corrupt_idat()}, {"a.png": GOOD}, "pred/a.png: is a corrupt PNG"),
    "unknown PNG row filter": _files({"a.png": _unknown_row_filter()}, {"a.png": GOOD},
                                     "pred/a.png: is a corrupt PNG (unknown row filter)"),
    "corrupt PNG header": _files({"a.png": _corrupt_header()}, {"a.png": GOOD}, "pred/a.png: is a corrupt PNG"),
    "PNG bytes under .tif": _files({"a.tif": png_bytes()}, {"a.png": GOOD}, "pred/a.tif: is not a TIFF file"),
    "truncated TIFF": _files({"a.tif": _tiff(GOOD)[:300]}, {"a.png": GOOD}, "pred/a.tif: cannot be read as TIFF"),
    "corrupt TIFF": _files({"a.tif": b"II*\x00\x08\x00\x00\x00" + bytes(range(256)) * 4}, {"a.png": GOOD},
                           "pred/a.tif"),
    "TIFF whose pages loop": _files({"a.tif": _looping_tiff()}, {"a.png": GOOD},
                                    "pred/a.tif: is a corrupt TIFF (its chain of pages loops)"),
    "corrupt compressed TIFF": _files({"a.tif": _tiff(GOOD, compression="zlib")[:-40]}, {"a.png": GOOD},
                                      "pred/a.tif: cannot be read as TIFF"),
    "zero-byte PNG": _files({"a.png": b""}, {"a.png": GOOD}, "pred/a.png: is empty (0 bytes)"),
    "zero-byte NPY": _files({"a.png": GOOD}, {"a.npy": b""}, "gt/a.npy: is empty (0 bytes)"),
    "truncated NPY": _files({"a.npy": _npy(GOOD)[:200]}, {"a.png": GOOD}, "pred/a.npy: is a truncated NPY"),
    "pickled NPY": _files({"a.npy": _npy(np.array([1, None], dtype=object))}, {"a.png": GOOD},
                          "pred/a.npy: cannot be read as NPY"),
    "NPZ with two arrays": _files({"a.npz": GOOD}, {"a.png": GOOD}, "pred/a.npz: holds 2 arrays (first, second)"),
    "prediction shape differs": _files({"a.png": GOOD[:10]}, {"a.png": GOOD},
                                       "pred/a.png: has shape (10, 30) but its ground truth"),
    "RGB prediction beside single-channel ground truth": _files(
        {"a.png": np.dstack([GOOD * 80] * 3)}, {"a.png": GOOD}, "pred/a.png: is a colour image"),
    "float ground truth": _files({"a.png": GOOD}, {"a.tif": GOOD.astype(np.float32)},
                                 "gt/a.tif: is ground truth with float32 values"),
    "NaN in a probability map": _files({"a.npy": NAN}, {"a.png": GOOD}, "pred/a.npy: score map holds 1 NaN"),
    "inf in a probability map": _files({"a.npy": INF}, {"a.png": GOOD}, "pred/a.npy: score map holds 0 NaN and 1 inf"),
    "ambiguous class axis": _files({"a.npy": np.zeros((K, 20, K), np.float32)}, {"a.png": GOOD[:, :K]},
                                   "pred/a.npy: is a float score map of shape (3, 20, 3)"),
    "label above K-1": _files({"a.png": GOOD + 3}, {"a.png": GOOD}, "pred/a.png (ground truth"),
    "negative label": _files({"a.png": GOOD}, {"a.npy": GT_NEG},
                             "gt/a.npy): ground truth has labels outside 0..2: -3 (4 px)"),
    "4-D label array": _files({"a.npy": np.zeros((2, 2, 20, 30), np.uint8)}, {"a.png": GOOD},
                              "pred/a.npy: has 4 dimensions"),
    "unknown colour": _files({"a.png": np.dstack([GOOD * 0 + 7] * 3)}, {"a.png": GOOD},
                             "pred/a.png: colour (7, 7, 7) in 600 pixels", "--classes", "voc"),
    "symlink loop (directory)": _made(_loop_dir),
    "symlink loop (file)": _made(_loop_file),
    "broken symlink": _made(_broken_link),
    "ground truth without prediction": _files({}, {"b.png": GOOD}, "1 ground truths have no prediction (b) | gt/b.png"),
    "prediction without ground truth": _files({"c.png": GOOD}, {},
                                              "1 predictions have no ground truth (c) | pred/c.png"),
    "same stem, two extensions": _files({"a.png": GOOD, "a.npy": GOOD}, {"a.png": GOOD},
                                        "pred/a.npy and "),
}


def _outputs(tmp: Path) -> Path:
    out = tmp / "out"
    out.mkdir()
    (out / "run.json").write_bytes(PREVIOUS)
    (out / "classes.csv").write_bytes(b"id,name\n")
    return out


def _assert_one_line_error(r, named: str) -> str:
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("segeval: error: "), lines[0]
    for part in named.split(" | "):
        assert part in lines[0], lines[0]
    assert "Traceback" not in r.stderr + r.stdout and r.stdout == ""
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    pred, gt, named, args = CASES[case](tmp_path)
    out = _outputs(tmp_path)
    k = () if "--classes" in args else ("-k", K)
    r = cli("score", pred, gt, *k, *args, "--workers", 2, "--json", out / "run.json", "--csv", out / "classes.csv",
            "--per-image", out / "images.csv")
    _assert_one_line_error(r, named)
    assert (out / "run.json").read_bytes() == PREVIOUS
    assert (out / "classes.csv").read_bytes() == b"id,name\n"
    assert sorted(os.listdir(out)) == ["classes.csv", "run.json"]


@pytest.mark.parametrize("case", [c for c in CASES if c != "empty directory"])
def test_skip_bad_scores_the_rest(tmp_path: Path, case: str) -> None:
    """The same inputs with --skip-bad: the good pair is scored, the bad files listed; exit 1 without
    --allow-skipped, 0 with it; the run file lists what was skipped."""
    pred, gt, named, args = CASES[case](tmp_path)
    out = _outputs(tmp_path)
    k = () if "--classes" in args else ("-k", K)
    base = (pred, gt, *k, *args, "--skip-bad", "--json", out / "run.json")
    r = cli("score", *base)
    assert r.exit_code == 1, (r.stderr, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = r.stderr.splitlines()
    assert lines[0].startswith("segeval: skipped ") and "pass --allow-skipped" in lines[-1]
    named_file = re.search(r"(pred|gt)/[\w.]+", named).group(0)  # type: ignore[union-attr]
    assert any(named_file in line for line in lines[1:-1]), r.stderr
    run = json.loads((out / "run.json").read_text())
    assert "g" in [i["name"] for i in run["images"]]
    skipped = run["skipped"]
    assert skipped and all(set(s) == {"name", "file", "reason"} for s in skipped)
    assert len(skipped) == len(lines) - 2
    # every pair left is a copy of the good one (GOOD against itself): its confusion matrix is the diagonal
    # of GOOD's label counts, over K classes, or the 21 of --classes voc
    good_cm = np.diag(np.bincount(GOOD.ravel(), minlength=21 if args else K))
    n_scored = len(run["images"])
    assert n_scored == len(set(Path(f).stem for f in os.listdir(gt)) - {s["name"] for s in skipped})
    np.testing.assert_array_equal(np.array(run["confusion_matrix"]), n_scored * good_cm)
    assert not any(run["missed"])
    r = cli("score", *base, "--allow-skipped")
    assert r.exit_code == 0, r.stderr
    assert r.stderr.startswith("segeval: skipped ")


def test_skip_bad_with_nothing_left_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    put(tmp_path / "pred" / "a.png", b"")
    put(tmp_path / "gt" / "a.png", GOOD)
    out = _outputs(tmp_path)
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "-k", K, "--skip-bad", "--json", out / "run.json")
    _assert_one_line_error(r, "pred/a.png: is empty")
    assert (out / "run.json").read_bytes() == PREVIOUS


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permissions: chmod 000 stops ordinary users; tests that run as root (CI) simulate the
    PermissionError that open() would raise, since root reads any file."""
    pred, gt = dirs(tmp_path, {"a.png": GOOD}, {"a.png": GOOD})
    target = pred / "a.png"
    if os.geteuid() == 0:
        real_open = open

        def denying_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
            if os.fspath(file) == os.fspath(target):
                raise PermissionError(13, "Permission denied", os.fspath(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr("builtins.open", denying_open)
    else:  # pragma: no cover - CI runs as root
        target.chmod(0)
    out = _outputs(tmp_path)
    r = cli("score", pred, gt, "-k", K, "--json", out / "run.json")
    _assert_one_line_error(r, "pred/a.png: cannot be read (permission denied)")
    assert (out / "run.json").read_bytes() == PREVIOUS


def test_errors_reach_a_real_terminal_as_one_line(tmp_path: Path) -> None:
    """In a real process (no CliRunner): a corrupt TIFF and a truncated PNG, no traceback, no log lines."""
    pred, gt = dirs(tmp_path, {"a.tif": b"II*\x00\xff\xff\xff\x7f" + bytes(64)}, {"a.tif": GOOD})
    for extra in ((), ("--skip-bad",)):
        p = subprocess.run([sys.executable, "-m", "segeval.cli", "score", str(pred), str(gt), "-k", str(K), *extra],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert "Traceback" not in p.stderr, p.stderr
        if extra:
            assert p.returncode == 1 and p.stderr.splitlines()[1].strip().startswith(str(pred / "a.tif"))
        else:
            assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, p.stderr
            assert str(pred / "a.tif") in p.stderr


# ----------------------------------------------------------------------------- interrupted writes


def test_interrupted_replace_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "run.json"
    target.write_bytes(PREVIOUS)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluate.os, "replace", failing_replace)
    with pytest.raises(OSError):
        evaluate.write_atomic(target, "new contents\n")
    assert target.read_bytes() == PREVIOUS
    assert os.listdir(tmp_path) == ["run.json"]


def test_write_interrupted_midway_leaves_the_previous_file_whole(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "run.json"
    target.write_bytes(PREVIOUS)
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f: io.TextIOWrapper) -> None:
            self.f = f

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, text: str) -> int:
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise KeyboardInterrupt  # Ctrl-C halfway through the write

    monkeypatch.setattr(evaluate.os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        evaluate.write_atomic(target, "x" * 10_000)
    assert target.read_bytes() == PREVIOUS
    assert os.listdir(tmp_path) == ["run.json"]


def test_cli_write_failure_is_one_line_and_keeps_the_previous_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pred, gt = dirs(tmp_path, {}, {})
    out = _outputs(tmp_path)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluate.os, "replace", failing_replace)
    r = CliRunner().invoke(app, ["score", str(pred), str(gt), "-k", str(K), "--json", str(out / "run.json")])
    assert r.exit_code == 2, r.stderr
    assert r.stderr.splitlines()[-1].startswith("segeval: error: ")
    assert "run.json: cannot be written (No space left on device)" in r.stderr
    assert (out / "run.json").read_bytes() == PREVIOUS
    assert sorted(os.listdir(out)) == ["classes.csv", "run.json"]


# ----------------------------------------------------------------------------- fuzzing read_mask


class Hang(BaseException):
    """Raised by the alarm; a BaseException, so no `except Exception` in the reader can swallow it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail a call that runs past ``seconds``; faulthandler ends the process if even that hangs
    (e.g. inside C code that never returns to Python)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"read_mask ran past {seconds} s")

    faulthandler.dump_traceback_later(seconds * 6, exit=True)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        faulthandler.cancel_dump_traceback_later()


def _seed_files() -> list[tuple[str, bytes, np.ndarray]]:
    """(extension, bytes, the labels the file holds): the labels are known from how each file was made."""
    rng = np.random.default_rng(3)
    lab = rng.integers(0, K, (12, 16)).astype(np.uint8)
    out = []
    voc = np.array(PRESETS["voc"].colors, np.uint8)
    for mode_array, labels in ((lab, lab), (lab.astype(np.uint16) * 300, lab.astype(np.uint16) * 300),
                               (voc[lab], lab), (np.dstack([voc[lab], lab]), lab)):
        out.append((".png", png_bytes(mode_array), labels))
    pal = io.BytesIO()
    im = Image.frombytes("P", (16, 12), lab.tobytes())
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])
    im.save(pal, format="PNG")
    out.append((".png", pal.getvalue(), lab))
    inter = io.BytesIO()
    Image.fromarray(lab).save(inter, format="PNG", interlace=1)
    out.append((".png", inter.getvalue(), lab))
    out.append((".tif", _tiff(lab), lab))
    out.append((".tif", _tiff(np.stack([lab, lab]).astype(np.uint16), compression="zlib"), np.stack([lab, lab])))
    scores_first = rng.random((K, 12, 16)).astype(np.float32)
    out.append((".tif", _tiff(scores_first), scores_first.argmax(0)))
    scores_last = rng.random((12, 16, K)).astype(np.float32)
    for arr, labels in ((lab.astype(np.int32), lab), (scores_last, scores_last.argmax(-1))):
        buf = io.BytesIO()
        np.save(buf, arr)
        out.append((".npy", buf.getvalue(), labels))
    buf = io.BytesIO()
    np.savez_compressed(buf, mask=lab)
    out.append((".npz", buf.getvalue(), lab))
    return out


SEEDS_WITH_LABELS = _seed_files()
SEEDS = [(ext, data) for ext, data, _ in SEEDS_WITH_LABELS]
DECODINGS = [None, Decoding(K, 255, Palette.from_classes(PRESETS["voc"], 255)), Decoding(2, 0, channels="first")]


@st.composite
def mutated_files(draw: st.DrawFn) -> tuple[str, bytes]:
    ext, seed = draw(st.sampled_from(SEEDS))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "header"]))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 32))]
        else:  # hit the header, where sizes and offsets live
            j = draw(st.integers(0, min(len(data), 64) - 1))
            data[j] = draw(st.integers(0, 255))
    return ext, bytes(data)


random_files = st.tuples(
    st.sampled_from([".png", ".tif", ".npy", ".npz"]),
    st.tuples(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"\x93NUMPY\x01\x00", b"PK\x03\x04"]),
              st.binary(max_size=400)).map(lambda t: t[0] + t[1]),
)


def _read_or_clear_error(tmp: Path, ext: str, data: bytes, decoding: Decoding | None, role: str | None) -> None:
    path = tmp / f"fuzz{ext}"
    path.write_bytes(data)
    with time_limit(10):
        try:
            a = read_mask(path, decoding, role=role)  # type: ignore[arg-type]
        except MaskError as exc:
            assert exc.path is not None and os.fspath(path) in exc.message
            return
    assert isinstance(a, np.ndarray) and a.dtype.kind in "iu" and a.dtype.isnative
    assert a.ndim in (2, 3) and a.size > 0
    # Read: then it must hold what an independent decoder (pypng, tifffile, numpy) finds, wherever that
    # decoder accepts the file too (pypng checks the CRCs that segeval skips, so it refuses more).
    try:
        expected = stored_values(ext, data)
    except Exception:
        return
    stored, _ = read_array(path)
    assert stored.shape == expected.shape and np.array_equal(stored, expected), (
        f"{ext}: read as {stored.dtype} {stored.shape}, the independent decoder gives {expected.dtype} "
        f"{expected.shape}")


_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


@_FUZZ
@given(file=mutated_files(), decoding=st.sampled_from(DECODINGS), role=st.sampled_from([None, "gt", "pred"]))
def test_fuzz_mutated_files(tmp_path: Path, file: tuple[str, bytes], decoding: Decoding | None,
                            role: str | None) -> None:
    _read_or_clear_error(tmp_path, *file, decoding, role)


@settings(_FUZZ, max_examples=100)
@given(file=random_files, decoding=st.sampled_from(DECODINGS))
def test_fuzz_random_bytes(tmp_path: Path, file: tuple[str, bytes], decoding: Decoding | None) -> None:
    _read_or_clear_error(tmp_path, *file, decoding, "pred")


@st.composite
def png_scanline_mutations(draw: st.DrawFn) -> tuple[str, bytes]:
    """PNGs whose chunks, checksums and zlib stream are intact but whose inflated scanlines or header do not
    fit: unknown filter bytes, rows cut short or too long, a header with other sizes, depth or colour type.
    Byte-level mutations almost never get past the zlib checksum, so they never reach the row filters."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lab = rng.integers(0, K, (int(rng.integers(1, 9)), int(rng.integers(1, 9)))).astype(np.uint8)
    voc = np.array(PRESETS["voc"].colors, np.uint8)
    image, depth, color = draw(st.sampled_from([(lab, 8, 0), (lab.astype(">u2") * 300, 16, 0), (voc[lab], 8, 2),
                                                (lab, 8, 3)]))
    h, w = lab.shape
    rows = image.reshape(h, -1).tobytes()
    stride = len(rows) // h
    raw = bytearray()
    for y in range(h):
        raw += bytes([draw(st.integers(0, 4))]) + rows[y * stride : (y + 1) * stride]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["filter", "flip", "truncate", "extend", "size", "depth", "colour"]))
        if op == "filter":  # a filter byte outside 0..4
            at = draw(st.integers(0, h - 1)) * (stride + 1)
            if at < len(raw):
                raw[at] = draw(st.integers(5, 255))
        elif op == "flip" and raw:
            raw[draw(st.integers(0, len(raw) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del raw[draw(st.integers(0, len(raw))):]
        elif op == "extend":
            raw += draw(st.binary(min_size=1, max_size=40))
        elif op == "size":
            h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        elif op == "depth":
            depth = draw(st.sampled_from([1, 2, 4, 8, 16]))
        else:
            color = draw(st.sampled_from([0, 2, 3, 4, 6]))
    header = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    palette = _png_chunk(b"PLTE", bytes(voc[: 2 ** min(depth, 8)].tobytes())) if color == 3 else b""
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + palette
            + _png_chunk(b"IDAT", zlib.compress(bytes(raw))) + _png_chunk(b"IEND", b""))
    return ".png", data


@settings(_FUZZ, max_examples=150)
@given(file=png_scanline_mutations(), decoding=st.sampled_from(DECODINGS))
def test_fuzz_png_scanlines(tmp_path: Path, file: tuple[str, bytes], decoding: Decoding | None) -> None:
    _read_or_clear_error(tmp_path, *file, decoding, "pred")


def test_seed_files_are_valid(tmp_path: Path) -> None:
    """The fuzz seeds themselves read, to the labels they were made from (so the mutations start from valid
    files)."""
    assert len(SEEDS_WITH_LABELS) == 12
    for i, (ext, data, labels) in enumerate(SEEDS_WITH_LABELS):
        path = tmp_path / f"s{i}{ext}"
        path.write_bytes(data)
        got = read_mask(path, DECODINGS[1], role="pred")
        assert got.dtype.kind in "iu", (i, got.dtype)
        np.testing.assert_array_equal(got, labels, err_msg=f"seed {i} ({ext})")


def test_library_errors_are_segeval_errors(tmp_path: Path) -> None:
    pred, gt = dirs(tmp_path, {"a.png": b""}, {"a.png": GOOD})
    with pytest.raises(SegevalError, match="is empty"):
        score(pred, gt, K)
    run = score(pred, gt, K, skip_bad=True)
    assert run.image_names == ["g"]
    assert run.skipped == [{"name": "a", "file": os.fspath(pred / "a.png"), "reason": "is empty (0 bytes)"}]
