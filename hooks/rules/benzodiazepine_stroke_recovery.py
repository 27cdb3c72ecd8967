"""B1 `benzodiazepine-stroke-recovery`: benzodiazepines during stroke recovery (warning).

Source: seeds 001 and 002 (avoid diazepam and other benzodiazepines while a patient recovers
from a stroke: they may harm recovery and add sedation).

Fires: a benzodiazepine order among the orders the hook asks about, and a stroke (ischemic or
hemorrhagic) that counts (active, not refuted) whose onset lies within `recovery_window_days`
(default 180) before now, or whose onset is unknown while the condition is active.
Quiet: history-of-stroke codes (Z86.73, I69) and strokes whose onset is older than the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import as_instant
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import describe_order
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import remove_order_suggestion
from hooks.rules.common import source
from hooks.rules.sources import DRUGS_AND_STROKE_RECOVERY_1995
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "benzodiazepine-stroke-recovery"


@dataclass(frozen=True)
class BenzodiazepineStrokeRecovery:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "B1"
    references: ClassVar[tuple[Reference, ...]] = (DRUGS_AND_STROKE_RECOVERY_1995,)
    title: ClassVar[str] = "Benzodiazepines during stroke recovery"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seeds 001, 002"
    applies: ClassVar[str] = (
        "order hooks: benzodiazepine orders asked about; patient-view: active benzodiazepines."
    )
    benzodiazepines: ValueSet = uses("benzodiazepines")
    stroke: ValueSet = uses("stroke")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        recovery_window_days: int = 180

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.order_rule_reads(hook)

    def recent_strokes(self, context: RuleContext[Settings]) -> list[tuple[ConditionMatch, Any]]:
        window = timedelta(days=context.settings.recovery_window_days)
        recent = []
        for found in context.record.active_conditions(self.stroke):
            onset = context.record.onset(found.condition)
            started = as_instant(onset)
            if started is None or context.now - started <= window:
                recent.append((found, onset))
        return recent

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        orders = matching_orders(context, self.benzodiazepines)
        if not orders:
            return []
        strokes = self.recent_strokes(context)
        if not strokes:
            return []
        return [self._card(order, match, strokes, context) for order, match in orders]

    def _card(
        self, order: MedicationOrder, match: Match,
        strokes: list[tuple[ConditionMatch, Any]], context: RuleContext[Settings],
    ) -> Card:
        base = context.code_system_base
        window = context.settings.recovery_window_days
        stroke_lines = "\n".join(f"- {condition_line(found, onset)}" for found, onset in strokes)
        unknown = any(onset is None for _, onset in strokes)
        detail = "\n\n".join(filter(None, [
            f"**Found:** {describe_order(order, match, context.hook)}, and a stroke within the "
            f"last {window} days:\n{stroke_lines}",
            "An active stroke without a recorded onset is treated as recent." if unknown else "",
            "**Why:** In a study of stroke recovery, patients given benzodiazepines (among other "
            "centrally acting drugs) regained less motor function (Goldstein 1995, "
            "observational); they also add sedation and falls.",
            "**Consider:** non-drug measures first; for post-stroke spasticity, tizanidine, "
            "baclofen or dantrolene are the usual drugs. If a benzodiazepine is needed for "
            "another reason, choose the override reason that applies.",
        ]))
        return Card(
            summary=f"{_short(order)}: benzodiazepines may hinder recovery after a recent stroke",
            indicator="warning",
            source=source(base, RULE_ID, DRUGS_AND_STROKE_RECOVERY_1995.label,
                          "Benzodiazepine during stroke recovery",
                          DRUGS_AND_STROKE_RECOVERY_1995.url),
            detail=detail,
            suggestions=remove_order_suggestion(order, context.hook, "benzodiazepine"),
            selection_behavior="at-most-one",
            override_reasons=(
                override_reason(base, "seizure", "Seizure or status epilepticus"),
                override_reason(base, "alcohol-withdrawal", "Alcohol withdrawal"),
                override_reason(base, "end-of-life-care", "End-of-life care"),
                override_reason(base, "procedural-sedation", "Procedural sedation"),
            ),
            identity=order.reference,
        )


def _short(order: MedicationOrder) -> str:
    label = order.medication_label
    return label if len(label) <= 60 else label[:57] + "..."
