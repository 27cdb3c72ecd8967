"""What the iron and electrolyte rules share: when they run, and the lab orders they suggest."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any

from cds_service.kit import LOINC
from cds_service.kit import SNOMED
from cds_service.kit import Action
from cds_service.kit import ConditionMatch
from cds_service.kit import LabResult
from cds_service.kit import RuleContext
from cds_service.kit import ValueSet
from cds_service.kit import latest as latest_result
from hooks.valuesets import LabTest


def runs_on(context: RuleContext[Any], *ordered_drugs: ValueSet) -> bool:
    """Patient-level rules run on patient-view, and on order hooks only while a drug of
    `ordered_drugs` (an RLS or cramp drug) is among the orders the hook asks about."""
    if not context.is_order_hook:
        return True
    return any(
        order.match_medication(value_set) for order in context.subject_orders
        for value_set in ordered_drugs
    )


def limit_in_lab_unit(limit: float, result: LabResult) -> str:
    """A threshold (in the canonical unit) as the lab reported the value, with the canonical
    unit beside it: '8.5 mg/dL (2.12 mmol/L)'. A clinician reads the limit in the lab's own
    unit; a mmol/L limit beside a mg/dL value invites a misreading."""
    canonical = f"{limit:g} {result.canonical_unit}"
    if (result.unit_code == result.canonical_unit or not result.value
            or not result.normalised):
        return canonical
    in_lab_unit = limit * result.value / result.normalised
    return f"{in_lab_unit:.3g} {result.unit_label} ({canonical})"


def window_start(context: RuleContext[Any], lookback_days: int) -> datetime:
    return context.now - timedelta(days=lookback_days)


def latest(context: RuleContext[Any], test: LabTest, lookback_days: int) -> LabResult | None:
    """The newest countable result of `test` within the last `lookback_days`."""
    return latest_result(context.record.observations, test.value_set, test.units,
                         window_start(context, lookback_days))


def service_request(
    context: RuleContext[Any], loinc: str, display: str, reason: ConditionMatch | None = None,
    instruction: str | None = None,
) -> dict[str, Any]:
    """A draft lab order (FHIR R4 ServiceRequest) for one LOINC-coded test; `instruction`, how
    to prepare and when to draw, goes to `patientInstruction` and to a note for the lab."""
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{
            "system": SNOMED, "code": "108252007",
            "display": "Laboratory procedure"}]}],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}],
                 "text": display},
        "subject": {"reference": f"Patient/{context.record.patient_id}"},
        "authoredOn": context.now.isoformat(timespec="seconds"),
    }
    if reason is not None and reason.condition.id:
        request["reasonReference"] = [{"reference": reason.reference}]
    if instruction:
        request["patientInstruction"] = instruction
        request["note"] = [{"text": instruction}]
    return request


def order_tests(
    context: RuleContext[Any], tests: list[tuple[str, str]], reason: ConditionMatch | None,
    instruction: str | None = None,
) -> tuple[Action, ...]:
    return tuple(
        Action(type="create", description=f"Order {display}",
               resource=service_request(context, loinc, display, reason, instruction))
        for loinc, display in tests
    )
