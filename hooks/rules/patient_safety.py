"""Pregnancy and the breathing risk of gabapentinoids: the gates that decide what a card
may suggest when it names gabapentin or pregabalin (D1, S1).

A suggestion that is safe for most patients can harm some: a one-click switch to gabapentin in
pregnancy, a gabapentinoid beside an opioid, a dose that ignores the kidneys. Rules that
suggest such things read these facts here, in one way, and say on the card what they found.
Each gate leans to caution where the data is unclear, because it only removes or qualifies a
suggestion; it never makes a card fire. Age and current conditions are `patient`'s; kidney
function is `kidney`'s.

The value sets are fields of the `GabapentinoidGates` mixin, so a rule that inherits it declares
them in its own class and the catalog lists them; the thresholds are fields of
`GabapentinoidSettings`, overridable per rule like any other setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from cds_service.kit import COUNTABLE_STATUSES
from cds_service.kit import SNOMED
from cds_service.kit import ConditionMatch
from cds_service.kit import MedicationOrder
from cds_service.kit import PatientRecord
from cds_service.kit import RuleContext
from cds_service.kit import ValueSet
from cds_service.kit import as_instant
from cds_service.kit import newest
from cds_service.kit import observation_time
from cds_service.kit import setting
from hooks.rules.common import condition_line
from hooks.rules.common import format_date
from hooks.rules.kidney import KidneyGates
from hooks.rules.kidney import KidneySettings
from hooks.rules.patient import age_years
from hooks.rules.patient import current
from hooks.valuesets import uses

# Result codes of a qualitative pregnancy test (SNOMED CT 10828004 'Positive', 260385009
# 'Negative'; provenance in the pregnancy-test value set); text results are read by word.
POSITIVE_RESULTS = frozenset({(SNOMED, "10828004")})
NEGATIVE_RESULTS = frozenset({(SNOMED, "260385009")})
POSITIVE_WORDS = re.compile(r"^\s*(?:positive\b|detected\b|present\b|reactive\b|pos\b|\+)",
                            re.IGNORECASE)
NEGATIVE_WORDS = re.compile(r"\b(?:negative|not detected|neg|absent|non-?reactive)\b|^\s*-\s*$",
                            re.IGNORECASE)


def _ended_by(found: ConditionMatch, negative_at: datetime | None) -> bool:
    """Whether a negative test at `negative_at` follows everything the condition dates."""
    if negative_at is None:
        return False
    dates = [found.condition.onsetDateTime, found.condition.recordedDate,
             found.condition.onsetPeriod.start if found.condition.onsetPeriod else None]
    known = [d for d in (as_instant(v) for v in dates) if d is not None]
    return bool(known) and all(d < negative_at for d in known)


@dataclass(frozen=True)
class GabapentinoidSettings(KidneySettings):
    """Gates of a gabapentinoid suggestion (D1, S1)."""

    pregnancy_window_days: int = setting(
        300, "chosen: about 43 weeks, the longest a pregnancy lasts, so a recorded pregnancy "
        "counts for its whole course")
    older_adult_age: int = setting(
        65, "FDA 2019 names the elderly; the AGS Beers Criteria apply from 65")


@dataclass(frozen=True)
class PregnancyTest:
    """A qualitative pregnancy test read as positive or negative."""

    observation: Any
    when: datetime
    positive: bool
    shown: str

    def line(self) -> str:
        return f"pregnancy test **{self.shown}** on {self.when.date().isoformat()}"


@dataclass(frozen=True)
class Pregnancy:
    """The pregnancy evidence a gate found: active conditions in the window and the newest
    test (a negative one only when it follows a condition, to be shown beside it)."""

    conditions: list[ConditionMatch]
    test: PregnancyTest | None  # the newest test in the window, positive or not

    @property
    def pregnant(self) -> bool:
        return bool(self.conditions) or (self.test is not None and self.test.positive)

    def lines(self, record: PatientRecord) -> list[str]:
        """The evidence; a negative test newer than an active pregnancy condition is shown
        beside it (the gate holds: the record says pregnant until the condition is closed)."""
        found = [condition_line(c, record.onset(c.condition)) for c in self.conditions]
        if self.test is not None and self.test.positive:
            found.append(self.test.line())
        elif self.test is not None and self.conditions:
            found.append(self.test.line() + " (negative, after the pregnancy was recorded: "
                         "check whether it is still current)")
        return found


def _test_result(observation: Any) -> list[PregnancyTest]:
    """A qualitative pregnancy test as positive or negative; anything else is not read."""
    if observation.status not in COUNTABLE_STATUSES:
        return []
    when = observation_time(observation)
    if when is None:
        return []
    concept = observation.valueCodeableConcept
    if concept is not None:
        codings = concept.coding or []
        if any((c.system, c.code) in POSITIVE_RESULTS for c in codings):
            return [PregnancyTest(observation, when, True, _shown(concept))]
        if any((c.system, c.code) in NEGATIVE_RESULTS for c in codings):
            return [PregnancyTest(observation, when, False, _shown(concept))]
        words = " ".join([concept.text or "", *[c.display or "" for c in codings]])
        if NEGATIVE_WORDS.search(words):
            return [PregnancyTest(observation, when, False, _shown(concept))]
        if POSITIVE_WORDS.search(words):
            return [PregnancyTest(observation, when, True, _shown(concept))]
        return []
    text = observation.valueString
    if isinstance(text, str):
        if NEGATIVE_WORDS.search(text):
            return [PregnancyTest(observation, when, False, text)]
        if POSITIVE_WORDS.search(text):
            return [PregnancyTest(observation, when, True, text)]
    return []


def _shown(concept: Any) -> str:
    """A coded result as the lab wrote it: its text, else a display."""
    if concept.text:
        return str(concept.text)
    return next((str(c.display) for c in concept.coding or [] if c.display), "positive")


@dataclass(frozen=True)
class BreathingRisk:
    """FDA (2019): gabapentinoids can cause serious breathing difficulty with opioids or other
    CNS depressants, in COPD and in older adults."""

    depressants: list[tuple[MedicationOrder, str]]  # order, kind (opioid, benzodiazepine, ...)
    copd: list[ConditionMatch]
    age: int | None
    older_adult_age: int

    @property
    def older(self) -> bool:
        return self.age is not None and self.age >= self.older_adult_age

    @property
    def present(self) -> bool:
        return bool(self.depressants or self.copd or self.older)

    def lines(self, record: PatientRecord, is_order_hook: bool) -> list[str]:
        found = []
        for order, kind in self.depressants:
            verb = "being ordered" if order.status == "draft" and is_order_hook else "active"
            found.append(f"{kind} {verb}: **{order.medication_label}** (since "
                         f"{format_date(order.authored_on)})")
        found += [condition_line(c, record.onset(c.condition)) for c in self.copd]
        if self.older:
            found.append(f"age **{self.age}** ({self.older_adult_age} or over)")
        return found


BREATHING_WARNING = (
    "**Breathing risk:** the FDA warns (2019) that gabapentin and pregabalin can cause serious "
    "breathing difficulty in patients who take opioids or other central nervous system "
    "depressants, who have COPD or another lung condition, or who are older. If one is chosen, "
    "start at the lowest dose and watch for drowsiness and slowed or shallow breathing."
)
PREGNANCY_NOTE = (
    "**Pregnancy:** no switch to gabapentin or pregabalin is offered. Drug treatment of "
    "restless legs in pregnancy is an individual choice weighing risks to mother and baby, best "
    "made with the obstetric team or a specialist; iron status is checked first."
)
KIDNEY_DOSE_NOTE = (
    "**Kidney function:** gabapentin and pregabalin are cleared by the kidneys. The draft "
    "carries no dose: the dose must be adjusted to the patient's kidney function (see the "
    "product's renal dosing)."
)


@dataclass(frozen=True)
class GabapentinoidGates(KidneyGates):
    """The value sets a gabapentinoid suggestion's gates read (a mixin of rule dataclasses)."""

    pregnancy_conditions: ValueSet = uses("pregnancy")
    pregnancy_tests: ValueSet = uses("pregnancy-test")
    opioids: ValueSet = uses("opioids")
    benzodiazepines: ValueSet = uses("benzodiazepines")
    cns_depressants: ValueSet = uses("cns-depressants")
    copd: ValueSet = uses("copd")

    def pregnancy(self, context: RuleContext[Any]) -> Pregnancy:
        """Pregnancy evidence within `pregnancy_window_days`; leans to caution: an active
        condition without an onset counts, and holds against a later negative test."""
        record = context.record
        since = as_instant(context.now - timedelta(days=context.settings.pregnancy_window_days))
        assert since is not None
        conditions = []
        for found in current(record.active_conditions(self.pregnancy_conditions)):
            onset = as_instant(record.onset(found.condition))
            # Without an onset an active pregnancy condition still counts (caution).
            if onset is None or onset >= since:
                conditions.append(found)
        test = newest(record.observations, self.pregnancy_tests, _test_result, since)
        tested_at = as_instant(test.when) if test is not None else None
        if tested_at is None or tested_at < since:
            test = None
        if test is not None and not test.positive and not any(
                _ended_by(c, tested_at) for c in conditions):
            # A negative test is shown only when it follows a condition's onset and recording
            # (onsets are often dated from the last period, before a test could turn positive).
            test = None if conditions else test
        # An active pregnancy condition holds whatever a later test says: the gate leans to
        # caution, and the card shows the newer negative test beside it.
        return Pregnancy(conditions, test)

    def breathing_risk(self, context: RuleContext[Any],
                       exclude: tuple[MedicationOrder, ...] = ()) -> BreathingRisk:
        """Sedatives active or co-ordered (not `exclude`, the order in hand), COPD and age."""
        record = context.record
        seen = {o.reference for o in exclude}
        depressants: list[tuple[MedicationOrder, str]] = []
        drafts = record.open_drafts() if context.is_order_hook else []
        for kind, value_set in (("opioid", self.opioids),
                                ("benzodiazepine", self.benzodiazepines),
                                ("sedative", self.cns_depressants)):
            # Only the chart's orders that may be in the set are validated.
            for order in [*drafts, *record.active_medications(value_set)]:
                if order.reference not in seen and order.match_medication(value_set):
                    depressants.append((order, kind))
                    seen.add(order.reference)
        return BreathingRisk(
            depressants=depressants,
            copd=current(record.active_conditions(self.copd)),
            age=age_years(record, context.now),
            older_adult_age=context.settings.older_adult_age,
        )
