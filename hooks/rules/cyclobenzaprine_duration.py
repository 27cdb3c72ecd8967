"""C1 `cyclobenzaprine-duration`: cyclobenzaprine beyond 2 to 3 weeks (warning).

Sources: seeds 000, 001, 002 (an adjunct to rest and physical therapy for short periods, up to
two or three weeks; evidence for longer use is lacking).

Fires: the intended duration of a cyclobenzaprine order is over `max_days` (21), read only from
what describes the course of treatment (the longest of: expected supply times fills, the
dosage's bounds, quantity over the daily amount times fills); or continuous use: an active
cyclobenzaprine order whose time so far, with the new order's duration, is over `max_days`.
`dispenseRequest.validityPeriod` never counts: it is how long the prescription may be filled
(usually a year), not how long the patient takes the drug.

Suggests the complete draft with a `suggested_supply_days` (14) supply, the quantity for that
many days at the ordered daily dose (whole units, rounded up, in the unit of the order's dose)
and no refills; the validity period is kept. When the daily dose cannot be worked out, the card
says so and offers no shorter order rather than guess a quantity.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
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
from cds_service.kit import daily_dose
from cds_service.kit import duration_estimates
from hooks import data
from hooks.rules.common import describe_order
from hooks.rules.common import format_date
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.sources import CYCLOBENZAPRINE_LABEL
from hooks.rules.sources import Reference
from hooks.valuesets import uses

DURATION = "cyclobenzaprine-duration"
NO_DAILY_DOSE = (
    "The daily dose could not be worked out from the order, so no shorter order is offered."
)

# Milligrams in one unit of a dose quantity: by UCUM code, or by the unit text when uncoded.
_MG_PER_MASS_CODE = {"mg": 1.0, "g": 1000.0, "ug": 0.001}
_MG_PER_MASS_TEXT = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}
# Units that count whole tablets or capsules: one of them holds the product's strength.
_COUNT_CODES = frozenset({"{tablet}", "{capsule}", "{tbl}", "{pill}", "1"})
_COUNT_TEXTS = frozenset({"tablet", "tablets", "capsule", "capsules"})


@dataclass(frozen=True)
class CyclobenzaprineDuration:
    rule_id: ClassVar[str] = DURATION
    catalog_code: ClassVar[str] = "C1"
    references: ClassVar[tuple[Reference, ...]] = (CYCLOBENZAPRINE_LABEL,)
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
        # No one-click shorter order keeps a daily dose above this (the labelled maximum for
        # immediate release, as C3's max_daily_mg): accepting it would sign an over-dose.
        max_daily_mg_for_update: float = 30.0

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.ACTIVE_MEDICATIONS,)

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        max_days = context.settings.max_days
        cards = []
        for order, match in matching_orders(context, self.cyclobenzaprine):
            findings = []
            estimate = treatment_duration(order)
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
                    f"continuous use: {active.medication_label} active since "
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
        paragraphs = [
            f"**Found:** {describe_order(order, match, context.hook)}:\n"
            + "\n".join(f"- {line}" for line in findings),
            "**Why:** The prescribing information says cyclobenzaprine should be used only for "
            f"short periods, up to two or three weeks ({max_days} days here), because evidence "
            "of effectiveness for longer use is not available.",
            "**Consider:** a shorter course, re-examining the patient if spasm persists, and "
            "physical therapy and stretching.",
        ]
        if context.is_order_hook and order.id and order.is_r4:  # no R4 update to DSTU2/STU3
            quantity = supply_quantity(order, supply)
            dose = daily_dose(order.model, order.strength)
            ceiling = context.settings.max_daily_mg_for_update
            if quantity is None:
                paragraphs.append(NO_DAILY_DOSE)
            elif dose is not None and dose.amount > ceiling:
                paragraphs.append(
                    f"The ordered dose ({dose.amount:g} mg a day) is above {ceiling:g} mg a "
                    "day, so no shorter order at this dose is offered: review the dose first.")
            else:
                amount = f"{quantity['value']} {quantity.get('unit') or 'units'}"
                suggestions = (
                    Suggestion(
                        label=f"Change to a {supply}-day supply without refills",
                        actions=(
                            Action(
                                type="update",
                                description=f"Limit the cyclobenzaprine order to {supply} days, "
                                f"quantity {amount}, no refills",
                                resource=shortened(order.raw, supply, quantity),
                            ),
                        ),
                        is_recommended=True,
                    ),
                )
        return Card(
            summary=f"Cyclobenzaprine beyond {max_days} days: evidence supports 2 to 3 weeks only",
            indicator="warning",
            source=source(
                base,
                DURATION,
                CYCLOBENZAPRINE_LABEL.label,
                "Cyclobenzaprine beyond 2 to 3 weeks",
                CYCLOBENZAPRINE_LABEL.url,
            ),
            detail="\n\n".join(paragraphs),
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


def treatment_duration(order: MedicationOrder) -> DurationEstimate | None:
    """The longest of the order's duration estimates, the validity period left out.

    R4 `dispenseRequest.validityPeriod` is the time in which the prescription may be filled
    (commonly a year): a 10-day course valid for a year is still a 10-day course. The estimates
    come from the kit on a copy of the order without it; the first wins a tie."""
    request = order.model
    dispense = request.dispenseRequest
    if dispense is not None and dispense.validityPeriod is not None:
        request = request.model_copy(
            update={"dispenseRequest": dispense.model_copy(update={"validityPeriod": None})}
        )
    return max(duration_estimates(request), key=lambda estimate: estimate.days, default=None)


def _dose_quantity(order: MedicationOrder) -> Any:
    """The Quantity the order doses in: the first dose stated (doseQuantity or doseRange.high)."""
    for dosage in order.model.dosageInstruction or []:
        for dose_and_rate in dosage.doseAndRate or []:
            if dose_and_rate.doseQuantity is not None:
                return dose_and_rate.doseQuantity
            if dose_and_rate.doseRange is not None and dose_and_rate.doseRange.high is not None:
                return dose_and_rate.doseRange.high
    return None


def _mg_per_unit(quantity: Any, order: MedicationOrder) -> float | None:
    """Milligrams in one unit of `quantity`: a mass converts; a tablet or capsule holds the
    product's strength; anything else (mL, another code system) is None."""
    if quantity.system not in (None, UCUM):
        return None
    code = quantity.code
    code = code.lower() if code and code.startswith("{") else code
    text = (quantity.unit or "").strip().lower()
    if code:
        if code in _MG_PER_MASS_CODE:
            return _MG_PER_MASS_CODE[code]
        is_count = code in _COUNT_CODES
    else:
        if text in _MG_PER_MASS_TEXT:
            return _MG_PER_MASS_TEXT[text]
        is_count = text in _COUNT_TEXTS
    strength = order.strength
    return strength.amount_mg if is_count and strength is not None else None


def supply_quantity(order: MedicationOrder, days: int) -> dict[str, Any] | None:
    """`days` of the ordered daily dose, in whole units of the order's dose quantity rounded up
    (its unit, system and code); None when the daily dose or the unit cannot be read."""
    dose = daily_dose(order.model, order.strength)
    unit = _dose_quantity(order)
    if dose is None or dose.amount <= 0 or unit is None:
        return None
    mg_per_unit = _mg_per_unit(unit, order)
    if mg_per_unit is None or mg_per_unit <= 0:
        return None
    # Rounded first so that float noise (42.0000000001) is not a whole extra tablet.
    units = math.ceil(round(dose.amount / mg_per_unit * days, 6))
    quantity: dict[str, Any] = {"value": units}
    for field in ("unit", "system", "code"):
        if getattr(unit, field, None):
            quantity[field] = getattr(unit, field)
    return quantity


def _calendar_start(start: Any) -> date | None:
    """The day a boundsPeriod starts, from its JSON; None for a partial date ('2026-11')."""
    if not isinstance(start, str) or len(start) < 10:
        return None
    try:
        return date.fromisoformat(start[:10])
    except ValueError:
        return None


def shortened(raw: dict[str, Any], days: int, quantity: dict[str, Any]) -> dict[str, Any]:
    """The complete order, limited to `days`: supply, quantity, no refills, bounds to match.

    Everything else is kept, the validity period too (one fill may still be made within it)."""
    updated = copy.deepcopy(raw)
    dispense = updated.setdefault("dispenseRequest", {})
    dispense["expectedSupplyDuration"] = {
        "value": days,
        "unit": "days",
        "system": UCUM,
        "code": "d",
    }
    dispense["quantity"] = quantity
    dispense["numberOfRepeatsAllowed"] = 0
    for dosage in updated.get("dosageInstruction") or []:
        repeat = (dosage.get("timing") or {}).get("repeat") or {}
        period = repeat.get("boundsPeriod")
        start = _calendar_start(period.get("start")) if isinstance(period, dict) else None
        if isinstance(period, dict) and start is not None:
            period["end"] = (start + timedelta(days=days - 1)).isoformat()  # both days inclusive
        elif "boundsDuration" in repeat or "boundsPeriod" in repeat:
            repeat.pop("boundsPeriod", None)
            repeat["boundsDuration"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
    return updated
