"""UCUM units of lab values, and conversion of a value into its value set's canonical unit.

This module holds no clinical fact: which units a lab test may arrive in, and the factor that
brings each into the canonical unit, are data in the observation value set documents under
`hooks/valuesets/` (`canonical_unit`, `unit_conversions`). A unit is recognised only by its UCUM
code, which is case-sensitive ('meq/L' is UCUM, 'mEq/L' is a human label), so a value whose unit
is unknown or missing is never converted: the caller must not compare it (catalog ground rules).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from numbers import Real
from pathlib import Path
from typing import Any

from cds_service.kit.code_systems import UCUM


def _field(quantity: Any, name: str) -> Any:
    if isinstance(quantity, Mapping):
        return quantity.get(name)
    return getattr(quantity, name, None)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def ucum_code(quantity: Any, known_units: Collection[str] = ()) -> str | None:
    """The UCUM code of a FHIR Quantity (attributes or keys `value`, `unit`, `system`, `code`).

    `code` when `system` is UCUM or absent. Without a `code`, the human-readable `unit` counts
    only when it is, character for character, one of `known_units` (UCUM codes the caller can
    convert), so a label such as 'mEq/L' or 'µg/L' is never taken for a code. Otherwise None.
    """
    if quantity is None:
        return None
    system = _text(_field(quantity, "system"))
    code = _text(_field(quantity, "code"))
    if code is not None:
        return code if system in (None, UCUM) else None
    unit = _text(_field(quantity, "unit"))
    if unit is not None and unit in known_units:
        return unit
    return None


def _factor(entry: Mapping[str, Any], where: str) -> float:
    factor = entry.get("factor")
    if isinstance(factor, bool) or not isinstance(factor, Real):
        raise ValueError(f"{where}: factor must be a number, got {factor!r}")
    value = float(factor)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: factor must be a positive finite number, got {factor!r}")
    return value


@dataclass(frozen=True)
class UnitNormaliser:
    """Converts a lab value from any of its value set's known UCUM units into the canonical one.

    `conversions` pairs each known UCUM code with the factor that brings a value in that unit
    into `canonical_unit` (value_in_canonical = value * factor); the canonical unit itself is
    among them with factor 1.
    """

    value_set: str
    canonical_unit: str
    conversions: tuple[tuple[str, float], ...]

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> UnitNormaliser:
        """From an observation value set document; raises ValueError when it is malformed."""
        value_set = str(document.get("id", "?"))
        canonical = _text(document.get("canonical_unit"))
        if canonical is None:
            raise ValueError(f"value set {value_set}: no canonical_unit")
        factors: dict[str, float] = {}
        for index, entry in enumerate(document.get("unit_conversions") or []):
            where = f"value set {value_set}, unit_conversions[{index}]"
            source, target = _text(entry.get("from")), _text(entry.get("to"))
            if source is None:
                raise ValueError(f"{where}: no 'from' unit")
            if target != canonical:
                raise ValueError(f"{where}: converts to {target!r}, not to {canonical!r}")
            if source in factors:
                raise ValueError(f"{where}: {source!r} is listed twice")
            factors[source] = _factor(entry, where)
        if factors.get(canonical) != 1.0:
            raise ValueError(f"value set {value_set}: no identity entry for {canonical!r}")
        return cls(value_set, canonical, tuple(factors.items()))

    @classmethod
    def load(cls, path: Path) -> UnitNormaliser:
        return cls.from_document(json.loads(path.read_text(encoding="utf-8")))

    @property
    def known_units(self) -> frozenset[str]:
        """The UCUM codes this value set can convert (case-sensitive, exactly as listed)."""
        return frozenset(unit for unit, _ in self.conversions)

    def factor(self, ucum: str | None) -> float | None:
        if ucum is None:
            return None
        for unit, factor in self.conversions:
            if unit == ucum:
                return factor
        return None

    def normalise(self, value: float | Decimal | None, ucum: str | None) -> float | None:
        """`value` in the canonical unit; None when the unit is missing or unknown (or the value
        is missing or not a finite number): such a value must not be compared."""
        factor = self.factor(ucum)
        if factor is None or value is None or isinstance(value, bool):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(number):
            return None
        return number * factor

    def normalise_quantity(self, quantity: Any) -> float | None:
        """A FHIR Quantity's value in the canonical unit, its unit read by `ucum_code`."""
        if quantity is None:
            return None
        return self.normalise(_field(quantity, "value"), ucum_code(quantity, self.known_units))
