"""DSTU2 `MedicationOrder` and STU3 `MedicationRequest` mapped onto R4 `MedicationRequest` JSON.

CDS Hooks does not say which FHIR version a request's resources use; the official sandbox's
default FHIR server is DSTU2, so its order hooks carry `MedicationOrder`, and STU3 servers give
STU3 `MedicationRequest`. The rules read R4 models only, so an order is mapped before parsing:
each element with an R4 counterpart is renamed or reshaped, every other element is dropped
(never guessed). The original resource type and id are kept (`Mapped.source_type`), so the order
is still named as the client named it (`MedicationOrder/order-123`).

Version is told by shape: `MedicationOrder` is DSTU2; a `MedicationRequest` is STU3 when it
carries an STU3-only element (`context`, `requester.agent`, `definition`, `substitution.allowed`,
or a dosage with `dose[x]`/`rate[x]` directly on it rather than in `doseAndRate`); else R4,
passed through untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from cds_service.kit.record import DSTU2, R4, STU3

ORDER_TYPES = frozenset({"MedicationRequest", "MedicationOrder"})

# DSTU2 MedicationOrder.status values, all of which R4 also has; anything else is "unknown".
DSTU2_STATUSES = frozenset({"active", "on-hold", "completed", "entered-in-error", "stopped",
                            "draft"})
R4_STATUSES = frozenset({"active", "on-hold", "cancelled", "completed", "entered-in-error",
                         "stopped", "draft", "unknown"})

_DOSE_KEYS = ("doseQuantity", "doseRange")
_RATE_KEYS = ("rateRatio", "rateRange", "rateQuantity")
# Dosage elements with the same name and meaning in DSTU2/STU3 and R4.
_DOSAGE_SAME = ("sequence", "text", "patientInstruction", "asNeededBoolean",
                "asNeededCodeableConcept", "route", "method", "maxDosePerPeriod",
                "maxDosePerAdministration", "maxDosePerLifetime")
_REPEAT_SAME = ("boundsDuration", "boundsRange", "boundsPeriod", "count", "countMax", "duration",
                "durationMax", "durationUnit", "frequency", "frequencyMax", "period", "periodMax",
                "periodUnit", "dayOfWeek", "timeOfDay", "offset")
_DISPENSE_SAME = ("validityPeriod", "numberOfRepeatsAllowed", "quantity", "expectedSupplyDuration")
# STU3 MedicationRequest elements that R4 has unchanged.
_STU3_SAME = ("id", "identifier", "basedOn", "groupIdentifier", "status", "intent", "category",
              "priority", "medicationCodeableConcept", "medicationReference", "subject",
              "supportingInformation", "authoredOn", "recorder", "reasonCode", "reasonReference",
              "note", "detectedIssue", "eventHistory")


@dataclass(frozen=True)
class Mapped:
    """An order as R4 JSON, with the type and FHIR version the client sent it in."""

    resource: dict[str, Any]
    source_type: str
    fhir_version: str


def _present(value: Any) -> bool:
    return value is not None and value != [] and value != {}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _dosages(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in _as_list(raw.get("dosageInstruction")) if isinstance(d, dict)]


def order_version(raw: dict[str, Any]) -> str | None:
    """DSTU2, STU3 or R4 for a medication order; None for any other resource."""
    resource_type = raw.get("resourceType")
    if resource_type == "MedicationOrder":
        return DSTU2
    if resource_type != "MedicationRequest":
        return None
    requester = raw.get("requester")
    substitution = raw.get("substitution")
    if (
        "context" in raw
        or "definition" in raw
        or (isinstance(requester, dict) and "agent" in requester)
        or (isinstance(substitution, dict) and "allowed" in substitution)
        or any(
            "doseAndRate" not in d and any(k in d for k in _DOSE_KEYS + _RATE_KEYS)
            for d in _dosages(raw)
        )
    ):
        return STU3
    return R4


def _timing(timing: Any) -> Any:
    """DSTU2 Timing (`periodUnits`, `durationUnits`, `boundsQuantity`, single `when`) as R4."""
    if not isinstance(timing, dict):
        return None
    out = {k: copy.deepcopy(timing[k]) for k in ("event", "code") if k in timing}
    repeat = timing.get("repeat")
    if isinstance(repeat, dict):
        mapped = {k: copy.deepcopy(repeat[k]) for k in _REPEAT_SAME if k in repeat}
        for old, new in (("periodUnits", "periodUnit"), ("durationUnits", "durationUnit"),
                         ("boundsQuantity", "boundsDuration")):
            if old in repeat and new not in mapped:
                mapped[new] = copy.deepcopy(repeat[old])
        if "when" in repeat:
            mapped["when"] = _as_list(copy.deepcopy(repeat["when"]))
        if mapped:
            out["repeat"] = mapped
    return out or None


def _dosage(dosage: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(dosage[k]) for k in _DOSAGE_SAME if k in dosage}
    instructions = dosage.get("additionalInstruction", dosage.get("additionalInstructions"))
    if _present(instructions):
        out["additionalInstruction"] = _as_list(copy.deepcopy(instructions))
    site = dosage.get("site", dosage.get("siteCodeableConcept"))
    if isinstance(site, dict):
        out["site"] = copy.deepcopy(site)
    timing = _timing(dosage.get("timing"))
    if timing:
        out["timing"] = timing
    if "doseAndRate" in dosage:
        out["doseAndRate"] = copy.deepcopy(dosage["doseAndRate"])
    else:
        dose_and_rate = {k: copy.deepcopy(dosage[k]) for k in _DOSE_KEYS + _RATE_KEYS
                         if k in dosage}
        if dose_and_rate:
            out["doseAndRate"] = [dose_and_rate]
    return out


def _dispense(dispense: Any, stu3: bool) -> dict[str, Any] | None:
    if not isinstance(dispense, dict):
        return None
    keys = _DISPENSE_SAME + (("performer",) if stu3 else ())
    out = {k: copy.deepcopy(dispense[k]) for k in keys if k in dispense}
    return out or None


def _common(raw: dict[str, Any], out: dict[str, Any], stu3: bool) -> dict[str, Any]:
    dosages = [_dosage(d) for d in _dosages(raw)]
    if dosages:
        out["dosageInstruction"] = dosages
    dispense = _dispense(raw.get("dispenseRequest"), stu3)
    if dispense:
        out["dispenseRequest"] = dispense
    return out


def dstu2_to_r4(raw: dict[str, Any]) -> dict[str, Any]:
    """A DSTU2 MedicationOrder as an R4 MedicationRequest (same id)."""
    status = raw.get("status")
    out: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": status if status in DSTU2_STATUSES else "unknown",
        "intent": "order",
    }
    for old, new in (("id", "id"), ("identifier", "identifier"),
                     ("medicationCodeableConcept", "medicationCodeableConcept"),
                     ("medicationReference", "medicationReference"),
                     ("patient", "subject"), ("encounter", "encounter"),
                     ("prescriber", "requester"), ("dateWritten", "authoredOn")):
        if _present(raw.get(old)):
            out[new] = copy.deepcopy(raw[old])
    if isinstance(raw.get("reasonCodeableConcept"), dict):
        out["reasonCode"] = [copy.deepcopy(raw["reasonCodeableConcept"])]
    if isinstance(raw.get("reasonReference"), dict):
        out["reasonReference"] = [copy.deepcopy(raw["reasonReference"])]
    if isinstance(raw.get("note"), str) and raw["note"]:
        out["note"] = [{"text": raw["note"]}]
    if "contained" in raw:
        out["contained"] = [medication_to_r4(r) if isinstance(r, dict) else r
                            for r in _as_list(raw["contained"])]
    return _common(raw, out, stu3=False)


def stu3_to_r4(raw: dict[str, Any]) -> dict[str, Any]:
    """An STU3 MedicationRequest as an R4 one (same id)."""
    out: dict[str, Any] = {"resourceType": "MedicationRequest"}
    out.update({k: copy.deepcopy(raw[k]) for k in _STU3_SAME if k in raw})
    if out.get("status") not in R4_STATUSES:
        out["status"] = "unknown"
    out.setdefault("intent", "order")
    requester = raw.get("requester")
    if isinstance(requester, dict) and isinstance(requester.get("agent"), dict):
        out["requester"] = copy.deepcopy(requester["agent"])
    elif isinstance(requester, dict) and "agent" not in requester:
        out["requester"] = copy.deepcopy(requester)
    context = raw.get("context")
    if isinstance(context, dict) and not str(context.get("reference", "")).startswith(
        "EpisodeOfCare/"
    ):
        out["encounter"] = copy.deepcopy(context)
    substitution = raw.get("substitution")
    if isinstance(substitution, dict) and isinstance(substitution.get("allowed"), bool):
        out["substitution"] = {"allowedBoolean": substitution["allowed"]}
        if isinstance(substitution.get("reason"), dict):
            out["substitution"]["reason"] = copy.deepcopy(substitution["reason"])
    if "contained" in raw:
        out["contained"] = [medication_to_r4(r) if isinstance(r, dict) else r
                            for r in _as_list(raw["contained"])]
    return _common(raw, out, stu3=True)


def to_r4(raw: dict[str, Any]) -> Mapped:
    """Any medication order as R4 JSON; an R4 order (or anything else) is returned as is."""
    version = order_version(raw)
    source_type = str(raw.get("resourceType"))
    if version == DSTU2:
        return Mapped(dstu2_to_r4(raw), source_type, DSTU2)
    if version == STU3:
        return Mapped(stu3_to_r4(raw), source_type, STU3)
    return Mapped(raw, source_type, R4)


_OLD_MEDICATION_KEYS = ("isBrand", "isOverTheCounter", "product", "package", "image")


def medication_to_r4(raw: dict[str, Any]) -> dict[str, Any]:
    """A DSTU2/STU3 Medication as R4 (code, form, ingredients); others returned unchanged."""
    if raw.get("resourceType") != "Medication":
        return raw
    ingredients = _as_list(raw.get("ingredient"))
    product_raw = raw.get("product")
    product: dict[str, Any] = product_raw if isinstance(product_raw, dict) else {}
    old = any(k in raw for k in _OLD_MEDICATION_KEYS) or any(
        isinstance(i, dict) and ("item" in i or "amount" in i) for i in ingredients
    )
    if not old:
        return raw
    out: dict[str, Any] = {"resourceType": "Medication"}
    for key in ("id", "code", "status", "manufacturer"):
        if _present(raw.get(key)):
            out[key] = copy.deepcopy(raw[key])
    form = raw.get("form", product.get("form"))
    if isinstance(form, dict):
        out["form"] = copy.deepcopy(form)
    mapped = []
    for ingredient in ingredients + _as_list(product.get("ingredient")):
        if not isinstance(ingredient, dict):
            continue
        item: dict[str, Any] = {}
        for key in ("itemCodeableConcept", "itemReference", "isActive"):
            if key in ingredient:
                item[key] = copy.deepcopy(ingredient[key])
        if isinstance(ingredient.get("item"), dict):  # DSTU2: a Reference
            item["itemReference"] = copy.deepcopy(ingredient["item"])
        strength = ingredient.get("strength", ingredient.get("amount"))
        if isinstance(strength, dict):
            item["strength"] = copy.deepcopy(strength)
        if "itemCodeableConcept" in item or "itemReference" in item:
            mapped.append(item)
    if mapped:
        out["ingredient"] = mapped
    return out
