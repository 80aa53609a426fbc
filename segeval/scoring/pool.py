"""Maps in order with bounded memory over threads (scoring, maps and the reports) or forked processes.

The kernels release the GIL, so threads count large masks on every core while the per-file
Python work interleaves. On thousands of small files that Python work and the hand-over of the
GIL around each short kernel call dominate, and two threads are slower than one; there
:func:`forked_map` runs the work in processes forked from this one (Linux), which start with
everything this process has loaded (the kernels included) and send back only the results.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def ordered_map(fn: Callable[[T], Any], items: Iterable[T], workers: int, chunk: int = 1) -> Iterator[Any]:
    """``map`` over a thread pool that keeps at most 2 x workers tasks in flight, in order; each task
    maps ``chunk`` consecutive items (many small files: fewer tasks to submit and hand over)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    tasks: Iterable[Any] = items
    if chunk > 1:
        it = iter(items)
        tasks = iter(lambda: list(itertools.islice(it, chunk)), [])
    with ThreadPoolExecutor(workers, thread_name_prefix="segeval") as pool:
        pending: deque[Future] = deque()
        run = (lambda batch: [fn(x) for x in batch]) if chunk > 1 else fn
        try:
            for task in tasks:
                pending.append(pool.submit(run, task))
                if len(pending) >= 2 * workers:
                    out = pending.popleft().result()
                    yield from (out if chunk > 1 else (out,))
            while pending:
                out = pending.popleft().result()
                yield from (out if chunk > 1 else (out,))
        finally:
            for f in pending:
                f.cancel()


def default_workers() -> int:
    """The threads to use: the CPUs this process may run on, at most 8."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


_job: tuple[Callable[[Sequence[Any]], Any], Sequence[Any], int] | None = None  # what forked workers run


def _run_slice(start: int) -> Any:
    assert _job is not None
    fn, items, chunk = _job
    return fn(items[start:start + chunk])


def can_fork() -> bool:
    """Whether :func:`forked_map` may run: Linux (fork is the platform's own way to start a
    process), no other thread in this process (a thread's locks would be copied held) and not
    inside a daemonic worker process (which may not have children)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1 \
        and not multiprocessing.current_process().daemon


def forked_map(fn: Callable[[Sequence[T]], Any], items: Sequence[T], workers: int, chunk: int) -> Iterator[Any]:
    """``fn`` of each slice of ``chunk`` consecutive items, in order, in ``workers`` processes
    forked from this one: the items are not sent (the children have them), only the slices'
    start indices go out and ``fn``'s results (which must pickle) come back."""
    global _job
    _job = (fn, items, chunk)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_run_slice, range(0, len(items), chunk))
    finally:
        _job = None
