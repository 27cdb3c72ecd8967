"""E2 `diuretic-electrolytes-due`: cramps on diuretics with no recent electrolytes (info).

Source: seed 003 (periodic electrolyte tests for patients on diuretics; review diuretics as a
cause of cramps).

Fires: leg cramps plus an active loop or thiazide diuretic (a potassium-sparing one alone never
counts) and no potassium or no magnesium result within `electrolyte_lookback_days` (90); the card
names which is missing. Suggests a basic metabolic panel (it holds potassium) and magnesium.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import DataRequirement
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import Suggestion
from cds_service.kit import ValueSet
from hooks import data
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.electrolytes import BASIC_METABOLIC_PANEL
from hooks.rules.electrolytes import TESTS
from hooks.rules.electrolytes import Electrolytes
from hooks.rules.labs import latest
from hooks.rules.labs import order_tests
from hooks.rules.labs import runs_on
from hooks.rules.sources import FUROSEMIDE_LABEL
from hooks.rules.sources import Reference
from hooks.valuesets import uses

DUE = "diuretic-electrolytes-due"


@dataclass(frozen=True)
class DiureticElectrolytesDue:
    rule_id: ClassVar[str] = DUE
    catalog_code: ClassVar[str] = "E2"
    references: ClassVar[tuple[Reference, ...]] = (FUROSEMIDE_LABEL,)
    title: ClassVar[str] = "Cramps on diuretics with no recent electrolytes"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seed 003"
    applies: ClassVar[str] = "patient-view; order hooks while an RLS or cramp drug is ordered."
    labs: Electrolytes = field(default_factory=Electrolytes)
    diuretics: ValueSet = uses("loop-thiazide-diuretics")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        electrolyte_lookback_days: int = 90

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.CONDITIONS, data.ACTIVE_MEDICATIONS, data.ELECTROLYTES)

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        labs = self.labs
        if not runs_on(context, labs.cramp_drugs):
            return []
        cramps = context.record.active_conditions(labs.leg_cramps)
        if not cramps:
            return []
        diuretics = [
            (o, m)
            for o in context.record.active_medications(self.diuretics)
            if (m := o.match_medication(self.diuretics))
        ]
        if not diuretics:
            return []
        lookback_days = context.settings.electrolyte_lookback_days
        missing = [
            name
            for name in ("potassium", "magnesium")
            if latest(context, labs.tests()[name], lookback_days) is None
        ]
        if not missing:
            return []
        base = context.code_system_base
        days = context.settings.electrolyte_lookback_days
        names = " and ".join(missing)
        drugs = "; ".join(f"**{o.medication_label}**" for o, _ in diuretics)
        detail = "\n\n".join(
            [
                f"**Found:** {cramps[0].label} while on {drugs}; no "
                f"{names} result in the last {days} days.",
                "**Why:** Loop and thiazide diuretics can deplete potassium and magnesium; the "
                "furosemide prescribing information warns of electrolyte depletion and lists "
                "muscle cramps among its signs.",
                "**Consider:** checking potassium and magnesium, and whether the diuretic is still "
                "needed at this dose.",
            ]
        )
        return [
            Card(
                summary=f"Cramps on a diuretic with no {names} result in {days} days",
                indicator="info",
                source=source(
                    base,
                    DUE,
                    FUROSEMIDE_LABEL.label,
                    "Electrolytes due on diuretics", FUROSEMIDE_LABEL.url),
                detail=detail,
                suggestions=(
                    Suggestion(
                        label="Order "
                        + " and ".join(
                            "a basic metabolic panel" if name == "potassium" else name
                            for name in missing
                        ),
                        actions=order_tests(
                            context,
                            [
                                BASIC_METABOLIC_PANEL if name == "potassium" else TESTS[name]
                                for name in missing
                            ],
                            cramps[0],
                        ),
                        is_recommended=True,
                    ),
                ),
                selection_behavior="at-most-one",
                override_reasons=(
                    override_reason(base, "results-elsewhere", "Recent results held elsewhere"),
                    override_reason(base, "not-clinically-indicated", "Not clinically indicated"),
                ),
                identity="electrolytes-due:" + ",".join(missing),
            )
        ]
