"""What the iron and electrolyte rules share: when they run, and the lab orders they suggest."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cds_service.kit import observations
from cds_service.kit.cards import Action
from cds_service.kit.observations import LabResult
from cds_service.kit.record import ConditionMatch
from cds_service.kit.terminology import ValueSet
from cds_service.pipeline.services import RuleContext
from hooks.valuesets import LabTest

LOINC = "http://loinc.org"


def runs_on(context: RuleContext, *ordered_drugs: ValueSet) -> bool:
    """Patient-level rules run on patient-view, and on order hooks only while a drug of
    `ordered_drugs` (an RLS or cramp drug) is among the orders the hook asks about."""
    if not context.is_order_hook:
        return True
    return any(
        order.match_medication(value_set) for order in context.subject_orders
        for value_set in ordered_drugs
    )


def window_start(context: RuleContext, setting: str) -> datetime:
    return context.now - timedelta(days=context.settings[setting])


def latest(context: RuleContext, test: LabTest, setting: str) -> LabResult | None:
    return observations.latest(context.record.observations, test.value_set, test.units,
                               window_start(context, setting))


def service_request(
    context: RuleContext, loinc: str, display: str, reason: ConditionMatch | None = None
) -> dict[str, Any]:
    """A draft lab order (FHIR R4 ServiceRequest) for one LOINC-coded test."""
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{
            "system": "http://snomed.info/sct", "code": "108252007",
            "display": "Laboratory procedure"}]}],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}],
                 "text": display},
        "subject": {"reference": f"Patient/{context.record.patient_id}"},
        "authoredOn": context.now.isoformat(timespec="seconds"),
    }
    if reason is not None and reason.condition.id:
        request["reasonReference"] = [{"reference": reason.reference}]
    return request


def order_tests(
    context: RuleContext, tests: list[tuple[str, str]], reason: ConditionMatch | None
) -> tuple[Action, ...]:
    return tuple(
        Action(type="create", description=f"Order {display}",
               resource=service_request(context, loinc, display, reason))
        for loinc, display in tests
    )
