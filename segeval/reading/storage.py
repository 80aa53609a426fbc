"""Masks on any storage fsspec reaches: listing a directory URL and reading a file's bytes.

A mask directory or file given as a URL (``s3://bucket/preds``, ``gs://...``, ``http(s)://...``,
``memory://...``, ``file:///...``; any ``PROTOCOL://``) is listed and read through fsspec, which
is imported only then: plain paths never load it and go through :mod:`segeval.reading.io` as
before. Each protocol needs its fsspec back-end: ``s3://`` s3fs (the ``[s3]`` extra), ``gs://``
gcsfs (``[gcs]``), ``http(s)://`` aiohttp (``[http]``); ``memory://`` and ``file://`` need fsspec
alone. Credentials and endpoints come from the back-end's usual sources (``AWS_*`` variables,
``~/.aws``, Google's default credentials) or fsspec's ``FSSPEC_<PROTOCOL>_<OPTION>`` variables,
e.g. ``FSSPEC_S3_ENDPOINT_URL=http://127.0.0.1:9000`` for an S3-compatible server.

Listing over HTTP reads index pages: a directory URL must answer with an HTML page linking its
files and sub-directories (what ``python -m http.server``, nginx's ``autoindex`` and Apache's
``mod_autoindex`` serve). Link targets are URL-quoted on the wire; names pair unquoted, as the
files are named on disk.

A file in a listing is a :class:`Url`, which stands where a :class:`~pathlib.Path` stands in a
:class:`~segeval.reading.io.Pair`. :func:`prefetched` fetches the files of the next pairs on many
threads while the current ones are counted (object storage answers each request after tens of
milliseconds; many requests in flight hide that). Every error names the URL.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from segeval.errors import MaskError, PairingError, SegevalError

if TYPE_CHECKING:  # pragma: no cover
    from segeval.reading.io import Pair

__all__ = ["Url", "as_path", "extra_for", "is_url", "list_files", "prefetched", "read_bytes"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
# fsspec back-end of each protocol, and the extra that installs it
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "http": "http", "https": "http"}
# files fetched at once by prefetched(): requests in flight, and pairs fetched ahead of the counting
FETCH_THREADS = 32
PREFETCH_PAIRS = 64


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL (``PROTOCOL://...``) rather than a local path."""
    return isinstance(path, Url) or (isinstance(path, str) and _URL.match(path) is not None)


def protocol(url: str) -> str:
    return url.split("://", 1)[0].lower()


def extra_for(url: str) -> str:
    """The pip install hint for a URL's protocol."""
    extra = _EXTRAS.get(protocol(url))
    return f"pip install 'segeval-cli[{extra}]'" if extra else "install the fsspec back-end of this protocol"


class Url:
    """A file addressed by URL, where a :class:`~pathlib.Path` stands for a local file.

    ``text`` is the URL as shown and named in errors (for HTTP, unquoted); ``fetch`` the URL
    requested (for HTTP, as the index page linked it). ``os.fspath(url)`` gives ``text``.
    """

    __slots__ = ("text", "fetch")

    def __init__(self, text: str, fetch: str | None = None) -> None:
        self.text = text
        self.fetch = text if fetch is None else fetch

    def __fspath__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Url({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Url) and other.fetch == self.fetch

    def __hash__(self) -> int:
        return hash(self.fetch)

    def __reduce__(self) -> tuple[Any, ...]:
        return Url, (self.text, self.fetch)

    @property
    def name(self) -> str:
        return self.text.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.name)[1]

    def is_file(self) -> bool:  # the local tests in io (Path.is_file) hold for listed files only
        return True


def path_or_url(path: str | os.PathLike) -> Path:
    """A local path as a Path; a Url kept as it is (typed as the Path it stands for: it answers
    ``name``, ``suffix`` and ``os.fspath`` as a Path does)."""
    return path if isinstance(path, Url) else Path(path)  # type: ignore[return-value]


def as_path(text: str | Url | None) -> Path | Url | None:
    """A Path from its text, or the Url (what travels to Dask workers)."""
    if text is None or isinstance(text, Url):
        return text
    return Url(text) if is_url(text) else Path(text)


_fs_lock = threading.Lock()
_fs_cache: dict[str, Any] = {}


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of a URL (one per protocol and host, made once) and its path on it."""
    proto = protocol(url)
    try:
        import fsspec
    except ImportError:
        raise SegevalError(url, "is a URL and fsspec is not installed", extra_for(url)) from None
    try:
        cls = fsspec.get_filesystem_class(proto)
    except (ImportError, ValueError) as exc:
        what = f"needs the fsspec back-end of {proto}:// ({' '.join(str(exc).split())[:160]})"
        raise SegevalError(url, what, extra_for(url)) from None
    path = cls._strip_protocol(url)
    key = proto if proto not in ("http", "https") else "http"
    with _fs_lock:
        fs = _fs_cache.get(key)
        if fs is None:
            try:
                fs = _fs_cache[key] = fsspec.filesystem(proto)
            except Exception as exc:
                what = f"cannot be opened ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
                raise SegevalError(url, what, "check the URL, the credentials and the network") from None
    return fs, path


def _why(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


def list_files(root: str) -> tuple[str, list[Url] | None]:
    """The files under a directory URL (recursively), sorted, and the root they are relative to.

    Returns ``(root, files)``; ``files`` is None when ``root`` is a single file. Raises
    :class:`PairingError` naming the URL when there is nothing there or it cannot be listed.
    """
    root = root.rstrip("/")
    fs, path = _filesystem(root)
    http = protocol(root) in ("http", "https")
    try:
        found = fs.find(path, withdirs=False)
    except FileNotFoundError:
        found = []
    except Exception as exc:
        raise PairingError(root, f"cannot be listed ({_why(exc)})",
                           "check the URL, the credentials and the network" +
                           (" (HTTP directories are listed from their index page)" if http else "")) from None
    base = path.rstrip("/") + "/"
    files = []
    for p in found:
        p = p if isinstance(p, str) else str(p)
        if not p.startswith(base):
            continue
        rel = p[len(base):]
        files.append(Url(root + "/" + unquote(rel), root + "/" + rel) if http else Url(root + "/" + rel))
    if files:
        return root, sorted(files, key=lambda u: u.text)
    try:
        single = fs.isfile(path)
    except Exception:
        single = False
    if single:
        return root, None
    what = "no such directory (or nothing under it)" + (
        "; an HTTP directory must answer with an index page linking its files" if http else "")
    raise PairingError(root, what, "check the URL")


# ----------------------------------------------------------------------------- reading bytes

_cache_lock = threading.Lock()
_cache: dict[str, list[Any]] = {}  # fetch URL -> [bytes or exception, reads left]


def _fetch(url: Url) -> bytes:
    fs, path = _filesystem(url.fetch)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        raise MaskError(url, "does not exist", "check the URL (was the file removed after listing?)") from None
    except IsADirectoryError:
        raise MaskError(url, "is a directory, not a mask file", "point to a mask file") from None
    except PermissionError:
        raise MaskError(url, "cannot be read (permission denied)", "check the credentials") from None
    except Exception as exc:
        raise MaskError(url, f"cannot be read ({_why(exc)})", "check the URL, the credentials and the network") \
            from None
    return bytes(data)


def read_bytes(url: Url) -> bytes:
    """The bytes of a file URL: fetched ahead by :func:`prefetched`, or now. Raises
    :class:`MaskError` naming the URL; an empty file is an error, as on disk."""
    with _cache_lock:
        entry = _cache.get(url.fetch)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del _cache[url.fetch]
    if entry is None:
        data: Any = _fetch(url)
    else:
        data = entry[0]
        if isinstance(data, BaseException):
            raise data
    if not data:
        raise MaskError(url, "is empty (0 bytes)", "re-export the mask")
    return data  # type: ignore[no-any-return]


def _pair_files(pair: Pair) -> Iterable[Url]:
    for f in (pair.gt, pair.pred, pair.roi):
        if isinstance(f, Url):
            yield f


def _fetch_batch(pool: ThreadPoolExecutor, batch: Sequence[Pair]) -> list[str]:
    """Fetch the files of a batch of pairs into the cache on the pool; returns their fetch URLs."""
    wanted: dict[str, Url] = {}
    reads: dict[str, int] = {}
    for pair in batch:
        for f in _pair_files(pair):
            wanted.setdefault(f.fetch, f)
            reads[f.fetch] = reads.get(f.fetch, 0) + 1

    def one(url: Url) -> None:
        try:
            data: Any = _fetch(url)
        except MaskError as exc:
            data = exc
        with _cache_lock:
            _cache[url.fetch] = [data, reads[url.fetch]]

    list(pool.map(one, wanted.values()))
    return list(wanted)


_stale: list[str] = []  # fetched by a finished prefetched() and perhaps still to be read by its threads


def prefetched(pairs: Sequence[Pair], batch: int = PREFETCH_PAIRS) -> Iterator[Pair]:
    """The pairs in order, the files of each batch of ``batch`` pairs fetched (on
    :data:`FETCH_THREADS` threads) while the batch before is counted.

    Each fetched file is dropped once read. The caller's threads may still read the last two
    batches after the iteration ends: what they leave is dropped when the next iteration starts;
    an iteration stopped early drops all it fetched.
    """
    if not pairs:
        return
    with _cache_lock:
        for url in _stale:
            _cache.pop(url, None)
        _stale.clear()
    batches = [pairs[i:i + batch] for i in range(0, len(pairs), batch)]
    fetched: list[list[str]] = []
    done = False
    with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="segeval-fetch") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="segeval-prefetch") as ahead:
        nxt: Future[list[str]] = ahead.submit(_fetch_batch, pool, batches[0])
        try:
            for i, b in enumerate(batches):
                fetched.append(nxt.result())
                if i + 1 < len(batches):
                    nxt = ahead.submit(_fetch_batch, pool, batches[i + 1])
                yield from b
            done = True
        finally:
            nxt.cancel()
            keep = 2 if done else 0
            with _cache_lock:
                for urls in fetched[:len(fetched) - keep]:
                    for url in urls:
                        _cache.pop(url, None)
                if done:
                    _stale.extend(u for urls in fetched[len(fetched) - keep:] for u in urls)
