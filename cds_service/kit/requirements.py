"""Prefetch requirements: what a rule reads, as CDS Hooks 2.0 prefetch templates.

A rule declares a `DataRequirement` per key it reads; each service's discovery prefetch is the
union of its rules' requirements, and the pipeline fetches any key the client did not supply
with the same template. Only tokens CDS Hooks 2.0 allows for the hook are accepted, checked
when the services are declared (start-up), not when a request arrives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cds_service.errors import TemplateError
from cds_service.kit.hook_names import MEDICATION_REFILL, ORDER_SELECT, ORDER_SIGN, PATIENT_VIEW

TOKEN_PATTERN = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")

# First-level primitive context fields the 2.0 hooks mark "Prefetch Token: Yes".
CONTEXT_TOKENS: Mapping[str, frozenset[str]] = {
    PATIENT_VIEW: frozenset({"userId", "patientId", "encounterId"}),
    ORDER_SELECT: frozenset({"userId", "patientId", "encounterId"}),
    ORDER_SIGN: frozenset({"userId", "patientId", "encounterId"}),
    # Tokens as on the others, but userId is optional here (a refill often has no user).
    MEDICATION_REFILL: frozenset({"userId", "patientId", "encounterId"}),
}
USER_TOKENS: Mapping[str, str] = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


@dataclass(frozen=True)
class DataRequirement:
    """One prefetch key: what a rule reads, as a relative FHIR read or search URL template."""

    key: str
    template: str
    description: str = ""

    def tokens(self) -> list[str]:
        return TOKEN_PATTERN.findall(self.template)


def validate_template(template: str, hook: str) -> None:
    """Raise TemplateError for any token CDS Hooks 2.0 does not allow for `hook`."""
    allowed = CONTEXT_TOKENS.get(hook, frozenset())
    for token in TOKEN_PATTERN.findall(template):
        if token in USER_TOKENS:
            continue
        if token.startswith("context.") and token.removeprefix("context.") in allowed:
            continue
        raise TemplateError(f"token {{{{{token}}}}} is not valid in CDS Hooks 2.0 for {hook}")


def union(groups: Iterable[Iterable[DataRequirement]]) -> tuple[DataRequirement, ...]:
    """Requirements of several rules, each key once (the same key must mean the same query)."""
    by_key: dict[str, DataRequirement] = {}
    for group in groups:
        for requirement in group:
            known = by_key.setdefault(requirement.key, requirement)
            if known.template != requirement.template:
                raise ValueError(f"prefetch key {requirement.key!r} is declared twice, differently")
    return tuple(by_key.values())
