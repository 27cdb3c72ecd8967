"""Where a request's fhirAuthorization token may go: `fhirServer` must use https (or http to
loopback when `fhir.allow_http_loopback`) and be on `fhir.allowed_servers` or the verified
issuer's `fhir_servers`. A server that fails either check is never called: the service answers
from prefetch, or 412 naming the keys it could not get. All FHIR calls of one request share
`fhir.request_budget_seconds`.

The FHIR server is a loopback `httpserver` (127.0.0.1) whose log shows every request it got;
JWKS come from a file, so that log holds FHIR requests only.
"""

from __future__ import annotations

import logging
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cds_service.pipeline.fhir_client import FhirSessionPool, server_allowed, transport_allowed
from tests.conftest import assert_operation_outcome, load_request
from tests.support.auth import (
    ISS,
    auth_config,
    bearer,
    ec_key,
    issuer,
    token,
    write_jwks,
)
from tests.support.fhir_server import FHIR_JSON, declared_prefetch, searchset
from tests.test_metrics import moved, scrape

KEY = ec_key("fhir-1", slot=5)
ACCESS_TOKEN = "example-access-token-not-real"  # the fixtures' fhirAuthorization.access_token
PATIENT_ID = "cramps-001"
ORDER_SIGN = "legcramp-order-sign"
PATIENT_VIEW = "legcramp-patient-view"
PARTIAL = "order-sign-quinine-partial-prefetch"  # only `patient` is supplied
FULL = "patient-view-full-prefetch"  # every key supplied
MISSING = sorted(set(declared_prefetch(ORDER_SIGN)) - {"patient"})
ELSEWHERE = "https://ehr.example/fhir"  # what fhir.allowed_servers holds instead of the listener


# --- fixtures and helpers --------------------------------------------------------------------


def answer_searches(server: HTTPServer) -> None:
    """Every FHIR search under /fhir answers an empty searchset."""
    server.expect_request(re.compile(r"^/fhir/.*")).respond_with_json(
        searchset([]), content_type=FHIR_JSON)


@pytest.fixture
def fhir(httpserver_ipv4: HTTPServer) -> HTTPServer:
    answer_searches(httpserver_ipv4)
    return httpserver_ipv4


def base_of(server: HTTPServer) -> str:
    return server.url_for("/fhir")


class RecordingPool(FhirSessionPool):
    """The real session pool, noting every server the engine decided to connect to."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.connected: list[str] = []

    def connect(self, base_url: str, *args: Any, **kwargs: Any) -> Any:
        self.connected.append(base_url)
        return super().connect(base_url, *args, **kwargs)


@pytest.fixture
def client_for(make_app: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    """A client whose one issuer (ISS) may send tokens to `fhir_servers`, with `fhir` settings
    over the defaults (allowed_servers is ELSEWHERE unless given)."""
    jwks_file = write_jwks(tmp_path / "jwks.json", KEY)

    def build(fhir_servers: tuple[str, ...] | list[str] = (), required: bool = True,
              issuers: list[dict[str, Any]] | None = None, **fhir: Any) -> Any:
        fhir.setdefault("allowed_servers", [ELSEWHERE])
        fhir.setdefault("allow_http_loopback", True)  # the test servers listen on loopback
        if issuers is None:
            issuers = [issuer(jwks_file=str(jwks_file), fhir_servers=list(fhir_servers))]
        config = auth_config(tmp_path, issuers, required=required, fhir=fhir)
        pool = RecordingPool(config.fhir)
        client = make_app(config, sessions=pool).test_client()
        client.pool = pool
        return client

    return build


def post(client: Any, service: str, request: dict[str, Any], *, iss: str = ISS,
         authenticated: bool = True) -> Any:
    path = f"/cds-services/{service}"
    headers = bearer(token(KEY, path, iss=iss)) if authenticated else {}
    return client.post(path, json=request, headers=headers)


UNOBTAINABLE: list[dict[str, Any]] = []  # what the prefetch log said, per 412


class _PrefetchLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        UNOBTAINABLE.append(getattr(record, "unobtainable", {}))


@pytest.fixture(autouse=True)
def prefetch_log() -> Iterator[None]:
    handler, logger = _PrefetchLog(), logging.getLogger("legcramp_cds.prefetch")
    UNOBTAINABLE.clear()
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)


def assert_412_naming(response: Any, keys: list[str], *, saying: str = "") -> dict[str, Any]:
    """412 naming exactly `keys`; why (`saying`) is in the log, never in the answer: the
    caller learns which key, not what listens where."""
    body = assert_operation_outcome(response, 412)
    named = sorted(e for issue in body["issue"] for e in issue.get("expression", []))
    assert named == sorted(f"prefetch.{key}" for key in keys), body
    text = response.get_data(as_text=True)
    assert ACCESS_TOKEN not in text and PATIENT_ID not in text
    if saying:
        assert saying not in text, body
        logged = UNOBTAINABLE[-1]
        assert sorted(logged) == sorted(keys)
        assert all(saying in entry["reason"] for entry in logged.values()), logged
    return body


def assert_never_called(server: HTTPServer) -> None:
    assert server.log == [], [request.url for request, _ in server.log]


def tokens_received(server: HTTPServer) -> set[str]:
    return {request.headers.get("Authorization", "") for request, _ in server.log}


@pytest.fixture
def own_server() -> Iterator[Callable[..., HTTPServer]]:
    """Start a dedicated loopback server (not the session one, so that requests it is still
    holding at the end cannot show up in another test's log)."""
    started: list[HTTPServer] = []

    def start(host: str = "127.0.0.1", threaded: bool = False) -> HTTPServer:
        server = HTTPServer(host=host, port=0, threaded=threaded)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.clear()
        server.stop()


# --- off the allowlist: never called ---------------------------------------------------------


def test_off_allowlist_server_is_not_called_when_prefetch_is_complete(client_for, fhir):
    client = client_for()
    response = post(client, PATIENT_VIEW, load_request(FULL, fhirServer=base_of(fhir)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_never_called(fhir)
    assert client.pool.connected == []


def test_off_allowlist_server_is_not_called_and_missing_keys_are_412(client_for, fhir):
    client = client_for()
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)))
    assert_412_naming(response, MISSING, saying="allowlist")
    assert_never_called(fhir)
    assert client.pool.connected == []


def test_issuers_fhir_servers_let_its_tokens_fetch(client_for, fhir):
    client = client_for(fhir_servers=[base_of(fhir)])
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)))
    assert response.status_code == 200, response.get_data(as_text=True)
    paths = sorted(request.path for request, _ in fhir.log)
    assert len(paths) == len(MISSING), paths
    assert all(path.startswith("/fhir/") for path in paths), paths
    assert tokens_received(fhir) == {f"Bearer {ACCESS_TOKEN}"}


def test_issuers_fhir_servers_accept_an_any_port_pattern(client_for, fhir):
    client = client_for(fhir_servers=["http://127.0.0.1:*"])
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(fhir.log) == len(MISSING)


def test_allowed_servers_let_any_verified_caller_fetch(client_for, fhir):
    client = client_for(allowed_servers=[base_of(fhir)])
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(fhir.log) == len(MISSING)


def test_another_issuers_fhir_servers_do_not_apply(client_for, fhir, tmp_path):
    jwks_file = str(write_jwks(tmp_path / "both.json", KEY))
    client = client_for(issuers=[
        issuer(jwks_file=jwks_file),  # the caller: no fhir_servers of its own
        issuer(iss="https://other-ehr.test", jwks_file=jwks_file, fhir_servers=[base_of(fhir)]),
    ])
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)))
    assert_412_naming(response, MISSING, saying="allowlist")
    assert_never_called(fhir)
    assert post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)),
                iss="https://other-ehr.test").status_code == 200


def test_anonymous_caller_gets_no_issuers_fhir_servers(client_for, fhir):
    # the development list (loopback, anonymous mode only) switched off, so that only the
    # issuer's own list could have let the call through
    client = client_for(fhir_servers=[base_of(fhir)], required=False, development_servers=[])
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)),
                    authenticated=False)
    assert_412_naming(response, MISSING, saying="allowlist")
    assert_never_called(fhir)


def test_off_allowlist_base_path_on_an_allowed_host_is_not_called(client_for, fhir):
    client = client_for(fhir_servers=[fhir.url_for("/fhir/tenant-a")])
    response = post(client, ORDER_SIGN,
                    load_request(PARTIAL, fhirServer=fhir.url_for("/fhir/tenant-b")))
    assert_412_naming(response, MISSING, saying="allowlist")
    assert_never_called(fhir)


# --- transport -------------------------------------------------------------------------------


def test_plain_http_to_a_non_loopback_host_is_refused_even_if_allowlisted(client_for):
    client = client_for(allowed_servers=["http://ehr.example/fhir"],
                        fhir_servers=["http://ehr.example/fhir"])
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer="http://ehr.example/fhir"))
    assert_412_naming(response, MISSING, saying="https")
    assert client.pool.connected == []


def test_http_to_loopback_is_refused_when_allow_http_loopback_is_false(client_for, fhir):
    client = client_for(allowed_servers=["http://127.0.0.1:*"], allow_http_loopback=False)
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)))
    assert_412_naming(response, MISSING, saying="https")
    assert_never_called(fhir)
    assert client.pool.connected == []


def test_backslash_in_the_authority_does_not_smuggle_the_token_to_another_host(
        client_for, own_server):
    attacker = own_server("127.0.0.2")
    answer_searches(attacker)
    port = attacker.port
    smuggling = f"http://127.0.0.2:{port}\\@127.0.0.1:{port}/fhir"
    client = client_for(allowed_servers=["http://127.0.0.1:*"])
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=smuggling))
    assert f"Bearer {ACCESS_TOKEN}" not in tokens_received(attacker)
    assert_never_called(attacker)
    assert response.status_code in (400, 412)


def test_encoded_dot_segments_do_not_escape_the_allowlisted_base_path(client_for, fhir):
    client = client_for(fhir_servers=[fhir.url_for("/fhir/tenant-a")])
    escaping = fhir.url_for("/fhir/tenant-a/%2e%2e/tenant-b")
    post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=escaping))
    reached = [posixpath.normpath(request.path) for request, _ in fhir.log]
    assert [path for path in reached if not path.startswith("/fhir/tenant-a/")] == [], reached


# --- the per-request time budget -------------------------------------------------------------


def test_fhir_calls_past_the_request_budget_give_412(client_for, own_server):
    slow = own_server(threaded=True)
    release = threading.Event()

    def sleepy(_: Request) -> Response:
        release.wait(2)  # "sleeps" 2 s, unless the test is over sooner
        return Response('{"resourceType": "Bundle", "type": "searchset"}',
                        content_type=FHIR_JSON)

    slow.expect_request(re.compile(r"^/fhir/.*")).respond_with_handler(sleepy)
    client = client_for(allowed_servers=[base_of(slow)], request_budget_seconds=0.5)
    started = time.monotonic()
    try:
        response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(slow)))
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert_412_naming(response, MISSING)
    assert elapsed < 5, elapsed  # only guards against a hang; the budget is 0.5 s


# --- server_allowed and transport_allowed ----------------------------------------------------

ANY_LOOPBACK_PORT = ["http://127.0.0.1:*"]
EHR = ["https://ehr.example/fhir"]
ANY_PATH = ["https://x/*"]


@pytest.mark.parametrize(("url", "allowlist"), [
    ("http://127.0.0.1:8080/fhir", ANY_LOOPBACK_PORT),
    ("http://127.0.0.1:59999", ANY_LOOPBACK_PORT),
    ("http://127.0.0.1/fhir", ANY_LOOPBACK_PORT),
    ("https://ehr.example/fhir", EHR),
    ("https://ehr.example/fhir/", EHR),
    ("https://ehr.example/fhir/r4", EHR),
    ("https://EHR.Example/fhir", EHR),
    ("https://ehr.example/fhir/./r4", EHR),
    ("https://ehr.example/fhir/r4/../r5", EHR),
    ("https://x/anything/below", ANY_PATH),
    ("https://x", ANY_PATH),
    ("https://ehr.example/fhir", ["https://ehr.example/fhir/*"]),
    ("https://ehr.example:8443/fhir/r4", ["https://ehr.example:8443/fhir"]),
    ("https://ehr.example/fhir", ["https://other.example/fhir", *EHR]),
])
def test_server_allowed_accepts(url, allowlist):
    assert server_allowed(url, allowlist) is True


@pytest.mark.parametrize(("url", "allowlist"), [
    ("https://127.0.0.1:8080/fhir", ANY_LOOPBACK_PORT),  # scheme
    ("http://127.0.0.2:8080/fhir", ANY_LOOPBACK_PORT),
    ("http://localhost:8080/fhir", ANY_LOOPBACK_PORT),
    ("http://127.0.0.1.evil.example:8080/", ANY_LOOPBACK_PORT),
    ("http://127.0.0.1@evil.example/", ANY_LOOPBACK_PORT),
    ("http://ehr.example/fhir", EHR),  # scheme
    ("https://ehr.example:8443/fhir", EHR),  # port
    ("https://ehr.example/fhir", ["https://ehr.example:8443/fhir"]),
    ("https://ehr.example/fhirx", EHR),
    ("https://ehr.example/fhir-admin/x", EHR),
    ("https://ehr.example/", EHR),
    ("https://ehr.example", EHR),
    ("https://ehr.example/admin", EHR),
    ("https://ehr.example/fhir/../admin", EHR),
    ("https://ehr.example/fhir/r4/../../admin", EHR),
    ("https://ehr.example/fhir/..", EHR),
    ("https://ehr.example/fhir/./../admin", EHR),
    ("https://ehr.example/fhir/r4/../../../../admin", EHR),
    ("https://ehr.example.evil/fhir", EHR),
    ("https://evil.example/ehr.example/fhir", EHR),
    ("https://ehr.example@evil.example/fhir", EHR),
    ("https://evil.example/fhir", EHR),
    ("http://x/y", ANY_PATH),
    ("https://x:444/y", ANY_PATH),
    ("https://xx/y", ANY_PATH),
    ("https://ehr.example/fhir", []),
    ("https://ehr.example:99999/fhir", EHR),
    ("http://[::1/fhir", ANY_LOOPBACK_PORT),
    ("https://ehr.example/fhir/%2e%2e/admin", EHR),
    ("https://ehr.example/fhir/.%2E/admin", EHR),
    ("https://evil.example\\@ehr.example/fhir", EHR),
], ids=lambda value: value if isinstance(value, str) else None)
def test_server_allowed_refuses(url, allowlist):
    assert server_allowed(url, allowlist) is False


@pytest.mark.parametrize(("url", "loopback_ok", "expected"), [
    ("https://ehr.example/fhir", False, True),
    ("https://127.0.0.1:8443/fhir", False, True),
    ("http://127.0.0.1:8080/fhir", True, True),
    ("http://127.0.0.1:8080/fhir", False, False),
    ("http://localhost:8080/fhir", True, True),
    ("http://[::1]:8080/fhir", True, True),
    ("http://ehr.example/fhir", True, False),
    ("http://10.0.0.5/fhir", True, False),
    ("http://127.0.0.1.evil.example/fhir", True, False),
    ("http://localhost.evil.example/fhir", True, False),
    ("ftp://127.0.0.1/fhir", True, False),
    ("http://evil.example\\@127.0.0.1/fhir", True, False),
])
def test_transport_allowed(url, loopback_ok, expected):
    assert transport_allowed(url, loopback_ok) is expected


# --- deny by default ---------------------------------------------------------------------------


def test_with_auth_required_the_development_list_and_http_loopback_do_not_apply(make_app,
                                                                                tmp_path, fhir):
    """The embedded development list (loopback on any port, plain http) is for anonymous mode
    only: a validly signed call naming a loopback port is refused, and the token never leaves."""
    jwks_file = write_jwks(tmp_path / "jwks.json", KEY)
    config = auth_config(tmp_path, [issuer(jwks_file=str(jwks_file))], required=True)
    assert config.fhir.development_servers and config.fhir.development_http_loopback
    client = make_app(config).test_client()
    request = load_request(PARTIAL, fhirServer=base_of(fhir) + "/admin/reset?x#")
    response = post(client, ORDER_SIGN, request)
    assert_412_naming(response, MISSING, saying="https")
    assert_never_called(fhir)
    assert "admin" not in response.get_data(as_text=True)


def test_in_anonymous_mode_the_development_list_applies(make_app, fhir):
    client = make_app().test_client()
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)),
                    authenticated=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert fhir.log


def test_the_412_says_which_key_never_why(client_for, fhir):
    client = client_for()
    before = scrape(client)
    response = post(client, ORDER_SIGN, load_request(PARTIAL, fhirServer=base_of(fhir)))
    body = assert_412_naming(response, MISSING, saying="allowlist")
    assert moved(before, scrape(client), "legcramp_cds_prefetch_unavailable_total",
                 reason="refused") == len(MISSING)
    for issue in body["issue"]:
        assert issue["diagnostics"].endswith("was not supplied and could not be obtained")
