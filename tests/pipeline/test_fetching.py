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


def test_requests_to_one_server_together_hold_at_most_its_share():
    """Two requests to the same server, 4 jobs each and a per-request bound of 4: the
    server's gate of 3 slots is the most they ever run at once, and every slot comes back."""
    gauge, hold = Gauge(), threading.Event()
    gate = threading.BoundedSemaphore(3)
    with ThreadPoolExecutor(16) as pool, ThreadPoolExecutor(2) as callers:
        runs = [callers.submit(run_bounded, pool, {i: gauge.job(i, hold) for i in range(4)},
                               4, time.monotonic() + 10, gate) for _ in range(2)]
        outcomes = [run.result() for run in runs]
    assert outcomes == [{i: i for i in range(4)}] * 2
    assert gauge.most == 3
    for _ in range(3):
        assert gate.acquire(blocking=False)
    assert not gate.acquire(blocking=False)


def test_a_server_holding_its_whole_share_does_not_stop_calls_to_another_server():
    """A slow server's calls fill its share and wait there; a request to another server
    still runs at once on the same pool."""
    hold = threading.Event()
    slow_gate, other_gate = threading.BoundedSemaphore(2), threading.BoundedSemaphore(2)
    slow, other = Gauge(), Gauge()
    try:
        with ThreadPoolExecutor(4) as pool, ThreadPoolExecutor(1) as caller:
            stuck = caller.submit(run_bounded, pool,
                                  {i: slow.job(i, hold, seconds=5) for i in range(6)}, 4,
                                  time.monotonic() + 5, slow_gate)
            while slow.started < 2:
                time.sleep(0.01)
            outcomes = run_bounded(pool, {i: other.job(i, threading.Event(), 0.01)
                                          for i in range(3)}, 4, time.monotonic() + 5,
                                   other_gate)
            assert outcomes == {0: 0, 1: 1, 2: 2}
            assert slow.started == 2  # the slow server never had more than its share
            hold.set()
            assert stuck.result() == {i: i for i in range(6)}
    finally:
        hold.set()


def test_jobs_waiting_for_their_servers_share_time_out_at_the_deadline_and_return_nothing():
    gauge, hold = Gauge(), threading.Event()
    gate = threading.BoundedSemaphore(1)
    assert gate.acquire(blocking=False)  # another request holds the only slot
    with ThreadPoolExecutor(4) as pool:
        outcomes = run_bounded(pool, {i: gauge.job(i, hold) for i in range(3)}, 4,
                               time.monotonic() + 0.2, gate)
    assert all(isinstance(o, FutureTimeout) for o in outcomes.values())
    assert gauge.started == 0
    gate.release()
    assert gate.acquire(blocking=False)  # the slot is the other request's again, not leaked
