"""Charts for R1 rls-iron-studies-due and R2 rls-iron-low: restless legs and iron studies."""

from __future__ import annotations

from typing import Any

from tests.support.concepts import RLS
from tests.support.fhir import condition, lab_result

ferritin = lab_result("2276-4", "ng/mL")
tsat = lab_result("2502-3", "%")
serum_iron = lab_result("2498-4", "ug/dL")
tibc = lab_result("2500-7", "ug/dL")


def rls(**extra: Any) -> dict[str, Any]:
    return condition(RLS, id="rls", **extra)
