"""E1 `cramps-electrolytes-abnormal`: cramps with abnormal electrolytes (warning).

Sources: seeds 003 and 004 (electrolyte balance: potassium, magnesium, calcium), seed 000
(electrolyte imbalance as a cause of spasm).

Fires: leg cramps or muscle spasm (an active condition, or a cramp drug among the orders asked
about) and the most recent potassium, magnesium or total calcium within
`electrolyte_lookback_days` (90) below its low limit: the lab's own reference range first, else
K < 3.5, Mg < 0.70, Ca < 2.12 mmol/L. Values in units that are not recognised are listed as not
compared. Suggests rechecking the low tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import LabResult
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import Suggestion
from hooks import data
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.electrolytes import TESTS
from hooks.rules.electrolytes import Electrolytes
from hooks.rules.labs import latest
from hooks.rules.labs import order_tests
from hooks.rules.labs import runs_on
from hooks.rules.sources import CRAMP_WORKUP_2015

ABNORMAL = "cramps-electrolytes-abnormal"


@dataclass(frozen=True)
class CrampsElectrolytesAbnormal:
    rule_id: ClassVar[str] = ABNORMAL
    catalog_code: ClassVar[str] = "E1"
    title: ClassVar[str] = "Cramps with abnormal electrolytes"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seeds 000, 003, 004"
    applies: ClassVar[str] = (
        "patient-view; order hooks while a cramp treatment is ordered, and not for the "
        "electrolyte the order in hand corrects (a magnesium product for low magnesium)."
    )
    labs: Electrolytes = field(default_factory=Electrolytes)

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        electrolyte_lookback_days: int = 90
        potassium_low_mmol_l: float = 3.5  # used only when the lab gives no reference range
        magnesium_low_mmol_l: float = 0.7
        calcium_low_mmol_l: float = 2.12

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.CONDITIONS, data.ELECTROLYTES)

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        labs = self.labs
        if not runs_on(context, labs.cramp_drugs):
            return []
        cramps = context.record.active_conditions(labs.leg_cramps)
        cramp_orders = [o for o in context.subject_orders if o.match_medication(labs.cramp_drugs)]
        if not cramps and not cramp_orders:
            return []
        abnormal: list[tuple[str, LabResult, float, str]] = []
        uncompared: list[tuple[str, LabResult]] = []
        for name, test in labs.tests().items():
            result = latest(context, test, context.settings.electrolyte_lookback_days)
            if result is None:
                continue
            if result.normalised is None:
                uncompared.append((name, result))
                continue
            limit, basis = self._low_limit(context, name, result)
            if result.is_below(limit):
                abnormal.append((name, result, limit, basis))
        # At order entry the order in hand may be the correction itself (a magnesium product
        # for low magnesium): a card asking to correct what is being corrected is noise.
        corrections = {"magnesium": labs.magnesium_products}
        abnormal = [item for item in abnormal if not (
            context.is_order_hook and item[0] in corrections and any(
                order.match_medication(corrections[item[0]])
                for order in context.subject_orders))]
        if not abnormal:
            return []
        return [self._card(context, cramps, cramp_orders, abnormal, uncompared)]

    @staticmethod
    def _low_limit(
        context: RuleContext[Settings], name: str, result: LabResult
    ) -> tuple[float, str]:
        if result.low_limit is not None:
            return result.low_limit, "the lab's reference range"
        defaults = {
            "potassium": context.settings.potassium_low_mmol_l,
            "magnesium": context.settings.magnesium_low_mmol_l,
            "calcium": context.settings.calcium_low_mmol_l,
        }
        return defaults[name], "the default limit"

    def _card(
        self,
        context: RuleContext[Settings],
        cramps: list[ConditionMatch],
        cramp_orders: list,
        abnormal: list,
        uncompared: list,
    ) -> Card:
        base = context.code_system_base
        why_here = [f"{c.label} ({c.reference})" for c in cramps]
        why_here += [f"{o.medication_label} being ordered ({o.reference})" for o in cramp_orders]
        lines = [
            f"- **{name}** {result.describe()}: below {limit:g} {result.canonical_unit} ({basis})"
            for name, result, limit, basis in abnormal
        ]
        lines += [
            f"- {name} {result.describe()}: not compared (unit not recognised)"
            for name, result in uncompared
        ]
        names = ", ".join(name for name, *_ in abnormal)
        detail = "\n\n".join(
            [
                f"**Found:** {'; '.join(why_here)}, and low electrolytes in the last "
                f"{context.settings.electrolyte_lookback_days} days:\n" + "\n".join(lines),
                "**Why:** The leg cramp guidance names low potassium, magnesium or calcium as a "
                "treatable cause of cramps; correcting the imbalance comes before drug treatment "
                "of the cramps.",
                "**Consider:** looking for the cause (diuretics, diet, losses), correcting the "
                "deficit, and rechecking.",
            ]
        )
        reason = cramps[0] if cramps else None
        tests = [TESTS[name] for name, *_ in abnormal]
        return Card(
            summary=f"Cramps with low {names}: correct electrolytes before treating the cramps",
            indicator="warning",
            source=source(
                base,
                ABNORMAL,
                CRAMP_WORKUP_2015.label,
                "Cramps with abnormal electrolytes", CRAMP_WORKUP_2015.url),
            detail=detail,
            suggestions=(
                Suggestion(label=f"Recheck {names}", actions=order_tests(context, tests, reason)),
            ),
            selection_behavior="at-most-one",
            override_reasons=(
                override_reason(base, "already-being-corrected", "Already being corrected"),
                override_reason(base, "result-not-current", "Result no longer current"),
            ),
            identity="electrolytes-low:" + ",".join(name for name, *_ in abnormal),
        )
