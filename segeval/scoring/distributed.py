"""Scoring on a Dask cluster: the pairs listed once on the client, counted in shards on the workers.

``segeval score PRED GT --scheduler tcp://HOST:PORT`` (a running cluster) or ``--dask-workers N``
(a :class:`distributed.LocalCluster` of N processes on the loopback interface, for this run).
Dask is the ``[dask]`` extra, imported only here and only when asked for.

The client cuts the listing into shards of consecutive pairs (many pairs each: see
:func:`shard_size`); each shard task scores its pairs with the per-pair code of the local path
(:func:`segeval.scoring.evaluate.tally_of`, as forked local workers do) into a
:class:`~segeval.scoring.evaluate.Tally` (its summed (K, K + 1) matrix, its per-image (n, 3, K)
``tp``/``fp``/``fn`` rows, its pixel counts and measures, what ``--skip-bad`` left out) and
returns it in a :class:`Shard`, or the :class:`~segeval.errors.SegevalError` it met (as data, so
that Dask does not retry it and the client raises the same one-line error). The client extends
its tally with the shards' in the listing's order, so
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import segeval.errors as errors
from segeval.errors import SegevalError

if TYPE_CHECKING:  # pragma: no cover
    from segeval.reading.decode import Decoding
    from segeval.reading.io import Pair
    from segeval.scoring.evaluate import Tally
    from segeval.scoring.options import ScoreOptions

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
    """What one shard task returns: its pairs' :class:`~segeval.scoring.evaluate.Tally` (compact
    arrays), or the error it met."""

    tally: Tally | None = None
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


def count_shard(rows: Sequence[tuple[str, Any, Any, Any]], decoding: Decoding | None, opts: ScoreOptions,
                skip_bad: bool) -> Shard:
    """Count one shard's pairs on a worker (the function Dask runs; module-level, so that it is
    sent by reference: a worker process imports segeval and its kernels once, not per shard)."""
    from segeval.reading.io import Pair
    from segeval.reading.storage import Url, as_path, prefetched
    from segeval.scoring.evaluate import tally_of

    pairs = [Pair(n, as_path(g), as_path(p), decoding, as_path(r)) for n, g, p, r in rows]  # type: ignore[arg-type]
    remote = bool(pairs) and any(isinstance(f, Url) for f in (pairs[0].gt, pairs[0].pred))
    out = tally_of(prefetched(pairs) if remote else pairs, opts=opts, skip_bad=skip_bad)
    if isinstance(out, SegevalError):
        return Shard(error=(type(out).__name__, out.path, out.what, out.todo))
    return Shard(tally=out)


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
    opts: ScoreOptions,
    options: DaskOptions,
    *,
    skip_bad: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Tally:
    """Count the pairs on a Dask cluster, in shards: the :class:`~segeval.scoring.evaluate.Tally`
    of all of them in the listing's order, as the local threads give it.

    The first error in the listing's order is raised as the :class:`SegevalError` a local run
    raises. ``progress(done, total)`` follows the pairs of the shards done.
    """
    from segeval.scoring.evaluate import Tally

    tally = Tally.empty(opts.num_classes)
    if not pairs:
        return tally
    total_n = len(pairs)
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
            client.submit(count_shard, [_row(p) for p in pairs[s:s + size]], decoding, opts, skip_bad,
                          retries=options.retries, pure=False, key=f"segeval-shard-{i}-{os.urandom(6).hex()}"): i
            for i, s in enumerate(starts)
        }
        results: dict[int, Tally] = {}
        failed: dict[int, tuple[str, str | None, str, str]] = {}
        done = 0
        try:
            for fut in as_completed(list(futures), loop=client.loop):
                i = futures[fut]
                try:
                    shard: Shard = fut.result()
                except Exception as exc:  # a worker lost too many times, or an unexpected error after retries
                    if type(exc).__name__ != "KilledWorker":
                        raise
                    shard = Shard(error=("SegevalError", None, f"the shard of pairs {pairs[starts[i]].name} .. was "
                                         "lost with every worker that ran it (Dask's allowed failures)",
                                         "check the workers' memory and logs"))
                if shard.error is not None:
                    failed[i] = shard.error
                else:
                    assert shard.tally is not None
                    results[i] = shard.tally
                    done += min(size, total_n - starts[i])
                    if progress is not None:
                        progress(done, total_n)
                if failed:  # raise the first error in the listing's order once the shards before it are in
                    first = min(failed)
                    if all(j in results for j in range(first)):
                        _raise(failed[first])
        finally:
            client.cancel(list(futures))
        for i in range(len(starts)):
            tally.extend(results[i])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return tally
