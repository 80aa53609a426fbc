"""The hot kernels' machine code, kept between runs as a shared library loaded without numba.

The kernels are numba code (:mod:`segeval.core.kernels`). A run that finds no library for the
current key compiles the kernel with numba, then turns numba's optimised LLVM module (plus a small
entry point taking raw pointers) into position-independent object code with llvmlite and links it
into a shared library with the system C compiler, in the cache directory. A later run loads that
library with :mod:`ctypes`, which releases the GIL during each call, and never imports numba or
llvmlite (about 0.4 s of start-up).

The key names everything the machine code depends on: segeval's kernel sources (kernels.py and
this file), the numba, llvmlite and NumPy versions, the Python ABI, numba's code-generation settings from
the environment, and the CPU (vendor, model and feature flags from ``/proc/cpuinfo``), so that a
cache restored on another machine never runs code using instructions its CPU lacks. Where no
reliable CPU key exists (no ``/proc/cpuinfo``), no library is written or loaded.

Nothing here raises on a missing compiler (``$CC``, else ``cc`` on the ``PATH``), an unwritable
directory or a corrupt library: :func:`load` and :func:`build` return None and the caller uses
numba's own path. A library is written under a temporary name and renamed into place, so two
processes building at once each leave a whole library. The kernels allocate nothing and raise
nothing (they return status codes), so the library needs none of numba's runtime.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Argument kinds of an exported kernel: a scalar, or a C-contiguous array given to the C entry point
# as its data pointer and its shape.
_ITEMSIZE = {"u8": 1, "u64": 8, "i64": 8, "intp": ctypes.sizeof(ctypes.c_ssize_t)}


@dataclass(frozen=True)
class Spec:
    """One exported kernel: the njit function ``name`` of kernels.py and its arguments, each
    ``"i"`` (an integer) or ``"<dtype>[<ndim>]"`` (``"u8[1]"``), ``"ro "`` in front of an array
    the kernel only reads. Returns int64 (0 for a kernel that returns nothing)."""

    name: str
    args: tuple[str, ...]

    def arrays(self) -> list[tuple[str, int, bool] | None]:
        out: list[tuple[str, int, bool] | None] = []
        for a in self.args:
            if a == "i":
                out.append(None)
            else:
                ro = a.startswith("ro ")
                dtype, nd = a.removeprefix("ro ").rstrip("]").split("[")
                out.append((dtype, int(nd), ro))
        return out

    def n_c_args(self) -> int:
        return sum(1 if a is None else 1 + a[1] for a in self.arrays())


SPECS = {
    s.name: s for s in (
        Spec("_png_pair_table", ("ro u8[1]", "ro u8[1]", "i", "i", "u8[1]", "u8[1]", "u64[1]", "u64[1]",
                                 "ro intp[1]", "i64[2]")),
        Spec("_pair_table", ("ro u8[1]", "ro u8[1]", "ro u64[1]", "ro u64[1]", "ro intp[1]", "i64[2]")),
    )
}


def _entry_ir(spec: Spec, symbol: str, key: str) -> str:
    """LLVM IR of the library's entry points, linked into the kernel's module (no C to compile).

    ``segeval<name>`` takes each array as its address then its shape, each scalar as itself, and
    calls the kernel in numba's calling convention: a return slot, an exception slot, then each
    array as meminfo, parent, size, itemsize, data, shape, strides. The meminfo is NULL, so numba's
    reference counting never reaches its runtime (``NRT_MemInfo_call_dtor``, here a trap, is never
    called). Returns the kernel's int64 result, or INT64_MIN where numba reports an error (the
    kernels raise nothing). ``segeval_key`` returns the key the library was built for.
    """
    params: list[str] = []
    body: list[str] = []
    fwd: list[str] = []
    decl: list[str] = ["ptr", "ptr"]
    for i, a in enumerate(spec.arrays()):
        if a is None:
            params.append(f"i64 %a{i}")
            fwd.append(f"i64 %a{i}")
            decl.append("i64")
            continue
        dtype, nd, _ = a
        dims = [f"%a{i}.n{d}" for d in range(nd)]
        params += [f"ptr %a{i}"] + [f"i64 {d}" for d in dims]
        size, stride = dims[0], str(_ITEMSIZE[dtype])
        strides = [stride]
        for j in range(1, nd):  # size = n0 * n1 * ...; strides from the last axis back
            body.append(f"  %a{i}.size{j} = mul i64 {size}, {dims[j]}")
            size = f"%a{i}.size{j}"
        for j in range(nd - 1, 0, -1):
            body.append(f"  %a{i}.stride{j} = mul i64 {strides[0]}, {dims[j]}")
            strides.insert(0, f"%a{i}.stride{j}")
        fwd += ["ptr null", "ptr null", f"i64 {size}", f"i64 {_ITEMSIZE[dtype]}", f"ptr %a{i}"]
        fwd += [f"i64 {d}" for d in dims] + [f"i64 {st}" for st in strides]
        decl += ["ptr", "ptr", "i64", "i64", "ptr"] + ["i64"] * (2 * nd)
    text = key.encode() + b"\0"
    return f"""
@segeval.key = private unnamed_addr constant [{len(text)} x i8] c"{key}\\00"
declare i32 @"{symbol}"({", ".join(decl)})
declare void @llvm.trap()
define hidden void @NRT_MemInfo_call_dtor(ptr %m) {{
  call void @llvm.trap()
  unreachable
}}
define ptr @segeval_key() {{
  ret ptr @segeval.key
}}
define i64 @segeval{spec.name}({", ".join(params)}) {{
  %ret = alloca [2 x i64], align 8
  store [2 x i64] zeroinitializer, ptr %ret, align 8
  %exc = alloca ptr, align 8
  store ptr null, ptr %exc, align 8
{chr(10).join(body)}
  %status = call i32 @"{symbol}"(ptr %ret, ptr %exc, {", ".join(fwd)})
  %value = load i64, ptr %ret, align 8
  %failed = icmp ne i32 %status, 0
  %out = select i1 %failed, i64 -9223372036854775808, i64 %value
  ret i64 %out
}}
"""


# ----------------------------------------------------------------------------- the key


def _cpu() -> str | None:
    """Vendor, family, model, stepping and flags of the first CPU, or None where unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    first = text.split("\n\n", 1)[0]
    fields = {}
    for line in first.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    flags = fields.get("flags") or fields.get("Features")  # x86 / arm64
    if not flags:
        return None
    parts = [fields.get(k, "") for k in ("vendor_id", "cpu family", "model", "model name", "stepping",
                                          "CPU implementer", "CPU architecture", "CPU variant", "CPU part")]
    return "|".join(parts) + "|" + " ".join(sorted(flags.split()))


def _version(package: str) -> str | None:
    """A package's installed version from its dist-info folder's name, without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    site = Path(spec.origin).parent.parent
    try:
        names = os.listdir(site)
    except OSError:
        return None
    found = [n for n in names if n.startswith(package + "-") and n.endswith(".dist-info")]
    if len(found) != 1:
        return None
    st = os.stat(spec.origin)
    return f"{found[0][len(package) + 1 : -len('.dist-info')]}@{st.st_mtime_ns}"


_NUMBA_ENV = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_ENABLE_AVX", "NUMBA_OPT", "NUMBA_BOUNDSCHECK",
              "NUMBA_FASTMATH")


@functools.lru_cache(maxsize=1)
def _base_key() -> str | None:
    cpu = _cpu()
    numba_v, llvmlite_v = _version("numba"), _version("llvmlite")
    if cpu is None or numba_v is None or llvmlite_v is None:
        return None
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    try:
        for f in ("kernels.py", "native.py"):
            h.update((here / f).read_bytes())
    except OSError:
        return None
    env = ";".join(f"{k}={os.environ.get(k, '')}" for k in _NUMBA_ENV)
    import numpy  # already loaded by the callers: the kernels take its arrays

    parts = (numba_v, llvmlite_v, numpy.__version__, sys.implementation.cache_tag, sys.platform, str(sys.maxsize),
             env, cpu)
    for part in parts:
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:32]


def key(name: str) -> str | None:
    """The key of kernel ``name``'s library here, or None where none can be trusted."""
    base = _base_key()
    return None if base is None else f"{name.strip('_')}-{base}"


def cache_dir() -> Path:
    """``$NUMBA_CACHE_DIR/segeval-native`` (kept with numba's cache), else ``segeval/native`` in the
    user's cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir) / "segeval-native"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg if xdg else Path.home() / ".cache") / "segeval" / "native"


def _path(k: str) -> Path:
    return cache_dir() / f"{k}.so"


# ----------------------------------------------------------------------------- loading


def _ctypes_args(spec: Spec) -> list[Any]:
    out: list[Any] = []
    for a in spec.arrays():
        out += [ctypes.c_ssize_t] if a is None else [ctypes.c_void_p] + [ctypes.c_ssize_t] * a[1]
    return out


def load(name: str) -> Callable[..., int] | None:
    """Kernel ``name`` from its library for the current key, or None (no library, not loadable,
    built for another key). Takes raw arguments: each array as its address, then its shape."""
    k = key(name)
    if k is None:
        return None
    path = _path(k)
    return _open(path, name, k) if path.is_file() else None


# A library file is the linked ELF, then its SHA-256 and this tag: the dynamic loader ignores bytes
# after the ELF's contents, and a truncated or damaged file (which dlopen could crash on) is refused
# before it is opened.
_TAG = b"segeval-native-1"


def _seal(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data + hashlib.sha256(data).digest() + _TAG)


def _intact(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    n = len(data) - 32 - len(_TAG)
    return n > 0 and data.endswith(_TAG) and hashlib.sha256(data[:n]).digest() == data[n : n + 32]


def _open(path: Path, name: str, k: str) -> Callable[..., int] | None:
    if not _intact(path):
        return None
    try:
        lib = ctypes.CDLL(str(path))
        lib.segeval_key.restype = ctypes.c_char_p
        if lib.segeval_key() != k.encode():
            return None
        fn = getattr(lib, "segeval" + name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = _ctypes_args(SPECS[name])
    fn.restype = ctypes.c_int64
    return fn  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- building


def compiler() -> list[str] | None:
    """The C compiler: ``$CC`` (may hold arguments) when set, else ``cc`` on the PATH; None if absent."""
    import shlex
    import shutil

    cc = os.environ.get("CC")
    try:
        argv = shlex.split(cc) if cc else ["cc"]
    except ValueError:
        return None
    if not argv:
        return None
    exe = shutil.which(argv[0])
    return None if exe is None else [exe, *argv[1:]]


def can_build(name: str) -> bool:
    """Whether a library for ``name`` could be written here: a key, a compiler, a writable directory."""
    k = key(name)
    if k is None or compiler() is None:
        return False
    d = cache_dir()
    if (d / f"{k}.failed").exists():
        return False
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(d, os.W_OK | os.X_OK)


def numba_signature(name: str) -> tuple[Any, ...]:
    """The numba argument types of kernel ``name`` (imports numba)."""
    from numba import types

    dtypes = {"u8": types.uint8, "u64": types.uint64, "i64": types.int64, "intp": types.intp}
    out: list[Any] = []
    for a in SPECS[name].arrays():
        out.append(types.intp if a is None else types.Array(dtypes[a[0]], a[1], "C", readonly=a[2]))
    return tuple(out)


def build(name: str, dispatcher: Any, signature: tuple[Any, ...]) -> Callable[..., int] | None:
    """Write the library of ``dispatcher``'s compiled ``signature`` (an uncached numba dispatcher,
    so that its LLVM module is at hand) and load it; None where that fails, silently."""
    k = key(name)
    cc = compiler()
    if k is None or cc is None:
        return None
    try:
        import subprocess
        import tempfile

        import llvmlite.binding as ll

        cres = dispatcher.overloads[signature]
        symbol = cres.fndesc.llvm_func_name
        codegen = cres.library.codegen
        mod = ll.parse_bitcode(cres.library._final_module.as_bitcode())
        for fn in mod.functions:  # keep the kernel, drop numba's Python wrappers and what only they use
            if not fn.is_declaration:
                fn.linkage = "external" if fn.name == symbol else "internal"
        entry = ll.parse_assembly(_entry_ir(SPECS[name], symbol, k))
        entry.triple, entry.data_layout = mod.triple, mod.data_layout
        mod.link_in(entry)
        for fn in mod.functions:  # the library exports its entry points only
            if not fn.is_declaration and not fn.name.startswith("segeval"):
                fn.linkage = "internal"
        for gv in mod.global_variables:
            if not gv.is_declaration:
                gv.linkage = "internal"
        tm = ll.Target.from_triple(mod.triple).create_target_machine(
            cpu=codegen._get_host_cpu_name(), features=codegen._tm_features, opt=3, reloc="pic",
            codemodel="default")
        mpm = ll.create_new_module_pass_manager()
        mpm.add_global_dead_code_eliminate_pass()
        mpm.add_strip_dead_prototype_pass()
        mpm.run(mod, ll.create_pass_builder(tm, ll.create_pipeline_tuning_options()))
        obj = tm.emit_object(mod)
        d = cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=d, prefix=".build-") as tmp:
            (Path(tmp) / "k.o").write_bytes(obj)
            out = Path(tmp) / "k.so"
            # link only (no C source): the kernel needs no C library beyond what the process has
            r = subprocess.run([*cc, "-shared", "-nostdlib", "-o", str(out), "k.o"], cwd=tmp,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
            if r.returncode != 0 or not out.is_file():
                _mark_failed(k)
                return None
            _seal(out)
            fn = _open(out, name, k)  # before the rename: a library loaded from the final path before
            if fn is None:  # (another key's) would be the one dlopen returned again
                _mark_failed(k)
                return None
            os.replace(out, _path(k))  # atomic: a reader sees no library or a whole one
    except Exception:  # noqa: BLE001 - any failure here only means "no library": numba's path runs
        _mark_failed(k)
        return None
    return fn


def _mark_failed(k: str) -> None:
    """Remember that the library of key k could not be built, so later runs go straight to numba's
    cached path instead of compiling again for a build that fails (delete the file to retry)."""
    try:
        (cache_dir() / f"{k}.failed").touch()
    except OSError:
        pass
