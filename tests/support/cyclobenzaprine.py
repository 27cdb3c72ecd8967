"""Orders for C1 cyclobenzaprine-duration, C2 cyclobenzaprine-cns-spasticity and C3
cyclobenzaprine-dose: cyclobenzaprine by product, ingredient and brand, another muscle relaxant,
and a condition with spasticity of central origin."""

from __future__ import annotations

from typing import Any

from tests.support.fhir import ICD10CM, RX, concept, dosage, medication_request, supply

TABLET_10 = concept(RX, "828348", "cyclobenzaprine hydrochloride 10 MG Oral Tablet")
INGREDIENT = concept(RX, "21949", "cyclobenzaprine")
FLEXERIL = concept(text="Flexeril 10 mg")
METHOCARBAMOL = concept(RX, "6845", "methocarbamol")
MS = concept(ICD10CM, "G35.A", "Relapsing-remitting multiple sclerosis")


def long_high_dose_draft(**extra: Any) -> dict[str, Any]:
    """A draft too long (30 days) and too high (10 mg 4 times a day) for C1 and C3."""
    return medication_request(
        TABLET_10,
        id="cbp-1",
        dispenseRequest=supply(30),
        dosageInstruction=[dosage(10, "mg", "mg", per_day=4)],
        **extra,
    )
