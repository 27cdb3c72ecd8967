"""No JWT, access token or patient identity in any log line, in process and from a live server.

A full run — authenticated calls carrying `fhirAuthorization` access tokens, prefetch fetched
from a loopback FHIR server (with the chart's real resources), refused tokens, refused FHIR
servers, failing FHIR servers and bad inputs — with every log record captured (root logger,
`legcramp_cds`, every level) and, separately, the stderr of a real `legcramp-cds serve`. The
secrets looked for: each JWT sent (whole, and each of its three segments), each access token,
and every patient id, name and birth date in the fixtures.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer

from cds_service.logs import JsonFormatter
from tests.conftest import FIXTURES, load_fixture, load_request
from tests.support import auth
from tests.support.fhir_server import answer_from
from tests.support.live_server import Served, free_port, serve, stop

KEY = auth.ec_key("logs-1", slot=6)
OTHER = auth.ec_key("logs-1", slot=7)  # same kid, different key: a bad signature
RSA = auth.rsa_key("logs-rsa")
ORDER_SIGN = "/cds-services/legcramp-order-sign"
PATIENT_VIEW = "/cds-services/legcramp-patient-view"
DISCOVERY = "/cds-services"
ACCESS_TOKEN = f"access-{uuid.uuid4().hex}"  # unique, so a hit can only be a leak
FAKE_EHR_LOGGER = "werkzeug"  # the loopback FHIR/JWKS servers' own access log, not the service's


# --- what must never be logged ---------------------------------------------------------------


def fixture_identities() -> set[str]:
    """Patient ids, names and birth dates, and access tokens, anywhere in the fixtures."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("resourceType") == "Patient":
                found.add(node.get("id", ""))
                found.add(node.get("birthDate", ""))
                for name in node.get("name", []):
                    found.update([name.get("family", ""), name.get("text", ""),
                                  *name.get("given", [])])
            if isinstance(node.get("access_token"), str):
                found.add(node["access_token"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in FIXTURES.rglob("*.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    found.discard("")
    return found


IDENTITIES = fixture_identities()


class Secrets:
    """Everything one run must not log: fixed identities plus each token it sends."""

    def __init__(self) -> None:
        self.values: set[str] = {*IDENTITIES, ACCESS_TOKEN}

    def jwt(self, value: str) -> str:
        self.values.add(value)
        self.values.update(part for part in value.split(".") if len(part) >= 8)
        return value

    def found_in(self, text: str) -> list[str]:
        return sorted(s for s in self.values if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])",
                                                          text))


def test_the_secret_list_covers_what_the_run_sends():
    """Guards the guard: the fixtures' patients and tokens are all on the list."""
    assert {"cramps-001", "malaria-002", "Hartley", "Margaret", "1951-03-14",
            "example-access-token-not-real"} <= IDENTITIES
    secrets = Secrets()
    jwt = secrets.jwt(auth.token(KEY))
    assert secrets.found_in(f"x {jwt.split('.')[2]} y") == [jwt.split(".")[2]]
    assert secrets.found_in('{"patient": "cramps-001"}') == ["cramps-001"]
    assert secrets.found_in("cramps-0012 Margarethe") == []


# --- a loopback EHR --------------------------------------------------------------------------


def chart(name: str = "cramps-001") -> list[dict[str, Any]]:
    """The patient's chart, and the Medication its by-reference order names."""
    return [entry["resource"] for entry in load_fixture(f"patients/{name}.json")["entry"]] + [
        load_fixture("patients/medication-quinine-324.json")]


def serve_ehr(server: HTTPServer) -> None:
    """/fhir answers reads and searches from cramps-001's chart; /broken answers 500 with the
    patient's name in the body; /moved answers a redirect."""
    server.expect_request(re.compile(r"^/fhir/")).respond_with_handler(answer_from(chart()))
    server.expect_request(re.compile(r"^/broken/")).respond_with_data(
        "Internal error for patient Hartley, Margaret (1951-03-14)", status=500)
    server.expect_request(re.compile(r"^/moved/")).respond_with_data(
        "", status=302, headers={"Location": "https://elsewhere.example/fhir/Patient/cramps-001"})


def with_token(request: dict[str, Any], fhir_server: str) -> dict[str, Any]:
    request = copy.deepcopy(request)
    request["fhirServer"] = fhir_server
    request["fhirAuthorization"] = {
        "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "legcramp-cds", "patient": "cramps-001",
    }
    return request


def full_run(send: Callable[..., int], secrets: Secrets, ehr: str, base: str) -> dict[str, int]:
    """Every kind of call, each with its own token; the statuses, by what was sent."""

    def fresh(path: str, **options: Any) -> str:
        return secrets.jwt(auth.token(KEY, path, base=base, **options))

    partial = load_request("order-sign-quinine-partial-prefetch")
    statuses: dict[str, int] = {}
    statuses["discovery"] = send("GET", DISCOVERY, fresh(DISCOVERY))
    replayed = fresh(ORDER_SIGN)
    statuses["fetching prefetch"] = send("POST", ORDER_SIGN, replayed,
                                         with_token(partial, f"{ehr}/fhir"))
    statuses["replay"] = send("POST", ORDER_SIGN, replayed, with_token(partial, f"{ehr}/fhir"))
    statuses["no prefetch at all"] = send(
        "POST", PATIENT_VIEW, fresh(PATIENT_VIEW),
        with_token(load_request("patient-view-no-prefetch"), f"{ehr}/fhir"))
    statuses["medication read"] = send(
        "POST", ORDER_SIGN, fresh(ORDER_SIGN),
        with_token(load_request("order-sign-medication-reference-server"), f"{ehr}/fhir"))
    statuses["FHIR 500"] = send("POST", ORDER_SIGN, fresh(ORDER_SIGN),
                                with_token(partial, f"{ehr}/broken/fhir"))
    statuses["FHIR redirect"] = send("POST", ORDER_SIGN, fresh(ORDER_SIGN),
                                     with_token(partial, f"{ehr}/moved/fhir"))
    statuses["off allowlist"] = send("POST", ORDER_SIGN, fresh(ORDER_SIGN),
                                     with_token(partial, "https://elsewhere.example/fhir"))
    statuses["bad signature"] = send("POST", ORDER_SIGN,
                                     secrets.jwt(auth.token(OTHER, ORDER_SIGN, base=base)),
                                     with_token(partial, f"{ehr}/fhir"))
    statuses["expired"] = send("POST", ORDER_SIGN, fresh(ORDER_SIGN, now=auth.NOW - 4000),
                               with_token(partial, f"{ehr}/fhir"))
    statuses["unknown issuer"] = send("POST", ORDER_SIGN,
                                      fresh(ORDER_SIGN, iss="https://evil.example"), partial)
    statuses["alg none"] = send("POST", ORDER_SIGN, secrets.jwt(auth.hand_made(
        {"alg": "none", "typ": "JWT", "kid": KEY.kid}, auth.claims(f"{base}{ORDER_SIGN}"))),
        partial)
    statuses["alg/key mismatch"] = send(  # the 500 path: its log must be clean too
        "POST", ORDER_SIGN,
        secrets.jwt(auth.sign(RSA.with_kid(KEY.kid), auth.claims(f"{base}{ORDER_SIGN}"))),
        partial)
    statuses["garbage token"] = send("POST", ORDER_SIGN, secrets.jwt("cramps-001.Hartley.x"),
                                     partial)
    statuses["invalid JSON"] = send("POST", ORDER_SIGN, fresh(ORDER_SIGN),
                                    '{"context": {"patientId": "cramps-001", ')
    statuses["wrong hook"] = send("POST", PATIENT_VIEW, fresh(PATIENT_VIEW),
                                  with_token(partial, f"{ehr}/fhir"))
    no_instance = with_token(partial, f"{ehr}/fhir")
    del no_instance["hookInstance"]
    statuses["schema-invalid"] = send("POST", ORDER_SIGN, fresh(ORDER_SIGN), no_instance)
    return statuses


EXPECTED = {
    "discovery": 200, "fetching prefetch": 200, "replay": 401, "no prefetch at all": 200,
    "medication read": 200, "FHIR 500": 412, "FHIR redirect": 412, "off allowlist": 412,
    "bad signature": 401, "expired": 401, "unknown issuer": 401, "alg none": 401,
    "garbage token": 401, "invalid JSON": 400, "wrong hook": 400, "schema-invalid": 400,
}


def assert_expected(statuses: dict[str, int]) -> None:
    """The run went where intended (the alg/key mismatch is a known 401-vs-500 bug, see
    test_auth_jwt; either way its log is checked)."""
    mismatch = statuses.pop("alg/key mismatch")
    assert mismatch in (401, 500)
    assert statuses == EXPECTED


# --- in process: every log record ------------------------------------------------------------


def rendered(record: logging.LogRecord) -> str:
    """The record as the service's JSON formatter writes it (extras included), and as a plain
    formatter does (args and any exception text included)."""
    return f"{JsonFormatter().format(record)}\n{logging.Formatter().format(record)}"


@pytest.fixture
def captured_run(make_app: Callable[..., Any], tmp_path: Path, httpserver: HTTPServer,
                 caplog: pytest.LogCaptureFixture,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[logging.LogRecord],
                                                                    Secrets]]:
    monkeypatch.setattr(logging.getLogger("legcramp_cds"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="legcramp_cds")
    serve_ehr(httpserver)
    httpserver.expect_request("/jwks.json").respond_with_json(
        {"keys": [KEY.jwk(), RSA.jwk()]})
    ehr = httpserver.url_for("").rstrip("/")
    config = auth.auth_config(
        tmp_path,
        [auth.issuer(jwks_url=httpserver.url_for("/jwks.json"),
                     fhir_servers=[f"{ehr}/fhir", f"{ehr}/broken/fhir", f"{ehr}/moved/fhir"])],
        fhir={"allowed_servers": [], "allow_http_loopback": True},  # the EHR stub: http
    )
    client = make_app(config).test_client()
    secrets = Secrets()

    def send(method: str, path: str, jwt: str, body: Any = None) -> int:
        if isinstance(body, str):
            response = client.open(path, method=method, data=body, headers={
                **auth.bearer(jwt), "Content-Type": "application/json"})
        else:
            response = client.open(path, method=method, json=body, headers=auth.bearer(jwt))
        return response.status_code

    assert_expected(full_run(send, secrets, ehr, auth.BASE))
    yield list(caplog.records), secrets


def test_service_log_records_of_every_level_carry_no_secret(captured_run):
    records, secrets = captured_run
    ours = [r for r in records if r.name.startswith("legcramp_cds")]
    messages = {r.getMessage() for r in ours}
    assert {"authentication failed", "request",
            "fhirServer refused: not on the allowlist"} <= messages, messages
    leaks = {rendered(r): secrets.found_in(rendered(r)) for r in ours}
    assert {line: found for line, found in leaks.items() if found} == {}


def test_every_log_record_at_info_and_above_carries_no_secret(captured_run):
    records, secrets = captured_run
    audited = [r for r in records if r.levelno >= logging.INFO and r.name != FAKE_EHR_LOGGER]
    assert audited
    leaks = {rendered(r): secrets.found_in(rendered(r)) for r in audited}
    assert {line: found for line, found in leaks.items() if found} == {}


def test_every_log_record_of_every_level_carries_no_secret(captured_run):
    records, secrets = captured_run
    audited = [r for r in records if r.name != FAKE_EHR_LOGGER]
    leaks = {f"{r.name}: {rendered(r)}": secrets.found_in(rendered(r)) for r in audited}
    assert {line: found for line, found in leaks.items() if found} == {}


# --- a live server: its stderr ---------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path, httpserver: HTTPServer) -> Iterator[tuple[Served, str]]:
    serve_ehr(httpserver)
    ehr = httpserver.url_for("").rstrip("/")
    port = free_port()
    servers = json.dumps([f"{ehr}/fhir", f"{ehr}/broken/fhir", f"{ehr}/moved/fhir"])
    config = auth.live_config(
        tmp_path / "serve.toml",
        server="[server]\nworkers = 1\nthreads = 2\n\n[fhir]\nallowed_servers = []\n"
               "allow_http_loopback = true",
        public_base_url=f"http://127.0.0.1:{port}",
        jwks_path=auth.write_jwks(tmp_path / "jwks.json", KEY, RSA),
        store_url=f"sqlite:///{tmp_path / 'replay.sqlite3'}", issuer=f"fhir_servers = {servers}")
    with serve(config, port, tmp_path / "serve.log") as served:
        yield served, ehr


def test_live_server_stderr_carries_no_secret(live):
    served, ehr = live
    secrets = Secrets()

    def send(method: str, path: str, jwt: str, body: Any = None) -> int:
        data = body if isinstance(body, str) else json.dumps(body) if body is not None else None
        response = requests.request(method, f"{served.base}{path}", data=data, timeout=20,
                                    headers={**auth.bearer(jwt),
                                             "Content-Type": "application/json"})
        return response.status_code

    assert_expected(full_run(send, secrets, ehr, served.base))
    stop(served.process)  # flush and close its stderr before reading it
    output = served.output()
    assert '"message": "authentication failed"' in output, output[-2000:]
    assert '"message": "request"' in output and '"cards": ' in output, output[-2000:]
    leaking = [line for line in output.splitlines() if secrets.found_in(line)]
    assert leaking == []
