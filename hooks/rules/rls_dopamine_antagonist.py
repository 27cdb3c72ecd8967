"""A1 `rls-dopamine-antagonist`: dopamine-blocking drugs in restless legs (info).

Source: seed 002 (caution with antipsychotics that block dopamine receptors: they may worsen
restless legs symptoms). The same caution applies to every antiemetic that blocks the same
receptors (metoclopramide, prochlorperazine, promethazine, droperidol, trimethobenzamide); the
sources name no particular alternative, so the card asks for a review of the need.

Fires: an antipsychotic or dopamine-blocking antiemetic (the `dopamine-blockers` value set)
among the orders the hook asks about (patient-view: the active ones) while restless legs is an
active condition.
Quiet: no active restless legs condition (resolved, inactive, refuted or entered in error do not
count); other drugs.
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
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import describe_order
from hooks.rules.common import fit_summary
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.sources import IRLSSG_AUGMENTATION_2016
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "rls-dopamine-antagonist"

SUMMARY_REASON = " blocks dopamine and may worsen the patient's restless legs; review the need"


@dataclass(frozen=True)
class RlsDopamineAntagonist:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "A1"
    references: ClassVar[tuple[Reference, ...]] = (IRLSSG_AUGMENTATION_2016,)
    title: ClassVar[str] = "Dopamine-blocking drugs in restless legs"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seed 002"
    applies: ClassVar[str] = (
        "order hooks: antipsychotic or dopamine-blocking antiemetic orders asked about; "
        "patient-view: active "
        "ones. Needs an active restless legs condition."
    )
    dopamine_blockers: ValueSet = uses("dopamine-blockers")
    restless_legs: ValueSet = uses("restless-legs")
    Settings = RuleSettings  # no thresholds

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.order_rule_reads(hook)

    def evaluate(self, context: RuleContext[RuleSettings]) -> list[Card]:
        orders = matching_orders(context, self.dopamine_blockers)
        if not orders:
            return []
        rls = context.record.active_conditions(self.restless_legs)
        if not rls:
            return []
        return [self._card(order, match, rls, context) for order, match in orders]

    def _card(
        self, order: MedicationOrder, match: Match, rls: list[ConditionMatch],
        context: RuleContext[RuleSettings],
    ) -> Card:
        base = context.code_system_base
        conditions = "\n".join(
            f"- {condition_line(c, context.record.onset(c.condition))}" for c in rls
        )
        detail = "\n\n".join([
            f"**Found:** {describe_order(order, match, context.hook)}, while the patient has "
            "restless legs:\n" + conditions,
            "**Why:** Drugs that block dopamine receptors, antipsychotics above all, can make "
            "restless legs worse, and the IRLSSG guidance removes such exacerbating drugs "
            "where possible. Dopamine-blocking antiemetics (metoclopramide, prochlorperazine, "
            "promethazine, droperidol) block the same receptors; the evidence for them "
            "is thinner.",
            "**Consider:** whether this drug is needed, and whether a drug that does not block "
            "dopamine receptors would serve the same purpose. If it is continued, ask about "
            "restless legs symptoms at follow-up.",
        ])
        return Card(
            summary=fit_summary(order.medication_label, SUMMARY_REASON),
            indicator="info",
            source=source(base, RULE_ID, IRLSSG_AUGMENTATION_2016.label,
                          "Dopamine-blocking drug in restless legs", IRLSSG_AUGMENTATION_2016.url),
            detail=detail,
            override_reasons=(
                override_reason(base, "needed-reviewed", "Needed; the benefit was reviewed"),
                override_reason(base, "no-suitable-alternative", "No suitable alternative"),
                override_reason(base, "specialist-directed", "Specialist-directed"),
            ),
            identity=order.reference,
            # On chart open the order is a standing one: say it once, not on every open.
            repeat_quietly=not context.is_order_hook,
        )
