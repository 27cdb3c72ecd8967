"""How many large hook requests one worker works on at once.

A large body costs about six times its size in memory while it is parsed and evaluated (a 3 MB
prefetch is ~18 MB of Python objects), and a worker's threads share one interpreter lock: four
threads on four long-history requests take as long as one thread on them in turn, but hold
four times the memory, and every one of them finishes late. So a request whose body is large
(or of unknown length: chunked) waits for one of `slots` before it is read; small requests, the
usual order hooks, never wait. A request that cannot get a slot within `wait_seconds` is
answered 503 with Retry-After rather than queued without end.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from cds_service.errors import Issue, Unavailable


class LargeRequestGate:
    def __init__(self, large_bytes: int, slots: int, wait_seconds: float):
        self.large_bytes = large_bytes
        self.wait_seconds = wait_seconds
        self._slots = threading.BoundedSemaphore(max(1, slots))

    def is_large(self, content_length: int | None) -> bool:
        return content_length is None or content_length >= self.large_bytes

    @contextlib.contextmanager
    def admit(self, content_length: int | None) -> Iterator[None]:
        if not self.is_large(content_length):
            yield
            return
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise Unavailable([Issue(
                "too many large requests at once; retry shortly", code="transient")],
                retry_after=1)
        try:
            yield
        finally:
            self._slots.release()
