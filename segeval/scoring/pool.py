"""A thread pool that maps in order with bounded memory, shared by scoring, maps and the reports.

The kernels release the GIL (numba ``nogil``), so threads count masks on every core while the
per-file Python work interleaves.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
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
