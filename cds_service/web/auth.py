"""Authentication of the CDS client: the CDS Hooks 2.0 JWT, checked as the best practices ask.

Header `typ`/`alg`/`kid`; only asymmetric algorithms the issuer is configured for; the key found
by `kid` in the issuer's JWKS (configured URL or file, or a `jku` on the issuer's allowlist),
cached with a TTL and refetched once for an unknown `kid`; `exp`/`nbf`/`iat` with a small
leeway and a maximum age; `aud` equal to the URL of the endpoint called, computed from the
configured public base URL (never from request headers); a `jti` never seen before, in the
database shared by all workers. Every failure is one generic 401; the log names the check that
failed with `iss`, `kid` and `jti`, never the token.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import requests
from sqlalchemy.exc import SQLAlchemyError

from cds_service import metrics
from cds_service.config import ALLOWED_ALGORITHMS, AuthConfig, IssuerConfig
from cds_service.errors import AuthError, Issue, StoreError, Unavailable
from cds_service.pipeline.request import ANONYMOUS, Principal
from cds_service.store.database import Store

log = logging.getLogger("legcramp_cds.auth")

SANDBOX_ISSUER = IssuerConfig(
    iss="https://sandbox.cds-hooks.org",
    jku_allowlist=("https://sandbox.cds-hooks.org/.well-known/jwks.json",),
    algorithms=("ES384",),
    fhir_servers=("https://launch.smarthealthit.org/*",),
)
REFETCH_AFTER_SECONDS = 10.0  # an unknown kid triggers at most one refetch per this interval


# The embedded public_base_url, and the one other spelling of it a developer's EHR may use.
DEVELOPMENT_BASE = "http://127.0.0.1:8080"
DEVELOPMENT_ALIASES = ("http://localhost:8080",)


def development_aliases(config: AuthConfig) -> tuple[str, ...]:
    """`aud` spellings accepted while public_base_url is still the embedded development one;
    none once the operator sets it (only public_base_url and their own aud_aliases then)."""
    return DEVELOPMENT_ALIASES if config.public_base_url.rstrip("/") == DEVELOPMENT_BASE else ()


# RFC 7519 NumericDate: a JSON number of seconds since the epoch. Anything past the year 9999 is
# not a date a token means, and would overflow the datetime arithmetic below.
MAX_NUMERIC_DATE = 253402300799.0


def _numeric_date(claims: Mapping[str, Any], name: str,
                  fail: Callable[[str, str], AuthError]) -> float:
    """`claims[name]` as a finite NumericDate in range; a string, a boolean, NaN, Infinity or
    1e20 is refused (401), never coerced and never a 500."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"{name} is not a JSON number", "invalid")
    if not math.isfinite(value) or not 0 <= value <= MAX_NUMERIC_DATE:
        raise fail(f"{name} is not a NumericDate in range", "invalid")
    return float(value)


class JwksCache:
    """JWKS per source (URL or file), kept for `jwks_cache_seconds`."""

    def __init__(self, config: AuthConfig):
        self._config = config
        self._entries: dict[str, tuple[float, dict[str, jwt.PyJWK]]] = {}
        self._fetched_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False

    def key(self, source: str, kid: str, is_file: bool) -> jwt.PyJWK | None:
        keys = self._keys(source, is_file, force=False)
        if kid not in keys:
            with self._lock:
                recently = time.monotonic() - self._fetched_at.get(source, 0.0)
            if recently > REFETCH_AFTER_SECONDS:
                keys = self._keys(source, is_file, force=True)  # key rotation
        return keys.get(kid)

    def _keys(self, source: str, is_file: bool, force: bool) -> dict[str, jwt.PyJWK]:
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(source)
            if cached and not force and cached[0] > now:
                return cached[1]
        document = self._read_file(source) if is_file else self._fetch(source)
        keys = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                continue  # a key we cannot use (e.g. symmetric) is simply not offered
        with self._lock:
            self._entries[source] = (now + self._config.jwks_cache_seconds, keys)
            self._fetched_at[source] = now
        return keys

    def _read_file(self, path: str) -> Any:
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AuthError(f"JWKS file unreadable ({type(exc).__name__})", code="jwks") from exc

    def _fetch(self, url: str) -> Any:
        limit = self._config.jwks_max_bytes
        try:
            with self._session.get(url, timeout=self._config.jwks_timeout_seconds,
                                   allow_redirects=False, stream=True,
                                   headers={"Accept": "application/json"}) as response:
                if response.status_code != 200:
                    raise AuthError(f"JWKS fetch answered {response.status_code}", code="jwks")
                body = b""
                for chunk in response.iter_content(8192):
                    body += chunk
                    if len(body) > limit:
                        raise AuthError("JWKS larger than the configured limit", code="jwks")
        except requests.RequestException as exc:
            raise AuthError(f"JWKS fetch failed ({type(exc).__name__})", code="jwks") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise AuthError("JWKS is not JSON", code="jwks") from exc


class Authenticator:
    def __init__(
        self,
        config: AuthConfig,
        store_factory: Callable[[], Store],
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        issuers = list(config.issuers)
        if config.sandbox_issuer:
            issuers.append(SANDBOX_ISSUER)
        self.issuers = {issuer.iss: issuer for issuer in issuers}
        self.jwks = JwksCache(config)
        self._store_factory = store_factory
        self._store: Store | None = None
        self._clock = clock
        bases = (config.public_base_url, *config.aud_aliases, *development_aliases(config))
        self._bases = tuple(base.rstrip("/") for base in bases if base)

    def audiences(self, path: str) -> list[str]:
        return [f"{base}{path}" for base in self._bases]

    def store(self) -> Store:
        if self._store is None:
            try:
                self._store = self._store_factory()
            except (OSError, StoreError, SQLAlchemyError) as exc:
                raise StoreError(type(exc).__name__) from exc
        return self._store

    def authenticate(self, authorization: str | None, path: str) -> Principal:
        """The caller of `path`, or AuthError. Anonymous only when auth is not required and the
        token (if any) is not from a configured issuer."""
        if not authorization:
            if self.config.required:
                raise AuthError("no Authorization header", code="missing_token")
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Authorization is not a Bearer token", code="malformed")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed JWT ({type(exc).__name__})", code="malformed") from exc
        issuer = self.issuers.get(str(unverified.get("iss")))
        if issuer is None:
            if self.config.required:
                raise AuthError("iss is not a trusted issuer", unverified, header, code="iss")
            log.info("token from an unconfigured issuer ignored (anonymous mode)",
                     extra={"iss": unverified.get("iss"), "kid": header.get("kid")})
            return ANONYMOUS
        return self._verify(token, header, unverified, issuer, path)

    def _verify(self, token: str, header: dict[str, Any], unverified: dict[str, Any],
                issuer: IssuerConfig, path: str) -> Principal:
        def fail(reason: str, code: str) -> AuthError:
            return AuthError(reason, unverified, header, code)

        if str(header.get("typ", "")).upper() != "JWT":
            raise fail("header typ is not JWT", "typ")
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS or alg not in issuer.algorithms:
            raise fail(f"alg {alg!r} is not allowed for this issuer", "alg")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise fail("header has no kid", "kid")
        jku = header.get("jku")
        if jku is not None:
            if jku not in issuer.jku_allowlist:
                raise fail("jku is not on the issuer's allowlist", "jku")
            source, is_file = str(jku), False
        elif issuer.jwks_url:
            source, is_file = issuer.jwks_url, False
        elif issuer.jwks_file:
            source, is_file = issuer.jwks_file, True
        elif issuer.jku_allowlist:
            source, is_file = issuer.jku_allowlist[0], False
        else:
            raise fail("no JWKS for this issuer", "jwks")
        key = self.jwks.key(source, kid, is_file)
        if key is None:
            raise fail("unknown kid", "unknown_kid")
        try:
            # Times are checked below against the injected clock (replays evaluate "as of").
            claims = jwt.decode(
                token, key.key, algorithms=[alg], audience=self.audiences(path),
                issuer=issuer.iss,
                options={"require": ["iss", "aud", "exp", "iat", "jti"], "verify_exp": False,
                         "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError as exc:
            raise fail("aud is not this endpoint's URL", "aud") from exc
        except jwt.InvalidSignatureError as exc:
            raise fail("bad signature", "bad_signature") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise fail(f"missing claim {exc.claim}", "missing_claim") from exc
        except jwt.PyJWTError as exc:
            raise fail(f"invalid token ({type(exc).__name__})", "invalid") from exc
        except (TypeError, ValueError) as exc:  # e.g. an RS384 header naming an EC key
            raise fail("the key found by kid does not fit the alg", "alg") from exc
        self._check_times(claims, fail)
        tenant = claims.get("tenant")
        if issuer.tenants and tenant not in issuer.tenants:
            raise fail("tenant is not allowed", "tenant")
        expires = datetime.fromtimestamp(float(claims["exp"]) + self.config.leeway_seconds, UTC)
        try:
            fresh = self.store().remember_token(
                issuer.iss, str(claims["jti"]), expires,
                now=datetime.fromtimestamp(self._clock(), UTC))
        except StoreError as exc:
            # Fail closed, but say what it is: the token may be fine, the store is not. A 401
            # would tell a valid caller its token is bad; 503 tells it to come back.
            metrics.count_auth_failure("replay_cache")
            log.error("replay cache unavailable: token neither accepted nor refused",
                      extra={"iss": issuer.iss, "error": str(exc)})
            raise Unavailable([Issue("the service cannot check tokens right now; retry shortly",
                                     code="transient")], retry_after=5) from exc
        if not fresh:
            raise fail("jti already used (replay)", "replay")
        return Principal(iss=issuer.iss, fhir_servers=issuer.fhir_servers,
                         tenant=tenant if isinstance(tenant, str) else None,
                         jti=str(claims["jti"]))

    def _check_times(self, claims: dict[str, Any],
                     fail: Callable[[str, str], AuthError]) -> None:
        now, leeway = self._clock(), self.config.leeway_seconds
        expires, issued = _numeric_date(claims, "exp", fail), _numeric_date(claims, "iat", fail)
        not_before = _numeric_date(claims, "nbf", fail) if "nbf" in claims else None
        if now > expires + leeway:
            raise fail("token expired", "expired")
        if issued > now + leeway or (not_before is not None and not_before > now + leeway):
            raise fail("token not yet valid (nbf or iat in the future)", "not_yet_valid")
        if now - issued > self.config.max_token_age_seconds + leeway:
            raise fail("token older than the maximum age", "too_old")
