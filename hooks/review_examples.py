"""Should-not-fire examples for the clinical review page: for each rule, one of the example
patients in `fixtures/golden` changed in one clinically meaningful way that must keep the rule
quiet. The review page shows each beside the firing example, and a test runs every one.

Each change is the smallest one that answers a reviewer's "and when does it stay quiet?": a
malaria reason for quinine, a 10-day course for cyclobenzaprine, an old stroke without sequelae,
an order in hand that is not about the finding. Clinical content, so it lives with the rules.

Refill examples (`REFILL_EXAMPLES`) are firing examples sent as a medication-refill request
instead: the same patient, the drug asked for as a refill, so a reviewer sees how the card reads
to the clinician working through a refill queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cds_service.kit import LOINC, MEDICATION_REFILL, RXNORM, SNOMED, UCUM

Request = dict[str, Any]


@dataclass(frozen=True)
class QuietExample:
    rule_id: str
    base: str  # a request in fixtures/golden, without ".request.json"
    why: str  # what was changed, in a reviewer's words
    change: Callable[[Request], None]


def _entries(request: Request, key: str) -> list[dict[str, Any]]:
    bundle = request["prefetch"][key]
    if bundle is None:
        bundle = request["prefetch"][key] = {"resourceType": "Bundle", "type": "searchset"}
    return bundle.setdefault("entry", [])


def _resource(request: Request, key: str, resource_id: str) -> dict[str, Any]:
    return next(e["resource"] for e in _entries(request, key)
                if e["resource"].get("id") == resource_id)


def _remove(request: Request, key: str, *resource_ids: str) -> None:
    entries = _entries(request, key)
    entries[:] = [e for e in entries if e["resource"].get("id") not in resource_ids]


def _draft(request: Request, draft_id: str) -> dict[str, Any]:
    return next(e["resource"] for e in request["context"]["draftOrders"]["entry"]
                if e["resource"]["id"] == draft_id)


def _medication(draft: dict[str, Any], code: str, display: str) -> None:
    draft["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}


def _lab(request: Request, key: str, resource_id: str, loinc: str, display: str, value: float,
         unit: str, when: str) -> None:
    patient = request["context"]["patientId"]
    _entries(request, key).append({"resource": {
        "resourceType": "Observation", "id": resource_id, "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
        "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}})


def _malaria_reason(request: Request) -> None:
    _draft(request, "draft-quinine")["reasonCode"] = [{"coding": [
        {"system": SNOMED, "code": "61462000", "display": "Malaria"}], "text": "Malaria"}]


def _ten_day_course(request: Request) -> None:
    _draft(request, "draft-cyclo")["dispenseRequest"] = {"expectedSupplyDuration": {
        "value": 10, "unit": "days", "system": UCUM, "code": "d"}}


def _old_stroke(request: Request) -> None:
    _resource(request, "conditions", "stroke-003-c1")["onsetDateTime"] = "2023-09-12T00:00:00Z"


def _three_a_day(request: Request) -> None:
    dosage = _draft(request, "draft-cyclo")["dosageInstruction"][0]
    dosage["timing"]["repeat"]["frequency"] = 3
    dosage["text"] = "10 mg three times a day"


def _stroke_a_year_ago(request: Request) -> None:
    _resource(request, "conditions", "stroke-003-c1")["onsetDateTime"] = "2025-09-12T00:00:00Z"


def _gabapentin_instead(request: Request) -> None:
    _medication(_draft(request, "draft-pramipexole"), "310431", "gabapentin 300 MG Oral Capsule")


def _no_restless_legs(request: Request) -> None:
    _remove(request, "conditions", "rls-006-c1")


def _saturation_on_record(request: Request) -> None:
    _lab(request, "ironStudies", "quiet-tsat", "2502-3", "Iron saturation [Mass Fraction] in "
         "Serum or Plasma", 30, "%", "2026-10-20T09:00:00Z")


def _ferritin_150(request: Request) -> None:
    _resource(request, "ironStudies", "rls-004-o1")["valueQuantity"]["value"] = 150


def _magnesium_normal(request: Request) -> None:
    _resource(request, "electrolytes", "cramps-005-o1")["valueQuantity"]["value"] = 0.85


def _recent_potassium(request: Request) -> None:
    _resource(request, "electrolytes", "cramps-005-o2")["effectiveDateTime"] = \
        "2026-11-10T09:00:00Z"


def _no_diuretic(request: Request) -> None:
    _remove(request, "activeMedications", "cramps-005-m1")


def _unrelated_order(request: Request) -> None:
    _medication(_draft(request, "draft-gabapentin"), "313782",
                "acetaminophen 325 MG Oral Tablet")


def _cramps_resolved(request: Request) -> None:
    _resource(request, "conditions", "liver-008-c4")["clinicalStatus"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
        "code": "resolved"}]}


def _no_pad(request: Request) -> None:
    _remove(request, "conditions", "liver-008-c2")


def _recent_b6(request: Request) -> None:
    _lab(request, "vitaminB6", "quiet-b6", "62236-5", "Pyridoxal phosphate [Moles/volume] in "
         "Serum or Plasma", 40, "nmol/L", "2026-10-01T09:00:00Z")


def _younger(request: Request) -> None:
    request["prefetch"]["patient"]["birthDate"] = "1976-09-30"


def _af_resolved(request: Request) -> None:
    _resource(request, "conditions", "cyclo-older-009-c1")["clinicalStatus"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
        "code": "resolved"}]}


def _bupropion_instead(request: Request) -> None:
    _medication(_draft(request, "draft-sertraline"), "993541",
                "24 HR Bupropion Hydrochloride 150 MG Extended Release Oral Tablet")


QUIET_EXAMPLES = (
    QuietExample("quinine-leg-cramps", "cramps-diuretic-low-magnesium.order-sign",
                 "the quinine order gives malaria as its reason", _malaria_reason),
    QuietExample("cyclobenzaprine-duration", "stroke-diazepam-cyclobenzaprine.order-sign",
                 "the cyclobenzaprine order is a 10-day course", _ten_day_course),
    QuietExample("cyclobenzaprine-cns-spasticity", "stroke-diazepam-cyclobenzaprine.order-sign",
                 "the stroke was three years ago, with no spasticity, paresis or hemiplegia "
                 "on record", _old_stroke),
    QuietExample("cyclobenzaprine-dose", "stroke-diazepam-cyclobenzaprine.order-sign",
                 "cyclobenzaprine is 10 mg three times a day (30 mg a day, the labelled maximum)",
                 _three_a_day),
    QuietExample("cyclobenzaprine-older-adult", "cyclobenzaprine-older-af.order-sign",
                 "the patient is 50", _younger),
    QuietExample("cyclobenzaprine-contraindication", "cyclobenzaprine-older-af.order-sign",
                 "the atrial fibrillation is resolved", _af_resolved),
    QuietExample("benzodiazepine-stroke-recovery", "stroke-diazepam-cyclobenzaprine.order-sign",
                 "the stroke was over a year ago, past the recovery window", _stroke_a_year_ago),
    QuietExample("rls-dopaminergic-augmentation", "rls-pramipexole.order-sign",
                 "gabapentin is ordered instead of pramipexole", _gabapentin_instead),
    QuietExample("rls-dopamine-antagonist", "rls-haloperidol.order-select",
                 "no restless legs are on record", _no_restless_legs),
    QuietExample("rls-worsening-drugs", "rls-sertraline.order-select",
                 "bupropion is ordered instead of sertraline", _bupropion_instead),
    QuietExample("rls-iron-studies-due", "rls-low-ferritin.order-sign",
                 "a transferrin saturation from last month is on record beside the ferritin",
                 _saturation_on_record),
    QuietExample("rls-iron-low", "rls-low-ferritin.order-sign",
                 "ferritin is 150 ng/mL", _ferritin_150),
    QuietExample("cramps-electrolytes-abnormal", "cramps-diuretic-low-magnesium.patient-view",
                 "magnesium is 0.85 mmol/L", _magnesium_normal),
    QuietExample("diuretic-electrolytes-due", "cramps-diuretic-low-magnesium.patient-view",
                 "potassium and magnesium were checked this month", _recent_potassium),
    QuietExample("cramps-contributing-medications",
                 "cramps-diuretic-low-magnesium.patient-view",
                 "no diuretic, statin or beta-blocker is active", _no_diuretic),
    QuietExample("esrd-cramps-gabapentin", "esrd-dialysis-rls.order-sign",
                 "the order in hand is acetaminophen, neither a restless legs drug nor a cramp "
                 "treatment", _unrelated_order),
    QuietExample("cirrhosis-cramps-baclofen", "cirrhosis-pad-diabetes-cramps.patient-view",
                 "the cramps are resolved", _cramps_resolved),
    QuietExample("pad-claudication-exercise", "cirrhosis-pad-diabetes-cramps.patient-view",
                 "no peripheral artery disease is on record", _no_pad),
    QuietExample("diabetes-spasm-b6", "cirrhosis-pad-diabetes-cramps.patient-view",
                 "a vitamin B6 result from two months ago is on record", _recent_b6),
)


def as_refill(request: Request, draft_id: str) -> None:
    """`request` made a medication-refill request for its draft `draft_id`: the refill request
    in context.medications, and no user (a refill from a pharmacy or portal often has none)."""
    refill = _draft(request, draft_id)
    refill["status"] = "draft"
    request["hook"] = MEDICATION_REFILL
    context = request["context"]
    context.pop("draftOrders")
    context.pop("selections", None)
    context.pop("userId", None)
    context["medications"] = {"resourceType": "Bundle", "type": "collection",
                              "entry": [{"resource": refill}]}


@dataclass(frozen=True)
class RefillExample:
    rule_id: str
    base: str  # a request in fixtures/golden, without ".request.json"
    why: str  # what the refill asks for, in a reviewer's words
    change: Callable[[Request], None]  # makes the base request a medication-refill request


REFILL_EXAMPLES = (
    RefillExample("quinine-leg-cramps", "cramps-diuretic-low-magnesium.order-sign",
                  "a refill of quinine sulfate 324 mg taken for night-time leg cramps",
                  lambda request: as_refill(request, "draft-quinine")),
)
