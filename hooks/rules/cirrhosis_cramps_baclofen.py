"""L1 `cirrhosis-cramps-baclofen`: cirrhosis or chronic liver disease with leg cramps (info).

Source: seed 001 (baclofen for leg cramps associated with liver disease, 10 mg a day increased
weekly up to 30 mg a day), seed 003 (baclofen starting at 10 mg/day, raised by 10 mg/day each
week to at most 30 mg/day for persistent cramps; in liver disease, careful monitoring and
correction of electrolytes, and human albumin 20-40 g a week may be considered for refractory
cramps).

Fires: an active cirrhosis / chronic liver disease condition (the `cirrhosis` value set) together
with an active leg cramp or muscle spasm condition. On order hooks only while an RLS or cramp drug
(baclofen included) is among the orders asked about. When baclofen is being ordered, the card
shows the weekly titration and, when the order's daily dose can be computed, compares it with
the schedule's maximum (`baclofen_max_mg_per_day`).
Quiet: no liver condition or no cramp condition that counts (resolved, inactive, refuted,
entered in error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import PatientRecord
from cds_service.kit import RuleContext
from cds_service.kit import ValueSet
from cds_service.kit import daily_dose
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import describe_order
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.kidney import BACLOFEN_LOWER_START
from hooks.rules.kidney import BaclofenAvoided
from hooks.rules.kidney import BaclofenKidneySettings
from hooks.rules.kidney import KidneyFunction
from hooks.rules.kidney import KidneyGates
from hooks.rules.kidney import baclofen_avoid_reason
from hooks.rules.labs import runs_on
from hooks.rules.patient import age_years
from hooks.rules.sources import BACLOFEN_CIRRHOSIS_RCT_2016
from hooks.rules.sources import BACLOFEN_CKD_2014
from hooks.rules.sources import BEERS_2023
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "cirrhosis-cramps-baclofen"


def _mg(value: float) -> str:
    return f"{value:g} mg/day"


def liver_name(found: ConditionMatch) -> str:
    return "Cirrhosis" if "cirrhosis" in found.label.lower() else "Chronic liver disease"


@dataclass(frozen=True)
class CirrhosisCrampsBaclofen(KidneyGates):
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "L1"
    references: ClassVar[tuple[Reference, ...]] = (BACLOFEN_CIRRHOSIS_RCT_2016, BEERS_2023,
                                                    BACLOFEN_CKD_2014)
    title: ClassVar[str] = "Cirrhosis with leg cramps"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seeds 001, 003"
    applies: ClassVar[str] = (
        "patient-view; order hooks while an RLS or cramp drug (baclofen included) is ordered. "
        "Needs active cirrhosis or chronic liver disease and active leg cramps. Gate: with "
        "eGFR below 30, ESRD or dialysis (or below 60 at 65 or over) no baclofen titration is "
        "shown and baclofen is not suggested; below 60 a lower start and slower titration are "
        "advised."
    )
    cirrhosis: ValueSet = uses("cirrhosis")
    leg_cramps: ValueSet = uses("leg-cramps")
    baclofen: ValueSet = uses("baclofen")
    cramp_drugs: ValueSet = uses("cramp-drugs")

    @dataclass(frozen=True)
    class Settings(BaclofenKidneySettings):
        """This rule's thresholds and windows, with their defaults."""

        baclofen_start_mg_per_day: float = 10.0
        baclofen_weekly_step_mg_per_day: float = 10.0
        baclofen_max_mg_per_day: float = 30.0

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        # Active baclofen is named in the card on every hook.
        return data.with_kidney_gate((data.CONDITIONS, data.ACTIVE_MEDICATIONS))

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        if not runs_on(context, self.cramp_drugs, self.baclofen):
            return []
        liver = context.record.active_conditions(self.cirrhosis)
        cramps = context.record.active_conditions(self.leg_cramps)
        if not liver or not cramps:
            return []
        ordered: list[tuple[MedicationOrder, Match]] = []
        if context.is_order_hook:
            ordered = [
                (o, m) for o in context.subject_orders if (m := o.match_medication(self.baclofen))
            ]
        seen = {o.reference for o, _ in ordered}
        active = [
            (o, m)
            for o in context.record.active_medications(self.baclofen)
            if (m := o.match_medication(self.baclofen)) and o.reference not in seen
        ]
        return [self._card(context, liver, cramps, ordered, active)]

    def _schedule(self, context: RuleContext[Settings]) -> tuple[float, float, float]:
        settings = context.settings
        return (
            settings.baclofen_start_mg_per_day,
            settings.baclofen_weekly_step_mg_per_day,
            settings.baclofen_max_mg_per_day,
        )

    def _titration(self, context: RuleContext[Settings], kidney_reduced: bool = False) -> str:
        start, step, most = self._schedule(context)
        lines = ["**Baclofen titration (weekly" + (
            ", for normal kidney function: start lower and go slower here" if kidney_reduced
            else "") + "):**"]
        dose, week = start, 1
        while dose < most and week < 10:
            lines.append(f"- week {week}: {_mg(dose)}")
            dose, week = dose + step, week + 1
        lines.append(f"- week {week} onward: {_mg(most)} at most")
        return "\n".join(lines)

    def _dose_note(self, context: RuleContext[Settings], order: MedicationOrder) -> str:
        start, _, most = self._schedule(context)
        dose = daily_dose(order.model, order.strength)
        if dose is None:
            return "the daily dose could not be computed from the order"
        note = f"{_mg(dose.amount)} ordered ({dose.basis})"
        if dose.amount > most:
            note += f": above the {_mg(most)} maximum of the schedule"
        elif dose.amount > start:
            note += (
                f": above the {_mg(start)} starting dose, so only right as a later weekly step"
            )
        return note

    def _card(
        self,
        context: RuleContext[Settings],
        liver: list[ConditionMatch],
        cramps: list[ConditionMatch],
        ordered: list[tuple[MedicationOrder, Match]],
        active: list[tuple[MedicationOrder, Match]],
    ) -> Card:
        base = context.code_system_base
        record = context.record
        start, step, most = self._schedule(context)
        name = liver_name(liver[0])
        kidney = self.kidney_function(context)
        avoid = baclofen_avoid_reason(kidney, age_years(record, context.now), context.settings)
        if avoid is not None:
            return self._kidney_card(context, liver, cramps, ordered, active, kidney, avoid)
        if ordered:
            summary = (
                f"{name} with leg cramps, baclofen ordered: start {_mg(start)}, raise by "
                f"{_mg(step)} weekly, at most {_mg(most)}"
            )
        else:
            summary = (
                f"{name} with leg cramps: check electrolytes; baclofen {_mg(start)}, up "
                f"{_mg(step)} weekly to {_mg(most)}"
            )
        found = [_conditions_found(record, liver, cramps) + "."]
        for order, match in ordered:
            found.append(
                f"Being ordered: {describe_order(order, match)}; "
                f"{self._dose_note(context, order)}."
            )
        found += _already_active(active)
        why = (
            "**Why:** Electrolytes are checked and corrected first. In a randomised trial in "
            "cirrhosis (Elfert 2016), baclofen up to 30 mg a day stopped or reduced cramps in "
            f"most patients; the schedule here starts at {_mg(start)} and rises by {_mg(step)} "
            f"each week to no more than {_mg(most)}. Human albumin for cramps that do not "
            "respond rests on weaker evidence (open for clinical review)."
        )
        consider = "\n".join(
            [
                "**Consider:**",
                "- Checking and correcting electrolytes (potassium, magnesium, calcium).",
                f"- Baclofen {_mg(start)}, increased weekly by {_mg(step)} up to {_mg(most)}"
                + (" (see the titration below)." if ordered else "."),
                "- Albumin 20-40 g/week only if cramps remain refractory.",
            ]
        )
        parts = [" ".join(found), why, consider]
        if kidney.reduced:
            parts.append("**Kidney function:** " + "; ".join(kidney.lines(record)) + ". "
                         + BACLOFEN_LOWER_START)
        if ordered:
            parts.append(self._titration(context, kidney.reduced))
        reasons = (
            override_reason(base, "specialist-directed", "Specialist-directed treatment"),
            override_reason(base, "not-clinically-indicated", "Not clinically indicated"),
        )
        identity = _identity(liver, cramps, ordered + active)
        return Card(
            summary=summary,
            indicator="info",
            source=source(
                base,
                RULE_ID,
                BACLOFEN_CIRRHOSIS_RCT_2016.label,
                "Cirrhosis with leg cramps", BACLOFEN_CIRRHOSIS_RCT_2016.url),
            detail="\n\n".join(parts),
            override_reasons=reasons,
            identity=identity,
            repeat_quietly=True,
        )

    def _kidney_card(
        self,
        context: RuleContext[Settings],
        liver: list[ConditionMatch],
        cramps: list[ConditionMatch],
        ordered: list[tuple[MedicationOrder, Match]],
        active: list[tuple[MedicationOrder, Match]],
        kidney: KidneyFunction,
        avoid: BaclofenAvoided,
    ) -> Card:
        """Kidney function for which baclofen is avoided (see `baclofen_avoid_reason`): no
        titration and no baclofen suggestion. A baclofen order or active baclofen makes it a
        warning: the drug accumulates."""
        base = context.code_system_base
        record = context.record
        name = liver_name(liver[0])
        in_hand = ordered + active
        if ordered:
            summary = (f"{name} with leg cramps, baclofen ordered with reduced kidney function: "
                       "risk of baclofen toxicity")
        elif active:
            summary = (f"{name} with leg cramps, baclofen active with reduced kidney function: "
                       "risk of baclofen toxicity")
        else:
            summary = (f"{name} with leg cramps and reduced kidney function: check "
                       "electrolytes; baclofen is not suggested")
        found = [_conditions_found(record, liver, cramps)
                 + "; kidney function: " + "; ".join(kidney.lines(record)) + "."]
        found += [f"Being ordered: {describe_order(order, match)}." for order, match in ordered]
        found += _already_active(active)
        why = "**Why:** " + avoid.reason
        consider = ["**Consider:**",
                    "- Checking and correcting electrolytes (potassium, magnesium, calcium)."]
        if in_hand:
            consider.append("- Reviewing the baclofen with the kidney care team; stop it if "
                            "drowsiness, confusion or slowed breathing appear.")
        consider.append("- Albumin 20-40 g/week only if cramps remain refractory.")
        identity = _identity(liver, cramps, in_hand)
        return Card(
            summary=summary,
            indicator="warning" if in_hand else "info",
            source=source(base, RULE_ID, avoid.source.label, "Cirrhosis with leg cramps",
                          avoid.source.url),
            detail="\n\n".join([" ".join(found), why, "\n".join(consider)]),
            override_reasons=(
                override_reason(base, "managed-by-nephrology",
                                "Managed with the kidney care team"),
                override_reason(base, "specialist-directed", "Specialist-directed treatment"),
            ),
            identity=identity,
            repeat_quietly=True,
        )


def _conditions_found(record: PatientRecord, liver: list[ConditionMatch],
                      cramps: list[ConditionMatch]) -> str:
    """'**Found:** <liver conditions>, with <cramp conditions>', each with its onset."""
    return ("**Found:** "
            + "; ".join(condition_line(c, record.onset(c.condition)) for c in liver)
            + ", with "
            + "; ".join(condition_line(c, record.onset(c.condition)) for c in cramps))


def _already_active(active: list[tuple[MedicationOrder, Match]]) -> list[str]:
    if not active:
        return []
    return ["Already active: " + "; ".join(describe_order(o, m) for o, m in active) + "."]


def _identity(liver: list[ConditionMatch], cramps: list[ConditionMatch],
              in_hand: list[tuple[MedicationOrder, Match]]) -> str:
    """The finding: the liver and cramp conditions, and the baclofen orders in hand."""
    identity = "cirrhosis-cramps:" + ",".join(
        sorted({c.reference for c in liver} | {c.reference for c in cramps}))
    if in_hand:
        identity += "|" + ",".join(sorted({o.reference for o, _ in in_hand}))
    return identity
