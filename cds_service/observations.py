"""Lab results as the rules need them: the latest countable result of a value set, in a
canonical unit, with the lab's own low limit and flags.

Catalog ground rules: status final/amended/corrected/preliminary; the most recent by
effectiveDateTime / effectivePeriod / issued; the value normalised by its UCUM unit (never by
LOINC code); a value whose unit is unknown is returned with `normalised = None` so the card can
say it was not compared. Which codes and which conversions apply is data from `hooks/`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Protocol

from .terminology import ValueSet
from .units import ucum_code

COUNTABLE_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})


class Normaliser(Protocol):
    @property
    def canonical_unit(self) -> str: ...

    @property
    def known_units(self) -> frozenset[str]: ...

    def normalise(self, value: float | Decimal, ucum: str | None) -> float | None: ...


def as_instant(value: date | datetime | None) -> datetime | None:
    """FHIR dates and dateTimes as aware instants (a bare date is read as its start, UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def observation_time(observation: Any) -> datetime | None:
    if observation.effectiveDateTime is not None:
        return as_instant(observation.effectiveDateTime)
    if observation.effectiveInstant is not None:
        return as_instant(observation.effectiveInstant)
    period = observation.effectivePeriod
    if period is not None and (period.end or period.start):
        return as_instant(period.end or period.start)
    return as_instant(observation.issued)


@dataclass(frozen=True)
class LabResult:
    observation: Any
    when: datetime
    value: float
    unit_code: str | None
    unit_label: str
    normalised: float | None
    canonical_unit: str
    low_limit: float | None
    flags: frozenset[str]
    comparator: str | None = None

    @property
    def comparable(self) -> bool:
        """An exact value in a known unit."""
        return self.normalised is not None and self.comparator is None

    def is_below(self, limit: float) -> bool:
        """Certainly below `limit`: an exact value under it, or '<x' / '<=x' with x <= limit."""
        if self.normalised is None:
            return False
        if self.comparator is None:
            return self.normalised < limit
        return self.comparator in ("<", "<=") and self.normalised <= limit

    def is_at_or_below(self, limit: float) -> bool:
        if self.normalised is None:
            return False
        if self.comparator is None:
            return self.normalised <= limit
        return self.comparator in ("<", "<=") and self.normalised <= limit

    def describe(self) -> str:
        """'1.4 mg/dL on 2026-10-01' as reported (with the canonical value when it differs)."""
        shown = f"{self.comparator or ''}{_number(self.value)} {self.unit_label}".strip()
        if self.normalised is not None and self.unit_code != self.canonical_unit:
            shown += f" (= {_number(self.normalised)} {self.canonical_unit})"
        return f"{shown} on {self.when.date().isoformat()}"


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _quantity_result(
    observation: Any, quantity: Any, normaliser: Normaliser, when: datetime,
    reference_ranges: Iterable[Any], interpretation: Iterable[Any],
) -> LabResult | None:
    if quantity is None or quantity.value is None:
        return None
    code = ucum_code(quantity, normaliser.known_units)
    normalised = normaliser.normalise(quantity.value, code)
    low = None
    for reference_range in reference_ranges or []:
        low_quantity = reference_range.low
        if low_quantity is not None and low_quantity.value is not None:
            low = normaliser.normalise(low_quantity.value,
                                       ucum_code(low_quantity, normaliser.known_units))
            break
    flags = frozenset(
        coding.code for concept in interpretation or [] for coding in concept.coding or []
        if coding.code
    )
    return LabResult(
        observation=observation,
        when=when,
        value=float(quantity.value),
        unit_code=code,
        unit_label=quantity.unit or quantity.code or "(no unit)",
        normalised=normalised,
        canonical_unit=normaliser.canonical_unit,
        low_limit=low,
        flags=flags,
        comparator=quantity.comparator,
    )


def results(
    observations: Iterable[Any], value_set: ValueSet, normaliser: Normaliser
) -> list[LabResult]:
    """Every countable quantitative result of `value_set`, newest first (panel components too)."""
    found = []
    for observation in observations:
        if observation.status not in COUNTABLE_STATUSES:
            continue
        when = observation_time(observation)
        if when is None:
            continue
        if value_set.match_codings(observation.code.coding or []):
            result = _quantity_result(observation, observation.valueQuantity, normaliser, when,
                                      observation.referenceRange, observation.interpretation)
            if result:
                found.append(result)
            continue
        for component in observation.component or []:
            if value_set.match_codings(component.code.coding or []):
                result = _quantity_result(observation, component.valueQuantity, normaliser,
                                          when, component.referenceRange,
                                          component.interpretation)
                if result:
                    found.append(result)
    return sorted(found, key=lambda r: r.when, reverse=True)


def latest(
    observations: Iterable[Any], value_set: ValueSet, normaliser: Normaliser, since: datetime
) -> LabResult | None:
    """The most recent result on or after `since`, or None when there is none in the window."""
    for result in results(observations, value_set, normaliser):
        return result if result.when >= since else None
    return None
