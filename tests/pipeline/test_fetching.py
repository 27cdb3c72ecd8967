"""One request's FHIR calls on the worker's shared pool: a few at a time, never past the
deadline, each outcome handed back by key."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from cds_service.errors import FhirError
from cds_service.pipeline.fetching import run_bounded


class Gauge:
    """Counts the jobs running at once, and the most there ever were."""

    def __init__(self) -> None:
        self.lock, self.now, self.most, self.started = threading.Lock(), 0, 0, 0

    def job(self, value: int, hold: threading.Event, seconds: float = 0.05):
        def run() -> int:
            with self.lock:
                self.now += 1
                self.started += 1
                self.most = max(self.most, self.now)
            hold.wait(seconds)
            with self.lock:
                self.now -= 1
            return value

        return run


def test_a_request_uses_at_most_its_share_of_the_pool():
    gauge, hold = Gauge(), threading.Event()
    with ThreadPoolExecutor(8) as pool:
        outcomes = run_bounded(pool, {i: gauge.job(i, hold) for i in range(6)}, 2, None)
    assert outcomes == {i: i for i in range(6)}
    assert gauge.most == 2  # never more than the bound, and the bound was used


def test_what_the_deadline_leaves_is_a_timeout_and_what_never_started_never_starts():
    gauge, hold = Gauge(), threading.Event()
    try:
        with ThreadPoolExecutor(8) as pool:
            jobs = {i: gauge.job(i, hold, seconds=5) for i in range(6)}
            outcomes = run_bounded(pool, jobs, 2, time.monotonic() + 0.2)
            hold.set()  # let the two that started end, so the pool can close
            assert all(isinstance(o, FutureTimeout) for o in outcomes.values()), outcomes
            assert gauge.started == 2
    finally:
        hold.set()


def test_each_failure_is_handed_back_by_key():
    def failing() -> int:
        raise FhirError("FHIR server answered 500", 500, code="http_error")

    with ThreadPoolExecutor(2) as pool:
        outcomes = run_bounded(pool, {"ok": lambda: 1, "bad": failing}, 1, None)
    assert outcomes["ok"] == 1
    assert isinstance(outcomes["bad"], FhirError) and outcomes["bad"].code == "http_error"
    assert list(outcomes) == ["ok", "bad"]  # in the jobs' order
