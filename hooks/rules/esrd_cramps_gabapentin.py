"""S1 `esrd-cramps-gabapentin`: ESRD or dialysis with restless legs or leg cramps (info).

Sources: the AASM 2024 restless legs guideline (gabapentin is the drug option it suggests for
restless legs with end-stage renal disease; a conditional recommendation); for cramps during
dialysis, the dialysis measures reviews of their management name (sodium profiling, dialysate
changes, slower fluid removal and a review of dry weight; midodrine where low blood pressure on
dialysis drives them) and KDOQI's account of intradialytic hypotension, of which cramps are a
sign. Gabapentin and pregabalin are cleared by the kidneys, so the card says the dose must be
adjusted to kidney function.

Fires: active end-stage renal disease or current dialysis, with
- active restless legs: gabapentin, renally dosed; on order hooks only while an RLS drug
  (gabapentin and pregabalin included) is among the orders asked about;
- active leg cramps, on dialysis: the dialysis measures, no drug switch (gabapentin is named
  for restless legs, not for cramps); on order hooks only while a cramp treatment is ordered.
The card says the dose must be renally adjusted when gabapentin or pregabalin is being ordered
or active.
Safety gates (`patient_safety`): in pregnancy gabapentin is not named (drug treatment of
restless legs in pregnancy is a specialist's choice); with an opioid, benzodiazepine or other
sedative, COPD, or age 65 or over, the FDA 2019 breathing warning is added.
Quiet: no kidney condition; cramps with ESRD but not on dialysis and no restless legs (the
guidance names no drug for them); conditions that do not count (resolved, inactive, refuted,
entered in error); a history-of-dialysis code (SNOMED 161693006, or a condition named "history
of ...") never stands for current dialysis, whatever a value set holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import ValueSet
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import describe_order
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.labs import runs_on
from hooks.rules.patient import current
from hooks.rules.patient_safety import BREATHING_WARNING
from hooks.rules.patient_safety import GabapentinoidGates
from hooks.rules.patient_safety import GabapentinoidSettings
from hooks.rules.sources import AASM_RLS_2024
from hooks.rules.sources import FDA_GABAPENTINOIDS_BREATHING_2019
from hooks.rules.sources import KDOQI_INTRADIALYTIC_HYPOTENSION
from hooks.rules.sources import RLS_PREGNANCY_2015
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "esrd-cramps-gabapentin"


# Ingredient names for the summary, most specific first (enacarbil is a different ingredient).
_LIGAND_NAMES = (
    ("gabapentin enacarbil", re.compile(r"\b(gabapentin\s+enacarbil|horizant)\b", re.I)),
    ("pregabalin", re.compile(r"\b(pregabalin|lyrica)\b", re.I)),
    ("gabapentin", re.compile(r"\b(gabapentin|neurontin|gralise)\b", re.I)),
)


def _unique(found: Iterable[ConditionMatch]) -> list[ConditionMatch]:
    """Each Condition once, in the order found (a code may sit in two value sets)."""
    seen: set[int] = set()
    out = []
    for item in found:
        if id(item.condition) not in seen:
            seen.add(id(item.condition))
            out.append(item)
    return out


def ligand_name(order: MedicationOrder) -> str:
    for name, pattern in _LIGAND_NAMES:
        if pattern.search(order.medication_label):
            return name
    return "gabapentinoid"


@dataclass(frozen=True)
class EsrdCrampsGabapentin(GabapentinoidGates):
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "S1"
    references: ClassVar[tuple[Reference, ...]] = (
        AASM_RLS_2024, KDOQI_INTRADIALYTIC_HYPOTENSION, FDA_GABAPENTINOIDS_BREATHING_2019,
        RLS_PREGNANCY_2015,
    )
    title: ClassVar[str] = "ESRD or dialysis with restless legs or leg cramps"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = (
        "AASM 2024 RLS guideline (gabapentin in ESRD); KDOQI intradialytic hypotension and "
        "reviews of dialysis cramps; origin: seeds 002, 003"
    )
    applies: ClassVar[str] = (
        "Active ESRD or current dialysis with active RLS (order hooks: an RLS drug ordered) or "
        "with leg cramps on dialysis (order hooks: a cramp treatment ordered). Gates: "
        "gabapentin is not named in pregnancy; breathing-risk warning with opioids, "
        "benzodiazepines or other sedatives, COPD, or age 65 or over."
    )
    restless_legs: ValueSet = uses("restless-legs")
    leg_cramps: ValueSet = uses("leg-cramps")
    alpha2delta_ligands: ValueSet = uses("alpha2delta-ligands")
    rls_drugs: ValueSet = uses("rls-drugs")
    cramp_drugs: ValueSet = uses("cramp-drugs")
    Settings = GabapentinoidSettings

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        # Active gabapentin or pregabalin changes the card on every hook, not only patient-view.
        return data.with_safety_gates((data.CONDITIONS, data.ACTIVE_MEDICATIONS))

    def evaluate(self, context: RuleContext[GabapentinoidSettings]) -> list[Card]:
        rls_in_hand = runs_on(context, self.rls_drugs, self.alpha2delta_ligands)
        cramps_in_hand = runs_on(context, self.cramp_drugs)
        if not rls_in_hand and not cramps_in_hand:
            return []
        record = context.record
        dialysis = current(record.active_conditions(self.dialysis))
        esrd = current(record.active_conditions(self.esrd))
        kidney = _unique([*dialysis, *esrd])
        on_dialysis = bool(dialysis)
        rls = record.active_conditions(self.restless_legs) if rls_in_hand else []
        # Gabapentin is the guidance's option for restless legs, not for cramps: cramps count
        # here only on dialysis, where the dialysis measures are the answer.
        cramps = (record.active_conditions(self.leg_cramps)
                  if cramps_in_hand and on_dialysis else [])
        if not kidney or not (rls or cramps):
            return []
        ordered, active = self._ligands(context)
        return [self._card(context, kidney, rls, cramps, on_dialysis, ordered, active)]

    def _ligands(
        self, context: RuleContext[GabapentinoidSettings]
    ) -> tuple[list[tuple[MedicationOrder, Match]], list[tuple[MedicationOrder, Match]]]:
        """Gabapentin or pregabalin being ordered (order hooks) and already active (any hook)."""
        ordered = []
        if context.is_order_hook:
            ordered = [
                (o, m)
                for o in context.subject_orders
                if (m := o.match_medication(self.alpha2delta_ligands))
            ]
        seen = {o.reference for o, _ in ordered}
        active = [
            (o, m)
            for o in context.record.active_medications(self.alpha2delta_ligands)
            if (m := o.match_medication(self.alpha2delta_ligands)) and o.reference not in seen
        ]
        return ordered, active

    def _card(
        self,
        context: RuleContext[GabapentinoidSettings],
        kidney: list[ConditionMatch],
        rls: list[ConditionMatch],
        cramps: list[ConditionMatch],
        on_dialysis: bool,
        ordered: list[tuple[MedicationOrder, Match]],
        active: list[tuple[MedicationOrder, Match]],
    ) -> Card:
        base = context.code_system_base
        record = context.record
        who = "On dialysis" if on_dialysis else "ESRD"
        what = " and ".join(
            name for name, found in (("restless legs", rls), ("leg cramps", cramps)) if found
        )
        ligands = ordered + active
        # Gates of the gabapentinoid the card names (see patient_safety).
        pregnancy = self.pregnancy(context) if rls or ligands else None
        pregnant = pregnancy is not None and pregnancy.pregnant
        # The breathing warning goes with a gabapentinoid the card names or the patient has.
        breathing = (self.breathing_risk(context) if ligands or (rls and not pregnant)
                     else None)
        if ligands:
            drug = ligand_name(ligands[0][0])
            verb = "ordered" if ordered else "active"
            summary = (
                f"{who} with {what}, {drug} {verb}: the dose must be adjusted to kidney function"
            )
        elif rls and pregnant:
            summary = (f"{who} with {what}, pregnant: drug treatment of restless legs needs a "
                       "specialist's choice")
        elif rls and cramps:
            summary = (f"{who} with {what}: renally dosed gabapentin for restless legs; review "
                       "dialysis settings for cramps")
        elif rls:
            summary = (f"{who} with {what}: gabapentin, renally dosed, is the option the "
                       "guidance suggests")
        else:
            summary = (f"{who} with {what}: review dialysis settings and dry weight with the "
                       "dialysis team")

        found = [
            "**Found:** "
            + "; ".join(condition_line(c, record.onset(c.condition)) for c in kidney)
            + ", with "
            + "; ".join(condition_line(c, record.onset(c.condition)) for c in _unique(rls + cramps))
            + "."
        ]
        if ordered:
            found.append(
                "Being ordered: " + "; ".join(describe_order(o, m) for o, m in ordered) + "."
            )
        if active:
            found.append("Active: " + "; ".join(describe_order(o, m) for o, m in active) + ".")
        if pregnancy is not None and pregnant:
            found.append("Pregnancy: " + "; ".join(pregnancy.lines(record)) + ".")
        if breathing is not None and breathing.present:
            found.append("Breathing risk: "
                         + "; ".join(breathing.lines(record, context.is_order_hook)) + ".")

        why = ["**Why:**"]
        if rls:
            why.append(
                "For restless legs with end-stage renal disease, the AASM 2024 guideline suggests "
                "gabapentin (a conditional recommendation on limited evidence); the alpha-2-delta "
                "ligands (gabapentin, gabapentin enacarbil, pregabalin) are its first-line drugs "
                "for restless legs."
            )
        if cramps:
            why.append(
                "Cramps during dialysis mostly come from fluid removal and falling blood pressure "
                "(KDOQI lists cramps among the signs of intradialytic hypotension); reviews of "
                "their management name sodium profiling, dialysate changes, slower fluid removal "
                "and a review of dry weight, not a drug switch."
            )
        if ligands or rls:
            why.append(
                "Gabapentin and pregabalin are cleared by the kidneys: in kidney failure the dose "
                "has to be lowered to suit the remaining kidney function, or the drug accumulates."
            )

        consider = ["**Consider:**"]
        if ligands:
            consider.append(
                "- Check that the gabapentin or pregabalin dose and frequency follow the "
                "product's renal dosing for the patient's current kidney function"
                + (" and dialysis schedule." if on_dialysis else ".")
            )
        elif rls and pregnant:
            consider.append(
                "- For the restless legs: drug treatment in pregnancy is an individual choice "
                "weighing risks to mother and baby, best made with the obstetric team or a "
                "specialist; check iron status first. No drug is suggested here."
            )
        elif rls:
            consider.append(
                "- For the restless legs: gabapentin at a dose adjusted to kidney function (see "
                "the product's renal dosing)."
            )
        if cramps:
            consider.append(
                "- For the cramps, with the dialysis team: sodium profiling, dialysate changes, "
                "slower ultrafiltration, a review of dry weight, and midodrine where low blood "
                "pressure on dialysis drives them."
            )
        consider.append(
            "- First-line measures still apply: stretching, and a review of electrolytes."
        )

        if pregnant and ligands:
            consider.append(
                "- Pregnancy: review the gabapentinoid with the obstetric team or a specialist."
            )
        sections = [" ".join(found), " ".join(why), "\n".join(consider)]
        if breathing is not None and breathing.present:
            sections.append(BREATHING_WARNING)
        reasons = [
            override_reason(base, "managed-by-nephrology", "Managed with the kidney care team"),
        ]
        if ligands:
            reasons.append(
                override_reason(base, "dose-already-adjusted", "Dose already adjusted")
            )
        reasons.append(
            override_reason(base, "not-clinically-indicated", "Not clinically indicated")
        )
        identity = "esrd-cramps:" + ",".join(
            sorted({c.reference for c in kidney} | {c.reference for c in rls + cramps})
        )
        if ligands:
            identity += "|" + ",".join(sorted({o.reference for o, _ in ligands}))
        cited = AASM_RLS_2024 if rls or ligands else KDOQI_INTRADIALYTIC_HYPOTENSION
        return Card(
            summary=summary,
            indicator="info",
            source=source(
                base,
                RULE_ID,
                cited.label,
                "ESRD or dialysis with restless legs or leg cramps",
                cited.url,
            ),
            detail="\n\n".join(sections),
            override_reasons=tuple(reasons),
            identity=identity,
            repeat_quietly=True,
        )
