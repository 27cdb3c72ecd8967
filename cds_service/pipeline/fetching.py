"""FHIR calls of one hook request run on the worker's shared fetch pool, at most a few at a
time for this request, at most a share of the pool for one server, and never past its deadline.

The pool (`fhir.max_parallel_fetches` slots) is the worker's: without a bound per request,
one request with many keys or Medications to read could take every slot while a slow server
holds them, and the next request would wait for nothing it asked for. So a request has at most
`fhir.max_parallel_fetches_per_request` calls on the pool at once, and the next job starts when
one ends. Requests to one server together hold at most `fhir.max_parallel_fetches_per_server`
slots (the `gate`): a server that trickles its answers fills its own share and waits there,
while calls to every other server still find slots. A job waits for the gate here, before it
is handed to the pool, so waiting never holds a slot. What the deadline leaves unfinished is
cancelled (a job not started never starts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
GATE_POLL_SECONDS = 0.02  # how often a request waiting for its server's share looks again


def _releasing(job: Callable[[], T], gate: threading.Semaphore) -> Callable[[], T]:
    def run() -> T:
        try:
            return job()
        finally:
            gate.release()
    return run


def run_bounded(executor: Executor, jobs: Mapping[K, Callable[[], T]], limit: int,
                deadline: float | None,
                gate: threading.Semaphore | None = None) -> dict[K, T | Exception]:
    """Each job's result, or the exception it raised (a `FutureTimeout` for one the deadline
    cut short or never let start). With a `gate`, a job starts only once it holds one of the
    gate's slots, released when the job ends (or is cancelled before it began)."""
    waiting = list(jobs.items())
    running: dict[Future[T], K] = {}
    outcomes: dict[K, T | Exception] = {}
    while waiting or running:
        gated = False
        while waiting and len(running) < max(1, limit):
            if gate is not None and not gate.acquire(blocking=False):
                gated = True
                break
            key, job = waiting.pop(0)
            running[executor.submit(job if gate is None else _releasing(job, gate))] = key
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        timeout = remaining
        if gated:
            timeout = GATE_POLL_SECONDS if remaining is None else min(remaining,
                                                                      GATE_POLL_SECONDS)
        done: set[Future[T]] = set()
        if running:
            done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
        else:
            time.sleep(timeout or 0.0)
        if not done and deadline is not None and time.monotonic() >= deadline:
            # nothing more will be waited for
            for future, key in running.items():
                if future.cancel() and gate is not None:
                    gate.release()  # never ran, so never released its slot
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
