"""Schemathesis against `openapi.yaml`, over a live `legcramp-cds serve` (gunicorn) process.

Per operation, Hypothesis draws cases from the OpenAPI description (`schemathesis.openapi.
from_path`: the external `./cds_service/schemas/*.json` refs resolve against the file's location)
in positive mode and, for the operations that take a body, negative mode. Each case is sent over
HTTP to the live server and its response is checked: never a 5xx, and status code, content type,
headers and body as `openapi.yaml` declares them. `service_id` is drawn from the four real
services (so bodies reach the hook validation and engine) and from generated ids (404).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import FIXTURES, ROOT, load_fixture
from tests.support.live_server import free_port, serve

SCHEMA = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
SERVICE_IDS = ["legcramp-order-select", "legcramp-order-sign", "legcramp-patient-view",
               "legcramp-medication-refill"]
MAX_EXAMPLES = 25

# Held on every response. Left out, because they do not apply here:
# - positive_data_acceptance: a body valid against ServiceRequest is still refused with 400
#   when its `hook` is not the service's or its context fails the hook's context schema, and
#   a request without prefetch gets 412: schema-valid is not the same as acceptable.
# - the stateful checks (use_after_free, ensure_resource_availability): the API has no links
#   and creates no resources; ignored_auth / missing_required_header: no security scheme or
#   required header is declared (authentication is off in the served configuration).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    config = tmp / "serve.toml"
    config.write_text(
        f'[server]\nworkers = 1\n\n[store]\nurl = "sqlite:///{tmp / "s.sqlite3"}"\n',
        encoding="utf-8",
    )
    with serve(config, free_port(), tmp / "serve.log") as server:
        yield server.base
    log_text = server.output()
    assert "Traceback" not in log_text, log_text


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def _strategy(operation: Any, mode: GenerationMode) -> Any:
    if not any(p.name == "service_id" for p in operation.path_parameters):
        return operation.as_strategy(mode)
    fixed = [
        operation.as_strategy(mode, path_parameters={"service_id": service_id})
        for service_id in SERVICE_IDS
    ]
    return st.one_of(*fixed, operation.as_strategy(mode))  # the last: generated (unknown) ids


RUNS = [
    pytest.param(operation, mode, id=f"{operation.label} {mode.value}")
    for operation in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or len(operation.body) > 0
]


def test_every_operation_of_the_openapi_description_is_exercised():
    labels = {operation.label for operation in OPERATIONS}
    assert {
        "GET /cds-services",
        "POST /cds-services/{service_id}",
        "POST /cds-services/{service_id}/feedback",
        "GET /health",
        "GET /metrics",
    } <= labels
    assert len(RUNS) == len(OPERATIONS) + 2  # the two POSTs in negative mode too


@pytest.mark.parametrize(("operation", "mode"), RUNS)
def test_live_server_conforms_to_openapi(live_server, session, operation, mode):
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=bool(os.environ.get("CI")),  # CI replays a fixed set; developers explore
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    @given(case=_strategy(operation, mode))
    def run(case: Any) -> None:
        case.call_and_validate(base_url=live_server, session=session, checks=checks, timeout=15)

    run()


@pytest.mark.parametrize("fixture", sorted(p.stem for p in (FIXTURES / "requests").glob("*.json")))
def test_fixture_requests_over_the_live_server_conform_to_openapi(live_server, session, fixture):
    """Generated bodies rarely get past the hook checks: the fixture requests reach the rules,
    so 200 (cards) and 412 answers are held to `openapi.yaml` over HTTP as well."""
    request = load_fixture(f"requests/{fixture}.json")
    service_id = next(s for s in SERVICE_IDS if s.endswith(request["hook"]))
    operation = SCHEMA["/cds-services/{service_id}"]["POST"]
    case = operation.Case(
        path_parameters={"service_id": service_id}, body=request, media_type="application/json"
    )
    response = case.call_and_validate(
        base_url=live_server, session=session, checks=CHECKS, timeout=30
    )
    assert response.status_code in (200, 412), response.text


# --- hostile input over the live server (gunicorn, not the Flask test client) ----------------


def _raw_status(base: str, head: str, body: bytes) -> int:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("ascii") + b"\r\n\r\n" + body)
        status_line = sock.makefile("rb").readline().decode("latin-1")
    return int(status_line.split()[1])


def test_live_content_length_lie_is_413_without_waiting_for_the_body(live_server):
    head = (
        "POST /cds-services/legcramp-order-select HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**15}\r\nConnection: close"
    )
    assert _raw_status(live_server, head, b"{}") == 413


def test_live_ten_thousand_deep_nesting_is_400(live_server, session):
    for path in ("/cds-services/legcramp-order-sign", "/cds-services/legcramp-order-sign/feedback"):
        response = session.post(
            f"{live_server}{path}",
            data="[" * 10_000 + "]" * 10_000,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 400, response.text
        assert "server.max_json_depth" in response.json()["issue"][0]["diagnostics"]
