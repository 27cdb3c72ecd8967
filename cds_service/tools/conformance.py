"""A black-box CDS Hooks 2.0 conformance kit for any deployment of this service.

`legcramp-cds conformance BASE_URL` calls discovery, every service (or the ones named) and their
feedback endpoints over HTTP and checks the protocol (reference §9): status codes, response and
OperationOutcome shapes, CORS preflight and, with a signing key, the JWT checks. The requests are
built here (minimal valid ones per hook, with prefetch filled from the service's own templates),
so the kit works from an installed package without the repository's fixtures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.kit import MEDICATION_REFILL, ORDER_SELECT, ORDER_SIGN, PATIENT_VIEW, RXNORM
from cds_service.kit.requirements import CONTEXT_TOKENS, USER_TOKENS
from cds_service.pipeline import contracts
from cds_service.pipeline.request import TEST_TRAFFIC_HEADER, TEST_TRAFFIC_VALUE

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
ORIGIN = "https://sandbox.cds-hooks.org"
PATIENT_ID = "conformance-patient-1"
USER_ID = "Practitioner/conformance-user-1"
DRAFT_ID = "conformance-draft-1"
TOKEN_LIFETIME_SECONDS = 60
STACK_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")
TOKEN = re.compile(r"\{\{(.*?)\}\}")


@dataclass(frozen=True)
class Row:
    id: str
    description: str
    status: str
    detail: str = ""


# --- signing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """Signs the kit's JWTs: iss, aud = the URL called, iat, exp a minute ahead, a fresh jti."""

    private: Any
    issuer: str
    kid: str
    alg: str

    @classmethod
    def from_pem(cls, path: str | Path, issuer: str, kid: str | None = None,
                 alg: str | None = None) -> Signer:
        private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if isinstance(private, ec.EllipticCurvePrivateKey):
            default_alg, jwk = "ES384", ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        elif isinstance(private, rsa.RSAPrivateKey):
            default_alg, jwk = "RS384", RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            raise ValueError("the key must be an EC or RSA private key")
        return cls(private, issuer, kid or _thumbprint(jwk), alg or default_alg)

    def claims(self, aud: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer, "sub": self.issuer, "aud": aud, "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS, "jti": str(uuid.uuid4()),
        }
        payload.update(overrides)
        return payload

    def sign(self, payload: dict[str, Any]) -> str:
        return jwt.encode(payload, self.private, algorithm=self.alg,
                          headers={"typ": "JWT", "kid": self.kid})

    def token(self, aud: str, **overrides: Any) -> str:
        return self.sign(self.claims(aud, **overrides))

    def unsigned(self, aud: str) -> str:
        header = {"alg": "none", "typ": "JWT", "kid": self.kid}
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(self.claims(aud)).encode())}."

    def bad_signature(self, aud: str) -> str:
        head, body, signature = self.token(aud).split(".")
        raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
        raw[len(raw) // 2] ^= 0xFF
        return f"{head}.{body}.{_b64(bytes(raw))}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (the default kid)."""
    members = ("crv", "kty", "x", "y") if jwk.get("kty") == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


# --- requests per hook -----------------------------------------------------------------------


def _draft_orders() -> dict[str, Any]:
    """One draft order (also the one refill request of medication-refill's `medications`)."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {
            "resourceType": "MedicationRequest", "id": DRAFT_ID, "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM,
                            "code": "313782", "display": "Acetaminophen 325 MG Oral Tablet"}],
                "text": "Acetaminophen 325 MG Oral Tablet",
            },
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "authoredOn": "2026-01-15",
        }}],
    }


def hook_context(hook: str) -> dict[str, Any] | None:
    """A minimal valid context for `hook`, None for a hook the kit has no request for."""
    context: dict[str, Any] = {"userId": USER_ID, "patientId": PATIENT_ID}
    if hook == PATIENT_VIEW:
        return context
    if hook == ORDER_SELECT:
        return {**context, "selections": [f"MedicationRequest/{DRAFT_ID}"],
                "draftOrders": _draft_orders()}
    if hook == ORDER_SIGN:
        return {**context, "draftOrders": _draft_orders()}
    if hook == MEDICATION_REFILL:  # no userId: a refill often arrives with no user in context
        return {"patientId": PATIENT_ID, "medications": _draft_orders()}
    return None


def prefetch_value(template: str) -> dict[str, Any]:
    """Data for one prefetch template: the patient for a Patient read, a resource of the type for
    another read, an empty searchset for a search."""
    path = template.split("?", 1)[0]
    resource_type = path.split("/", 1)[0] or "Resource"
    if "?" not in template and "/" in path:
        if resource_type == "Patient":
            return {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female",
                    "birthDate": "1960-01-01"}
        return {"resourceType": resource_type, "id": "conformance-1"}
    return {"resourceType": "Bundle", "type": "searchset", "total": 0}


def hook_request(hook: str, prefetch: dict[str, str], keys: Iterable[str] | None = None
                 ) -> dict[str, Any] | None:
    """A valid request for `hook` with the prefetch `keys` (default all) filled."""
    context = hook_context(hook)
    if context is None:
        return None
    chosen = list(prefetch) if keys is None else list(keys)
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if chosen:
        body["prefetch"] = {key: prefetch_value(prefetch[key]) for key in chosen}
    return body


def bad_prefetch_tokens(hook: str, templates: dict[str, Any]) -> list[str]:
    allowed_context = CONTEXT_TOKENS.get(hook)
    bad = []
    for key, template in templates.items():
        if not isinstance(template, str):
            bad.append(f"{key}: not a string")
            continue
        if template.count("{{") != template.count("}}"):
            bad.append(f"{key}: unbalanced braces")
        for token in TOKEN.findall(template):
            name = token.strip()
            if name in USER_TOKENS:
                continue
            field_name = name[len("context."):] if name.startswith("context.") else None
            ok = re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", field_name or "") is not None
            if ok and allowed_context is not None:
                ok = field_name in allowed_context
            if not ok:
                bad.append(f"{key}: {{{{{name}}}}}")
    return bad


# --- the kit ---------------------------------------------------------------------------------


@dataclass
class Kit:
    base_url: str
    signer: Signer | None = None
    service_ids: tuple[str, ...] = ()
    timeout: float = 10.0
    rows: list[Row] = field(default_factory=list)
    errors_seen: list[str] = field(default_factory=list)
    error_problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session = requests.Session()  # no retries: requests' default adapter has none

    # -- HTTP --

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def call(self, method: str, path: str, *, body: Any = None, data: bytes | None = None,
             content_type: str = "application/json", token: str | None = None,
             sign: bool = True, headers: dict[str, str] | None = None) -> requests.Response:
        sent = {TEST_TRAFFIC_HEADER: TEST_TRAFFIC_VALUE, **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
        if data is not None:
            sent["Content-Type"] = content_type
        if token is None and sign and self.signer is not None:
            token = self.signer.token(self.url(path))
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url(path), data=data, headers=sent,
                                    timeout=self.timeout, allow_redirects=False)

    def add(self, row_id: str, description: str, check: Callable[[], tuple[str, str]]) -> Row:
        try:
            status, detail = check()
        except requests.RequestException as exc:
            status, detail = FAIL, f"request failed: {type(exc).__name__}: {exc}"[:300]
        row = Row(row_id, description, status, detail)
        self.rows.append(row)
        return row

    # -- response checks --

    def error(self, response: requests.Response, status: int, label: str) -> tuple[bool, str]:
        """Whether `response` has `status` and an OperationOutcome body without a stack trace;
        every error body is also kept for the summary row."""
        problems = []
        if response.status_code != status:
            problems.append(f"status {response.status_code}, expected {status}")
        text = response.text
        if response.status_code >= 400:
            self.errors_seen.append(label)
            found = self.outcome_problems(response)
            if found:
                self.error_problems.append(f"{label} ({response.status_code}): {found[0]}")
            problems.extend(found)
        if STACK_TRACE.search(text) and not problems:
            problems.append("the body holds a stack trace")
        return (not problems, "; ".join(problems) or f"{status} OperationOutcome")

    @staticmethod
    def outcome_problems(response: requests.Response) -> list[str]:
        problems = []
        try:
            body = response.json()
        except ValueError:
            return ["the body is not JSON"]
        violations = contracts.violations("operation-outcome.schema.json", body)
        if violations:
            problems.append("not an OperationOutcome: " + "; ".join(
                f"{v.path} {v.message}" for v in violations[:3]))
        if STACK_TRACE.search(response.text):
            problems.append("the body holds a stack trace")
        return problems

    @staticmethod
    def issues(response: requests.Response) -> list[dict[str, Any]]:
        try:
            body = response.json()
        except ValueError:
            return []
        issues = body.get("issue") if isinstance(body, dict) else None
        return [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []

    # -- the run --

    def run(self) -> list[Row]:
        services = self.check_discovery()
        self.add("discovery.cors", "OPTIONS preflight on discovery: CORS headers, no token",
                 lambda: self.preflight("/cds-services", "GET"))
        self.add("service.unknown", "POST to an unknown service id -> 404 OperationOutcome",
                 self.check_unknown)
        chosen = list(self.service_ids) or list(services)
        for service_id in chosen:
            self.check_service(service_id, services.get(service_id))
        self.check_jwt(chosen, services)
        self.add("errors.operation-outcome",
                 "every error body is an OperationOutcome without a stack trace",
                 self.check_error_bodies)
        return self.rows

    def check_discovery(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = {}
        document: Any = None

        def status() -> tuple[str, str]:
            nonlocal document
            response = self.call("GET", "/cds-services")
            if response.status_code != 200:
                return FAIL, f"status {response.status_code}"
            try:
                document = response.json()
            except ValueError:
                return FAIL, "the body is not JSON"
            violations = contracts.violations("discovery.schema.json", document)
            if violations:
                return FAIL, "; ".join(f"{v.path} {v.message}" for v in violations[:4])
            return PASS, f"{len(document['services'])} service(s)"

        self.add("discovery", "GET /cds-services -> 200, valid against discovery.schema.json",
                 status)
        entries = document.get("services") if isinstance(document, dict) else None
        entries = entries if isinstance(entries, list) else []
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                services[entry["id"]] = entry

        def members() -> tuple[str, str]:
            if document is None:
                return FAIL, "no discovery document"
            if not entries:
                return FAIL, "no services"
            problems = []
            for index, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    problems.append(f"services[{index}] is not an object")
                    continue
                for name in ("hook", "description", "id"):
                    if not isinstance(entry.get(name), str) or not entry[name]:
                        problems.append(f"services[{index}] has no {name}")
                for name, value in entry.items():
                    if value is None or value in ("", [], {}):
                        problems.append(f"services[{index}].{name} is null or empty")
            return (FAIL, "; ".join(problems)) if problems else (PASS, "")

        self.add("discovery.members", "each service has hook, description and id; no null or "
                 "empty members", members)

        def tokens() -> tuple[str, str]:
            if not services:
                return FAIL, "no services"
            bad = []
            for service_id, entry in services.items():
                templates = entry.get("prefetch") or {}
                if not isinstance(templates, dict):
                    bad.append(f"{service_id}: prefetch is not an object")
                    continue
                bad.extend(f"{service_id}.{b}" for b in
                           bad_prefetch_tokens(str(entry.get("hook")), templates))
            return (FAIL, "; ".join(bad)) if bad else (PASS, "")

        self.add("discovery.prefetch", "prefetch templates use only 2.0 tokens", tokens)
        return services

    def preflight(self, path: str, method: str) -> tuple[str, str]:
        response = self.call("OPTIONS", path, sign=False, headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        })
        problems = []
        if not 200 <= response.status_code < 300:
            problems.append(f"status {response.status_code}")
        origin = response.headers.get("Access-Control-Allow-Origin")
        if origin not in ("*", ORIGIN):
            problems.append(f"Access-Control-Allow-Origin {origin!r}")
        methods = {m.strip().upper() for m in
                   response.headers.get("Access-Control-Allow-Methods", "").split(",")}
        if method not in methods:
            problems.append(f"Access-Control-Allow-Methods lacks {method}")
        allowed = {h.strip().lower() for h in
                   response.headers.get("Access-Control-Allow-Headers", "").split(",")}
        missing = {"authorization", "content-type"} - allowed
        if missing:
            problems.append(f"Access-Control-Allow-Headers lacks {', '.join(sorted(missing))}")
        return (FAIL, "; ".join(problems)) if problems else (PASS, f"{response.status_code}")

    def check_unknown(self) -> tuple[str, str]:
        body = hook_request("patient-view", {})
        response = self.call("POST", f"/cds-services/conformance-no-such-{uuid.uuid4().hex[:8]}",
                             body=body)
        ok, detail = self.error(response, 404, "unknown service")
        return (PASS if ok else FAIL), detail

    def check_service(self, service_id: str, entry: dict[str, Any] | None) -> None:
        path = f"/cds-services/{service_id}"
        prefix = f"service.{service_id}"
        hook = entry.get("hook") if entry else None
        templates = entry.get("prefetch") if entry else None
        templates = templates if isinstance(templates, dict) else {}
        templates = {k: v for k, v in templates.items() if isinstance(v, str)}
        valid = hook_request(hook, templates) if isinstance(hook, str) else None
        if valid is None:
            why = ("not in discovery" if entry is None else "discovery gives no hook"
                   if not isinstance(hook, str) else f"no built-in request for hook {hook}")
            self.add(f"{prefix}.valid", "valid request with full prefetch -> 200",
                     lambda: (FAIL if not isinstance(hook, str) else SKIP, why))
        else:
            self.add(f"{prefix}.valid", "valid request with full prefetch -> 200, "
                     "valid against response.schema.json", lambda: self.valid_call(path, valid))
            self.add(f"{prefix}.partial-prefetch", "partial prefetch, no fhirServer -> 412 "
                     "OperationOutcome naming the missing keys",
                     lambda: self.partial_call(path, str(hook), templates))
            wrong = dict(valid, hook="order-sign" if hook != "order-sign" else "patient-view")
            self.add(f"{prefix}.wrong-hook", "request for another hook -> 400",
                     lambda: self.expect_error(path, 400, "wrong hook", body=wrong))
            with_auth = dict(valid, fhirAuthorization={
                "access_token": "conformance-not-a-real-token", "token_type": "Bearer",
                "expires_in": 300, "scope": "patient/*.read", "subject": "conformance",
                "patient": PATIENT_ID})
            self.add(f"{prefix}.fhir-authorization", "fhirAuthorization without fhirServer -> 400",
                     lambda: self.expect_error(path, 400, "fhirAuthorization", body=with_auth))
            self.add(f"{prefix}.content-type", "body sent as text/plain -> 415",
                     lambda: self.expect_error(path, 415, "content type",
                                               data=json.dumps(valid).encode(),
                                               content_type="text/plain"))
        self.add(f"{prefix}.malformed-json", "malformed JSON -> 400 OperationOutcome",
                 lambda: self.expect_error(path, 400, "malformed JSON",
                                           data=b'{"hook": "patient-view", '))
        invalid = dict(valid) if valid else {"hook": hook or "patient-view", "context": {}}
        invalid.pop("hookInstance", None)
        self.add(f"{prefix}.schema-invalid", "body without hookInstance -> 400 with expression "
                 "paths", lambda: self.schema_invalid_call(path, invalid))
        self.add(f"{prefix}.cors", "OPTIONS preflight on the service: CORS headers, no token",
                 lambda: self.preflight(path, "POST"))
        self.add(f"{prefix}.feedback-cors", "OPTIONS preflight on feedback: CORS headers, no "
                 "token", lambda: self.preflight(f"{path}/feedback", "POST"))
        self.check_feedback(service_id, f"{path}/feedback")

    def valid_call(self, path: str, body: dict[str, Any]) -> tuple[str, str]:
        response = self.call("POST", path, body=body)
        if response.status_code != 200:
            return FAIL, f"status {response.status_code}: {response.text[:200]}"
        try:
            answer = response.json()
        except ValueError:
            return FAIL, "the body is not JSON"
        violations = contracts.violations("response.schema.json", answer)
        if violations:
            return FAIL, "; ".join(f"{v.path} {v.message}" for v in violations[:4])
        cards = answer.get("cards", [])
        return PASS, f"200, {len(cards)} card(s)"

    def partial_call(self, path: str, hook: str, templates: dict[str, str]) -> tuple[str, str]:
        if not templates:
            return SKIP, "the service declares no prefetch"
        keys = sorted(templates)
        given, missing = keys[:1] if len(keys) > 1 else [], keys[1:] if len(keys) > 1 else keys
        body = hook_request(hook, templates, given)
        response = self.call("POST", path, body=body)
        ok, detail = self.error(response, 412, "partial prefetch")
        if not ok:
            return FAIL, detail
        unnamed = [key for key in missing if not self.names(response, key)]
        if unnamed:
            return FAIL, f"412 but the OperationOutcome does not name: {', '.join(unnamed)}"
        return PASS, f"412 naming {', '.join(missing)} (given: {', '.join(given) or 'none'})"

    def names(self, response: requests.Response, member: str) -> bool:
        """Whether an issue names `member`: as the last step of an expression, or quoted in
        its diagnostics."""
        for issue in self.issues(response):
            for expression in issue.get("expression") or []:
                if isinstance(expression, str) and re.search(
                        rf"(^|[.\[']){re.escape(member)}['\]]?$", expression):
                    return True
            diagnostics = str(issue.get("diagnostics", ""))
            if f"'{member}'" in diagnostics or f'"{member}"' in diagnostics:
                return True
        return False

    def expect_error(self, path: str, status: int, label: str, **send: Any) -> tuple[str, str]:
        response = self.call("POST", path, **send)
        ok, detail = self.error(response, status, label)
        return (PASS if ok else FAIL), detail

    def schema_invalid_call(self, path: str, body: dict[str, Any]) -> tuple[str, str]:
        response = self.call("POST", path, body=body)
        ok, detail = self.error(response, 400, "schema-invalid")
        if not ok:
            return FAIL, detail
        paths = [e for issue in self.issues(response)
                 for e in (issue.get("expression") or []) if isinstance(e, str)]
        if not paths:
            return FAIL, "400 but no issue has an expression path"
        if not self.names(response, "hookInstance"):
            return FAIL, "400 but no issue names hookInstance"
        return PASS, f"400, expression {', '.join(paths[:3])}"

    def check_feedback(self, service_id: str, path: str) -> None:
        prefix = f"feedback.{service_id}"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def item(outcome: str, **extra: Any) -> dict[str, Any]:
            return {"feedback": [{"card": str(uuid.uuid4()), "outcome": outcome,
                                  "outcomeTimestamp": now, **extra}]}

        def expect_ok(body: dict[str, Any], times: int = 1) -> tuple[str, str]:
            statuses = [self.call("POST", path, body=body) for _ in range(times)]
            codes = [r.status_code for r in statuses]
            for response in statuses:
                if response.status_code != 200:
                    self.error(response, 200, "feedback")
                    return FAIL, f"status(es) {codes}: {response.text[:200]}"
            return PASS, f"status(es) {codes}"

        self.add(f"{prefix}.accepted", "accepted with acceptedSuggestions -> 200",
                 lambda: expect_ok(item("accepted", acceptedSuggestions=[
                     {"id": str(uuid.uuid4())}])))
        self.add(f"{prefix}.overridden-reason", "overridden with a reason only -> 200",
                 lambda: expect_ok(item("overridden", overrideReason={"reason": {
                     "system": "https://legcramp-cds.example.org/conformance",
                     "code": "other", "display": "Other"}})))
        self.add(f"{prefix}.duplicate", "the same feedback twice -> 200 both times",
                 lambda: expect_ok(item("overridden"), times=2))
        self.add(f"{prefix}.accepted-without-suggestions",
                 "accepted without acceptedSuggestions -> 400 OperationOutcome",
                 lambda: self.expect_error(path, 400, "feedback", body=item("accepted")))

    # -- JWT --

    def check_jwt(self, chosen: list[str], services: dict[str, dict[str, Any]]) -> None:
        cases = [
            ("missing", "no Authorization header -> 401"),
            ("alg-none", "alg none -> 401"),
            ("bad-signature", "a signature that does not verify -> 401"),
            ("wrong-aud", "aud for another URL -> 401"),
            ("expired", "an expired token -> 401"),
            ("replayed", "a jti used twice -> 401 the second time"),
        ]
        if self.signer is None:
            note = "no --jwt-key/--issuer given"
            anonymous = self.session.get(self.url("/cds-services"), timeout=self.timeout)
            if anonymous.status_code == 200:
                note += "; the server accepts anonymous calls"
            skipped = (SKIP, note)
            for case, description in cases:
                self.add(f"jwt.{case}", description, lambda: skipped)
            return
        signer = self.signer
        target = next((s for s in chosen if isinstance(services.get(s, {}).get("hook"), str)
                       and hook_context(services[s]["hook"]) is not None), None)
        if target is None:
            for case, description in cases:
                self.add(f"jwt.{case}", description, lambda: (FAIL, "no callable service"))
            return
        path = f"/cds-services/{target}"
        hook = services[target]["hook"]
        templates = {k: v for k, v in (services[target].get("prefetch") or {}).items()
                     if isinstance(v, str)}
        aud = self.url(path)

        def rejected(token: str | None) -> tuple[str, str]:
            body = hook_request(hook, templates)
            response = self.call("POST", path, body=body, token=token, sign=False)
            ok, detail = self.error(response, 401, "jwt")
            return (PASS if ok else FAIL), detail

        def replayed() -> tuple[str, str]:
            token = signer.token(aud)
            first = self.call("POST", path, body=hook_request(hook, templates), token=token)
            if first.status_code != 200:
                return FAIL, f"the first use got {first.status_code}, expected 200"
            return rejected(token)

        now = int(time.time())
        self.add("jwt.missing", cases[0][1], lambda: rejected(None))
        self.add("jwt.alg-none", cases[1][1], lambda: rejected(signer.unsigned(aud)))
        self.add("jwt.bad-signature", cases[2][1], lambda: rejected(signer.bad_signature(aud)))
        self.add("jwt.wrong-aud", cases[3][1],
                 lambda: rejected(signer.token(self.url("/cds-services/conformance-other"))))
        self.add("jwt.expired", cases[4][1],
                 lambda: rejected(signer.token(aud, iat=now - 900, exp=now - 600)))
        self.add("jwt.replayed", cases[5][1], replayed)

    def check_error_bodies(self) -> tuple[str, str]:
        if self.error_problems:
            return FAIL, "; ".join(self.error_problems[:4])
        if not self.errors_seen:
            return SKIP, "no error responses seen"
        return PASS, f"{len(self.errors_seen)} error bodies checked"


# --- output ----------------------------------------------------------------------------------


def render(rows: list[Row], width: int = 100) -> str:
    id_width = max([len("check"), *(len(r.id) for r in rows)])
    lines = [f"{'check':<{id_width}}  {'result':<6}  description / detail",
             f"{'-' * id_width}  ------  {'-' * 20}"]
    for row in rows:
        lines.append(f"{row.id:<{id_width}}  {row.status:<6}  {row.description}")
        if row.detail:
            lines.append(f"{'':<{id_width}}  {'':<6}    {row.detail}")
    counts = {status: sum(r.status == status for r in rows) for status in (PASS, FAIL, SKIP)}
    lines.append(f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped")
    return "\n".join(lines) + "\n"


def render_json(rows: list[Row], base_url: str) -> str:
    """The rows as one JSON document, for an EHR team's CI."""
    counts = {status.lower(): sum(r.status == status for r in rows)
              for status in (PASS, FAIL, SKIP)}
    return json.dumps({"baseUrl": base_url, "summary": counts,
                       "checks": [{"id": r.id, "description": r.description,
                                   "status": r.status, "detail": r.detail} for r in rows]},
                      indent=2) + "\n"


def render_junit(rows: list[Row], base_url: str) -> str:
    """The rows as JUnit XML (one testcase per check; FAIL a failure, SKIP skipped), which CI
    systems read without a plugin."""
    suite = ElementTree.Element("testsuite", {
        "name": "legcramp-cds conformance", "tests": str(len(rows)),
        "failures": str(sum(r.status == FAIL for r in rows)),
        "skipped": str(sum(r.status == SKIP for r in rows)), "errors": "0",
    })
    ElementTree.SubElement(ElementTree.SubElement(suite, "properties"), "property",
                           {"name": "baseUrl", "value": base_url})
    for row in rows:
        case = ElementTree.SubElement(suite, "testcase", {
            "classname": "conformance." + row.id.split(".")[0], "name": row.id})
        if row.status == FAIL:
            failure = ElementTree.SubElement(case, "failure", {"message": row.description})
            failure.text = row.detail
        elif row.status == SKIP:
            ElementTree.SubElement(case, "skipped", {"message": row.detail or row.description})
        elif row.detail:
            ElementTree.SubElement(case, "system-out").text = row.detail
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


class Unreachable(Exception):
    """BASE_URL does not lead to a CDS Hooks service: one line says why."""


def check_base_url(base_url: str, timeout: float) -> tuple[str, str | None]:
    """The base URL to test, and a note when it was corrected. A discovery URL given instead of
    the base ('.../cds-services') is recognised: the base is used and the note says so. A URL
    that cannot be reached, or where no discovery answers, raises Unreachable with one line."""
    base = base_url.rstrip("/")
    note = None
    if base.endswith("/cds-services"):
        base = base.removesuffix("/cds-services")
        note = (f"{base_url} is the discovery URL; BASE_URL is the service's base: testing "
                f"{base}")
    try:
        response = requests.get(f"{base}/cds-services", timeout=timeout, allow_redirects=False,
                                headers={TEST_TRAFFIC_HEADER: TEST_TRAFFIC_VALUE})
    except requests.exceptions.InvalidURL as exc:
        raise Unreachable(f"{base_url} is not a valid URL ({type(exc).__name__})") from exc
    except requests.exceptions.MissingSchema as exc:
        raise Unreachable(f"{base_url} is not a URL: give http(s)://host[:port][/path]") from exc
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise Unreachable(f"cannot reach {base}/cds-services ({reason})") from exc
    if response.status_code in (401, 403):
        return base, note  # auth on discovery: the checks themselves report it
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or "services" not in body:
        raise Unreachable(f"no CDS Hooks discovery at {base}/cds-services (HTTP "
                          f"{response.status_code}): is {base_url} the service's base URL?")
    return base, note


def run(base_url: str, signer: Signer | None = None, service_ids: Iterable[str] = (),
        timeout: float = 10.0) -> list[Row]:
    return Kit(base_url, signer, tuple(service_ids), timeout).run()
