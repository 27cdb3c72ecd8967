"""Charts for E1 cramps-electrolytes-abnormal and E2 diuretic-electrolytes-due: leg cramps, a
loop diuretic taken for months, potassium, magnesium and calcium results."""

from __future__ import annotations

from typing import Any

from tests.support.concepts import CRAMP
from tests.support.fhir import RX, active_order, concept, condition, lab_result

FUROSEMIDE = concept(RX, "313988", "furosemide 40 MG Oral Tablet")
potassium = lab_result("2823-3", "mmol/L")
magnesium = lab_result("19123-9", "mg/dL")
calcium = lab_result("17861-6", "mg/dL")


def cramps(**extra: Any) -> dict[str, Any]:
    return condition(CRAMP, id="cramps", **extra)


def active(medication: dict[str, Any], id: str = "diuretic", **extra: Any) -> dict[str, Any]:
    """An active order authored 200 days ago."""
    return active_order(medication, id=id, days_ago=200, **extra)
