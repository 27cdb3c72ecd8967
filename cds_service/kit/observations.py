"""Lab results as the rules need them: the latest countable result of a value set, in a
canonical unit, with the lab's own low limit and flags.

Catalog ground rules: status final/amended/corrected/preliminary; the most recent by
effectiveDateTime / effectivePeriod / issued; the value normalised by its UCUM unit (never by
LOINC code); a value whose unit is unknown is returned with `normalised = None` so the card can
say it was not compared. Which codes and which conversions apply is data from `hooks/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from cds_service.kit.lazy import LazyResources, screened
from cds_service.kit.terminology import ValueSet
from cds_service.kit.units import ucum_code

COUNTABLE_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})


class Normaliser(Protocol):
    @property
    def canonical_unit(self) -> str: ...

    @property
    def known_units(self) -> frozenset[str]: ...

    def normalise(self, value: float | Decimal, ucum: str | None) -> float | None: ...


def as_instant(value: date | datetime | str | None) -> datetime | None:
    """FHIR dates and dateTimes as aware instants (a bare date is read as its start, UTC).
    A partial date (`2020`, `2020-05`, which the models keep as text) names no instant: None,
    as if the date were absent."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=UTC)
    return None


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


def _observation_results(
    observation: Any, value_set: ValueSet, normaliser: Normaliser
) -> list[LabResult]:
    """The countable quantitative results of `value_set` in one Observation (or its panel)."""
    if observation.status not in COUNTABLE_STATUSES:
        return []
    when = observation_time(observation)
    if when is None:
        return []
    if value_set.match_codings(observation.code.coding or []):
        result = _quantity_result(observation, observation.valueQuantity, normaliser, when,
                                  observation.referenceRange, observation.interpretation)
        return [result] if result else []
    found = []
    for component in observation.component or []:
        if value_set.match_codings(component.code.coding or []):
            result = _quantity_result(observation, component.valueQuantity, normaliser,
                                      when, component.referenceRange, component.interpretation)
            if result:
                found.append(result)
    return found


def results(
    observations: Iterable[Any], value_set: ValueSet, normaliser: Normaliser
) -> list[LabResult]:
    """Every countable quantitative result of `value_set`, newest first (panel components too)."""
    found = []
    for observation in screened(observations, value_set):
        found.extend(_observation_results(observation, value_set, normaliser))
    return sorted(found, key=lambda r: r.when, reverse=True)


def latest(
    observations: Iterable[Any], value_set: ValueSet, normaliser: Normaliser, since: datetime
) -> LabResult | None:
    """The most recent result on or after `since`, or None when there is none in the window."""
    result = newest(observations, value_set,
                    lambda o: _observation_results(o, value_set, normaliser), since)
    return result if result is not None and result.when >= since else None


class Dated(Protocol):
    @property
    def when(self) -> datetime: ...


R = TypeVar("R", bound=Dated)


def newest(
    observations: Iterable[Any], value_set: ValueSet,
    results_of: Callable[[Any], list[R]], older_than_matters: datetime | None = None,
) -> R | None:
    """The newest of the results `results_of` finds in the Observations that may match
    `value_set` (ties: the record's order, as a stable sort of every result would give).

    On a lazy record, candidates are validated newest first by their raw date (one whose raw
    date cannot be read, first of all) and the search stops once no older candidate can win,
    or, with `older_than_matters`, once the rest are older than it. A validated time that
    differs from the raw date would make that order wrong: then every candidate is validated.
    """
    if not isinstance(observations, LazyResources):
        # max keeps the first of equals, as a stable newest-first sort would
        return max((r for o in observations for r in results_of(o)), key=lambda r: r.when,
                   default=None)
    raws = observations.raws
    candidates = observations.screened_indexes(value_set)
    keyed: Iterable[tuple[datetime | None, int]]
    if len(candidates) * _FEW < len(raws):  # a few: sort them
        keyed = sorted(observations.keyed(raw_observation_time, (
            index for index in candidates if _may_count(raws[index]))), key=_newest_first)
    else:  # many (a long history of this test): walk the record's one newest-first order
        keyed = _walk(observations, set(candidates))
    best: tuple[R, int, int] | None = None
    for raw_time, index in keyed:
        bound = best[0].when if best else older_than_matters
        if raw_time is not None and bound is not None and raw_time < bound:
            break  # this and every later candidate are older than what can still count
        observation = observations.model(index)
        if observation is None:
            continue
        if raw_time is not None and observation_time(observation) != raw_time:
            return newest(observations.screened(value_set), value_set, results_of)
        for position, result in enumerate(results_of(observation)):
            if best is None or _rank(result, index, position) < _rank(*best):
                best = (result, index, position)
    return best[0] if best else None


# Candidates fewer than 1/_FEW of the record are sorted on their own; more walk the record's
# newest-first order, sorted once per record (10,000 Observations: a dozen tests' sorts -> one).
_FEW = 16


def _walk(observations: LazyResources[Any], wanted: set[int],
          ) -> Iterator[tuple[datetime | None, int]]:
    """(raw time, index) of the countable resources in `wanted`, newest first (the order
    `_newest_first` gives), from the record's one sorted order."""
    times, order = observations.ordered(raw_observation_time, _newest_first)
    raws = observations.raws
    for index in order:
        if index in wanted and _may_count(raws[index]):
            yield times[index], index


def _rank(result: Dated, index: int, position: int) -> tuple[float, int, int]:
    """Newest first, then the record's order (the order a stable sort of `results` keeps)."""
    return (-result.when.timestamp(), index, position)


def _newest_first(item: tuple[datetime | None, int]) -> tuple[bool, float, int]:
    """Unreadable raw dates first (they must be validated to be placed), then newest first,
    then the record's order."""
    value, index = item
    return (value is not None, -value.timestamp() if value is not None else 0.0, index)


def _may_count(raw: dict[str, Any]) -> bool:
    status = raw.get("status")
    return status in COUNTABLE_STATUSES or not isinstance(status, str)


_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FULL_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def raw_observation_time(raw: dict[str, Any]) -> datetime | None:
    """`observation_time` read from raw JSON, for ordering before validation; None when the
    raw value is not a plain full date or dateTime (the models then decide)."""
    for name in ("effectiveDateTime", "effectiveInstant"):
        if name in raw:
            return _raw_instant(raw[name])
    period = raw.get("effectivePeriod")
    if period is not None:
        if not isinstance(period, dict):
            return None
        value = period.get("end") or period.get("start")
        if value:
            return _raw_instant(value)
    return _raw_instant(raw.get("issued")) if raw.get("issued") is not None else None


def _raw_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        if _FULL_DATE_TIME.fullmatch(value):
            return as_instant(datetime.fromisoformat(value))
        if _FULL_DATE.fullmatch(value):
            return as_instant(date.fromisoformat(value))
    except ValueError:
        return None
    return None
