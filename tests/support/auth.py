"""Shared helpers for the authentication tests: keys, JWKS documents, signed (and forged) JWTs,
configurations with trusted issuers, and a real `legcramp-cds serve` process.

Keys are generated at test time with `cryptography` (EC P-384 for ES384, RSA 2048 for RS384) and
never written anywhere but a test's tmp_path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.config import Config, load_config
from tests.support.live_server import Served, console_script, free_port, serve, stop  # noqa: F401

ISS = "https://ehr.test/issuer"
BASE = "http://cds.test"
ORDER_SIGN = "legcramp-order-sign"
SERVICE_PATH = f"/cds-services/{ORDER_SIGN}"
DISCOVERY_PATH = "/cds-services"
FEEDBACK_PATH = f"{SERVICE_PATH}/feedback"
# A fixed "now" for the authenticator's clock: the real time at import, so that the replay
# cache (which keeps a jti until exp + leeway by the wall clock) sees tokens as live.
NOW = int(time.time())
FEEDBACK_BODY = {
    "feedback": [
        {
            "card": "e53f7539-b95c-5a00-a681-c473f775e2d8",
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-21T10:06:00Z",
        }
    ]
}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def jwk(self) -> dict[str, Any]:
        """The public JWK, with kid, alg and use, as an EHR publishes it."""
        to_jwk = ECAlgorithm.to_jwk if self.alg.startswith("ES") else RSAAlgorithm.to_jwk
        entry = dict(to_jwk(self.public, as_dict=True))
        entry.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return entry

    def public_pem(self) -> bytes:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def with_kid(self, kid: str) -> SigningKey:
        return SigningKey(kid, self.alg, self.private)


@cache
def _ec_private(slot: int) -> Any:
    return ec.generate_private_key(ec.SECP384R1())


@cache
def _rsa_private(slot: int) -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key(kid: str = "ec-1", slot: int = 0) -> SigningKey:
    """An ES384 key; the same `slot` gives the same key pair (generated once per session)."""
    return SigningKey(kid, "ES384", _ec_private(slot))


def rsa_key(kid: str = "rsa-1", slot: int = 0) -> SigningKey:
    return SigningKey(kid, "RS384", _rsa_private(slot))


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def claims(aud: Any, *, iss: str = ISS, now: int = NOW, lifetime: int = 300,
           drop: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": iss, "aud": aud, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4()),
    }
    payload.update(extra)
    for name in drop:
        payload.pop(name, None)
    return payload


def sign(key: SigningKey, payload: Mapping[str, Any], **header: Any) -> str:
    """A JWT signed with `key`; header typ JWT and the key's kid unless overridden (None drops
    a header parameter)."""
    headers: dict[str, Any] = {"typ": "JWT", "kid": key.kid}
    headers.update(header)
    headers = {name: value for name, value in headers.items() if value is not None}
    headers.setdefault("typ", "")  # PyJWT adds typ JWT unless told to leave it out
    return jwt.encode(dict(payload), key.private, algorithm=key.alg, headers=headers)


def token(key: SigningKey, path: str = SERVICE_PATH, *, base: str = BASE, **options: Any) -> str:
    """A valid token for calling `path` on `base`, with `options` passed to `claims`."""
    return sign(key, claims(f"{base}{path}", **options))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hand_made(header: Mapping[str, Any], payload: Mapping[str, Any],
              secret: bytes | None = None, signature: bytes = b"") -> str:
    """A JWT assembled by hand: unsigned (alg none) or HMAC-SHA256 with `secret` (which PyJWT
    rightly refuses to do with a PEM key, hence by hand)."""
    signing_input = (
        f"{_b64(json.dumps(dict(header)).encode())}.{_b64(json.dumps(dict(payload)).encode())}"
    )
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def issuer(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"iss": ISS, "algorithms": ["ES384", "RS384"]}
    entry.update(fields)
    return entry


def auth_config(tmp_path: Path, issuers: list[dict[str, Any]], *, required: bool = True,
                fhir: Mapping[str, Any] | None = None, **auth: Any) -> Config:
    """The embedded defaults with auth on (unless `required=False`), `issuers` trusted, the
    public base URL http://cds.test and a replay cache in tmp_path."""
    section: dict[str, Any] = {"required": required, "public_base_url": BASE, "issuers": issuers}
    section.update(auth)
    overrides: dict[str, Any] = {
        "auth": section,
        "store": {"url": f"sqlite:///{tmp_path}/s.sqlite3"},
    }
    if fhir:
        overrides["fhir"] = dict(fhir)
    return load_config(None, overrides=overrides)


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps(jwks(*keys)), encoding="utf-8")
    return path


# --- a real `legcramp-cds serve`: see tests/support/live_server.py -------------------------


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def live_config(path: Path, *, server: str, public_base_url: str, jwks_path: Path,
                store_url: str, issuer: str = "", store: str = "") -> Path:
    """A `legcramp-cds serve` configuration written to `path`: the `server` TOML (its [server]
    table and any other first), evaluation as of 2026-11-21, a JWT required from ISS signed by a
    key in `jwks_path` (`issuer`: more lines for that issuer), and the store at `store_url`
    (`store`: more lines for it)."""
    path.write_text(f"""{server}

[evaluation]
as_of = "2026-11-21"

[auth]
required = true
public_base_url = {toml_string(public_base_url)}

[[auth.issuers]]
iss = {toml_string(ISS)}
jwks_file = {toml_string(str(jwks_path))}
{issuer}

[store]
url = {toml_string(store_url)}
{store}
""", encoding="utf-8")
    return path
