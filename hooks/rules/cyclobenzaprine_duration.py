"""C1 `cyclobenzaprine-duration`: cyclobenzaprine beyond 2 to 3 weeks (warning).

Sources: seeds 000, 001, 002 (an adjunct to rest and physical therapy for short periods, up to
two or three weeks; evidence for longer use is lacking).

Fires: the intended duration of a cyclobenzaprine order, from any place R4 carries it (the
longest estimate), is over `max_days` (21); or continuous use: an active cyclobenzaprine order
whose time so far, with the new order's duration, is over `max_days`. Suggests the same draft
with a `suggested_supply_days` (14) supply and no refills (complete updated resource).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import ClassVar

from cds_service.kit import UCUM
from cds_service.kit import Action
from cds_service.kit import Card
from cds_service.kit import DataRequirement
from cds_service.kit import DurationEstimate
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import Suggestion
from cds_service.kit import ValueSet
from cds_service.kit import as_instant
from cds_service.kit import intended_duration
from hooks import data
from hooks.rules.common import describe_order
from hooks.rules.common import format_date
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.valuesets import uses

DURATION = "cyclobenzaprine-duration"


@dataclass(frozen=True)
class CyclobenzaprineDuration:
    rule_id: ClassVar[str] = DURATION
    catalog_code: ClassVar[str] = "C1"
    title: ClassVar[str] = "Cyclobenzaprine beyond 2 to 3 weeks"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seeds 000, 001, 002"
    applies: ClassVar[str] = (
        "order hooks: cyclobenzaprine orders asked about; patient-view: active cyclobenzaprine."
    )
    cyclobenzaprine: ValueSet = uses("cyclobenzaprine")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        max_days: int = 21  # longer intended or continuous use gets a warning
        suggested_supply_days: int = 14  # the supply the suggestion changes the draft to

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.ACTIVE_MEDICATIONS,)

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        max_days = context.settings.max_days
        cards = []
        for order, match in matching_orders(context, self.cyclobenzaprine):
            findings = []
            estimate = intended_duration(order.model)
            if estimate is not None and estimate.days > max_days:
                findings.append(f"intended duration {estimate.days:g} days: {estimate.basis}")
            findings += self._continuous_use(context, order, max_days, estimate)
            if findings:
                cards.append(self._card(context, order, match, findings))
        return cards

    def _continuous_use(
        self,
        context: RuleContext[Settings],
        order: MedicationOrder,
        max_days: int,
        estimate: DurationEstimate | None,
    ) -> list[str]:
        found = []
        for active in context.record.active_medications(self.cyclobenzaprine):
            if active.reference == order.reference or not active.match_medication(
                self.cyclobenzaprine
            ):
                continue
            started = as_instant(active.authored_on)
            if started is None:
                continue
            so_far = (context.now - started).days
            total = so_far + (estimate.days if estimate and context.is_order_hook else 0)
            if total > max_days:
                found.append(
                    f"continuous use: {active.medication_label} ({active.reference}) active since "
                    f"{format_date(active.authored_on)}, {so_far} days ago"
                    + (f"; with this order about {total:g} days in all" if total != so_far else "")
                )
        if not context.is_order_hook and not found:
            started = as_instant(order.authored_on)
            if started is not None and (context.now - started).days > max_days:
                found.append(
                    f"active since {format_date(order.authored_on)}, "
                    f"{(context.now - started).days} days ago"
                )
        return found

    def _card(
        self,
        context: RuleContext[Settings],
        order: MedicationOrder,
        match: Match,
        findings: list[str],
    ) -> Card:
        base = context.code_system_base
        max_days = context.settings.max_days
        supply = context.settings.suggested_supply_days
        suggestions: tuple[Suggestion, ...] = ()
        if context.is_order_hook and order.id and order.is_r4:  # no R4 update to DSTU2/STU3
            suggestions = (
                Suggestion(
                    label=f"Change to a {supply}-day supply without refills",
                    actions=(
                        Action(
                            type="update",
                            description=f"Limit the cyclobenzaprine order to {supply} days",
                            resource=shortened(order.raw, supply),
                        ),
                    ),
                    is_recommended=True,
                ),
            )
        detail = "\n\n".join(
            [
                f"**Found:** {describe_order(order, match)}:\n"
                + "\n".join(f"- {line}" for line in findings),
                "**Why:** The guidance supports cyclobenzaprine only as an adjunct to rest and "
                f"physical therapy for short courses of up to two or three weeks ({max_days} days "
                "here); there is no good evidence of benefit from longer use.",
                "**Consider:** a shorter course, re-examining the patient if spasm persists, and "
                "physical therapy and stretching.",
            ]
        )
        return Card(
            summary=f"Cyclobenzaprine beyond {max_days} days: evidence supports 2 to 3 weeks only",
            indicator="warning",
            source=source(
                base,
                DURATION,
                "Muscle spasm guidance: cyclobenzaprine duration",
                "Cyclobenzaprine beyond 2 to 3 weeks",
            ),
            detail=detail,
            suggestions=suggestions,
            selection_behavior="at-most-one" if suggestions else None,
            override_reasons=(
                override_reason(base, "specialist-directed", "Specialist-directed course"),
                override_reason(
                    base, "patient-re-evaluated", "Patient re-evaluated; longer course needed"
                ),
            ),
            identity=order.reference,
        )


def shortened(raw: dict[str, Any], days: int) -> dict[str, Any]:
    """The complete order, limited to `days`: supply, no refills, bounds and quantity to match."""
    updated = copy.deepcopy(raw)
    dispense = updated.setdefault("dispenseRequest", {})
    dispense["expectedSupplyDuration"] = {
        "value": days,
        "unit": "days",
        "system": UCUM,
        "code": "d",
    }
    dispense["numberOfRepeatsAllowed"] = 0
    dispense.pop("validityPeriod", None)
    dispense.pop("quantity", None)  # the pharmacist dispenses for the stated supply
    for dosage in updated.get("dosageInstruction") or []:
        repeat = (dosage.get("timing") or {}).get("repeat") or {}
        if "boundsDuration" in repeat or "boundsPeriod" in repeat:
            repeat.pop("boundsPeriod", None)
            repeat["boundsDuration"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
    return updated
