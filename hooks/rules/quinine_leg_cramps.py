"""Q1 `quinine-leg-cramps`: quinine is not for leg cramps (critical).

Source: seed 003 (quinine is no longer recommended for leg cramps: serious, life-threatening
hematologic reactions including thrombocytopenia and hemolytic uremic syndrome; FDA warning),
seeds 003 and 004 for the first-line measures the card points to instead.

Fires: a quinine order (any product, any dose) among the orders the hook asks about.
Quiet: the patient has active malaria, or the order's reason (code or referenced Condition) is
malaria, or the order cites a reason Condition the record does not hold (it could be malaria:
when unsure, stay quiet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import DataRequirement
from cds_service.kit import MedicationOrder
from cds_service.kit import PatientRecord
from cds_service.kit import RuleContext
from cds_service.kit import ValueSet
from cds_service.kit import concept_label
from hooks import data
from hooks.rules.common import describe_order
from hooks.rules.common import override_reason
from hooks.rules.common import remove_order_suggestion
from hooks.rules.common import source
from hooks.rules.kidney import BACLOFEN_LOWER_START
from hooks.rules.kidney import BaclofenKidneySettings
from hooks.rules.kidney import KidneyGates
from hooks.rules.kidney import baclofen_avoid_reason
from hooks.rules.patient import age_years
from hooks.rules.sources import BACLOFEN_CKD_2014
from hooks.rules.sources import BEERS_2023
from hooks.rules.sources import FDA_QUININE_2010
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "quinine-leg-cramps"

SUMMARY_CRAMPS = (
    "Quinine is not recommended for leg cramps: risk of serious, potentially fatal blood reactions"
)
# When neither the chart nor the order says cramps, the card names the harm and asks for the
# indication, without asserting one the order does not carry (babesiosis, say).
SUMMARY_OTHER = (
    "Quinine carries a risk of serious, potentially fatal blood reactions: check the indication"
)

WHY = (
    "The FDA warned in 2010 that quinine should not be used for night-time leg cramps: it can "
    "cause serious and sometimes fatal blood disorders, such as a low platelet count "
    "(thrombocytopenia) and hemolytic uremic syndrome, and its label says the risk outweighs any "
    "benefit for cramps."
)

INSTEAD = (
    "**Consider instead**\n"
    "- First line, without drugs: daily calf and hamstring stretching, stretching or massaging "
    "the muscle during a cramp, enough fluid, and a check of potassium, magnesium and calcium.\n"
    "- Look for causes: electrolyte imbalance, peripheral artery disease, cirrhosis, and "
    "medicines such as diuretics, statins and beta-blockers.\n"
)
PERSIST = "- If cramps persist despite this, "
BACLOFEN_SCHEDULE = ("the guidance names baclofen (10 mg a day, raised by 10 mg a day each week "
                     "to at most 30 mg a day)")
OTHER_OPTIONS = ("calcium channel blockers may help some patients, and vitamin B12 has only "
                 "limited evidence.")
# The same as a sentence of its own (str.capitalize would lower the rest: "vitamin b12").
OTHER_OPTIONS_SENTENCE = OTHER_OPTIONS[0].upper() + OTHER_OPTIONS[1:]


@dataclass(frozen=True)
class QuinineLegCramps(KidneyGates):
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "Q1"
    references: ClassVar[tuple[Reference, ...]] = (FDA_QUININE_2010, BEERS_2023,
                                                    BACLOFEN_CKD_2014)
    title: ClassVar[str] = "Quinine is not for leg cramps"
    indicator: ClassVar[str] = "critical"
    sources: ClassVar[str] = (
        "FDA Drug Safety Communication 2010 and the quinine label's boxed warning; origin: "
        "seeds 003, 004"
    )
    applies: ClassVar[str] = (
        "order hooks: quinine among the orders asked about; patient-view: active quinine. "
        "Quiet for active malaria or a malaria reason. Gate: with eGFR below 30, ESRD or "
        "dialysis (or below 60 at 65 or over) baclofen is not among the alternatives; below 60 "
        "a lower start is advised."
    )
    quinine: ValueSet = uses("quinine")
    malaria: ValueSet = uses("malaria")
    leg_cramps: ValueSet = uses("leg-cramps")
    Settings = BaclofenKidneySettings  # any dose counts; thresholds gate the alternatives

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.with_kidney_gate(data.order_rule_reads(hook))

    def evaluate(self, context: RuleContext[BaclofenKidneySettings]) -> list[Card]:
        record = context.record
        malaria = record.active_conditions(self.malaria)
        if malaria:
            return []
        cards = []
        for order in context.subject_orders:
            match = order.match_medication(self.quinine)
            if match is None or self._has_malaria_or_unknown_reason(order, record):
                continue
            found = describe_order(order, match, context.hook)
            reasons = [label for r in order.reason_codes if (label := concept_label(r))]
            if reasons:
                found += f"; reason given on the order: {', '.join(reasons)}"
            cards.append(self._card(order, found, context, self._for_cramps(order, record)))
        return cards

    def _for_cramps(self, order: MedicationOrder, record: PatientRecord) -> bool:
        """Whether the chart or the order's reason shows cramps (then the leg cramp wording)."""
        if any(self.leg_cramps.match(reason) for reason in order.reason_codes):
            return True
        for reference in order.reason_references:
            condition = record.condition(reference)
            if condition is not None and self.leg_cramps.match(condition.code):
                return True
        return bool(record.active_conditions(self.leg_cramps))

    def _has_malaria_or_unknown_reason(self, order: MedicationOrder, record: PatientRecord) -> bool:
        if any(self.malaria.match(reason) for reason in order.reason_codes):
            return True
        for reference in order.reason_references:
            condition = record.condition(reference)
            if condition is None or self.malaria.match(condition.code):
                return True
        return False

    def _card(self, order: MedicationOrder, found: str,
              context: RuleContext[BaclofenKidneySettings], for_cramps: bool) -> Card:
        base = context.code_system_base
        kidney = self.kidney_function(context)
        kidney_lines = kidney.lines(context.record) if kidney.reduced else []
        if kidney_lines:
            found += "; kidney function: " + "; ".join(kidney_lines)
        avoid = baclofen_avoid_reason(kidney, age_years(context.record, context.now),
                                      context.settings)
        # The alternatives the card names: baclofen as scheduled, with a lower start, or not
        # at all (kidney function, age); the other options always.
        if avoid is not None:
            baclofen = (f"- If cramps persist despite this: {avoid.reason} "
                        f"{OTHER_OPTIONS_SENTENCE}")
        elif kidney.reduced:
            baclofen = (f"{PERSIST}{BACLOFEN_SCHEDULE}. {BACLOFEN_LOWER_START} "
                        f"{OTHER_OPTIONS_SENTENCE}")
        else:
            baclofen = f"{PERSIST}{BACLOFEN_SCHEDULE}; {OTHER_OPTIONS}"
        suggestions = remove_order_suggestion(order, context.hook, "quinine")
        detail = "\n\n".join(
            [
                f"**Found:** {found}. No active malaria diagnosis and no malaria indication on the "
                "order were found.",
                f"**Why:** {WHY}",
                INSTEAD + baclofen,
                "Quinine keeps its place in treating malaria; if that is the indication, record it "
                "on the order.",
            ]
        )
        return Card(
            summary=SUMMARY_CRAMPS if for_cramps else SUMMARY_OTHER,
            indicator="critical",
            source=source(
                base,
                RULE_ID,
                FDA_QUININE_2010.label,
                "Quinine for leg cramps",
                FDA_QUININE_2010.url,
            ),
            detail=detail,
            suggestions=suggestions,
            selection_behavior="at-most-one" if suggestions else None,
            override_reasons=(
                override_reason(base, "treating-malaria", "Treating malaria"),
                override_reason(base, "other-documented-indication", "Other documented indication"),
            ),
            identity=order.reference,
        )
