"""Loopback FHIR server helpers shared by the FHIR client, prefetch, sandbox replay, metrics and
log tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FHIR_JSON = "application/fhir+json"
PATIENT_TOKEN = "{{context.patientId}}"
LOINC = "http://loinc.org"

Query = tuple[tuple[str, str], ...]


def declared_prefetch(service_id: str) -> dict[str, str]:
    """Prefetch key -> template that `service_id` declares (the declarations discovery is
    generated from), so that a new rule's key is expected without editing the tests."""
    from hooks import build_services

    for service in build_services():
        if service.id == service_id:
            return {r.key: r.template for r in service.requirements}
    raise KeyError(service_id)


def every_declared_prefetch() -> dict[str, str]:
    """Key -> template over every service (a key means the same query wherever declared)."""
    from hooks import build_services

    found: dict[str, str] = {}
    for service in build_services():
        for requirement in service.requirements:
            assert found.setdefault(requirement.key, requirement.template) == requirement.template
    return found


def split_query(path: str, query: str) -> tuple[str, Query]:
    """(path, decoded query parameters in order): how a request is compared with a template."""
    return path, tuple(parse_qsl(query, keep_blank_values=True))


def expected_request(template: str, patient_id: str, base_path: str = "/fhir") -> tuple[str, Query]:
    """What the service must send for `template` filled for `patient_id` (a plain id)."""
    relative = template.replace(PATIENT_TOKEN, patient_id)
    assert "{{" not in relative, f"test helper fills only {PATIENT_TOKEN}: {template}"
    path, _, query = relative.partition("?")
    return split_query(f"{base_path}/{path}", query)


def received_requests(server: HTTPServer) -> list[tuple[str, Query]]:
    """(path, decoded query parameters) of every request `server` got, in order."""
    return [split_query(req.path, req.query_string.decode()) for req, _ in server.log]


def loinc_codes(query: Query) -> set[str]:
    """The LOINC codes an Observation search asks for (`code=http://loinc.org|x,...`)."""
    codes = set()
    for name, value in query:
        if name == "code":
            for token in value.split(","):
                system, _, code = token.rpartition("|")
                assert system == LOINC, token
                codes.add(code)
    return codes


def observation_codes(resource: dict[str, Any]) -> set[str]:
    return {
        coding.get("code")
        for coding in (resource.get("code") or {}).get("coding") or []
        if coding.get("system") == LOINC
    }


def serve_observation_searches(
    server: HTTPServer, patient_id: str, observations: list[dict[str, Any]],
    base_path: str = "/fhir",
) -> None:
    """Answer each declared Observation search for `patient_id`, at exactly its query, with the
    `observations` whose LOINC code it asks for (an empty searchset when there are none)."""
    for template in every_declared_prefetch().values():
        path, query = expected_request(template, patient_id, base_path)
        if not path.endswith("/Observation"):
            continue
        wanted = loinc_codes(query)
        matches = [o for o in observations if observation_codes(o) & wanted]
        server.expect_request(path, method="GET", query_string=dict(query)).respond_with_json(
            searchset(matches), content_type=FHIR_JSON)


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def answer_from(resources: list[dict[str, Any]]) -> Callable[[Request], Response]:
    """A handler for a FHIR server at `/<base>`: `<base>/Type/id` reads (404 when not there)
    and `<base>/Type` searches (the query is not looked at) answered from `resources`."""

    def fhir(request: Request) -> Response:
        parts = request.path.strip("/").split("/")  # base, Type[, id]
        kind = parts[1] if len(parts) > 1 else ""
        if len(parts) == 3:
            found = [r for r in resources if r["resourceType"] == kind and r["id"] == parts[2]]
            if not found:
                return Response('{"resourceType": "OperationOutcome"}', status=404,
                                content_type=FHIR_JSON)
            return Response(json.dumps(found[0]), content_type=FHIR_JSON)
        return Response(json.dumps(searchset([r for r in resources if r["resourceType"] == kind])),
                        content_type=FHIR_JSON)

    return fhir


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


class TricklingServer:
    """A loopback listener that answers each connection with 200 headers declaring a
    `Content-Length` body, then sends it a byte every `every_s` seconds, and gives up (closing
    the connection, the body unfinished) after `give_up_s`. Unlike a chunked stream, nothing
    short of a per-receive reader sees any progress before the whole body has arrived."""

    def __init__(self, every_s: float = 0.1, give_up_s: float = 5.0) -> None:
        import socket

        self.every_s, self.give_up_s = every_s, give_up_s
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = int(self.sock.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.stopped = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: Any) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
                             b"Content-Length: 100000\r\n\r\n{")
                ends = time.monotonic() + self.give_up_s
                while time.monotonic() < ends and not self.stopped.wait(self.every_s):
                    conn.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
