"""C3 `cyclobenzaprine-dose`: above the labelled dose (warning).

Source: seed 001 (5 mg three times a day, up to 10 mg three times a day).

Fires: the computed daily dose of immediate-release cyclobenzaprine (dose quantity and timing;
tablets times the product strength) is over `max_daily_mg` (30); for an extended-release product
(by product code or name; Amrix label: 15 mg once daily, at most 30 mg once daily), a daily dose
over `max_daily_mg_extended_release` (30) or more than `max_doses_per_day_extended_release` (1)
doses a day. Quiet when neither the dose nor the frequency can be read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cds_service.kit import PATIENT_VIEW
from cds_service.kit import Card
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import administrations_per_day
from cds_service.kit import daily_dose
from cds_service.kit import setting
from hooks import data
from hooks.rules.common import describe_order
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.extended_release import is_extended_release
from hooks.rules.sources import CYCLOBENZAPRINE_ER_LABEL
from hooks.rules.sources import CYCLOBENZAPRINE_LABEL
from hooks.rules.sources import Reference
from hooks.valuesets import uses
from hooks.valuesets import uses_codes_named

DOSE = "cyclobenzaprine-dose"


@dataclass(frozen=True)
class CyclobenzaprineDose:
    rule_id: ClassVar[str] = DOSE
    catalog_code: ClassVar[str] = "C3"
    references: ClassVar[tuple[Reference, ...]] = (CYCLOBENZAPRINE_LABEL,
                                                    CYCLOBENZAPRINE_ER_LABEL)
    title: ClassVar[str] = "Cyclobenzaprine above the labelled dose"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seed 001"
    applies: ClassVar[str] = (
        "order hooks: cyclobenzaprine orders asked about; patient-view: active "
        "cyclobenzaprine. Immediate release above 30 mg/day; extended release above its "
        "labelled 30 mg/day or dosed more than once a day."
    )
    cyclobenzaprine: ValueSet = uses("cyclobenzaprine")
    extended_release_codes: frozenset[tuple[str, str]] = uses_codes_named(
        "cyclobenzaprine", "extended release")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        max_daily_mg: float = 30.0  # immediate-release, 10 mg three times a day
        # Extended-release capsules (Amrix label): 15 mg once daily, at most 30 mg once daily.
        max_daily_mg_extended_release: float = setting(
            30.0, "Amrix label: 15 mg once daily, up to 30 mg once daily")
        max_doses_per_day_extended_release: float = setting(1.0, "Amrix label: once daily")

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.ACTIVE_MEDICATIONS,) if hook == PATIENT_VIEW else ()

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        cards = []
        for order, match in matching_orders(context, self.cyclobenzaprine):
            if is_extended_release(order, self.extended_release_codes):
                card = self._extended_release_card(context, order, match)
            else:
                card = self._immediate_release_card(context, order, match)
            if card is not None:
                cards.append(card)
        return cards

    def _immediate_release_card(self, context: RuleContext[Settings], order: MedicationOrder,
                                match: Match) -> Card | None:
        limit = context.settings.max_daily_mg
        dose = daily_dose(order.model, order.strength)
        if dose is None or dose.amount <= limit:
            return None
        return self._card(
            context, order,
            found=f"{describe_order(order, match, context.hook)}: {dose.amount:g} mg a day "
            f"({dose.basis}).",
            why="The labelled dose of immediate-release cyclobenzaprine is 5 mg three times a "
            f"day, rising to at most 10 mg three times a day ({limit:g} mg a day).",
            consider="5 to 10 mg three times a day; check the dose and frequency.",
            summary=f"Cyclobenzaprine {dose.amount:g} mg/day exceeds the labelled maximum of "
            f"{limit:g} mg/day",
            reference=CYCLOBENZAPRINE_LABEL,
        )

    def _extended_release_card(self, context: RuleContext[Settings], order: MedicationOrder,
                               match: Match) -> Card | None:
        """Extended release: above its labelled maximum a day, or dosed more than once a day.
        Quiet when neither the daily dose nor the frequency can be read."""
        settings = context.settings
        limit = settings.max_daily_mg_extended_release
        most_often = settings.max_doses_per_day_extended_release
        dose = daily_dose(order.model, order.strength)
        per_day = administrations_per_day(order.model)
        too_much = dose is not None and dose.amount > limit
        too_often = per_day is not None and per_day > most_often
        if not too_much and not too_often:
            return None
        found = [describe_order(order, match, context.hook) + " (extended release)"]
        if dose is not None:
            found.append(f"{dose.amount:g} mg a day ({dose.basis})")
        if too_often and per_day is not None:
            found.append(f"{per_day:g} doses a day")
        if too_much and too_often and dose is not None and per_day is not None:
            summary = (f"Extended-release cyclobenzaprine {dose.amount:g} mg/day in {per_day:g} "
                       f"doses: the label allows at most {limit:g} mg once a day")
        elif too_much and dose is not None:
            summary = (f"Extended-release cyclobenzaprine {dose.amount:g} mg/day exceeds the "
                       f"labelled maximum of {limit:g} mg/day")
        else:
            summary = ("Extended-release cyclobenzaprine is taken once a day: "
                       f"{per_day:g} doses a day ordered")
        return self._card(
            context, order,
            found=": ".join([found[0], "; ".join(found[1:])]) + ".",
            why="Extended-release cyclobenzaprine is labelled for 15 mg once a day, which may "
            f"be raised to at most {limit:g} mg once a day; it is not divided into several "
            "doses.",
            consider="15 mg once a day (at most 30 mg once a day); check the product, dose and "
            "frequency.",
            summary=summary,
            reference=CYCLOBENZAPRINE_ER_LABEL,
        )

    def _card(self, context: RuleContext[Settings], order: MedicationOrder, *, found: str,
              why: str, consider: str, summary: str, reference: Reference) -> Card:
        base = context.code_system_base
        return Card(
            summary=summary,
            indicator="warning",
            source=source(base, DOSE, reference.label, "Cyclobenzaprine above the labelled dose",
                          reference.url),
            detail="\n\n".join([f"**Found:** {found}", f"**Why:** {why}",
                                 f"**Consider:** {consider}"]),
            override_reasons=(
                override_reason(base, "specialist-directed", "Specialist-directed dose"),
                override_reason(base, "dose-verified", "Dose checked and intended"),
            ),
            identity=order.reference,
        )
