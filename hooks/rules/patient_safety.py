"""Who the patient is, for the gates that decide what a card may suggest: age, pregnancy,
kidney function and the breathing risk of gabapentinoids.

A suggestion that is safe for most patients can harm some: a one-click switch to gabapentin in
pregnancy, a baclofen titration on dialysis, a gabapentinoid beside an opioid. Rules that
suggest such things read these facts here, in one way, and say on the card what they found.
Each gate leans to caution where the data is unclear: an eGFR the service cannot read, or a
kidney condition without a value, counts as possibly reduced, because the gate only removes or
qualifies a suggestion; it never makes a card fire.

The value sets are fields of mixin dataclasses (`KidneyGates`, `GabapentinoidGates`), so a rule
that inherits one declares them in its own class and the catalog lists them; the thresholds are
fields of the matching settings mixins, overridable per rule like any other setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from cds_service.kit import COUNTABLE_STATUSES
from cds_service.kit import SNOMED
from cds_service.kit import ConditionMatch
from cds_service.kit import LabResult
from cds_service.kit import MedicationOrder
from cds_service.kit import PatientRecord
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import as_instant
from cds_service.kit import newest
from cds_service.kit import observation_time
from hooks.rules.common import condition_line
from hooks.rules.common import format_date
from hooks.rules.labs import latest
from hooks.rules.sources import BACLOFEN_CKD_2014
from hooks.rules.sources import BEERS_2023
from hooks.rules.sources import Reference
from hooks.valuesets import LabTest
from hooks.valuesets import uses
from hooks.valuesets import uses_lab

# Result codes of a qualitative pregnancy test (SNOMED CT 10828004 'Positive', 260385009
# 'Negative'; provenance in the pregnancy-test value set); text results are read by word.
POSITIVE_RESULTS = frozenset({(SNOMED, "10828004")})
NEGATIVE_RESULTS = frozenset({(SNOMED, "260385009")})
POSITIVE_WORDS = re.compile(r"^\s*(positive|detected|pos|\+)\b", re.IGNORECASE)
NEGATIVE_WORDS = re.compile(r"\b(negative|not detected|neg)\b", re.IGNORECASE)
HISTORY_OF = re.compile(r"\b(history|h/o)\b", re.IGNORECASE)
# 'History of renal dialysis' is a past procedure, not current dialysis.
HISTORY_OF_DIALYSIS = frozenset({(SNOMED, "161693006")})


def _birth_date(value: Any) -> date | None:
    """Patient.birthDate as a date. A partial date ('1961', '1961-07'), which FHIR allows and
    the models keep as text, is read as the first day of its period: the oldest the patient can
    be, so the older-adult gates err toward caution (off by less than a year)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", value.strip())
        if match:
            year, month, day = match.groups()
            try:
                return date(int(year), int(month or 1), int(day or 1))
            except ValueError:
                return None
    return None


def age_years(record: PatientRecord, now: datetime) -> int | None:
    """Whole years from Patient.birthDate to `now`; None without a (readable) birth date."""
    patient = record.patient
    birth = _birth_date(patient.birthDate) if patient is not None else None
    if birth is None:
        return None
    today = now.date()
    years = today.year - birth.year
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def is_history(found: ConditionMatch) -> bool:
    """A history-of condition (a past procedure or episode), never a current one."""
    codings = getattr(found.condition.code, "coding", None) or []
    if any((c.system, c.code) in HISTORY_OF_DIALYSIS for c in codings):
        return True
    return bool(HISTORY_OF.search(found.label))


def _current(found: list[ConditionMatch]) -> list[ConditionMatch]:
    return [c for c in found if not is_history(c)]


def _instant(value: date | datetime | str | None) -> datetime | None:
    """An aware instant (a bare date as its start, UTC), so dates with and without a zone
    compare; None for an absent or partial date."""
    return as_instant(value)


def _ended_by(found: ConditionMatch, negative_at: datetime | None) -> bool:
    """Whether a negative test at `negative_at` follows everything the condition dates."""
    if negative_at is None:
        return False
    dates = [found.condition.onsetDateTime, found.condition.recordedDate,
             found.condition.onsetPeriod.start if found.condition.onsetPeriod else None]
    known = [d for d in (_instant(v) for v in dates) if d is not None]
    return bool(known) and all(d < negative_at for d in known)


# --- Kidney function --------------------------------------------------------------------------


@dataclass(frozen=True)
class KidneySettings(RuleSettings):
    """Kidney-function thresholds (KDIGO GFR categories: G3 below 60, G4 below 30)."""

    egfr_moderate_below: float = 60.0
    egfr_severe_below: float = 30.0
    egfr_lookback_days: int = 365


@dataclass(frozen=True)
class KidneyFunction:
    """What the chart says about kidney function: the newest eGFR in the look-back and the
    kidney conditions that stand for a GFR band (CKD stage 3, stage 4, ESRD, dialysis)."""

    egfr: LabResult | None
    stage_3: list[ConditionMatch]
    stage_4: list[ConditionMatch]
    esrd: list[ConditionMatch]
    dialysis: list[ConditionMatch]
    moderate_below: float
    severe_below: float

    @property
    def egfr_unreadable(self) -> bool:
        """An eGFR is on record but its unit is not one the service can read."""
        return self.egfr is not None and self.egfr.normalised is None

    def _egfr_may_be_below(self, limit: float) -> bool:
        """Below `limit`, or possibly so: '<x' counts when x is at most the limit; '>x' counts
        when x is under the limit (it may still be below it), so '>60' is not below 60."""
        egfr = self.egfr
        if egfr is None or egfr.normalised is None:
            return False
        if egfr.comparator in (">", ">="):
            return egfr.normalised < limit
        return egfr.is_below(limit)

    @property
    def severe(self) -> bool:
        """Below the severe threshold (30), ESRD or dialysis: worst of value and conditions."""
        if self.dialysis or self.esrd or self.stage_4:
            return True
        return self._egfr_may_be_below(self.severe_below)

    @property
    def reduced(self) -> bool:
        """Below the moderate threshold (60) by value or condition, or an eGFR that cannot be
        read (the gate then errs to caution)."""
        if self.severe or self.stage_3 or self.egfr_unreadable:
            return True
        return self._egfr_may_be_below(self.moderate_below)

    @property
    def on_dialysis(self) -> bool:
        return bool(self.dialysis)

    def lines(self, record: PatientRecord) -> list[str]:
        """What was found, as a clinician reads it."""
        found = []
        if self.egfr is not None:
            shown = self.egfr.describe()
            if self.egfr_unreadable:
                shown += " (unit not recognised: read as possibly reduced)"
            found.append(f"eGFR **{shown}**")
        for c in [*self.dialysis, *self.esrd, *self.stage_4, *self.stage_3]:
            found.append(condition_line(c, record.onset(c.condition)))
        return found


@dataclass(frozen=True)
class KidneyGates:
    """The value sets a kidney-function gate reads (a mixin of rule dataclasses)."""

    egfr: LabTest = uses_lab("egfr")
    ckd_stage_3: ValueSet = uses("ckd-stage-3")
    ckd_stage_4: ValueSet = uses("ckd-stage-4")
    esrd: ValueSet = uses("esrd")
    dialysis: ValueSet = uses("dialysis")

    def kidney_function(self, context: RuleContext[Any]) -> KidneyFunction:
        settings = context.settings
        record = context.record
        return KidneyFunction(
            egfr=latest(context, self.egfr, settings.egfr_lookback_days),
            stage_3=_current(record.active_conditions(self.ckd_stage_3)),
            stage_4=_current(record.active_conditions(self.ckd_stage_4)),
            esrd=_current(record.active_conditions(self.esrd)),
            dialysis=_current(record.active_conditions(self.dialysis)),
            moderate_below=settings.egfr_moderate_below,
            severe_below=settings.egfr_severe_below,
        )


# --- Pregnancy and the breathing risk of gabapentinoids ----------------------------------------


@dataclass(frozen=True)
class GabapentinoidSettings(KidneySettings):
    """Gates of a gabapentinoid suggestion (D1, S1)."""

    pregnancy_window_days: int = 300
    older_adult_age: int = 65


@dataclass(frozen=True)
class PregnancyTest:
    observation: Any
    when: datetime
    positive: bool
    shown: str

    def line(self) -> str:
        return f"pregnancy test **{self.shown}** on {self.when.date().isoformat()}"


@dataclass(frozen=True)
class Pregnancy:
    conditions: list[ConditionMatch]
    test: PregnancyTest | None  # the newest test in the window, positive or not

    @property
    def pregnant(self) -> bool:
        return bool(self.conditions) or (self.test is not None and self.test.positive)

    def lines(self, record: PatientRecord) -> list[str]:
        found = [condition_line(c, record.onset(c.condition)) for c in self.conditions]
        if self.test is not None and self.test.positive:
            found.append(self.test.line())
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
        record = context.record
        since = _instant(context.now - timedelta(days=context.settings.pregnancy_window_days))
        assert since is not None
        conditions = []
        for found in _current(record.active_conditions(self.pregnancy_conditions)):
            onset = _instant(record.onset(found.condition))
            # Without an onset an active pregnancy condition still counts (caution).
            if onset is None or onset >= since:
                conditions.append(found)
        test = newest(record.observations, self.pregnancy_tests, _test_result, since)
        tested_at = _instant(test.when) if test is not None else None
        if tested_at is None or tested_at < since:
            test = None
        if test is not None and not test.positive:
            # A negative test ends an episode only when it is newer than both the condition's
            # onset and its recording: onsets are often dated from the last period, before an
            # early test could turn positive.
            conditions = [c for c in conditions if not _ended_by(c, tested_at)]
        return Pregnancy(conditions, test)

    def breathing_risk(self, context: RuleContext[Any],
                       exclude: tuple[MedicationOrder, ...] = ()) -> BreathingRisk:
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
            copd=_current(record.active_conditions(self.copd)),
            age=age_years(record, context.now),
            older_adult_age=context.settings.older_adult_age,
        )


# --- Baclofen and the kidney --------------------------------------------------------------------


@dataclass(frozen=True)
class BaclofenKidneySettings(KidneySettings):
    """Baclofen gates: KDIGO bands for everyone; AGS Beers 2023 for older adults (avoid with
    eGFR below 60)."""

    older_adult_age: int = 65


BACLOFEN_LOWER_START = (
    "Kidney function is reduced: baclofen is cleared by the kidneys, so start lower and raise "
    "the dose more slowly than the usual schedule, watching for drowsiness and confusion."
)


@dataclass(frozen=True)
class BaclofenAvoided:
    """Why baclofen is not suggested, and the source that says so."""

    reason: str
    source: Reference


def baclofen_avoid_reason(kidney: KidneyFunction, age: int | None,
                          settings: BaclofenKidneySettings) -> BaclofenAvoided | None:
    """Why baclofen is not suggested for this patient, or None when it may be (perhaps at a
    lower start: `kidney.reduced`)."""
    if kidney.severe:
        return BaclofenAvoided(
            "Baclofen is not suggested: it is cleared by the kidneys, and with severely reduced "
            f"kidney function (eGFR below {settings.egfr_severe_below:g}, ESRD or dialysis) it "
            "accumulates; encephalopathy after small doses is reported.", BACLOFEN_CKD_2014)
    if kidney.reduced and age is not None and age >= settings.older_adult_age:
        return BaclofenAvoided(
            "Baclofen is not suggested: the AGS Beers Criteria (2023) advise avoiding it in "
            f"adults {settings.older_adult_age} or over with eGFR below "
            f"{settings.egfr_moderate_below:g} (risk of encephalopathy needing admission).",
            BEERS_2023)
    return None
