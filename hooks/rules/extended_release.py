"""Telling an extended-release product from an immediate-release one, for the rules whose limits
differ between them (C3's daily maximum and frequency, C4's advice)."""

from __future__ import annotations

import re

from cds_service.kit import MedicationOrder

EXTENDED_RELEASE = re.compile(r"\b(extended[ -]release|ER|XR|24 ?HR|amrix)\b", re.IGNORECASE)


def is_extended_release(order: MedicationOrder, codes: frozenset[tuple[str, str]]) -> bool:
    """By product code (`codes`: the value set's extended-release products) or by name."""
    codings = getattr(order.medication, "coding", None) or []
    if any((c.system, c.code) in codes for c in codings):
        return True
    return bool(EXTENDED_RELEASE.search(order.medication_label))
