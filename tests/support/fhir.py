"""Builders and checks shared by the rule tests: a small chart, draft orders, lab results, a
RuleContext as the engine makes one, the card contract, and hook requests for the HTTP tests.

Every builder returns plain FHIR R4 JSON (dicts) so a test reads like the data an EHR sends.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from cds_service.kit import Card, RuleContext, RuleSettings
from cds_service.pipeline.record_builder import RecordBuilder
from cds_service.pipeline.rule_settings import as_table, settings_for
from hooks.services import catalog, service_for_hook
from hooks.valuesets import lab
from tests.conftest import AS_OF

PATIENT_ID = "pt-1"
BASE = "https://legcramp-cds.example.org/fhir/CodeSystem"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

SERVICE_FOR_HOOK = service_for_hook()  # hook -> service id, from hooks/services.py


def rule(rule_id: str) -> Any:
    """The rule as `catalog()` wires it to its value sets."""
    return next(r for r in catalog() if r.rule_id == rule_id)


def day(days_ago: float) -> str:
    """An instant `days_ago` days before AS_OF, as FHIR dateTime."""
    return (AS_OF - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def date_of(days_ago: float) -> str:
    return (AS_OF - timedelta(days=days_ago)).date().isoformat()


# Chart resources ------------------------------------------------------------------------------


def patient(**extra: Any) -> dict[str, Any]:
    resource = {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1950-05-01"}
    resource.update(extra)
    return resource


def concept(
    system: str | None = None,
    code: str | None = None,
    display: str | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if code is not None:
        coding = {"system": system, "code": code}
        if display:
            coding["display"] = display
        found["coding"] = [coding]
    if text is not None:
        found["text"] = text
    return found


_ABSENT: Any = object()


def condition(
    code: dict[str, Any],
    id: str = "c1",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    onset: str | Any | None = _ABSENT,
    **extra: Any,
) -> dict[str, Any]:
    """A Condition; `clinical=None` leaves clinicalStatus out; onset defaults to 30 days ago."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id,
        "code": code,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if clinical is not None:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    if verification is not None:
        resource["verificationStatus"] = {
            "coding": [{"system": VERIFICATION, "code": verification}]
        }
    if onset is _ABSENT:
        onset = day(30)
    if onset is not None:
        resource["onsetDateTime"] = onset
    resource.update(extra)
    return resource


def medication_request(
    medication: dict[str, Any],
    id: str = "d1",
    status: str = "draft",
    authored: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A MedicationRequest coded by `medication` (a CodeableConcept), authored today."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": id,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": medication,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "authoredOn": authored or AS_OF.date().isoformat(),
    }
    resource.update(extra)
    return resource


def with_contained_medication(order: dict[str, Any], **medication: Any) -> dict[str, Any]:
    """The same order pointing by medicationReference to a contained Medication whose code is
    the order's medicationCodeableConcept (plus any Medication members given)."""
    order = copy.deepcopy(order)
    code = order.pop("medicationCodeableConcept")
    order["contained"] = [{"resourceType": "Medication", "id": "med", "code": code, **medication}]
    order["medicationReference"] = {"reference": "#med"}
    return order


def supply(
    days: float, refills: int | None = None, unit: str = "d", **extra: Any
) -> dict[str, Any]:
    dispense: dict[str, Any] = {
        "expectedSupplyDuration": {"value": days, "unit": "days", "system": UCUM, "code": unit}
    }
    if refills is not None:
        dispense["numberOfRepeatsAllowed"] = refills
    dispense.update(extra)
    return dispense


def dosage(
    value: float = 1,
    unit: str = "tablet",
    code: str = "{tablet}",
    per_day: int = 3,
    timing_code: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One dosage instruction: `value` `unit` `per_day` times a day (or by a GTS timing code)."""
    timing: dict[str, Any]
    if timing_code:
        timing = {"code": {"coding": [{"system": GTS, "code": timing_code}]}}
    else:
        timing = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
    instruction: dict[str, Any] = {
        "text": f"{value:g} {unit} {timing_code or f'{per_day} times a day'}",
        "timing": timing,
        "doseAndRate": [
            {"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": code}}
        ],
    }
    instruction.update(extra)
    return instruction


def quantity(
    value: float, unit: str | None = None, code: str | None = None, system: str | None = UCUM
) -> dict[str, Any]:
    """A Quantity; `code=None` leaves the UCUM code out (the unit is then only a label)."""
    found: dict[str, Any] = {"value": value}
    if unit is not None:
        found["unit"] = unit
    if code is not None:
        found["code"] = code
        if system is not None:
            found["system"] = system
    return found


def observation(
    loinc: str,
    value: float | dict[str, Any],
    unit: str | None = None,
    days_ago: float = 10,
    id: str | None = None,
    status: str = "final",
    low: float | dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A lab result; a bare `unit` is sent as UCUM code and label, a dict `value` as is."""
    value_quantity = value if isinstance(value, dict) else quantity(value, unit, unit)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id or f"o-{loinc}-{days_ago:g}",
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": day(days_ago),
        "valueQuantity": value_quantity,
    }
    if low is not None:
        low_quantity = (
            low
            if isinstance(low, dict)
            else quantity(low, value_quantity.get("unit"), value_quantity.get("code"))
        )
        resource["referenceRange"] = [{"low": low_quantity}]
    resource.update(extra)
    return resource


# Evaluating a rule ------------------------------------------------------------------------------


def declared_defaults(a_rule: Any) -> dict[str, Any]:
    """The thresholds and windows the rule declares, with their defaults (`enabled` aside)."""
    return {k: v for k, v in as_table(a_rule.Settings()).items() if k != "enabled"}


def settings_of(a_rule: Any, **overrides: Any) -> RuleSettings:
    """The rule's settings with `overrides`, checked as the configuration loader checks them."""
    return settings_for(a_rule, overrides)


def context_for(
    a_rule: Any,
    hook: str,
    chart: Iterable[dict[str, Any]] = (),
    drafts: Sequence[dict[str, Any]] = (),
    selections: Sequence[str] | None = None,
    **overrides: Any,
) -> RuleContext:
    """The RuleContext the engine would give `a_rule`: selections on order-select (all drafts
    when not given), every open draft on order-sign, active medications on patient-view."""
    record = RecordBuilder(PATIENT_ID, AS_OF).build(list(chart), [(d, None) for d in drafts])
    others: tuple[Any, ...] = ()
    if hook == "patient-view":
        subjects = tuple(record.active_medications())
    elif hook == "order-select" and selections is not None:
        subjects = tuple(o for o in record.open_drafts() if o.reference in selections)
        others = tuple(o for o in record.open_drafts() if o.reference not in selections)
    else:
        subjects = tuple(record.open_drafts())
    return RuleContext(
        hook=hook,
        record=record,
        subject_orders=subjects,
        context_orders=others,
        now=AS_OF,
        settings=settings_of(a_rule, **overrides),
        code_system_base=BASE,
    )


def evaluate(
    a_rule: Any,
    hook: str,
    chart: Iterable[dict[str, Any]] = (),
    drafts: Sequence[dict[str, Any]] = (),
    selections: Sequence[str] | None = None,
    **overrides: Any,
) -> list[Card]:
    return a_rule.evaluate(context_for(a_rule, hook, chart, drafts, selections, **overrides))


def only_card(cards: list[Card]) -> Card:
    assert len(cards) == 1, [c.summary for c in cards]
    return cards[0]


# The card contract --------------------------------------------------------------------------


def validate_fhir(resource: dict[str, Any]) -> Any:
    """The resource as an R4B model; raises when it is not valid FHIR."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def actions_of(card: Card) -> list[Any]:
    return [action for suggestion in card.suggestions for action in suggestion.actions]


def check_card(card: Card, rule_id: str, indicator: str, *summary_words: str) -> None:
    """What every card owes the catalog: indicator, topic, short summary naming what and why,
    Markdown detail, override reasons with displays, real FHIR in every action."""
    assert card.indicator == indicator
    assert card.source.label
    assert card.source.topic is not None and card.source.topic.code == rule_id
    assert 0 < len(card.summary) < 140
    for word in summary_words:
        assert word.lower() in card.summary.lower(), (word, card.summary)
    assert card.detail and "**Why:**" in card.detail
    assert card.override_reasons, "a clinician may proceed: override reasons are offered"
    assert all(reason.code and reason.display for reason in card.override_reasons)
    for action in actions_of(card):
        if action.type == "delete":
            assert action.resource is None
            assert action.resource_id and action.resource_id.startswith("MedicationRequest/")
            continue
        validate_fhir(action.resource)
        if action.resource["resourceType"] == "ServiceRequest":
            codes = action.resource["code"]["coding"]
            assert codes and all(c["system"] == LOINC for c in codes)
            assert (action.resource["status"], action.resource["intent"]) == ("draft", "order")
            assert action.resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}


def ordered_loinc_codes(card: Card) -> list[str]:
    return [
        coding["code"]
        for action in actions_of(card)
        if action.resource and action.resource["resourceType"] == "ServiceRequest"
        for coding in action.resource["code"]["coding"]
    ]


# Hook requests for the HTTP tests ----------------------------------------------------------------


def _bundle(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"resource": copy.deepcopy(r)} for r in resources]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return bundle


def _loinc(resource: dict[str, Any]) -> set[str]:
    return {c.get("code") for c in resource.get("code", {}).get("coding", [])}


def hook_request(
    hook: str,
    chart: Sequence[dict[str, Any]] = (),
    drafts: Sequence[dict[str, Any]] = (),
    selections: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A complete CDS Hooks 2.0 request whose prefetch holds `chart` under every key our
    services declare (so nothing is fetched): the patient, conditions, active medications, and
    observations split into iron studies and electrolytes by LOINC code."""
    iron_codes = {
        code
        for name in ("ferritin", "transferrin-saturation", "serum-iron", "tibc")
        for code in lab(name).loinc_codes
    }
    of_type = [r for r in chart if r["resourceType"] == "Observation"]
    b6_codes = set(lab("vitamin-b6").loinc_codes)
    prefetch = {
        "patient": patient(),
        "conditions": _bundle(r for r in chart if r["resourceType"] == "Condition"),
        "activeMedications": _bundle(
            r
            for r in chart
            if r["resourceType"] == "MedicationRequest" and r.get("status") == "active"
        ),
        "ironStudies": _bundle(r for r in of_type if _loinc(r) & iron_codes),
        "electrolytes": _bundle(r for r in of_type if not _loinc(r) & (iron_codes | b6_codes)),
        "vitaminB6": _bundle(r for r in of_type if _loinc(r) & b6_codes),
    }
    context: dict[str, Any] = {"userId": "Practitioner/dr-1", "patientId": PATIENT_ID}
    if hook != "patient-view":
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": copy.deepcopy(d)} for d in drafts],
        }
    if hook == "order-select":
        context["selections"] = list(
            selections
            if selections is not None
            else [f"MedicationRequest/{d['id']}" for d in drafts]
        )
    return {
        "hook": hook,
        "hookInstance": "0b9e4c1a-3f5d-4e2b-9a7c-1d2e3f4a5b6c",
        "context": context,
        "prefetch": prefetch,
    }


def cards_by_rule(response_json: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for card in response_json["cards"]:
        found.setdefault(card["source"]["topic"]["code"], []).append(card)
    return found


def check_json_actions(card: dict[str, Any]) -> None:
    """Every action in a serialised card: deletes name resourceId only, others carry valid R4."""
    for suggestion in card.get("suggestions", []):
        for action in suggestion.get("actions", []):
            if action["type"] == "delete":
                assert "resource" not in action
                assert action["resourceId"].startswith("MedicationRequest/")
            else:
                validate_fhir(action["resource"])
