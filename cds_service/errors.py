"""Errors the service answers with, each a FHIR OperationOutcome with the right status.

Raised inside the engine as specific types and turned into HTTP at the boundary only. The
diagnostics say what was wrong with the request, never echo its contents: a request body can
carry patient data and tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


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


@dataclass
class CdsError(Exception):
    """An answer other than 200, with the issues that explain it."""

    status: int
    issues: Sequence[Issue] = field(default_factory=tuple)
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. Retry-After on a 503

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    def summary(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues) or f"HTTP {self.status}"

    def to_operation_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.to_json() for issue in issues]}


def bad_request(
    diagnostics: str, *, expression: Sequence[str] = (), code: str = "invalid"
) -> CdsError:
    return CdsError(400, [Issue(diagnostics, code=code, expression=tuple(expression))])


def not_found(diagnostics: str) -> CdsError:
    return CdsError(404, [Issue(diagnostics, code="not-found")])


class PreconditionFailed(CdsError):
    """412: data the service's rules need could not be had from prefetch or the FHIR server."""

    def __init__(self, missing: dict[str, str]):
        self.missing = dict(missing)
        issues = [
            Issue(
                f"prefetch key '{key}' was not supplied and could not be fetched: {reason}",
                code="incomplete",
                expression=(f"prefetch.{key}",),
            )
            for key, reason in sorted(self.missing.items())
        ]
        super().__init__(412, issues)
