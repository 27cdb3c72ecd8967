"""X-Request-ID: made or taken, echoed, and carried by every log line of the request.

The log lines are the service's own: `configure_logging` (the JSON handler on stderr that
`serve` installs) with stderr captured, in process, and the stderr of a real `legcramp-cds
serve`.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.logs import configure_logging
from tests.conftest import load_request
from tests.support.auth import (
    SERVICE_PATH,
    auth_config,
    bearer,
    ec_key,
    free_port,
    issuer,
    serve,
    stop,
    token,
    write_jwks,
)

KEY = ec_key("request-ids-1", slot=10)
OTHER_KEY = ec_key("request-ids-1", slot=11)
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


# --- the header ------------------------------------------------------------------------------


def test_a_request_without_an_id_gets_a_new_uuid4(client):
    first = client.get("/health").headers["X-Request-ID"]
    second = client.get("/health").headers["X-Request-ID"]
    assert is_uuid4(first) and is_uuid4(second)
    assert first != second


@pytest.mark.parametrize("incoming", ["abc-123", "trace.4f2a_9", "A" * 64, "0", "a-b.c_d-E"])
def test_a_sane_incoming_id_is_echoed(client, incoming):
    response = client.get("/cds-services", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "hostile",
    [
        "A" * 65,
        "x" * 5000,
        "abc\ninjected: yes",
        "abc\r\nSet-Cookie: a=b",
        "abc\n",
        "two words",
        "a/b",
        "<script>",
        "ünïcode",
        "abc, def",
        "",
    ],
    ids=["65-chars", "5000-chars", "newline", "crlf", "trailing-newline", "space", "slash",
         "markup", "unicode", "two-headers-joined", "empty"],
)
def test_a_hostile_incoming_id_is_replaced(client, service_log, hostile):
    # Past the test client's own header checks, as a raw WSGI environ (gunicorn would refuse
    # most of these; a proxy in front might not).
    response = client.get("/health", environ_overrides={"HTTP_X_REQUEST_ID": hostile})
    echoed = response.headers["X-Request-ID"]
    assert is_uuid4(echoed), echoed
    lines = service_log()
    assert [line["request_id"] for line in lines] == [echoed]  # the access line
    if hostile.strip():
        # (the service's own random id may happen to contain a short value such as "abc")
        assert not [line for line in lines
                    if hostile.strip() in json.dumps(line).replace(echoed, "")]


def test_the_id_comes_back_on_errors_preflights_and_unknown_routes(client):
    ids = {}
    ids["404"] = client.get("/no/such/route", headers={"X-Request-ID": "r-404"})
    ids["405"] = client.open("/cds-services", method="PATCH", headers={"X-Request-ID": "r-405"})
    ids["400"] = client.post("/cds-services/legcramp-order-sign", data="{",
                             content_type="application/json", headers={"X-Request-ID": "r-400"})
    ids["preflight"] = client.options("/cds-services/legcramp-order-sign", headers={
        "X-Request-ID": "r-preflight", "Origin": SANDBOX_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-request-id"})
    for name, response in ids.items():
        assert response.headers["X-Request-ID"] == f"r-{name}", name
    allowed = ids["preflight"].headers["Access-Control-Allow-Headers"].lower()
    assert "x-request-id" in allowed


def test_browsers_may_read_the_id(client):
    response = client.get("/cds-services", headers={"Origin": SANDBOX_ORIGIN})
    exposed = response.headers.get("Access-Control-Expose-Headers", "").lower()
    assert "x-request-id" in exposed


# --- the log lines ---------------------------------------------------------------------------


@pytest.fixture
def service_log() -> Iterator[Any]:
    """The service's JSON log handler as `serve` installs it (its stream swapped for a buffer);
    calling the fixture gives the lines written since the last call, parsed."""
    logger = logging.getLogger("legcramp_cds")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    configure_logging("DEBUG")
    (handler,) = logger.handlers
    buffer = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)

    def lines() -> list[dict[str, Any]]:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    yield lines
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_every_log_line_of_a_request_carries_its_id(make_app, tmp_path, httpserver,
                                                    service_log):
    jwks = write_jwks(tmp_path / "jwks.json", KEY)
    config = auth_config(tmp_path, [issuer(jwks_file=str(jwks))])
    client = make_app(config).test_client()
    service_log()  # start-up lines (authentication warnings) belong to no request
    httpserver.expect_request(re.compile("^/fhir/")).respond_with_data("down", status=500)
    failing = load_request("order-sign-quinine-partial-prefetch",
                           fhirServer=httpserver.url_for("/fhir"))

    exchanges: list[tuple[str, dict[str, Any]]] = [
        ("answered", {"json": load_request("order-sign-quinine-malaria"),
                      "headers": bearer(token(KEY))}),
        ("fhir-fails", {"json": failing, "headers": bearer(token(KEY))}),
        ("bad-signature", {"json": load_request("order-sign-quinine-malaria"),
                           "headers": bearer(token(OTHER_KEY))}),
        ("no-token", {"json": load_request("order-sign-quinine-malaria")}),
    ]
    seen: set[str] = set()
    for name, options in exchanges:
        response = client.post(SERVICE_PATH, **options)
        request_id = response.headers["X-Request-ID"]
        assert is_uuid4(request_id)
        lines = service_log()
        seen.update(line["message"] for line in lines)
        assert all(line.get("request_id") == request_id for line in lines), (name, lines)
        access = [line for line in lines if line["logger"] == "legcramp_cds.access"]
        assert len(access) == 1, (name, lines)
        assert access[0]["status"] == response.status_code
        assert access[0]["method"] == "POST"
        assert access[0]["endpoint"] == "service_call"
        assert access[0]["service"] == "legcramp-order-sign"
        assert isinstance(access[0]["duration_ms"], float)
    assert {"authentication failed", "request"} <= seen, seen
    assert "service call answered" not in seen, seen  # one line per request


def test_lines_after_the_hook_request_is_read_carry_its_hook_instance(client, service_log):
    request = load_request("order-sign-quinine-malaria")
    response = client.post(SERVICE_PATH, json=request, headers={"X-Request-ID": "mine-1"})
    assert response.status_code == 200
    lines = service_log()
    (access,) = [line for line in lines if line["logger"] == "legcramp_cds.access"]
    assert access["request_id"] == "mine-1"
    assert access["hook_instance"] == request["hookInstance"]
    # the call's findings ride on the access line: one line per request
    assert access["cards"] == len(response.get_json()["cards"])
    assert {"prefetch_supplied", "prefetch_fetched", "resources", "elapsed_ms",
            "unidentified_orders"} <= set(access)
    assert [line for line in lines if line["message"] == "service call answered"] == []


def test_the_access_line_holds_no_query_string_body_or_authorization(client, service_log):
    secret = f"cramps-001-{uuid.uuid4().hex}"
    # (a token that is no JWT: 401 even with authentication off)
    client.get(f"/cds-services?patient={secret}", headers={"Authorization": f"Bearer {secret}"})
    client.post(f"/cds-services/{secret}", json={"context": {"patientId": secret}})
    client.get(f"/Patient/{secret}")
    lines = service_log()
    access = [line for line in lines if line["logger"] == "legcramp_cds.access"]
    assert [(a["endpoint"], a["service"], a["status"]) for a in access] == [
        ("discovery", None, 401), ("service_call", "unknown", 404), ("unmatched", None, 404)]
    assert set(access[0]) == {"time", "level", "logger", "message", "method", "endpoint",
                              "service", "status", "duration_ms", "request_id"}
    assert not [line for line in lines if secret in json.dumps(line)]


def test_log_lines_outside_a_request_carry_no_request_id(service_log):
    logging.getLogger("legcramp_cds.test").warning("outside")
    (line,) = service_log()
    assert "request_id" not in line and "hook_instance" not in line


# --- a live server ---------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Any]:
    config = tmp_path / "serve.toml"
    config.write_text(
        '[server]\nworkers = 2\nthreads = 2\n\n[evaluation]\nas_of = "2026-11-21"\n\n'
        f'[store]\nurl = {json.dumps(f"sqlite:///{tmp_path}/s.sqlite3")}\n', encoding="utf-8")
    with serve(config, free_port(), tmp_path / "serve.log") as served:
        yield served


def test_live_server_log_lines_carry_the_request_id(live):
    request = load_request("order-sign-quinine-malaria")
    given = requests.post(f"{live.base}{SERVICE_PATH}", json=request, timeout=20,
                          headers={"X-Request-ID": "live-call-1"})
    made = requests.post(f"{live.base}{SERVICE_PATH}", json=request, timeout=20)
    assert given.headers["X-Request-ID"] == "live-call-1"
    generated = made.headers["X-Request-ID"]
    assert is_uuid4(generated)
    stop(live.process)
    records = [json.loads(line) for line in live.output().splitlines() if line.startswith("{")]
    for request_id in ("live-call-1", generated):
        mine = [r for r in records if r.get("request_id") == request_id]
        (line,) = mine  # one line per request
        assert line["message"] == "request" and isinstance(line["cards"], int), line
        assert line["hook_instance"] == request["hookInstance"]
    unattributed = [r for r in records if r["message"] in ("service call answered", "request")
                    and "request_id" not in r]
    assert unattributed == []
