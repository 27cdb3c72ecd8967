"""Iron studies in restless legs syndrome: what R1 and R2 share (the latest ferritin and
transferrin saturation, or a saturation computed from serum iron and TIBC of the same draw).

Source: seed 002 (check iron studies, ferritin and transferrin saturation, in RLS). Both rules
run on patient-view, and on order hooks while an RLS or cramp drug is being ordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cds_service.kit import DataRequirement
from cds_service.kit import LabResult
from cds_service.kit import RuleContext
from cds_service.kit import ValueSet
from cds_service.kit import results as lab_results
from hooks import data
from hooks.rules.labs import latest
from hooks.rules.labs import runs_on
from hooks.rules.labs import window_start
from hooks.valuesets import LabTest
from hooks.valuesets import uses
from hooks.valuesets import uses_lab

FERRITIN_TEST = ("2276-4", "Ferritin [Mass/volume] in Serum or Plasma")
TSAT_TEST = ("2502-3", "Iron saturation [Mass Fraction] in Serum or Plasma")
# AASM 2024: iron studies drawn in the morning, avoiding iron supplements and iron-containing
# foods for at least 24 hours before.
MORNING_DRAW = ("Draw in the morning; no iron supplements or iron-containing foods for 24 hours "
                "before the test.")


@dataclass(frozen=True)
class IronPicture:
    ferritin: LabResult | None
    saturation: LabResult | None
    computed_saturation: tuple[float, LabResult, LabResult] | None  # percent, iron, TIBC


@dataclass(frozen=True)
class IronLabs:
    restless_legs: ValueSet = uses("restless-legs")
    rls_drugs: ValueSet = uses("rls-drugs")
    iron_products: ValueSet = uses("iron-products")
    ferritin: LabTest = uses_lab("ferritin")
    saturation: LabTest = uses_lab("transferrin-saturation")
    serum_iron: LabTest = uses_lab("serum-iron")
    tibc: LabTest = uses_lab("tibc")

    def reads(self) -> Sequence[DataRequirement]:
        return (data.CONDITIONS, data.IRON_STUDIES)

    def picture(self, context: RuleContext[Any], lookback_days: int) -> IronPicture:
        """The latest iron results within the last `lookback_days`."""
        ferritin = latest(context, self.ferritin, lookback_days)
        saturation = latest(context, self.saturation, lookback_days)
        computed = None
        if saturation is None:
            computed = self._computed_saturation(context, lookback_days)
        return IronPicture(ferritin, saturation, computed)

    def _computed_saturation(
        self, context: RuleContext[Any], lookback_days: int
    ) -> tuple[float, LabResult, LabResult] | None:
        since = window_start(context, lookback_days)
        irons = lab_results(
            context.record.observations, self.serum_iron.value_set, self.serum_iron.units
        )
        capacities = lab_results(
            context.record.observations, self.tibc.value_set, self.tibc.units
        )
        for iron in irons:
            if iron.when < since or not iron.comparable:
                continue
            for capacity in capacities:
                if capacity.when == iron.when and capacity.comparable and capacity.normalised:
                    percent = 100 * (iron.normalised or 0) / capacity.normalised
                    return percent, iron, capacity
        return None

    def applies(self, context: RuleContext[Any]) -> list[Any]:
        if not runs_on(context, self.rls_drugs, self.iron_products):
            return []
        return context.record.active_conditions(self.restless_legs)
