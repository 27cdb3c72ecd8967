"""R1 `rls-iron-studies-due`: RLS without recent iron studies (info).

Source: seed 002 (check serum iron studies, ferritin and transferrin saturation, in RLS).

Fires: active RLS and no ferritin or no transferrin saturation result within
`iron_lookback_days` (365); the missing result is itself the finding. A saturation computed from
serum iron and TIBC of the same draw counts as a saturation result. Suggests ordering the
missing test(s) as draft ServiceRequests with their LOINC codes.
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
from hooks.rules.common import format_date
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.iron import FERRITIN_TEST
from hooks.rules.iron import MORNING_DRAW
from hooks.rules.iron import TSAT_TEST
from hooks.rules.iron import IronLabs
from hooks.rules.labs import order_tests
from hooks.rules.sources import AASM_RLS_2024
from hooks.rules.sources import Reference

IRON_STUDIES_DUE = "rls-iron-studies-due"


@dataclass(frozen=True)
class RlsIronStudiesDue:
    rule_id: ClassVar[str] = IRON_STUDIES_DUE
    catalog_code: ClassVar[str] = "R1"
    references: ClassVar[tuple[Reference, ...]] = (AASM_RLS_2024,)
    title: ClassVar[str] = "RLS without recent iron studies"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seed 002"
    applies: ClassVar[str] = "patient-view; order hooks while an RLS or cramp drug is ordered."
    labs: IronLabs = field(default_factory=IronLabs)

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        iron_lookback_days: int = 365

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return self.labs.reads()

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        rls = self.labs.applies(context)
        if not rls:
            return []
        picture = self.labs.picture(context, context.settings.iron_lookback_days)
        missing = []
        if picture.ferritin is None:
            missing.append(FERRITIN_TEST)
        if picture.saturation is None and picture.computed_saturation is None:
            missing.append(TSAT_TEST)
        # A result in a unit that cannot be converted is named, never dropped: the clinician
        # can read it; the rule cannot compare it.
        uncompared = [(name, r) for name, r in (("ferritin", picture.ferritin),
                                                ("transferrin saturation", picture.saturation))
                      if r is not None and r.normalised is None]
        if not missing and not uncompared:
            return []
        days = context.settings.iron_lookback_days
        base = context.code_system_base
        names = " and ".join(
            "ferritin" if t is FERRITIN_TEST else "transferrin saturation" for t in missing
        ) or " and ".join(name for name, _ in uncompared)
        condition = rls[0]
        detail = "\n\n".join(
            [
                f"**Found:** {condition.label} (onset "
                f"{format_date(context.record.onset(condition.condition))})"
                + (f"; no {names} result in the last {days} days" if missing else "")
                + "".join(f"; {name} {r.describe()}: not compared (unit not recognised)"
                          for name, r in uncompared) + ".",
                "**Why:** The AASM 2024 guideline advises testing iron stores (serum ferritin and "
                "transferrin saturation) regularly in clinically significant restless legs: low "
                "iron stores worsen symptoms and can be corrected.",
                "**Consider:** ordering the missing test(s), drawn in the morning without iron "
                "supplements or iron-rich food for 24 hours (as the AASM 2024 guideline "
                "advises); if ferritin is 75 ng/mL or less or transferrin saturation is below "
                "20%, iron is an option.",
            ]
        )
        return [
            Card(
                summary=(f"Restless legs: no {names} in the last {days} days; check iron stores"
                         if missing else f"Restless legs: {names} in a unit not recognised; "
                         "check iron stores"),
                indicator="info",
                source=source(
                    base,
                    IRON_STUDIES_DUE,
                    AASM_RLS_2024.label,
                    "Iron studies due in RLS", AASM_RLS_2024.url),
                detail=detail,
                suggestions=(
                    Suggestion(
                        label=f"Order {names}",
                        actions=order_tests(context, missing, condition, MORNING_DRAW),
                        is_recommended=True,
                    ),
                ) if missing else (),
                selection_behavior="at-most-one" if missing else None,
                override_reasons=(
                    override_reason(base, "results-elsewhere", "Recent results held elsewhere"),
                    override_reason(base, "not-clinically-indicated", "Not clinically indicated"),
                ),
                identity="iron-studies:" + ",".join(
                    [code for code, _ in missing] + [f"uncompared-{n}" for n, _ in uncompared]),
            )
        ]
