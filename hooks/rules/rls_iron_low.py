"""R2 `rls-iron-low`: RLS with low iron stores (warning).

Source: seed 002 (consider iron supplementation if ferritin is at or below 75 ng/mL or
transferrin saturation is below 20%).

Fires: active RLS and the most recent ferritin within `iron_lookback_days` (365) at or below
`ferritin_max_ng_ml` (75; ng/mL = ug/L), or the most recent transferrin saturation below
`tsat_min_percent` (20; a 0-1 fraction is converted); when no saturation is reported, one
computed from serum iron and TIBC of the same draw counts. A value whose unit is not recognised
is never compared; '<x' results count when x is at or below the limit. Suggests a draft oral
iron order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import ClassVar

from cds_service.kit import RXNORM
from cds_service.kit import Action
from cds_service.kit import Card
from cds_service.kit import DataRequirement
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import Suggestion
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.iron import IronLabs
from hooks.rules.sources import AASM_RLS_2024
from hooks.rules.sources import Reference

IRON_LOW = "rls-iron-low"
ORAL_IRON = {
    "coding": [
        {
            "system": RXNORM,
            "code": "24947",
            "display": "ferrous sulfate",
        }
    ],
    "text": "ferrous sulfate (oral iron): choose product and dose",
}


@dataclass(frozen=True)
class RlsIronLow:
    rule_id: ClassVar[str] = IRON_LOW
    catalog_code: ClassVar[str] = "R2"
    references: ClassVar[tuple[Reference, ...]] = (AASM_RLS_2024,)
    title: ClassVar[str] = "RLS with low iron stores"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seed 002"
    applies: ClassVar[str] = (
        "patient-view; order hooks while an RLS drug or iron is ordered. No oral iron draft "
        "while iron is already active or being ordered."
    )
    labs: IronLabs = field(default_factory=IronLabs)

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        iron_lookback_days: int = 365
        ferritin_max_ng_ml: float = 75.0  # ng/mL = ug/L
        tsat_min_percent: float = 20.0

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return self.labs.reads()

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        rls = self.labs.applies(context)
        if not rls:
            return []
        picture = self.labs.picture(context, context.settings.iron_lookback_days)
        ferritin_max = context.settings.ferritin_max_ng_ml
        tsat_min = context.settings.tsat_min_percent
        low = []
        ferritin = picture.ferritin
        if ferritin and ferritin.is_at_or_below(ferritin_max):
            limit = f"{ferritin_max:g} ng/mL = ug/L"
            low.append(f"ferritin {ferritin.describe()} (at or below {limit})")
        saturation = picture.saturation
        if saturation and saturation.normalised is not None:
            if saturation.is_below(tsat_min):
                low.append(f"transferrin saturation {saturation.describe()} (below {tsat_min:g}%)")
        elif picture.computed_saturation:
            percent, iron, capacity = picture.computed_saturation
            if percent < tsat_min:
                low.append(
                    f"transferrin saturation {percent:.0f}% computed from serum iron "
                    f"{iron.describe()} and TIBC {capacity.describe()} (below "
                    f"{tsat_min:g}%)"
                )
        uncompared = [f"{name} {r.describe()}: not compared (unit not recognised)"
                      for name, r in (("ferritin", ferritin), ("transferrin saturation",
                                                                saturation))
                      if r is not None and r.normalised is None]
        if not low:
            return []
        low += uncompared
        on_iron = [o for o in [*context.subject_orders, *context.record.active_medications(
            self.labs.iron_products)] if o.match_medication(self.labs.iron_products)]
        if on_iron:
            return [self._on_iron(context, rls[0], low, on_iron[0])]
        base = context.code_system_base
        condition = rls[0]
        detail = "\n\n".join(
            [
                f"**Found:** {condition.label} with low iron stores:\n"
                + "\n".join(f"- {line}" for line in low),
                "**Why:** The AASM 2024 guideline suggests oral or intravenous iron when "
                f"ferritin is {ferritin_max:g} ng/mL or less or transferrin saturation is "
                f"below {tsat_min:g}%.",
                "**Consider:** oral iron (the draft below leaves product and dose to you) or "
                "intravenous iron, and looking for the cause of iron deficiency.",
            ]
        )
        iron_order: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": ORAL_IRON,
            "subject": {"reference": f"Patient/{context.record.patient_id}"},
            "authoredOn": context.now.isoformat(timespec="seconds"),
        }
        if condition.condition.id:
            iron_order["reasonReference"] = [{"reference": condition.reference}]
        return [
            Card(
                summary="Restless legs with low iron stores: consider iron supplementation",
                indicator="warning",
                source=source(
                    base,
                    IRON_LOW,
                    AASM_RLS_2024.label,
                    "Low iron stores in RLS", AASM_RLS_2024.url),
                detail=detail,
                suggestions=(
                    Suggestion(
                        label="Draft an oral iron order",
                        actions=(
                            Action(
                                type="create",
                                description="Draft an oral iron order",
                                resource=iron_order,
                            ),
                        ),
                    ),
                ),
                selection_behavior="at-most-one",
                override_reasons=(
                    override_reason(base, "iron-already-given", "Already receiving iron"),
                    override_reason(base, "iron-contraindicated", "Iron contraindicated"),
                ),
                identity="iron-low",
            )
        ]

    def _on_iron(self, context: RuleContext[Settings], condition: Any, low: list[str],
                 iron: Any) -> Card:
        """Iron already prescribed (active, or the order in hand): no second iron draft; the
        iron studies are rechecked once the therapy has had time to work."""
        base = context.code_system_base
        detail = "\n\n".join([
            f"**Found:** {condition.label} with low iron stores:\n"
            + "\n".join(f"- {line}" for line in low)
            + f"\n\nIron is already prescribed: **{iron.medication_label}**.",
            "**Why:** The AASM 2024 guideline suggests iron when ferritin or transferrin "
            "saturation is low; iron is already prescribed, so a second iron order is not "
            "offered.",
            "**Consider:** rechecking ferritin and transferrin saturation after about 3 months "
            "of iron therapy (in the morning, without iron for 24 hours), and whether the "
            "current iron is taken and tolerated.",
        ])
        return Card(
            summary="Restless legs with low iron stores, iron already prescribed: recheck iron "
            "studies after 3 months",
            indicator="warning",
            source=source(base, IRON_LOW, AASM_RLS_2024.label, "Low iron stores in RLS",
                          AASM_RLS_2024.url),
            detail=detail,
            override_reasons=(
                override_reason(base, "iron-already-given", "Already receiving iron"),
            ),
            identity="iron-low",
        )
