"""The hook request, parsed once after the schema check into typed objects.

The engine reads `HookRequest` and never indexes the JSON again. The body is checked against
`request.schema.json` (envelope), the service's hook, and the hook's context schema, in that
order, each failure an `InvalidRequest` naming the JSON paths (never the values: they may be
patient data). What a token or access token holds is kept out of `repr`, so a request object
that reaches a log line or a traceback carries no secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cds_service.errors import InvalidRequest, Issue, bad_request
from cds_service.kit.hook_names import (
    MEDICATION_REFILL,
    ORDER_BUNDLES,
    ORDER_SELECT,
    ORDER_SIGN,
    PATIENT_VIEW,
)
from cds_service.pipeline import contracts

# The header the conformance kit sends on every call: such calls are answered like any other
# and never recorded as cards shown, so test traffic never becomes governance data.
TEST_TRAFFIC_HEADER = "X-Legcramp-Test-Traffic"
TEST_TRAFFIC_VALUE = "conformance"

CONTEXT_SCHEMAS: Mapping[str, str] = {
    PATIENT_VIEW: "context-patient-view.schema.json",
    ORDER_SELECT: "context-order-select.schema.json",
    ORDER_SIGN: "context-order-sign.schema.json",
    MEDICATION_REFILL: "context-medication-refill.schema.json",
}


def violations_error(found: Sequence[contracts.Violation], what: str) -> InvalidRequest:
    """One issue per schema violation, each with its JSON path in `expression`."""
    return InvalidRequest([
        Issue(f"{what}: {v.path} {v.message}", code="structure", expression=(v.path,))
        for v in found
    ])


@dataclass(frozen=True)
class Principal:
    """Who called: a verified issuer (with where its tokens may go) or an anonymous caller."""

    iss: str | None
    fhir_servers: tuple[str, ...] = ()
    tenant: str | None = None
    jti: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.iss is None


ANONYMOUS = Principal(iss=None)


@dataclass(frozen=True)
class DraftOrder:
    """One entry of the hook's order Bundle (context.draftOrders; context.medications on
    medication-refill): the resource as sent, and the entry's fullUrl."""

    resource: dict[str, Any] = field(repr=False)
    full_url: str | None = None


@dataclass(frozen=True)
class HookContext:
    """The context members the engine uses; `tokens` is the whole context, for filling the
    prefetch templates (`{{context.patientId}}`, `{{userPractitionerId}}`, ...)."""

    patient_id: str
    user_id: str | None
    encounter_id: str | None
    selections: tuple[str, ...]
    draft_orders: tuple[DraftOrder, ...]
    tokens: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: HookContext
    fhir_server: str | None
    access_token: str | None = field(repr=False)
    prefetch: Mapping[str, Any] | None = field(repr=False)


def check_envelope(payload: Any, hook: str) -> str:
    """The envelope is valid CDS Hooks 2.0 and names `hook`; returns the hookInstance, so the
    caller can bind it to every later log line before the context is checked."""
    if not isinstance(payload, dict):
        raise bad_request("the request body must be a JSON object", expression=["$"])
    found = contracts.violations("request.schema.json", payload)
    if found:
        raise violations_error(found, "invalid hook request")
    if payload["hook"] != hook:
        raise bad_request(
            f"this service answers the '{hook}' hook, not the hook in the request",
            expression=["$.hook"],
            code="value",
        )
    return str(payload["hookInstance"])


def parse_hook_request(payload: dict[str, Any], hook: str) -> HookRequest:
    """The typed request from an envelope `check_envelope` accepted; checks the context."""
    context = payload["context"]
    found = contracts.violations(CONTEXT_SCHEMAS[hook], context, "$.context")
    if found:
        raise violations_error(found, f"invalid {hook} context")
    # The refill requests of medication-refill are judged as draft orders are: the same
    # version mapping, medicationReference resolution and fail-closed reads.
    bundle = context.get(ORDER_BUNDLES[hook]) if hook in ORDER_BUNDLES else None
    drafts = tuple(
        DraftOrder(entry["resource"], entry.get("fullUrl"))
        for entry in (bundle or {}).get("entry") or []
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    )
    return HookRequest(
        hook=hook,
        hook_instance=str(payload["hookInstance"]),
        context=HookContext(
            patient_id=context["patientId"],
            user_id=context.get("userId"),
            encounter_id=context.get("encounterId"),
            selections=tuple(context.get("selections") or ()),
            draft_orders=drafts,
            tokens=context,
        ),
        fhir_server=payload.get("fhirServer") or None,
        access_token=(payload.get("fhirAuthorization") or {}).get("access_token"),
        prefetch=payload.get("prefetch"),
    )
