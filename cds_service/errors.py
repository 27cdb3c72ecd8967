"""Every error the service raises on purpose: one tree, here.

```
LegcrampError                       base: anything below is an error we meant to raise
├── ConfigError (ValueError)        start-up: the configuration is unreadable or refused
├── TemplateError (ValueError)      a prefetch template token CDS Hooks 2.0 does not allow,
│                                   or that has no value in this request's context
├── ResourceRejected (ValueError)   a resource the FHIR models reject: skipped and counted
├── FhirError                       a FHIR call gave no usable data (the key becomes missing)
├── StoreError (RuntimeError)       the database cannot be used: callers fail closed
├── AuthError                       a JWT check failed (the client sees one generic answer)
└── RequestError                    the request cannot be answered as asked; its `issues`
    │                               are the OperationOutcome that says why
    ├── InvalidRequest              malformed JSON, a schema violation, a hostile-input limit
    ├── UnknownService              no CDS service with that id
    ├── UnsupportedMediaType        a body that is not JSON
    ├── RequestTooLarge             a body past the size limit
    ├── DataUnavailable             data the rules need is neither in prefetch nor obtainable
    └── Unavailable                 the service cannot answer now (store down, busy);
                                    `retry_after` seconds when a retry will likely succeed
```

The engine and the stores raise these domain errors and never think in HTTP; the web layer
(`web.errors`) maps each to its status (`RequestError` -> 4xx/503, `AuthError` -> 401) and
writes the OperationOutcome. The diagnostics say what was wrong with the request and never
echo its contents: a request body can carry patient data and tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class LegcrampError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigError(LegcrampError, ValueError):
    """The configuration file is unreadable or holds a key or value the service does not know."""


class TemplateError(LegcrampError, ValueError):
    """A template token that is not valid in CDS Hooks 2.0, or has no value in this context."""


class ResourceRejected(LegcrampError, ValueError):
    """A resource the FHIR models reject; the record skips it and counts why."""

    def __init__(self, resource_type: str, reason: str):
        super().__init__(f"{resource_type}: {reason}")
        self.resource_type = resource_type
        self.reason = reason


class FhirError(LegcrampError):
    """A FHIR call that did not give usable data. `reason` is safe to show and to log;
    `status` is the FHIR server's HTTP status, when it answered."""

    def __init__(self, reason: str, status: int | None = None, code: str = "other"):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code  # a fixed slug for the metrics (see metrics.FHIR_OUTCOMES)


class StoreError(LegcrampError, RuntimeError):
    """The database could not be used; callers fail closed (a token is refused, not trusted)."""


class AuthError(LegcrampError):
    """A failed check. `reason` goes to the log; the client only ever sees a generic 401.
    `code` is a fixed slug for the check (the metrics' label, see metrics.AUTH_REASONS)."""

    def __init__(self, reason: str, claims: dict[str, Any] | None = None,
                 header: dict[str, Any] | None = None, code: str = "other"):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.iss = (claims or {}).get("iss")
        self.jti = (claims or {}).get("jti")
        self.kid = (header or {}).get("kid")


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: `code` is from the FHIR issue-type value set."""

    diagnostics: str
    code: str = "invalid"
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"severity": self.severity, "code": self.code}
        if self.diagnostics:
            body["diagnostics"] = self.diagnostics
        if self.expression:
            body["expression"] = list(self.expression)
        return body


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.to_json() for issue in issues]}


class RequestError(LegcrampError):
    """The request cannot be answered as asked; `issues` say why."""

    def __init__(self, issues: Sequence[Issue]):
        self.issues = tuple(issues)
        super().__init__(self.summary())

    def summary(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues) or type(self).__name__

    def to_operation_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class InvalidRequest(RequestError):
    """Malformed JSON, a schema violation, a hook the service does not answer, a value past a
    hostile-input limit."""


class UnknownService(RequestError):
    """No CDS service with that id."""


class UnsupportedMediaType(RequestError):
    """A request body that is not JSON."""


class RequestTooLarge(RequestError):
    """A request body past the configured size limit."""


class DataUnavailable(RequestError):
    """Data the service's rules need could not be had from prefetch or the FHIR server: the
    answer says so, rather than a guess (a rule that cannot see a malaria diagnosis must not
    decide there is none). The answer names the keys only; why each could not be had (refused,
    unreachable, a bad answer) is in `missing`, for the log and the metrics, never the caller:
    it would tell a caller what listens where."""

    def __init__(self, missing: Mapping[str, str]):
        self.missing = dict(missing)
        super().__init__([
            Issue(
                f"prefetch key '{key}' was not supplied and could not be obtained",
                code="incomplete",
                expression=(f"prefetch.{key}",),
            )
            for key in sorted(self.missing)
        ])


class MedicationsUnavailable(DataUnavailable):
    """What orders name by reference (their `medicationReference`, or a reason Condition)
    could not all be read: without it the rules cannot judge the order, so the answer says so
    (412) rather than answer without the cards."""

    def __init__(self, issues: Sequence[Issue], references: Sequence[str] = ()):
        self.missing = {reference: "unreadable" for reference in references}
        RequestError.__init__(self, issues)

    @classmethod
    def too_many(cls, diagnostics: str) -> MedicationsUnavailable:
        return cls([Issue(diagnostics, code="too-costly")])

    @classmethod
    def unreadable(cls, references: Sequence[str],
                   kind: str = "medicationReference") -> MedicationsUnavailable:
        """One issue per reference, named as the request names it; why each could not be read
        (refused, unreachable, absent) goes to the log only, as for prefetch keys."""
        return cls([Issue(f"{kind} '{reference}' could not be read; the order "
                          "naming it could not be judged", code="incomplete")
                    for reference in references], references)


class Unavailable(RequestError):
    """The service cannot answer now (its store is down, or it is busy); `retry_after` is
    set when a retry after that many seconds will likely succeed."""

    def __init__(self, issues: Sequence[Issue], retry_after: int | None = None):
        super().__init__(issues)
        self.retry_after = retry_after


def bad_request(
    diagnostics: str, *, expression: Sequence[str] = (), code: str = "invalid"
) -> InvalidRequest:
    return InvalidRequest([Issue(diagnostics, code=code, expression=tuple(expression))])


def not_found(diagnostics: str) -> UnknownService:
    return UnknownService([Issue(diagnostics, code="not-found")])
