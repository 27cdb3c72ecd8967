"""Charts for D1 rls-dopaminergic-augmentation and A1 rls-dopamine-antagonist: restless legs for
over a year, a dopaminergic drug and a dopamine-blocking drug."""

from __future__ import annotations

from typing import Any

from tests.support.concepts import RLS
from tests.support.fhir import RX, concept, condition, day

ROPINIROLE_1 = concept(RX, "314208", "ropinirole 1 MG Oral Tablet")
HALOPERIDOL_20 = concept(RX, "197754", "haloperidol 20 MG Oral Tablet")


def rls(**extra: Any) -> dict[str, Any]:
    """Restless legs since 400 days ago."""
    return condition(RLS, id="rls", onset=day(400), **extra)
