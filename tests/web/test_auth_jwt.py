"""The CDS client's JWT (CDS Hooks 2.0 §4 and the best-practices recipe), through the HTTP API.

Keys are generated per session (EC P-384 for ES384, RSA 2048 for RS384); the issuer's JWKS is
served by a loopback `httpserver`, so every fetch is visible in its log. The authenticator's
clock is pinned (`auth_clock`) where times matter; its monotonic clock (JWKS cache and refetch
interval) is stepped by replacing `time` in `cds_service.web.auth` only.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cds_service.config import StoreConfig
from cds_service.logs import JsonFormatter
from cds_service.web import auth as auth_module
from tests.conftest import assert_operation_outcome, assert_valid_response, load_request
from tests.support.auth import (
    BASE,
    DISCOVERY_PATH,
    FEEDBACK_BODY,
    FEEDBACK_PATH,
    ISS,
    NOW,
    SERVICE_PATH,
    SigningKey,
    auth_config,
    bearer,
    claims,
    ec_key,
    hand_made,
    issuer,
    jwks,
    rsa_key,
    sign,
    token,
    write_jwks,
)

JWKS_PATH = "/jwks.json"
ROTATED_PATH = "/rotated-jwks.json"  # on the issuer's jku allowlist
ATTACKER_PATH = "/attacker-jwks.json"  # not on any allowlist
EC = ec_key("ec-1")
RSA = rsa_key("rsa-1")
NEW_EC = ec_key("ec-2", slot=1)  # the key an EHR rotates to
OTHER_EC = ec_key("ec-1", slot=2)  # another key pair claiming EC's kid
REQUEST = "order-sign-quinine-malaria"  # full prefetch, no fhirServer: 200 with no FHIR calls


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _service_logs_reach_caplog(monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    """`configure_logging` (run by other tests' CLI calls) may have cut the service logger off
    from the root logger, where caplog listens."""
    monkeypatch.setattr(logging.getLogger("legcramp_cds"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="legcramp_cds")


class JwksServer:
    """The issuer's key endpoints on the loopback server; documents can change mid-test."""

    def __init__(self, server: HTTPServer):
        self.server = server
        self.documents: dict[str, Any] = {JWKS_PATH: jwks(EC, RSA)}
        for path in (JWKS_PATH, ROTATED_PATH, ATTACKER_PATH):
            server.expect_request(path).respond_with_handler(self._answer)

    def _answer(self, request: Request) -> Response:
        document = self.documents.get(request.path)
        if document is None:
            return Response("not found", status=404)
        if isinstance(document, Response):
            return document
        text = document if isinstance(document, str) else json.dumps(document)
        return Response(text, content_type="application/json")

    def url(self, path: str = JWKS_PATH) -> str:
        return self.server.url_for(path)

    def fetches(self, path: str = JWKS_PATH) -> int:
        return sum(1 for request, _ in self.server.log if request.path == path)


@pytest.fixture
def keys(httpserver: HTTPServer) -> JwksServer:
    return JwksServer(httpserver)


class SteppedMonotonic:
    """`time` as `cds_service.web.auth` sees it: the real clock, plus seconds the test adds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def time(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> SteppedMonotonic:
    stepped = SteppedMonotonic()
    monkeypatch.setattr(auth_module, "time", stepped)
    return stepped


@pytest.fixture
def client_for(make_app: Callable[..., Any], tmp_path: Path,
               keys: JwksServer) -> Callable[..., Any]:
    """A test client for auth with the given issuers (default: the JWKS URL of `keys`, with
    ROTATED_PATH on its jku allowlist), the authenticator's clock pinned at NOW."""

    def build(issuers: list[dict[str, Any]] | None = None, *,
              clock: Callable[[], float] = lambda: float(NOW), **auth: Any) -> Any:
        if issuers is None:
            issuers = [issuer(jwks_url=keys.url(), jku_allowlist=[keys.url(ROTATED_PATH)])]
        config = auth_config(tmp_path, issuers, **auth)
        return make_app(config, auth_clock=clock).test_client()

    return build


@pytest.fixture
def client(client_for: Callable[..., Any]) -> Any:
    return client_for()


def call(client: Any, jwt_or_headers: str | dict[str, str] | None = None,
         path: str = SERVICE_PATH, **kwargs: Any) -> Any:
    """POST the order-sign request (or GET discovery, or POST feedback) with a token."""
    headers = kwargs.pop("headers", {})
    if isinstance(jwt_or_headers, str):
        headers.update(bearer(jwt_or_headers))
    elif jwt_or_headers:
        headers.update(jwt_or_headers)
    if path == DISCOVERY_PATH:
        return client.get(path, headers=headers, **kwargs)
    body = FEEDBACK_BODY if path.endswith("/feedback") else load_request(REQUEST)
    return client.post(path, json=body, headers=headers, **kwargs)


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "authentication failed"]


def assert_refused(response: Any, caplog: pytest.LogCaptureFixture, check: str) -> None:
    """A generic 401 with WWW-Authenticate, and the log names the check that failed."""
    body = assert_operation_outcome(response, 401)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response.headers
    assert [issue["code"] for issue in body["issue"]] == ["login"]
    checks = [record.check for record in failures(caplog)]
    assert checks and check in checks[-1], checks


def assert_ok(response: Any) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)


# --- valid tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [EC, RSA], ids=["ES384", "RS384"])
def test_valid_token_is_accepted_on_discovery_service_call_and_feedback(client, key, caplog):
    discovery = call(client, token(key, DISCOVERY_PATH), DISCOVERY_PATH)
    assert_ok(discovery)
    assert {s["id"] for s in discovery.get_json()["services"]} >= {"legcramp-order-sign"}

    service = call(client, token(key, SERVICE_PATH))
    assert_ok(service)
    assert_valid_response(service.get_json())

    feedback = call(client, token(key, FEEDBACK_PATH), FEEDBACK_PATH)
    assert_ok(feedback)
    assert feedback.get_json()["received"] == 1
    assert failures(caplog) == []


def test_aud_as_an_array_containing_this_endpoint_is_accepted(client):
    aud = ["https://other.example/cds-services/x", f"{BASE}{SERVICE_PATH}"]
    assert_ok(call(client, sign(EC, claims(aud))))


def test_aud_alias_from_configuration_is_accepted(client_for, caplog):
    client = client_for(aud_aliases=["https://cds.example.org/legcramp"])
    assert_ok(call(client, token(EC, base="https://cds.example.org/legcramp")))
    refused = call(client, token(EC, base="https://cds.example.org/other"))
    assert_refused(refused, caplog, "aud")


def test_header_typ_is_compared_case_insensitively(client):
    assert_ok(call(client, sign(EC, claims(f"{BASE}{SERVICE_PATH}"), typ="jwt")))


def test_expired_token_within_the_leeway_is_accepted(client):
    assert_ok(call(client, token(EC, now=NOW - 329, lifetime=300)))  # expired 29 s ago


# --- no token, wrong kind of token -----------------------------------------------------------


@pytest.mark.parametrize("path", [DISCOVERY_PATH, SERVICE_PATH, FEEDBACK_PATH])
def test_missing_token_is_401_on_every_cds_endpoint(client, path, caplog):
    assert_refused(call(client, None, path), caplog, "no Authorization")


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ",
                                           "Token abc.def.ghi"])
def test_authorization_that_is_not_a_bearer_token_is_401(client, authorization, caplog):
    assert_refused(call(client, {"Authorization": authorization}), caplog, "Bearer")


def test_garbage_bearer_value_is_401(client, caplog):
    assert_refused(call(client, "not-a-jwt"), caplog, "malformed")


def test_unsigned_alg_none_token_is_401(client, caplog):
    forged = hand_made({"alg": "none", "typ": "JWT", "kid": EC.kid},
                       claims(f"{BASE}{SERVICE_PATH}"))
    assert forged.endswith(".")
    assert_refused(call(client, forged), caplog, "alg")


def test_hs256_signed_with_the_public_key_pem_is_401(client, caplog):
    """The classic confusion attack: the verifier's public key used as an HMAC secret."""
    forged = hand_made({"alg": "HS256", "typ": "JWT", "kid": EC.kid},
                       claims(f"{BASE}{SERVICE_PATH}"), secret=EC.public_pem())
    assert_refused(call(client, forged), caplog, "alg")


def test_algorithm_the_issuer_is_not_configured_for_is_401(client_for, keys, caplog):
    client = client_for([issuer(jwks_url=keys.url(), algorithms=["ES384"])])
    assert_ok(call(client, token(EC)))
    assert_refused(call(client, token(RSA)), caplog, "alg")


def test_token_signed_by_another_key_with_the_same_kid_is_401(client, caplog):
    assert_refused(call(client, token(OTHER_EC)), caplog, "signature")


def test_token_with_a_tampered_payload_is_401(client, caplog):
    header, _, signature = token(EC).split(".")
    _, payload, _ = token(EC, tenant="someone-else").split(".")
    assert_refused(call(client, f"{header}.{payload}.{signature}"), caplog, "signature")


def test_header_without_kid_is_401(client, caplog):
    assert_refused(call(client, sign(EC, claims(f"{BASE}{SERVICE_PATH}"), kid=None)),
                   caplog, "kid")


def test_key_embedded_in_the_header_is_not_trusted(client, caplog):
    attacker = ec_key("attacker", slot=3)
    forged = sign(attacker, claims(f"{BASE}{SERVICE_PATH}"), jwk=attacker.jwk())
    assert_refused(call(client, forged), caplog, "unknown kid")


@pytest.mark.parametrize(("signer", "kid_of"), [(RSA, EC), (EC, RSA)],
                         ids=["RS384-header-EC-kid", "ES384-header-RSA-kid"])
def test_alg_that_does_not_fit_the_kids_key_type_is_401(client, caplog, signer, kid_of):
    forged = sign(signer.with_kid(kid_of.kid), claims(f"{BASE}{SERVICE_PATH}"))
    assert_refused(call(client, forged), caplog, "")


# --- kid lookup, rotation, JWKS cache --------------------------------------------------------


def test_unknown_kid_is_401_and_rotation_is_picked_up_by_one_refetch(client, keys, monotonic,
                                                                     caplog):
    assert_ok(call(client, token(EC)))
    assert keys.fetches() == 1

    assert_refused(call(client, token(NEW_EC)), caplog, "unknown kid")
    assert keys.fetches() == 1  # fetched a moment ago: no refetch yet

    keys.documents[JWKS_PATH] = jwks(EC, NEW_EC)  # the EHR publishes its new key
    monotonic.advance(auth_module.REFETCH_AFTER_SECONDS + 1)
    assert_ok(call(client, token(NEW_EC)))
    assert keys.fetches() == 2  # exactly one refetch
    assert_ok(call(client, token(NEW_EC)))
    assert_ok(call(client, token(EC)))
    assert keys.fetches() == 2


def test_unknown_kids_do_not_make_the_service_hammer_the_jwks_url(client, keys, caplog):
    for _ in range(5):
        unknown = SigningKey(f"kid-{uuid.uuid4()}", "ES384", NEW_EC.private)
        assert_refused(call(client, token(unknown)), caplog, "unknown kid")
    assert keys.fetches() == 1


def test_jwks_is_cached_between_requests(client, keys):
    assert_ok(call(client, token(EC)))
    assert_ok(call(client, token(RSA)))
    assert_ok(call(client, token(EC, DISCOVERY_PATH), DISCOVERY_PATH))
    assert keys.fetches() == 1


def test_jwks_is_fetched_again_once_the_cache_expires(client_for, keys, monotonic):
    client = client_for(jwks_cache_seconds=60)
    assert_ok(call(client, token(EC)))
    monotonic.advance(30)
    assert_ok(call(client, token(EC)))
    assert keys.fetches() == 1
    monotonic.advance(31)
    assert_ok(call(client, token(EC)))
    assert keys.fetches() == 2


def test_jwks_larger_than_the_limit_is_refused(client, keys, caplog):
    padding = [{"kid": f"pad-{i}", "kty": "oct", "note": "x" * 100} for i in range(700)]
    keys.documents[JWKS_PATH] = {"keys": [EC.jwk(), *padding]}
    assert len(json.dumps(keys.documents[JWKS_PATH])) > 65536  # the default jwks_max_bytes
    assert_refused(call(client, token(EC)), caplog, "larger")


def test_small_jwks_limit_applies(client_for, keys, caplog):
    client = client_for(jwks_max_bytes=200)
    assert_refused(call(client, token(EC)), caplog, "larger")


def test_jwks_url_answering_a_redirect_is_refused_and_not_followed(client, keys, httpserver,
                                                                   caplog):
    keys.documents[JWKS_PATH] = Response(status=302, headers={"Location": keys.url(ROTATED_PATH)})
    keys.documents[ROTATED_PATH] = jwks(EC, RSA)
    assert_refused(call(client, token(EC)), caplog, "JWKS fetch answered 302")
    assert keys.fetches(ROTATED_PATH) == 0


def test_jwks_that_is_not_json_is_refused(client, keys, caplog):
    keys.documents[JWKS_PATH] = "<html>maintenance</html>"
    assert_refused(call(client, token(EC)), caplog, "not JSON")


def test_issuer_with_a_jwks_file_is_accepted(client_for, tmp_path, keys):
    path = write_jwks(tmp_path / "ehr-jwks.json", NEW_EC)
    client = client_for([issuer(jwks_file=str(path))])
    assert_ok(call(client, token(NEW_EC)))
    assert keys.fetches() == 0


# --- iss and jku -----------------------------------------------------------------------------


def test_unknown_issuer_is_401(client, caplog):
    assert_refused(call(client, token(EC, iss="https://evil.example")), caplog, "iss")


def test_token_without_iss_is_401(client, caplog):
    assert_refused(call(client, token(EC, drop=("iss",))), caplog, "iss")


def test_jku_not_on_the_allowlist_is_401_and_never_fetched(client, keys, caplog):
    attacker = ec_key("attacker", slot=3)
    keys.documents[ATTACKER_PATH] = jwks(attacker)  # would verify, if it were ever fetched
    forged = sign(attacker, claims(f"{BASE}{SERVICE_PATH}"), jku=keys.url(ATTACKER_PATH))
    assert_refused(call(client, forged), caplog, "jku")
    assert keys.fetches(ATTACKER_PATH) == 0
    assert keys.fetches(JWKS_PATH) == 0


def test_jku_on_the_allowlist_is_where_the_key_comes_from(client, keys):
    keys.documents[ROTATED_PATH] = jwks(NEW_EC)  # not in the issuer's jwks_url document
    signed = sign(NEW_EC, claims(f"{BASE}{SERVICE_PATH}"), jku=keys.url(ROTATED_PATH))
    assert_ok(call(client, signed))
    assert keys.fetches(ROTATED_PATH) == 1
    assert keys.fetches(JWKS_PATH) == 0


# --- aud -------------------------------------------------------------------------------------


@pytest.mark.parametrize("aud", [
    f"{BASE}{DISCOVERY_PATH}",  # minted for discovery, used on the service
    f"{BASE}{FEEDBACK_PATH}",
    f"{BASE}{SERVICE_PATH}/",
    f"https://cds.test{SERVICE_PATH}",
    f"http://cds.test:8080{SERVICE_PATH}",
    f"http://other.test{SERVICE_PATH}",
    BASE,
    [f"http://other.test{SERVICE_PATH}"],
], ids=["discovery", "feedback", "trailing-slash", "https", "port", "host", "base-only",
        "array-without-it"])
def test_aud_that_is_not_this_endpoints_url_is_401(client, aud, caplog):
    assert_refused(call(client, sign(EC, claims(aud))), caplog, "aud")


def test_aud_comes_from_configuration_not_from_the_host_header(client, caplog):
    spoofed = {"Host": "evil.example", "X-Forwarded-Host": "evil.example",
               "X-Forwarded-Proto": "https"}
    for_spoofed_host = token(EC, base="http://evil.example")
    assert_refused(call(client, for_spoofed_host, headers=dict(spoofed)), caplog, "aud")
    assert_ok(call(client, token(EC), headers=dict(spoofed)))


def test_token_without_aud_is_401(client, caplog):
    assert_refused(call(client, token(EC, drop=("aud",))), caplog, "aud")


# --- times -----------------------------------------------------------------------------------


def test_expired_token_is_401(client, caplog):
    assert_refused(call(client, token(EC, now=NOW - 331, lifetime=300)), caplog, "expired")


def test_token_not_yet_valid_by_nbf_is_401(client, caplog):
    assert_refused(call(client, token(EC, nbf=NOW + 60)), caplog, "not yet valid")


def test_token_issued_in_the_future_is_401(client, caplog):
    assert_refused(call(client, token(EC, now=NOW + 120)), caplog, "not yet valid")


def test_token_older_than_the_maximum_age_is_401_even_if_not_expired(client_for, caplog):
    client = client_for(max_token_age_seconds=600)
    old = token(EC, now=NOW - 700, lifetime=3600)  # exp is still 48 minutes away
    assert_refused(call(client, old), caplog, "maximum age")
    assert_ok(call(client, token(EC, now=NOW - 500, lifetime=3600)))


@pytest.mark.parametrize("claim", ["exp", "iat", "jti"])
def test_token_missing_a_required_claim_is_401(client, claim, caplog):
    assert_refused(call(client, token(EC, drop=(claim,))), caplog, f"missing claim {claim}")


def test_times_are_judged_by_the_injected_clock(client_for, caplog):
    later = client_for(clock=lambda: float(NOW + 3600))
    assert_refused(call(later, token(EC)), caplog, "expired")


# --- jti, typ, tenant ------------------------------------------------------------------------


def test_replayed_jti_is_401_on_second_use(client, caplog):
    signed = token(EC)
    assert_ok(call(client, signed))
    assert_refused(call(client, signed), caplog, "replay")


def test_same_jti_in_a_new_token_is_a_replay_even_on_another_endpoint(client, caplog):
    jti = str(uuid.uuid4())
    assert_ok(call(client, token(EC, jti=jti)))
    assert_refused(call(client, token(EC, DISCOVERY_PATH, jti=jti), DISCOVERY_PATH),
                   caplog, "replay")


def test_replay_cache_is_shared_by_apps_using_the_same_store(client_for, caplog):
    """Two app instances stand in for two workers: the jti is remembered in the database."""
    first, second = client_for(), client_for()
    signed = token(EC)
    assert_ok(call(first, signed))
    assert_refused(call(second, signed), caplog, "replay")


def test_refused_token_does_not_burn_its_jti(client, caplog):
    jti = str(uuid.uuid4())
    assert_refused(call(client, sign(EC, claims(f"{BASE}{DISCOVERY_PATH}", jti=jti))),
                   caplog, "aud")
    assert_ok(call(client, token(EC, jti=jti)))


@pytest.mark.parametrize("typ", ["at+jwt", "JWS", None], ids=["at+jwt", "JWS", "absent"])
def test_header_typ_other_than_jwt_is_401(client, typ, caplog):
    assert_refused(call(client, sign(EC, claims(f"{BASE}{SERVICE_PATH}"), typ=typ)),
                   caplog, "typ")


def test_tenant_allowlist(client_for, keys, caplog):
    client = client_for([issuer(jwks_url=keys.url(), tenants=["tenant-a"])])
    assert_ok(call(client, token(EC, tenant="tenant-a")))
    assert_refused(call(client, token(EC, tenant="tenant-b")), caplog, "tenant")
    assert_refused(call(client, token(EC)), caplog, "tenant")


# --- what a failure looks like ---------------------------------------------------------------


def test_every_401_is_the_same_generic_outcome_with_www_authenticate(client, keys):
    failing = {
        "no token": None,
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": "not-a-jwt",
        "alg none": hand_made({"alg": "none", "typ": "JWT", "kid": EC.kid},
                              claims(f"{BASE}{SERVICE_PATH}")),
        "bad signature": token(OTHER_EC),
        "unknown kid": token(NEW_EC),
        "unknown iss": token(EC, iss="https://evil.example"),
        "wrong aud": token(EC, DISCOVERY_PATH),
        "expired": token(EC, now=NOW - 1000),
        "no jti": token(EC, drop=("jti",)),
        "typ": sign(EC, claims(f"{BASE}{SERVICE_PATH}"), typ="at+jwt"),
    }
    bodies = {}
    for name, credentials in failing.items():
        response = call(client, credentials)
        assert_operation_outcome(response, 401)
        assert response.headers.get("WWW-Authenticate") == 'Bearer realm="cds-services"', name
        bodies[name] = response.get_data(as_text=True)
    assert len(set(bodies.values())) == 1, bodies
    body = json.loads(next(iter(bodies.values())))
    said = " ".join(issue.get("diagnostics", "") for issue in body["issue"]).lower()
    for word in ("kid", "aud", "signature", "expired", "jti", "issuer", "alg", "typ", "jwks",
                 "bearer", "replay"):
        assert word not in said, said


def test_failure_log_names_the_check_and_jti_but_no_part_of_the_token(client, caplog):
    jti = str(uuid.uuid4())
    forged = token(OTHER_EC, jti=jti)
    assert_refused(call(client, forged), caplog, "signature")
    record = failures(caplog)[-1]
    assert record.levelno == logging.WARNING
    assert (record.jti, record.iss, record.kid) == (jti, ISS, OTHER_EC.kid)
    assert record.path == SERVICE_PATH
    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records) + caplog.text
    for part in forged.split("."):
        assert part not in formatted
    assert forged[:40] not in formatted and forged[-40:] not in formatted


def test_preflight_needs_no_token(client):
    for path in (DISCOVERY_PATH, SERVICE_PATH, FEEDBACK_PATH):
        response = client.options(path, headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        })
        assert 200 <= response.status_code < 300, (path, response.status_code)
        assert "WWW-Authenticate" not in response.headers


def test_health_needs_no_token(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_unknown_service_with_no_token_is_401_not_404(client, caplog):
    """The list of services is not disclosed to a caller without a token."""
    response = client.post("/cds-services/no-such-service", json=load_request(REQUEST))
    assert_refused(response, caplog, "no Authorization")


# --- anonymous (embedded default) mode -------------------------------------------------------


@pytest.fixture
def anonymous(client_for: Callable[..., Any]) -> Any:
    return client_for(required=False)


def test_anonymous_mode_accepts_a_call_without_a_token(anonymous):
    assert_ok(call(anonymous, None))
    assert_ok(call(anonymous, None, DISCOVERY_PATH))


def test_anonymous_mode_ignores_a_token_from_an_unconfigured_issuer(anonymous, keys):
    stranger = ec_key("stranger", slot=3)
    assert_ok(call(anonymous, token(stranger, iss="https://elsewhere.example")))
    assert keys.fetches() == 0


def test_anonymous_mode_still_refuses_a_bad_token_from_a_configured_issuer(anonymous, caplog):
    assert_refused(call(anonymous, token(OTHER_EC)), caplog, "signature")
    assert_refused(call(anonymous, token(EC, now=NOW - 1000)), caplog, "expired")
    assert_ok(call(anonymous, token(EC)))


# --- the store -------------------------------------------------------------------------------


@pytest.fixture
def unusable_store_client(make_app: Callable[..., Any], tmp_path: Path, keys: JwksServer) -> Any:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    config = auth_config(tmp_path, [issuer(jwks_url=keys.url())])
    config = replace(config, store=StoreConfig(url=f"sqlite:///{blocker}/s.sqlite3"))
    return make_app(config, auth_clock=lambda: float(NOW)).test_client()


def test_valid_token_with_an_unusable_replay_cache_is_refused_not_500(unusable_store_client):
    response = call(unusable_store_client, token(EC))
    assert response.status_code in (401, 503), response.status_code


def test_valid_token_with_an_unusable_replay_cache_is_never_accepted(unusable_store_client):
    response = call(unusable_store_client, token(EC))
    assert response.status_code >= 400
    assert_operation_outcome(response, response.status_code)



# --- strict numbers; a store that cannot check tokens ------------------------------------------


@pytest.mark.parametrize(("claim", "value", "check"), [
    ("exp", str(NOW + 300), "exp is not a JSON number"),
    ("exp", True, "exp is not a JSON number"),
    ("exp", float("nan"), "exp is not a NumericDate"),
    ("exp", float("inf"), "exp is not a NumericDate"),
    ("exp", 1e20, "exp is not a NumericDate"),
    ("iat", float("nan"), "iat is not a NumericDate"),
    ("iat", -1, "iat is not a NumericDate"),
    ("nbf", "0", "nbf is not a JSON number"),
    ("nbf", float("-inf"), "nbf is not a NumericDate"),
], ids=["exp-string", "exp-bool", "exp-nan", "exp-inf", "exp-1e20", "iat-nan", "iat-negative",
        "nbf-string", "nbf-minus-inf"])
def test_times_that_are_not_finite_numeric_dates_are_refused_with_the_generic_401(
        client, caplog, claim, value, check):
    response = call(client, token(EC, **{claim: value}))
    assert_refused(response, caplog, check)


def test_a_valid_token_when_the_replay_cache_is_down_gets_503_with_retry_after(
        unusable_store_client, caplog):
    response = call(unusable_store_client, token(EC))
    assert_operation_outcome(response, 503)
    assert response.headers["Retry-After"] == "5"
    assert "authentication failed" not in [r.getMessage() for r in caplog.records]
    assert unusable_store_client.get("/ready").status_code == 503
