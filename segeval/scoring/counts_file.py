"""The binary counts file: a run's per-image arrays beside its JSON run file.

A run file of many images (``segeval score --json run.json``, :meth:`Run.save`) keeps its summary,
per-class values and settings in ``run.json`` and its per-image arrays in ``run.<id>.counts``, a
file of this format (the JSON names it, with its size, SHA-256 and a token that both hold: a digest of the counts):

- bytes 0-7: the magic ``b"\\x93SEGEVAL"``; bytes 8-9: the format's major and minor version
  (1, 0) as two unsigned bytes; bytes 10-15: zero; bytes 16-23: the header's length H, uint64
  little-endian;
- bytes 24 .. 24 + H: the header, UTF-8 JSON padded with spaces: ``format``, ``version``, ``token``,
  ``n_images``, ``n_classes`` and ``arrays``, an object of name to ``{"dtype", "shape", "offset",
  "nbytes", "dtype_in_memory"}`` (``dtype`` as NumPy spells it, e.g. ``"<u4"``);
- each array's bytes, C order, at its ``offset``, a multiple of 64, so that
  ``numpy.memmap(path, dtype, "r", offset, shape)`` reads it in place, aligned.

Arrays: ``image_counts`` (N, 3, K) tp/fp/fn and, where measured, ``image_boundary_counts``
(N, 3, K) and ``image_band_width`` (N,), each in the smallest of uint8, uint16, uint32 that holds
its values (int64 otherwise; all are int64 in memory); ``image_surface`` (N, 3, K) float64 as
measured; ``image_spacing`` (flat float64) with ``image_spacing_len`` (N,) the length of each
image's list; ``image_names``, the names in UTF-8 joined by NUL bytes (a path never holds one), uint8.

Why not ``.npz``: NumPy cannot memory-map the members of a zip file, and one header beside
aligned raw arrays is all a reader needs (six lines of NumPy, in the README). A new array or
header field is a minor version (readers ignore what they do not know); a change to what is there
is a major version, which older readers refuse with a message saying to upgrade.

Writing is atomic for the pair: the counts file is written under a new name (a temporary file,
then a rename), then the JSON replaces the old run file in one rename (the commit), then the
counts file the old JSON named, if any, is removed. An interruption before the commit leaves the
old run file and its counts file as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segeval.errors import RunFileError, SegevalError

if TYPE_CHECKING:
    from segeval.scoring.evaluate import Run

__all__ = ["MAGIC", "VERSION", "RUN_FORMAT_BINARY", "BINARY_MIN_IMAGES", "COUNTS_CHOICES", "smallest_dtype",
           "write_counts", "read_counts", "save_run", "read_images", "counts_path"]

MAGIC = b"\x93SEGEVAL"
VERSION = (1, 0)
FORMAT = "segeval-counts"
# A run file whose per-image arrays are in a counts file; "segeval-run/1" files hold them as JSON lists.
RUN_FORMAT_BINARY = "segeval-run/2"
# ``counts="auto"`` writes the counts file from this many images on (below, JSON exactly as before).
BINARY_MIN_IMAGES = 10_000
COUNTS_CHOICES = ("auto", "json", "binary")
_ALIGN = 64
_PREAMBLE = 24
_IO_ROWS = 1 << 16  # images converted and written (or hashed) at a time
_TODO_WRITE = "write the run again with segeval score --json"


def smallest_dtype(a: NDArray[Any]) -> np.dtype[Any]:
    """The smallest of uint8, uint16, uint32 that holds every value of integer array ``a``
    (int64 when a value is negative or above 2**32 - 1)."""
    if a.size == 0:
        return np.dtype(np.uint8)
    lo, hi = int(a.min()), int(a.max())
    if lo >= 0:
        for dt in (np.uint8, np.uint16, np.uint32):
            if hi <= np.iinfo(dt).max:
                return np.dtype(dt)
    return np.dtype(np.int64)


def counts_path(json_path: str | os.PathLike, token: str) -> Path:
    """``run.json`` -> ``run.<first 8 hex digits of token>.counts`` in the same directory."""
    p = Path(json_path)
    stem = p.name[:-5] if p.name.endswith(".json") else p.name
    return p.with_name(f"{stem}.{token[:8]}.counts")


def _arrays_of(run: Run) -> dict[str, tuple[NDArray[Any], np.dtype[Any]]]:
    """The run's per-image arrays and the dtype each is stored in."""
    names = "\0".join(run.image_names).encode("utf-8")
    if names.count(b"\0") != max(0, len(run.image_names) - 1):
        bad = next(n for n in run.image_names if "\0" in n)
        raise SegevalError(None, f"image name {bad!r} holds a NUL character, which a counts file cannot store",
                           "rename the image, or write the run file with counts='json'")
    out: dict[str, tuple[NDArray[Any], np.dtype[Any]]] = {
        "image_names": (np.frombuffer(names, np.uint8), np.dtype(np.uint8)),
    }
    for key in ("image_counts", "image_boundary_counts", "image_band_width"):
        a = getattr(run, key)
        if a is not None:
            a = np.asarray(a)
            out[key] = (a, smallest_dtype(a))
    if run.image_surface is not None:
        out["image_surface"] = (np.asarray(run.image_surface, np.float64), np.dtype(np.float64))
    if run.image_spacing is not None:
        lens = np.array([len(s) for s in run.image_spacing], np.int64)
        flat = np.array([x for s in run.image_spacing for x in s], np.float64)
        out["image_spacing"] = (flat, np.dtype(np.float64))
        out["image_spacing_len"] = (lens, smallest_dtype(lens))
    return out


def content_token(arrays: dict[str, tuple[NDArray[Any], np.dtype[Any]]], n_images: int, n_classes: int) -> str:
    """The token of a counts file: a BLAKE2b digest of what it stores (each array's name, stored
    dtype, shape and values), so that the same run writes the same files, byte for byte, wherever
    it was scored (threads, processes or a cluster), and another run's counts file is told apart."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{FORMAT}/{VERSION[0]} {n_images} {n_classes}".encode())
    for name, (a, dt) in arrays.items():
        h.update(f" {name} {dt.str} {list(a.shape)} ".encode())
        flat = a.reshape(len(a), -1) if a.ndim > 1 else a.reshape(-1, 1)
        for i in range(0, len(flat), _IO_ROWS):
            h.update(np.ascontiguousarray(flat[i:i + _IO_ROWS], dtype=dt.newbyteorder("<")).tobytes())
    return h.hexdigest()


def write_counts(path: Path, arrays: dict[str, tuple[NDArray[Any], np.dtype[Any]]], token: str,
                 n_images: int, n_classes: int) -> dict[str, Any]:
    """Write a counts file at ``path`` (a temporary file beside it, then a rename); return its
    reference for the JSON: ``{"path", "format", "bytes", "sha256", "token"}``."""
    entries: dict[str, dict[str, Any]] = {}
    rel: dict[str, int] = {}
    offset = 0
    for name, (a, dt) in arrays.items():
        entries[name] = {"dtype": dt.str, "shape": list(a.shape), "offset": 0,
                         "nbytes": int(a.size) * dt.itemsize, "dtype_in_memory": a.dtype.str}
        rel[name] = offset
        offset += -(-entries[name]["nbytes"] // _ALIGN) * _ALIGN
    header = {"format": FORMAT, "version": list(VERSION), "token": token, "n_images": n_images,
              "n_classes": n_classes, "arrays": entries}
    start = _ALIGN  # the offsets depend on the header's length: grow it until they fit
    while True:
        for name, e in entries.items():
            e["offset"] = start + rel[name]
        raw = json.dumps(header).encode()
        need = -(-(_PREAMBLE + len(raw)) // _ALIGN) * _ALIGN
        if need <= start:
            break
        start = need
    raw += b" " * (start - _PREAMBLE - len(raw))
    digest = hashlib.sha256()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(tmp, "xb") as f:
            def put(b: bytes | memoryview) -> None:
                f.write(b)
                digest.update(b)

            put(MAGIC + bytes(VERSION) + bytes(6) + len(raw).to_bytes(8, "little") + raw)
            for name, (a, dt) in arrays.items():
                assert f.tell() == entries[name]["offset"]
                flat = a.reshape(len(a), -1) if a.ndim > 1 else a.reshape(-1, 1)
                for i in range(0, len(flat), _IO_ROWS):
                    chunk = np.ascontiguousarray(flat[i:i + _IO_ROWS], dtype=dt.newbyteorder("<"))
                    put(chunk.tobytes())
                put(bytes(-entries[name]["nbytes"] % _ALIGN))
            size = f.tell()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"path": path.name, "format": f"{FORMAT}/{VERSION[0]}", "bytes": size, "sha256": digest.hexdigest(),
            "token": token}


def _fail(path: Path, what: str, todo: str = _TODO_WRITE) -> RunFileError:
    return RunFileError(path, what, todo)


def read_counts(json_path: str | os.PathLike, ref: dict[str, Any], *, verify: bool = True) -> dict[str, np.memmap]:
    """Memory-map the arrays of the counts file that run file ``json_path`` references.

    The file must be where the reference says (beside the run file), of the recorded size, with
    the recorded token and (``verify``) SHA-256; anything else raises :class:`RunFileError`
    naming the counts file. The arrays come back read-only, in their stored dtypes.
    """
    json_path = Path(json_path)
    try:
        name = str(ref["path"])
        expect_size, token, sha = int(ref["bytes"]), str(ref["token"]), str(ref["sha256"])
    except (KeyError, TypeError, ValueError):
        raise RunFileError(json_path, "has a damaged counts_file entry", _TODO_WRITE) from None
    if not name or Path(name).name != name:
        raise RunFileError(json_path, f"names a counts file outside its directory ({name!r})", _TODO_WRITE)
    path = json_path.with_name(name)
    try:
        size = path.stat().st_size
    except OSError:
        raise _fail(path, f"is missing: {json_path.name} keeps its per-image counts there",
                    f"keep the counts file beside the run file under this name, or {_TODO_WRITE}") from None
    if size != expect_size:
        raise _fail(path, f"is {size:,} bytes but {json_path.name} expects {expect_size:,} (truncated or replaced)",
                    f"copy the whole file again, or {_TODO_WRITE}")
    try:
        with open(path, "rb") as f:
            pre = f.read(_PREAMBLE)
            if len(pre) < _PREAMBLE or pre[:8] != MAGIC:
                raise _fail(path, "is not a segeval counts file (wrong magic bytes)")
            major = pre[8]
            if major != VERSION[0]:
                raise _fail(path, f"is counts format version {major}.{pre[9]}; this segeval reads {VERSION[0]}.x",
                            "upgrade segeval")
            header = json.loads(f.read(int.from_bytes(pre[16:24], "little")))
            if verify:
                f.seek(0)
                digest = hashlib.sha256()
                while block := f.read(1 << 24):
                    digest.update(block)
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    except (ValueError, UnicodeDecodeError):
        raise _fail(path, "has a damaged header") from None
    if header.get("token") != token:
        raise _fail(path, f"belongs to another run file than {json_path.name} (token {header.get('token')!r}, "
                    f"expected {token!r})", f"give the counts file written with {json_path.name}, or {_TODO_WRITE}")
    if verify and digest.hexdigest() != sha:
        raise _fail(path, f"does not match the SHA-256 recorded in {json_path.name} (damaged or replaced)",
                    f"copy the file again, or {_TODO_WRITE}")
    out: dict[str, np.memmap] = {}
    try:
        for key, e in header["arrays"].items():
            shape = tuple(int(s) for s in e["shape"])
            if int(e["offset"]) + int(e["nbytes"]) > size:
                raise _fail(path, f"array {key} runs past the end of the file")
            if int(e["nbytes"]) == 0:
                out[key] = np.zeros(shape, np.dtype(e["dtype"])).view(np.memmap)
            else:
                out[key] = np.memmap(path, np.dtype(e["dtype"]), "r", int(e["offset"]), shape)
    except (KeyError, TypeError, ValueError):
        raise _fail(path, "has a damaged header") from None
    return out


def read_images(d: dict[str, Any], path: str | os.PathLike | None, k: int) -> dict[str, Any]:
    """The per-image fields of a ``segeval-run/2`` object: ``Run`` keyword arguments, from its
    counts file (the counts as int64; the surface values stay memory-mapped)."""
    if path is None:
        raise SegevalError(None, "a run file with a counts file can only be read from its path",
                           "use Run.load(path)")
    arrays = read_counts(path, d["counts_file"])
    names_blob = bytes(arrays["image_names"]) if arrays["image_names"].size else b""
    n = int(d["n_images"])
    names = names_blob.decode("utf-8").split("\0") if n else []
    counts = arrays["image_counts"]
    if len(names) != n or counts.shape != (n, 3, k):
        raise _fail(Path(path).with_name(d["counts_file"]["path"]),
                    f"holds {len(names)} names and counts of shape {counts.shape}, but the run has {n} images "
                    f"of {k} classes")
    out: dict[str, Any] = {"image_names": names, "image_counts": _int64(counts)}
    for key in ("image_boundary_counts", "image_band_width"):
        if key in arrays:
            out[key] = _int64(arrays[key])
    if "image_surface" in arrays:
        out["image_surface"] = arrays["image_surface"]
    if "image_spacing" in arrays:
        ends = np.cumsum(np.asarray(arrays["image_spacing_len"], np.int64))
        flat = np.asarray(arrays["image_spacing"]).tolist()
        out["image_spacing"] = [flat[e - ln:e] for e, ln in zip(ends.tolist(), arrays["image_spacing_len"].tolist(),
                                                                 strict=True)]
    return out


def _int64(a: np.memmap) -> NDArray[np.int64]:
    """A stored integer array as int64: the map itself when stored so, else one converted copy
    (narrow unsigned values must not wrap in the arithmetic done on counts), converted a block at
    a time with the map's pages given back after each, so that they never all count as resident."""
    if a.dtype == np.int64:
        return a
    out = np.empty(a.shape, np.int64)
    mm = getattr(a, "_mmap", None)
    rows = max(1, (1 << 24) // max(1, a[:1].nbytes))
    for i in range(0, len(a), rows):
        out[i:i + rows] = a[i:i + rows]
        if mm is not None and hasattr(mm, "madvise"):
            import mmap

            mm.madvise(mmap.MADV_DONTNEED)  # a read-only file map: the pages are read again if needed
    return out


def _old_counts(json_path: Path) -> Path | None:
    """The counts file the existing run file at ``json_path`` names, if it is one of ours."""
    try:
        if json_path.stat().st_size > 1 << 24:  # a JSON-form run file of many images names none
            return None
        with open(json_path, "rb") as f:
            head = json.loads(f.read())
        name = head["counts_file"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    stem = json_path.name[:-5] if json_path.name.endswith(".json") else json_path.name
    if not isinstance(name, str) or not re.fullmatch(re.escape(stem) + r"\.[0-9a-f]{8}\.counts", name):
        return None
    return json_path.with_name(name)


def use_binary(counts: str, n_images: int) -> bool:
    if counts not in COUNTS_CHOICES:
        raise SegevalError(None, f"counts must be one of {', '.join(COUNTS_CHOICES)}, got {counts!r}",
                           "pass --counts auto, json or binary")
    return counts == "binary" or (counts == "auto" and n_images >= BINARY_MIN_IMAGES)


def save_run(run: Run, path: str | os.PathLike, *, counts: str = "auto") -> None:
    """Write ``run`` to ``path``: all JSON (``segeval-run/1``), or the JSON (``segeval-run/2``)
    and a counts file beside it (``counts``: ``"json"``, ``"binary"``, or ``"auto"``: binary from
    :data:`BINARY_MIN_IMAGES` images on). Either way the commit is one rename of the JSON; the
    counts file an older run file at ``path`` named is removed after it."""
    from segeval.scoring.evaluate import write_atomic

    path = Path(path)
    old = _old_counts(path)
    if not use_binary(counts, len(run.image_names)):
        write_atomic(path, json.dumps(run.to_dict(), indent=1, allow_nan=False) + "\n")
    else:
        arrays = _arrays_of(run)
        token = content_token(arrays, len(run.image_names), run.n_classes)
        side = counts_path(path, token)
        existed = side.exists()  # the same name holds the same counts: replaced by an identical file
        try:
            ref = write_counts(side, arrays, token, len(run.image_names), run.n_classes)
            d = run.to_dict(per_image=False)
            d = {"format": RUN_FORMAT_BINARY, **{k: v for k, v in d.items() if k not in ("format", "images")},
                 "counts_file": ref}
            write_atomic(path, json.dumps(d, indent=1, allow_nan=False) + "\n")
        except BaseException:
            if not existed:
                side.unlink(missing_ok=True)
            raise
        if old == side:
            old = None
    if old is not None:
        old.unlink(missing_ok=True)
