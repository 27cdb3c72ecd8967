"""FHIR calls of one hook request run on the worker's shared fetch pool, at most a few at a
time for this request, and never past its deadline.

The pool (`fhir.max_parallel_fetches` threads) is the worker's: without a bound per request,
one request with many keys or Medications to read could take every thread while a slow server
holds them, and the next request would wait for nothing it asked for. So a request has at most
`fhir.max_parallel_fetches_per_request` calls on the pool at once, and the next job starts when
one ends. What the deadline leaves unfinished is cancelled (a job not started never starts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def run_bounded(executor: Executor, jobs: Mapping[K, Callable[[], T]], limit: int,
                deadline: float | None) -> dict[K, T | Exception]:
    """Each job's result, or the exception it raised (a `FutureTimeout` for one the deadline
    cut short or never let start)."""
    waiting = list(jobs.items())
    running: dict[Future[T], K] = {}
    outcomes: dict[K, T | Exception] = {}
    while waiting or running:
        while waiting and len(running) < max(1, limit):
            key, job = waiting.pop(0)
            running[executor.submit(job)] = key
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, _ = wait(running, timeout=remaining, return_when=FIRST_COMPLETED)
        if not done:  # the deadline: nothing more will be waited for
            for future, key in running.items():
                future.cancel()
                outcomes[key] = FutureTimeout()
            for key, _ in waiting:
                outcomes[key] = FutureTimeout()
            break
        for future in done:
            key = running.pop(future)
            try:
                outcomes[key] = future.result()
            except Exception as exc:  # handed to the caller, which knows what each one means
                outcomes[key] = exc
    return {key: outcomes[key] for key in jobs}
