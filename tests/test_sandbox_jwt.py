"""The five captured sandbox tokens verified as the service verifies any token: ES384 with the
sandbox's key, typ/kid/jku, aud = the URL the sandbox called, a jti not seen before, all at a
fixed clock (the tokens are long expired).

The sandbox's published JWKS is data this repository may not hold; when ../shared provides it,
it is used. Otherwise the key is recovered from the signatures themselves
(tests/support/ecdsa_recovery: the one key that fits all five independent signatures is the
signer's)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import jwt
import pytest

from cds_service.config import AuthConfig
from cds_service.store.database import Store
from cds_service.web.auth import SANDBOX_ISSUER, Authenticator, AuthError
from tests.conftest import SHARED
from tests.support.ecdsa_recovery import jwk, recover

CAPTURED = SHARED / "data" / "sandbox-captured"
pytestmark = pytest.mark.skipif(not CAPTURED.exists(), reason="no captured sandbox requests")
JWKS_CANDIDATES = [SHARED / "reference" / "sandbox-jwks.json", CAPTURED / "jwks.json"]


def captured() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(CAPTURED.glob("*.json"))]


@pytest.fixture(scope="module")
def sandbox_jwks() -> dict:
    published = next((path for path in JWKS_CANDIDATES if path.exists()), None)
    if published is not None:
        return json.loads(published.read_text(encoding="utf-8"))
    tokens = [c["authorization"].removeprefix("Bearer ") for c in captured()]
    kid = jwt.get_unverified_header(tokens[0])["kid"]
    return {"keys": [jwk(recover(tokens), kid)]}


def authenticator_for(token: str, jwks: dict, tmp_path, at: float) -> tuple[Authenticator, str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    aud = urlsplit(claims["aud"])
    config = AuthConfig(required=True, public_base_url=f"{aud.scheme}://{aud.netloc}",
                        issuers=(SANDBOX_ISSUER,))
    authenticator = Authenticator(config, lambda: Store(f"sqlite:///{tmp_path}/s.sqlite3"),
                                  clock=lambda: at)
    authenticator.jwks._fetch = lambda url: jwks  # the jku, answered from the fixture
    return authenticator, aud.path


@pytest.mark.parametrize("index", range(5))
def test_captured_sandbox_token_verifies_at_its_own_time(index, sandbox_jwks, tmp_path):
    request = captured()[index]
    token = request["authorization"].removeprefix("Bearer ")
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("ES384", "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f")
    assert header["jku"] in SANDBOX_ISSUER.jku_allowlist
    iat = float(jwt.decode(token, options={"verify_signature": False})["iat"])
    authenticator, path = authenticator_for(token, sandbox_jwks, tmp_path, iat + 5)
    principal = authenticator.authenticate(request["authorization"], path)
    assert principal.iss == "https://sandbox.cds-hooks.org"
    with pytest.raises(AuthError, match="replay"):
        authenticator.authenticate(request["authorization"], path)


def test_captured_token_is_refused_today_and_when_tampered(sandbox_jwks, tmp_path):
    request = captured()[0]
    token = request["authorization"].removeprefix("Bearer ")
    iat = float(jwt.decode(token, options={"verify_signature": False})["iat"])
    expired, path = authenticator_for(token, sandbox_jwks, tmp_path, iat + 3600 * 24)
    with pytest.raises(AuthError, match="expired"):
        expired.authenticate(request["authorization"], path)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}"
    tampered += f".{signature}"
    checker, path = authenticator_for(token, sandbox_jwks, tmp_path / "t", iat + 5)
    with pytest.raises(AuthError):
        checker.authenticate(f"Bearer {tampered}", path)
