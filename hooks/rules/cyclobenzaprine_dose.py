"""C3 `cyclobenzaprine-dose`: above the labelled dose (warning).

Source: seed 001 (5 mg three times a day, up to 10 mg three times a day).

Fires: the computed daily dose of immediate-release cyclobenzaprine (dose quantity and timing;
tablets times the product strength) is over `max_daily_mg` (30). Quiet when the dose cannot be
computed, and for extended-release products (by product code or name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cds_service.kit import PATIENT_VIEW
from cds_service.kit import Card
from cds_service.kit import DataRequirement
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import daily_dose
from hooks import data
from hooks.rules.common import describe_order
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.sources import CYCLOBENZAPRINE_LABEL
from hooks.rules.sources import Reference
from hooks.valuesets import uses
from hooks.valuesets import uses_codes_named

DOSE = "cyclobenzaprine-dose"
EXTENDED_RELEASE = re.compile(r"\b(extended[ -]release|ER|XR|24 ?HR|amrix)\b", re.IGNORECASE)


@dataclass(frozen=True)
class CyclobenzaprineDose:
    rule_id: ClassVar[str] = DOSE
    catalog_code: ClassVar[str] = "C3"
    references: ClassVar[tuple[Reference, ...]] = (CYCLOBENZAPRINE_LABEL,)
    title: ClassVar[str] = "Cyclobenzaprine above the labelled dose"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seed 001"
    applies: ClassVar[str] = (
        "order hooks: cyclobenzaprine orders asked about; patient-view: active "
        "cyclobenzaprine. Immediate-release only."
    )
    cyclobenzaprine: ValueSet = uses("cyclobenzaprine")
    extended_release_codes: frozenset[tuple[str, str]] = uses_codes_named(
        "cyclobenzaprine", "extended release")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        max_daily_mg: float = 30.0  # immediate-release, 10 mg three times a day

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.ACTIVE_MEDICATIONS,) if hook == PATIENT_VIEW else ()

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        limit = context.settings.max_daily_mg
        cards = []
        for order, match in matching_orders(context, self.cyclobenzaprine):
            if self._extended_release(order):
                continue
            dose = daily_dose(order.model, order.strength)
            if dose is None or dose.amount <= limit:
                continue
            base = context.code_system_base
            detail = "\n\n".join(
                [
                    f"**Found:** {describe_order(order, match)}: {dose.amount:g} mg a day "
                    f"({dose.basis}).",
                    "**Why:** The labelled dose of immediate-release cyclobenzaprine is 5 mg three "
                    f"times a day, rising to at most 10 mg three times a day ({limit:g} mg a day).",
                    "**Consider:** 5 to 10 mg three times a day; check the dose and frequency.",
                ]
            )
            cards.append(
                Card(
                    summary=f"Cyclobenzaprine {dose.amount:g} mg/day exceeds the labelled "
                    f"maximum of {limit:g} mg/day",
                    indicator="warning",
                    source=source(
                        base,
                        DOSE,
                        CYCLOBENZAPRINE_LABEL.label,
                        "Cyclobenzaprine above the labelled dose", CYCLOBENZAPRINE_LABEL.url),
                    detail=detail,
                    override_reasons=(
                        override_reason(base, "specialist-directed", "Specialist-directed dose"),
                        override_reason(base, "dose-verified", "Dose checked and intended"),
                    ),
                    identity=order.reference,
                )
            )
        return cards

    def _extended_release(self, order: MedicationOrder) -> bool:
        """By product code (the value set's extended-release products) or by name."""
        codings = getattr(order.medication, "coding", None) or []
        if any((c.system, c.code) in self.extended_release_codes for c in codings):
            return True
        return bool(EXTENDED_RELEASE.search(order.medication_label))
