"""Kidney function as the gates read it (KDIGO GFR categories), and what it means for
baclofen.

The newest eGFR in the look-back and the kidney conditions that stand for a GFR band (CKD stage
3, stage 4, ESRD, dialysis) are read together, and the worse of the two decides: a gate only
removes or qualifies a suggestion, so where the data is unclear (an eGFR in a unit the service
cannot read) it errs to caution. Value sets are fields of the `KidneyGates` mixin and
thresholds fields of `KidneySettings`, so a rule that inherits them declares both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds_service.kit import ConditionMatch
from cds_service.kit import LabResult
from cds_service.kit import PatientRecord
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import setting
from hooks.rules.common import condition_line
from hooks.rules.labs import latest
from hooks.rules.patient import current
from hooks.rules.sources import BACLOFEN_CKD_2014
from hooks.rules.sources import BEERS_2023
from hooks.rules.sources import Reference
from hooks.valuesets import LabTest
from hooks.valuesets import uses
from hooks.valuesets import uses_lab


@dataclass(frozen=True)
class KidneySettings(RuleSettings):
    """Kidney-function thresholds (KDIGO GFR categories: G3 below 60, G4 below 30)."""

    egfr_moderate_below: float = setting(
        60.0, "KDIGO GFR category G3a begins below 60 mL/min/1.73 m2; the gabapentin label's "
        "reduced doses begin below a creatinine clearance of 60")
    egfr_severe_below: float = setting(
        30.0, "KDIGO G4 begins below 30; Vlavonou 2014 (baclofen) groups severe CKD below 30")
    egfr_lookback_days: int = setting(
        365, "chosen: an eGFR within a year stands for current kidney function (no source "
        "gives a window)")


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
        """The eGFR and kidney conditions this rule's settings look at."""
        settings = context.settings
        record = context.record
        return KidneyFunction(
            egfr=latest(context, self.egfr, settings.egfr_lookback_days),
            stage_3=current(record.active_conditions(self.ckd_stage_3)),
            stage_4=current(record.active_conditions(self.ckd_stage_4)),
            esrd=current(record.active_conditions(self.esrd)),
            dialysis=current(record.active_conditions(self.dialysis)),
            moderate_below=settings.egfr_moderate_below,
            severe_below=settings.egfr_severe_below,
        )


# --- Baclofen and the kidney --------------------------------------------------------------------


@dataclass(frozen=True)
class BaclofenKidneySettings(KidneySettings):
    """Baclofen gates: KDIGO bands for everyone; AGS Beers 2023 for older adults (avoid with
    eGFR below 60)."""

    older_adult_age: int = setting(
        65, "AGS Beers 2023: avoid baclofen with eGFR below 60 in adults 65 and over")


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
