"""C4 `cyclobenzaprine-older-adult`: cyclobenzaprine for a patient 65 or over (warning).

Sources: the AGS Beers Criteria (2023) advise avoiding skeletal muscle relaxants, cyclobenzaprine
among them, in adults 65 and over: most are poorly tolerated (anticholinergic effects, sedation,
risk of falls and fractures) and their effectiveness at doses older adults tolerate is
questionable. The cyclobenzaprine tablet label says to start older patients at 5 mg and titrate
slowly; the extended-release label does not recommend the product in the elderly.

Fires: a cyclobenzaprine order among the orders the hook asks about (patient-view: active
cyclobenzaprine), for a patient whose age on Patient.birthDate is `older_adult_age` (65) or more.
Quiet: younger patients, and a patient without a birth date (age unknown: the rule does not
guess). One card per order; on patient-view it is said once (quiet repeat).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import setting
from hooks import data
from hooks.rules.common import describe_order
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.extended_release import is_extended_release
from hooks.rules.patient import age_years
from hooks.rules.sources import BEERS_2023
from hooks.rules.sources import CYCLOBENZAPRINE_ER_LABEL
from hooks.rules.sources import CYCLOBENZAPRINE_LABEL
from hooks.rules.sources import Reference
from hooks.valuesets import uses
from hooks.valuesets import uses_codes_named

RULE_ID = "cyclobenzaprine-older-adult"

WHY = (
    "**Why:** The AGS Beers Criteria (2023) advise avoiding skeletal muscle relaxants such as "
    "cyclobenzaprine in adults 65 and over: most are poorly tolerated because of anticholinergic "
    "effects, sedation and a higher risk of falls and fractures, and their effectiveness at the "
    "doses older adults tolerate is questionable."
)


@dataclass(frozen=True)
class CyclobenzaprineOlderAdult:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "C4"
    references: ClassVar[tuple[Reference, ...]] = (
        BEERS_2023, CYCLOBENZAPRINE_LABEL, CYCLOBENZAPRINE_ER_LABEL,
    )
    title: ClassVar[str] = "Cyclobenzaprine in an older adult"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "AGS Beers Criteria 2023; cyclobenzaprine labels (issue 16)"
    applies: ClassVar[str] = (
        "order hooks: cyclobenzaprine orders asked about; patient-view: active cyclobenzaprine. "
        "Needs a birth date giving an age of 65 or over."
    )
    cyclobenzaprine: ValueSet = uses("cyclobenzaprine")
    extended_release_codes: frozenset[tuple[str, str]] = uses_codes_named(
        "cyclobenzaprine", "extended release")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds, with their defaults."""

        older_adult_age: int = setting(65, "AGS Beers 2023: adults 65 and over")

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.order_rule_reads(hook)

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        orders = matching_orders(context, self.cyclobenzaprine)
        if not orders:
            return []
        age = age_years(context.record, context.now)
        if age is None or age < context.settings.older_adult_age:
            return []
        return [self._card(context, order, match, age) for order, match in orders]

    def _card(self, context: RuleContext[Settings], order: MedicationOrder, match: Match,
              age: int) -> Card:
        base = context.code_system_base
        consider = [
            "**Consider:**",
            "- Non-drug measures first (heat, stretching, physiotherapy), or an analgesic "
            "suited to older adults.",
            "- If cyclobenzaprine is still chosen: the lowest dose for the shortest time (the "
            "tablet label starts older patients at 5 mg and titrates slowly), and review for "
            "drowsiness, confusion, falls and urinary retention.",
        ]
        if is_extended_release(order, self.extended_release_codes):
            consider.append("- The extended-release product is not recommended in the elderly "
                            "(its label); an immediate-release tablet allows a lower dose.")
        detail = "\n\n".join([
            f"**Found:** {describe_order(order, match, context.hook)}, for a patient aged "
            f"**{age}**.",
            WHY,
            "\n".join(consider),
        ])
        return Card(
            summary=f"Cyclobenzaprine at age {age}: muscle relaxants are best avoided from 65 "
            "(Beers)",
            indicator="warning",
            source=source(base, RULE_ID, BEERS_2023.label, self.title, BEERS_2023.url),
            detail=detail,
            override_reasons=(
                override_reason(base, "benefit-outweighs-risk", "Benefit outweighs risk"),
                override_reason(base, "short-course-under-review",
                                "Short course under review"),
            ),
            identity=order.reference,
            repeat_quietly=not context.is_order_hook,
        )
