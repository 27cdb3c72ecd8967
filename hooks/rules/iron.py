"""Iron studies in restless legs syndrome: what R1 and R2 share (the latest ferritin and
transferrin saturation, or a saturation computed from serum iron and TIBC of the same draw).

Source: seed 002 (check iron studies, ferritin and transferrin saturation, in RLS). Both rules
run on patient-view, and on order hooks while an RLS or cramp drug is being ordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cds_service.kit import observations
from cds_service.kit.observations import LabResult
from cds_service.kit.terminology import ValueSet
from cds_service.pipeline.prefetch import DataRequirement
from cds_service.pipeline.services import RuleContext
from hooks import data
from hooks.rules.labs import latest, runs_on, window_start
from hooks.valuesets import LabTest

FERRITIN_TEST = ("2276-4", "Ferritin [Mass/volume] in Serum or Plasma")
TSAT_TEST = ("2502-3", "Iron saturation [Mass Fraction] in Serum or Plasma")


@dataclass(frozen=True)
class IronPicture:
    ferritin: LabResult | None
    saturation: LabResult | None
    computed_saturation: tuple[float, LabResult, LabResult] | None  # percent, iron, TIBC


@dataclass(frozen=True)
class IronLabs:
    restless_legs: ValueSet
    rls_drugs: ValueSet
    cramp_drugs: ValueSet
    ferritin: LabTest
    saturation: LabTest
    serum_iron: LabTest
    tibc: LabTest

    def reads(self) -> Sequence[DataRequirement]:
        return (data.CONDITIONS, data.IRON_STUDIES)

    def picture(self, context: RuleContext) -> IronPicture:
        ferritin = latest(context, self.ferritin, "iron_lookback_days")
        saturation = latest(context, self.saturation, "iron_lookback_days")
        computed = None
        if saturation is None:
            computed = self._computed_saturation(context)
        return IronPicture(ferritin, saturation, computed)

    def _computed_saturation(
        self, context: RuleContext
    ) -> tuple[float, LabResult, LabResult] | None:
        since = window_start(context, "iron_lookback_days")
        irons = observations.results(
            context.record.observations, self.serum_iron.value_set, self.serum_iron.units
        )
        capacities = observations.results(
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

    def applies(self, context: RuleContext) -> list[Any]:
        if not runs_on(context, self.rls_drugs, self.cramp_drugs):
            return []
        return context.record.active_conditions(self.restless_legs)
