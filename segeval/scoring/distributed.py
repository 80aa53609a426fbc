"""Scoring on a Dask cluster: the pairs listed once on the client, counted in shards on the workers.

``segeval score PRED GT --scheduler tcp://HOST:PORT`` (a running cluster) or ``--dask-workers N``
(a :class:`distributed.LocalCluster` of N processes on the loopback interface, for this run).
Dask is the ``[dask]`` extra, imported only here and only when asked for.

The client cuts the listing into shards of consecutive pairs (many pairs each: see
:func:`shard_size`); each shard task counts its pairs with the per-pair code of the local path
(:func:`segeval.scoring.evaluate._count_pair`, or ``_count_and_measure`` with boundary/surface
metrics) and returns a :class:`Shard`: its summed (K, K + 1) matrix, its per-image (n, 3, K)
``tp``/``fp``/``fn`` rows, its pixel counts, what ``--skip-bad`` left out, or the
:class:`~segeval.errors.SegevalError` it met (as data, so that Dask does not retry it and the
client raises the same one-line error). The client writes the rows in the listing's order, so
the :class:`~segeval.scoring.evaluate.Run` is the one a local run makes, bit for bit (integer
sums do not depend on their order).

A worker lost mid-run (killed, out of memory) loses its shards; the scheduler runs them again
on the others (``retries`` also re-runs a shard whose task failed with an unexpected exception).

Workers read the files themselves: local paths must name the same files on every worker (a
shared file system; relative paths are taken in each worker's working directory), URLs are
fetched by each worker (:mod:`segeval.reading.storage`; ``memory://`` is one process's memory,
so it works only in-process).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segeval import errors
from segeval.errors import SegevalError

if TYPE_CHECKING:  # pragma: no cover
    from segeval.core.boundary import BoundaryOptions, PairMeasures, SurfaceOptions
    from segeval.reading.decode import Decoding
    from segeval.reading.io import Pair, Skipped

__all__ = ["DaskOptions", "Shard", "count_on_cluster", "shard_size"]

_HINT = "pip install 'segeval-cli[dask]'"
LOOPBACK_HTTP = "127.0.0.1:0"


@dataclass(frozen=True)
class DaskOptions:
    """Where to score: ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``) or ``n_workers``
    (a local cluster of that many single-threaded worker processes for this run).

    ``shard_size`` pairs per task (default: :func:`shard_size`); ``retries`` times a failed task is
    run again.
    """

    scheduler: str | None = None
    n_workers: int | None = None
    shard_size: int | None = None
    retries: int = 2
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if (self.scheduler is None) == (self.n_workers is None):
            raise SegevalError(None, "give one of --scheduler and --dask-workers", "")
        if self.n_workers is not None and self.n_workers < 1:
            raise SegevalError(None, f"--dask-workers must be at least 1, got {self.n_workers}", "")
        if self.shard_size is not None and self.shard_size < 1:
            raise SegevalError(None, f"the shard size must be at least 1, got {self.shard_size}", "")


@dataclass
class Shard:
    """What one shard task returns: compact arrays of its pairs' counts, or the error it met."""

    cm: NDArray[np.int64] | None = None  # (K, K + 1), summed over the shard
    counts: NDArray[np.int64] | None = None  # (n, 3, K) tp, fp, fn per image
    pixels: int = 0
    ignored: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    measures: list[PairMeasures | None] | None = None
    error: tuple[str, str | None, str, str] | None = None  # class name, path, what, todo


def shard_size(n_pairs: int, n_threads: int) -> int:
    """Pairs per shard: about 8 shards per worker thread (so that a slow or lost worker's share
    is spread over the others, and the progress bar moves), at most 2,000 pairs (a retried shard
    repeats little) and at least 1."""
    return max(1, min(2000, math.ceil(n_pairs / (8 * max(1, n_threads)))))


def _file(f: Any) -> Any:
    """What travels for a file: a local path's text, or the Url itself (its fetch URL may differ from its text)."""
    from segeval.reading.storage import Url

    return f if f is None or isinstance(f, Url) else os.fspath(f)


def _row(p: Pair) -> tuple[str, Any, Any, Any]:
    return (p.name, _file(p.gt), _file(p.pred), _file(p.roi))


def count_shard(
    rows: Sequence[tuple[str, Any, Any, Any]],
    decoding: Decoding | None,
    skip_bad: bool,
    n_classes: int,
    ignore_index: int,
    boundary: BoundaryOptions | None = None,
    surface: SurfaceOptions | None = None,
) -> Shard:
    """Count one shard's pairs on a worker (the function Dask runs; module-level, so that it is
    sent by reference: a worker process imports segeval and its kernels once, not per shard)."""
    from segeval.core import metrics
    from segeval.reading.io import Pair
    from segeval.reading.storage import Url, as_path, prefetched
    from segeval.scoring.evaluate import _count_and_measure, _count_pair

    skipped: list[Skipped] | None = [] if skip_bad else None
    pairs = [Pair(n, as_path(g), as_path(p), decoding, skipped, as_path(r)) for n, g, p, r in rows]  # type: ignore[arg-type]
    k = n_classes
    out = Shard(cm=np.zeros((k, k + 1), np.int64), counts=np.zeros((len(pairs), 3, k), np.int64))
    measure = boundary is not None or surface is not None
    found: list[PairMeasures | None] = []
    remote = bool(pairs) and any(isinstance(f, Url) for f in (pairs[0].gt, pairs[0].pred))
    try:
        for i, pair in enumerate(prefetched(pairs) if remote else pairs):
            if measure:
                (cm, n, n_ignored), m = _count_and_measure(pair, k, ignore_index, boundary, surface)
                found.append(m)
            else:
                cm, n, n_ignored = _count_pair(pair, k, ignore_index)
            out.cm += cm  # type: ignore[operator]
            out.counts[i] = metrics.counts(cm)  # type: ignore[index]
            out.pixels += n
            out.ignored += n_ignored
    except SegevalError as exc:
        return Shard(error=(type(exc).__name__, exc.path, exc.what, exc.todo))
    out.skipped = [(s.name, s.file, s.reason) for s in skipped or ()]
    out.measures = found if measure else None
    return out


def _raise(error: tuple[str, str | None, str, str]) -> None:
    name, path, what, todo = error
    cls = getattr(errors, name, SegevalError)
    if not (isinstance(cls, type) and issubclass(cls, SegevalError)):
        cls = SegevalError
    raise cls(path, what, todo)


def _connect(options: DaskOptions) -> tuple[Any, Any]:
    """A distributed Client (and the LocalCluster it owns, or None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SegevalError(None, "scoring on Dask needs the distributed package", _HINT) from None
    if options.scheduler is not None:
        try:
            return Client(options.scheduler, timeout=options.timeout, set_as_default=False), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise SegevalError(options.scheduler, f"no Dask scheduler answers ({' '.join(str(exc).split())[:160]})",
                               "start one (dask scheduler; dask worker ADDRESS) or check the address") from None
    # loopback only, the HTTP servers too (a scheduler and a worker always serve one; None would bind every interface)
    cluster = LocalCluster(n_workers=options.n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=LOOPBACK_HTTP, worker_dashboard_address=LOOPBACK_HTTP, silence_logs=40)
    try:
        return Client(cluster, set_as_default=False), cluster
    except BaseException:
        cluster.close()
        raise


def count_on_cluster(
    pairs: list[Pair],
    n_classes: int,
    ignore_index: int,
    options: DaskOptions,
    *,
    boundary: BoundaryOptions | None = None,
    surface: SurfaceOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], int, int, list[PairMeasures | None] | None]:
    """Count the pairs on a Dask cluster, in shards.

    Returns the summed (K, K + 1) matrix, the (N, 3, K) per-image counts in the pairs' order, the
    pixels, the ignored pixels and (with boundary/surface) the per-image measures. What
    ``--skip-bad`` leaves out goes to the pairs' ``skip_to`` list, as on the local path. The
    first error in the listing's order is raised as the :class:`SegevalError` a local run raises.
    ``progress(done, total)`` follows the pairs of the shards done.
    """
    from segeval.reading.io import Skipped

    k, total_n = n_classes, len(pairs)
    cm = np.zeros((k, k + 1), np.int64)
    counts = np.zeros((total_n, 3, k), np.int64)
    pixels = ignored = 0
    found: list[PairMeasures | None] | None = None
    measure = boundary is not None or surface is not None
    if not pairs:
        return cm, counts, 0, 0, [] if measure else None
    skip_to = pairs[0].skip_to
    client, cluster = _connect(options)
    try:
        from distributed import as_completed

        if not client.nthreads():
            try:
                client.wait_for_workers(1, timeout=options.timeout)
            except TimeoutError:
                raise SegevalError(options.scheduler, f"the Dask scheduler has no worker (waited "
                                   f"{options.timeout:g} s)", "start workers: dask worker ADDRESS") from None
        threads = sum(client.nthreads().values())
        size = options.shard_size or shard_size(total_n, threads)
        starts = list(range(0, total_n, size))
        decoding = pairs[0].decoding
        futures = {
            client.submit(count_shard, [_row(p) for p in pairs[s:s + size]], decoding, skip_to is not None, k,
                          ignore_index, boundary, surface, retries=options.retries, pure=False,
                          key=f"segeval-shard-{i}-{os.urandom(6).hex()}"): i
            for i, s in enumerate(starts)
        }
        results: dict[int, Shard] = {}
        failed: dict[int, tuple[str, str | None, str, str]] = {}
        done = 0
        try:
            for fut in as_completed(list(futures), loop=client.loop):
                i = futures[fut]
                try:
                    shard: Shard = fut.result()
                except Exception as exc:  # a worker lost too many times, or an unexpected error after retries
                    name = type(exc).__name__
                    if name != "KilledWorker":
                        raise
                    failed[i] = ("SegevalError", None, f"the shard of pairs {pairs[starts[i]].name} .. was lost with "
                                 "every worker that ran it (Dask's allowed failures)", "check the workers' memory "
                                 "and logs")
                    shard = Shard(error=failed[i])
                if shard.error is not None:
                    failed[i] = shard.error
                else:
                    results[i] = shard
                    done += len(shard.counts)  # type: ignore[arg-type]
                    if progress is not None:
                        progress(done, total_n)
                if failed:  # raise the first error in the listing's order once the shards before it are in
                    first = min(failed)
                    if all(j in results for j in range(first)):
                        _raise(failed[first])
        finally:
            client.cancel(list(futures))
        found = [] if measure else None
        for i, s in enumerate(starts):
            shard = results[i]
            n = len(shard.counts)  # type: ignore[arg-type]
            cm += shard.cm  # type: ignore[arg-type]
            counts[s:s + n] = shard.counts  # type: ignore[assignment]
            pixels += shard.pixels
            ignored += shard.ignored
            if skip_to is not None:
                skip_to.extend(Skipped(*e) for e in shard.skipped)
            if found is not None:
                found.extend(shard.measures or [None] * n)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return cm, counts, pixels, ignored, found
