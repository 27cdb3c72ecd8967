"""FHIR R4 JSON for the rule tests: a small chart, draft orders, lab results, as an EHR sends them.

Every builder returns plain dicts so a test reads like the data; `validate` holds a resource to
the R4B models. Times count back from AS_OF, the date every test is evaluated at.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from tests.conftest import AS_OF

PATIENT_ID = "pt-1"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


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


def active_order(
    medication: dict[str, Any], id: str, days_ago: float, **extra: Any
) -> dict[str, Any]:
    """An active MedicationRequest authored `days_ago` days before AS_OF."""
    return medication_request(medication, id=id, status="active", authored=day(days_ago), **extra)


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



def lab_result(loinc: str, unit: str | None) -> Callable[..., dict[str, Any]]:
    """A builder of `loinc` results: `value` in `unit` (unless told otherwise), 10 days ago
    (unless told otherwise), as `observation` makes them."""

    def result(
        value: Any, unit: str | None = unit, days_ago: float = 10, **extra: Any
    ) -> dict[str, Any]:
        return observation(loinc, value, unit, days_ago, **extra)

    return result


def validate(resource: dict[str, Any]) -> Any:
    """The resource as an R4B model; raises when it is not valid FHIR."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def drafts(**medications: dict[str, Any]) -> list[dict[str, Any]]:
    """Draft orders by id: `drafts(d1=A, d2=B)` is `[medication_request(A, id="d1"),
    medication_request(B, id="d2")]`."""
    return [medication_request(medication, id=id) for id, medication in medications.items()]
