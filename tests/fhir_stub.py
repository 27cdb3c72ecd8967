"""A loopback FHIR server helper shared by the FHIR client and prefetch tests."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FHIR_JSON = "application/fhir+json"


class HeldHandler:
    """Holds each request until released (to outlast a read timeout), then answers `body`.

    `finish` releases it and waits until the server has logged those requests, so that a late
    log entry cannot leak into the next test's `httpserver.log`.
    """

    def __init__(self, server: HTTPServer, body: Any):
        self.server = server
        self.body = body
        self.release = threading.Event()
        self.entered = 0

    def __call__(self, _: Request) -> Response:
        self.entered += 1
        self.release.wait(5)
        return Response(json.dumps(self.body), content_type=FHIR_JSON)

    def finish(self) -> None:
        self.release.set()
        deadline = time.monotonic() + 5
        while len(self.server.log) < self.entered and time.monotonic() < deadline:
            time.sleep(0.01)
