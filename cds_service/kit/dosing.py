"""How long a FHIR R4 MedicationRequest runs, how much drug a day it gives, and how strong one
unit of the product is: read generically from the order, for rules such as the catalog's C1
(duration) and C3 (daily dose).

The engine holds no clinical fact: no drug names, no thresholds; rules decide, this module only
computes. Every figure carries a `basis`, a short sentence a card can show so a clinician can
check the arithmetic against the order. When the order does not say enough the answer is None (or
no estimate), never a guess; when it gives a range, the conservative end is taken and the basis
says so. Units are read from the UCUM code when there is one (the unit text is then only a
display); the unit text is read only when the code is absent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeAlias, TypeVar

from cds_service.kit.code_systems import GTS_ABBREVIATION, UCUM

# fhir.resources R4B models (MedicationRequest, Dosage, Timing, Quantity, ...), read by attribute.
FhirModel: TypeAlias = Any


# A month is 30 days, the dispensing convention (UCUM's `mo` is the mean Julian month).
DAYS_PER_MONTH = 30.0

# Durations (expectedSupplyDuration, boundsDuration).
_DURATION_DAYS_BY_CODE = {"h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": DAYS_PER_MONTH}
_DURATION_DAYS_BY_TEXT = {
    "hour": 1 / 24,
    "hours": 1 / 24,
    "day": 1.0,
    "days": 1.0,
    "week": 7.0,
    "weeks": 7.0,
    "month": DAYS_PER_MONTH,
    "months": DAYS_PER_MONTH,
}
# Timing.repeat.periodUnit (UnitsOfTime) and maxDosePerPeriod denominators; `a` is left out.
_PERIOD_DAYS_BY_CODE = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": DAYS_PER_MONTH,
}
_PERIOD_DAYS_BY_TEXT = {
    **_DURATION_DAYS_BY_TEXT,
    "second": 1 / 86400,
    "seconds": 1 / 86400,
    "minute": 1 / 1440,
    "minutes": 1 / 1440,
}
_MG_PER_UNIT_BY_CODE = {"mg": 1.0, "g": 1000.0, "ug": 0.001}
_MG_PER_UNIT_BY_TEXT = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}
# Units that count whole dose units (one tablet, one capsule), so strength x count gives mg.
_COUNT_BY_CODE = dict.fromkeys(("{tablet}", "{capsule}", "{tbl}", "{pill}", "1"), True)
_COUNT_BY_TEXT = dict.fromkeys(("tablet", "tablets", "capsule", "capsules"), True)
# Administrations per day for the R4 TimingAbbreviation codes (v3 GTSAbbreviation). Q12H is not
# in that value set, so it is not read here.
_GTS_PER_DAY = {
    "QD": 1.0,
    "QOD": 0.5,
    "BID": 2.0,
    "TID": 3.0,
    "QID": 4.0,
    "AM": 1.0,
    "PM": 1.0,
    "BED": 1.0,
    "Q1H": 24.0,
    "Q2H": 12.0,
    "Q3H": 8.0,
    "Q4H": 6.0,
    "Q6H": 4.0,
    "Q8H": 3.0,
    "WK": 1 / 7,
    "MO": 1 / DAYS_PER_MONTH,
}
# A strength in an RxNorm-style name: '10 MG', '7.5 MG', '25 MCG', '10 MG/ML', '100 UNT/ML'.
_STRENGTH = re.compile(
    r"(?<![\w.])(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>MCG|MG|G|UNT|MEQ|MMOL|%)(?P<per>/\w+)?(?!\w)",
    re.IGNORECASE,
)
_MG_PER_NAMED_UNIT = {"MG": 1.0, "MCG": 0.001, "G": 1000.0}

T = TypeVar("T")


@dataclass(frozen=True)
class DurationEstimate:
    """An order's duration in days, with how it was computed (for the card)."""

    days: float
    basis: str


@dataclass(frozen=True)
class DailyDose:
    """Most drug a day the order allows; `unit` is always 'mg'."""

    amount: float
    unit: str
    basis: str


@dataclass(frozen=True)
class Strength:
    """Milligrams of the (single) ingredient in one dose unit: one tablet, one capsule."""

    amount_mg: float
    basis: str


class StrengthLike(Protocol):
    @property
    def amount_mg(self) -> float: ...

    @property
    def basis(self) -> str: ...


# ---------------------------------------------------------------------------------- numbers, units


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _fmt(number: float) -> str:
    """A figure for a card: no trailing zeros, at most three decimals."""
    return f"{number:.3f}".rstrip("0").rstrip(".")


def _days(days: float) -> str:
    return f"{_fmt(days)} day" if days == 1 else f"{_fmt(days)} days"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _unit_lookup(
    quantity: FhirModel, by_code: Mapping[str, T], by_text: Mapping[str, T]
) -> T | None:
    """What a Quantity's unit means: from its UCUM code when coded (a code from another system,
    or one not in `by_code`, means nothing here), from its unit text only when no code is given."""
    code = quantity.code
    if code:
        if quantity.system not in (None, UCUM):
            return None
        return by_code.get(code.lower() if code.startswith("{") else code)
    if quantity.unit:
        return by_text.get(quantity.unit.strip().lower())
    return None


def _unit_identity(quantity: FhirModel) -> tuple[str, str] | None:
    """Two quantities are in the same unit when their codes (or, uncoded, their texts) are equal."""
    if quantity.code:
        return (quantity.system or UCUM, quantity.code)
    if quantity.unit:
        return ("", quantity.unit.strip())
    return None


def _unit_label(quantity: FhirModel) -> str:
    return str(quantity.unit or quantity.code or "unit(s)")


def _is_count_unit(quantity: FhirModel) -> bool:
    return bool(_unit_lookup(quantity, _COUNT_BY_CODE, _COUNT_BY_TEXT))


# ---------------------------------------------------------------------------------------- duration


def _duration_in_days(duration: FhirModel | None) -> tuple[float, str] | None:
    """Days in a Duration and how the order stated it ('4 wk = 28 days'); None when the unit is
    not one of d, wk, mo, h (or their spelled-out text when uncoded)."""
    if duration is None:
        return None
    value = _number(duration.value)
    days_per_unit = _unit_lookup(duration, _DURATION_DAYS_BY_CODE, _DURATION_DAYS_BY_TEXT)
    if value is None or value <= 0 or days_per_unit is None:
        return None
    days = value * days_per_unit
    if days_per_unit == 1:
        return days, _days(days)
    return days, f"{_fmt(value)} {_unit_label(duration)} = {_days(days)}"


def _calendar_day(value: Any) -> date | None:
    """A full date; a partial one ('2024', '2024-05') does not bound a period to the day."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def _period_in_days(period: FhirModel | None) -> tuple[float, str] | None:
    """Calendar days from start to end, both inclusive; None for an open-ended period."""
    if period is None:
        return None
    start, end = _calendar_day(period.start), _calendar_day(period.end)
    if start is None or end is None or end < start:
        return None
    days = float((end - start).days + 1)
    return days, f"{start.isoformat()} to {end.isoformat()} = {_days(days)}"


def _fills(dispense: FhirModel | None) -> int | None:
    """R4 numberOfRepeatsAllowed counts refills *in addition to* the original dispense."""
    if dispense is None or dispense.numberOfRepeatsAllowed is None:
        return None
    return 1 + int(dispense.numberOfRepeatsAllowed)


def _with_fills(days: float, basis: str, fills: int | None) -> DurationEstimate:
    if fills is None:
        return DurationEstimate(days, basis)
    total = days * fills
    refills = _plural(fills - 1, "refill")
    return DurationEstimate(
        total, f"{basis} x {_plural(fills, 'fill')} ({refills}) = {_days(total)}"
    )


def _expected_supply(dispense: FhirModel | None) -> DurationEstimate | None:
    """dispenseRequest.expectedSupplyDuration is one fill's supply; refills multiply it."""
    found = _duration_in_days(dispense.expectedSupplyDuration) if dispense else None
    if found is None:
        return None
    days, stated = found
    basis = f"expected supply {stated}"
    return _with_fills(days, basis, _fills(dispense))


def _validity_period(dispense: FhirModel | None) -> DurationEstimate | None:
    """dispenseRequest.validityPeriod is the window in which the order may be dispensed."""
    found = _period_in_days(dispense.validityPeriod) if dispense else None
    if found is None:
        return None
    days, stated = found
    return DurationEstimate(days, f"validity period {stated}")


def _dosage_bounds(dosages: Sequence[FhirModel]) -> list[DurationEstimate]:
    """timing.repeat.bounds[x] is how long the dosage instruction itself runs."""
    estimates = []
    for index, dosage in enumerate(dosages):
        repeat = dosage.timing.repeat if dosage.timing else None
        if repeat is None:
            continue
        where = f" (dosage instruction {index + 1})" if len(dosages) > 1 else ""
        if (found := _duration_in_days(repeat.boundsDuration)) is not None:
            days, stated = found
            estimates.append(DurationEstimate(days, f"dosage runs for {stated}{where}"))
        if (found := _period_in_days(repeat.boundsPeriod)) is not None:
            days, stated = found
            estimates.append(DurationEstimate(days, f"dosage runs for {stated}{where}"))
    return estimates


def _dispensed_quantity(request: FhirModel) -> DurationEstimate | None:
    """dispenseRequest.quantity over the daily amount, only when both are in the same unit.

    The daily amount is the most the dosage allows (as for the daily dose), so this is the
    shortest the supply can last."""
    dispense = request.dispenseRequest
    quantity = dispense.quantity if dispense else None
    amount = _number(quantity.value) if quantity is not None else None
    if quantity is None or amount is None or amount <= 0:
        return None
    per_day = _instruction_amounts(request.dosageInstruction or [])
    unit = _unit_identity(quantity)
    if not per_day or unit is None or any(_unit_identity(a.quantity) != unit for a in per_day):
        return None
    daily, daily_basis = _combine([(a.sequence, a.value, a.basis) for a in per_day])
    if daily <= 0:
        return None
    days = amount / daily
    label = _unit_label(quantity)
    basis = (
        f"dispense quantity {_fmt(amount)} {label} at {_fmt(daily)} {label}/day "
        f"[{daily_basis}] = {_days(days)}"
    )
    return _with_fills(days, basis, _fills(dispense))


def duration_estimates(request: FhirModel) -> list[DurationEstimate]:
    """Every duration the order states or implies, in this order: expected supply (x fills),
    validity period, each dosage's bounds, dispensed quantity over the daily amount (x fills)."""
    dispense = request.dispenseRequest
    candidates = [
        _expected_supply(dispense),
        _validity_period(dispense),
        *_dosage_bounds(request.dosageInstruction or []),
        _dispensed_quantity(request),
    ]
    return [estimate for estimate in candidates if estimate is not None]


def intended_duration(request: FhirModel) -> DurationEstimate | None:
    """The longest estimate: conservative for 'longer than N days' rules (first one on a tie)."""
    longest: DurationEstimate | None = None
    for estimate in duration_estimates(request):
        if longest is None or estimate.days > longest.days:
            longest = estimate
    return longest


# -------------------------------------------------------------------------------------- daily dose


@dataclass(frozen=True)
class _Dose:
    value: float
    quantity: FhirModel  # whose unit `value` is in
    basis: str


@dataclass(frozen=True)
class _Frequency:
    per_day: float
    basis: str


@dataclass(frozen=True)
class _InstructionAmount:
    """One dosage instruction's most per day, in the unit of `quantity`."""

    sequence: int | None
    value: float
    quantity: FhirModel
    basis: str


def _dose_per_administration(dosage: FhirModel) -> _Dose | None:
    """The first doseAndRate that states a dose: doseQuantity, or the high end of doseRange
    (conservative for a most-per-day figure)."""
    for dose_and_rate in dosage.doseAndRate or []:
        quantity = dose_and_rate.doseQuantity
        if quantity is not None and (value := _number(quantity.value)) is not None:
            return _Dose(value, quantity, f"{_fmt(value)} {_unit_label(quantity)}")
        high = dose_and_rate.doseRange.high if dose_and_rate.doseRange else None
        if high is not None and (value := _number(high.value)) is not None:
            label = f"{_fmt(value)} {_unit_label(high)}"
            return _Dose(value, high, f"{label} (the top of the dose range)")
    return None


def _frequency_from_repeat(repeat: FhirModel | None) -> _Frequency | None:
    """frequency per period x periodUnit; frequencyMax, the top of a range, when given."""
    if repeat is None:
        return None
    times = repeat.frequencyMax if repeat.frequencyMax is not None else repeat.frequency
    period = _number(repeat.period)
    days_per_unit = _PERIOD_DAYS_BY_CODE.get(repeat.periodUnit or "")
    if times is None or period is None or period <= 0 or days_per_unit is None:
        return None
    per_day = times / (period * days_per_unit)
    stated = f"{times} per {_fmt(period)} {repeat.periodUnit}"
    if repeat.frequencyMax is not None:
        stated = f"up to {stated}"
    return _Frequency(per_day, f"{_fmt(per_day)}/day ({stated})")


def _frequency_from_code(concept: FhirModel | None) -> _Frequency | None:
    """timing.code, coded in v3 GTSAbbreviation; its text and displays are not read."""
    for coding in (concept.coding or []) if concept else []:
        if coding.system == GTS_ABBREVIATION and coding.code in _GTS_PER_DAY:
            per_day = _GTS_PER_DAY[coding.code]
            return _Frequency(per_day, f"{_fmt(per_day)}/day ({coding.code})")
    return None


def _administrations_per_day(timing: FhirModel | None) -> _Frequency | None:
    """The structured repeat first, else the code: R4 says either states the whole timing."""
    if timing is None:
        return None
    return _frequency_from_repeat(timing.repeat) or _frequency_from_code(timing.code)


def _max_dose_per_day(dosage: FhirModel) -> tuple[float, FhirModel, str] | None:
    """maxDosePerPeriod (e.g. 6 tablets per 24 h) brought to a day."""
    ratio = dosage.maxDosePerPeriod
    if ratio is None or ratio.numerator is None or ratio.denominator is None:
        return None
    amount = _number(ratio.numerator.value)
    period = _number(ratio.denominator.value)
    days_per_unit = _unit_lookup(ratio.denominator, _PERIOD_DAYS_BY_CODE, _PERIOD_DAYS_BY_TEXT)
    if amount is None or period is None or period <= 0 or days_per_unit is None:
        return None
    per_day = amount / (period * days_per_unit)
    stated = (
        f"{_fmt(amount)} {_unit_label(ratio.numerator)} per "
        f"{_fmt(period)} {_unit_label(ratio.denominator)}"
    )
    return per_day, ratio.numerator, f"maximum {stated}"


def _instruction_amount(dosage: FhirModel) -> _InstructionAmount | None:
    """Dose per administration x administrations per day; else the stated maximum per period."""
    as_needed = bool(dosage.asNeededBoolean) or dosage.asNeededCodeableConcept is not None
    prefix = "as needed, " if as_needed else ""
    dose = _dose_per_administration(dosage)
    frequency = _administrations_per_day(dosage.timing)
    if dose is not None and frequency is not None:
        value = dose.value * frequency.per_day
        basis = f"{prefix}{dose.basis} x {frequency.basis}"
        return _InstructionAmount(dosage.sequence, value, dose.quantity, basis)
    maximum = _max_dose_per_day(dosage)
    if maximum is None:
        return None
    value, quantity, stated = maximum
    return _InstructionAmount(dosage.sequence, value, quantity, f"{prefix}{stated}")


def _instruction_amounts(dosages: Iterable[FhirModel]) -> list[_InstructionAmount] | None:
    """Every instruction's amount, or None when any one is unknown: a partial sum understates."""
    amounts = []
    for dosage in dosages:
        amount = _instruction_amount(dosage)
        if amount is None:
            return None
        amounts.append(amount)
    return amounts or None


def _combine(parts: Sequence[tuple[int | None, float, str]]) -> tuple[float, str]:
    """Instructions with the same `sequence` run together and add up (a split regimen);
    different sequences follow one another (R4 Dosage.sequence), so the highest phase counts."""
    if len(parts) == 1:
        return parts[0][1], parts[0][2]
    totals: dict[int | None, float] = {}
    listed: dict[int | None, list[str]] = {}
    for sequence, value, basis in parts:
        totals[sequence] = totals.get(sequence, 0.0) + value
        listed.setdefault(sequence, []).append(f"({basis})")
    phases = [" + ".join(bases) for bases in listed.values()]
    if len(phases) == 1:
        return totals[parts[0][0]], phases[0]
    return max(totals.values()), " then ".join(phases) + ", the highest phase"


def _in_mg(amount: _InstructionAmount, strength: StrengthLike | None) -> tuple[float, str] | None:
    """A mass unit converts; a count of tablets or capsules needs the product's strength."""
    mg_per_unit = _unit_lookup(amount.quantity, _MG_PER_UNIT_BY_CODE, _MG_PER_UNIT_BY_TEXT)
    per_day = f"{_fmt(amount.value)} {_unit_label(amount.quantity)}/day"
    if mg_per_unit is not None:
        basis = amount.basis if mg_per_unit == 1 else f"{amount.basis}, {per_day}"
        return amount.value * mg_per_unit, basis
    if strength is not None and _is_count_unit(amount.quantity):
        basis = f"{amount.basis}, {per_day} x {_fmt(strength.amount_mg)} mg"
        return amount.value * strength.amount_mg, basis
    return None


def administrations_per_day(request: FhirModel) -> float | None:
    """The most administrations a day any dosage instruction of the order states (frequency
    over period, or the timing code); None when no instruction states one. A once-daily
    product dosed more often than this is a dosing error whatever the total."""
    found = [f.per_day for dosage in request.dosageInstruction or []
             if (f := _administrations_per_day(dosage.timing)) is not None]
    return max(found) if found else None


def daily_dose(request: FhirModel, strength: StrengthLike | None = None) -> DailyDose | None:
    """The most mg a day the order's dosage instructions allow, or None when any part of it
    cannot be read (never a guess). `strength` turns tablet or capsule counts into mg."""
    amounts = _instruction_amounts(request.dosageInstruction or [])
    if amounts is None:
        return None
    parts = []
    for amount in amounts:
        converted = _in_mg(amount, strength)
        if converted is None:
            return None
        parts.append((amount.sequence, *converted))
    total, basis = _combine(parts)
    basis = f"{basis} = {_fmt(total)} mg/day"
    if strength is not None and any(_is_count_unit(a.quantity) for a in amounts):
        basis += f"; strength {strength.basis}"
    return DailyDose(total, "mg", basis)


# ---------------------------------------------------------------------------------------- strength


def strength_from_name(name: str) -> Strength | None:
    """One strength in mg, MCG or G per unit; None for combinations (two strengths) and for
    concentrations ('MG/ML', 'MG/HR'), which are not per dose unit."""
    found = list(_STRENGTH.finditer(name))
    if len(found) != 1 or found[0]["per"]:
        return None
    unit = found[0]["unit"].upper()
    if unit not in _MG_PER_NAMED_UNIT:
        return None
    value = float(found[0]["value"])
    mg = value * _MG_PER_NAMED_UNIT[unit]
    stated = "" if unit == "MG" else f" ({_fmt(value)} {unit})"
    return Strength(mg, f"{_fmt(mg)} mg per unit{stated}, from the product name '{name}'")


def strength_from_concept(concept: FhirModel | None) -> Strength | None:
    """Strength from an RxNorm-style product name in the text, else a coding's display. The
    first name that states any strength decides; an ingredient-only name states none."""
    if concept is None:
        return None
    names = [concept.text, *(coding.display for coding in concept.coding or [])]
    for name in names:
        if name and _STRENGTH.search(name):
            return strength_from_name(name)
    return None


def strength_from_medication(medication: FhirModel | None) -> Strength | None:
    """Strength from a Medication's only active ingredient: a Ratio of a mass over a count of
    dose units (e.g. 10 mg / 1 tablet). Anything else (per mL, several ingredients) is None."""
    if medication is None:
        return None
    active = [i for i in medication.ingredient or [] if i.isActive is not False]
    ratio = active[0].strength if len(active) == 1 else None
    if ratio is None or ratio.numerator is None or ratio.denominator is None:
        return None
    amount = _number(ratio.numerator.value)
    per = _number(ratio.denominator.value)
    mg_per_unit = _unit_lookup(ratio.numerator, _MG_PER_UNIT_BY_CODE, _MG_PER_UNIT_BY_TEXT)
    if amount is None or per is None or per <= 0 or mg_per_unit is None:
        return None
    if not _is_count_unit(ratio.denominator):
        return None
    mg = amount * mg_per_unit / per
    stated = (
        f"{_fmt(amount)} {_unit_label(ratio.numerator)} per "
        f"{_fmt(per)} {_unit_label(ratio.denominator)}"
    )
    return Strength(mg, f"{_fmt(mg)} mg per unit, from the Medication ingredient strength {stated}")
