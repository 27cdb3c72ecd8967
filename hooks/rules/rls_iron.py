"""R1 `rls-iron-studies-due` and R2 `rls-iron-low`: iron in restless legs syndrome.

Source: seed 002 (check iron studies, ferritin and transferrin saturation, in RLS; consider iron
supplementation when ferritin is at or below 75 ng/mL or transferrin saturation is below 20%).

Both run on patient-view, and on order hooks while an RLS or cramp drug is being ordered.
R1 fires (info) for active RLS with no ferritin or no transferrin saturation result within
`iron_lookback_days` (365): the missing result is the finding. R2 fires (warning) for active RLS
when the most recent ferritin in the window is <= `ferritin_max_ng_ml` (75; ng/mL = ug/L) or the
most recent transferrin saturation is < `tsat_min_percent` (20; a 0-1 fraction is converted);
when no saturation is reported, one computed from serum iron and TIBC of the same draw counts.
A value whose unit is not recognised is never compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cds_service import observations
from cds_service.cards import Action, Card, Suggestion
from cds_service.observations import LabResult
from cds_service.prefetch import DataRequirement
from cds_service.services import RuleContext
from cds_service.terminology import ValueSet
from hooks import data
from hooks.rules.common import format_date, override_reason, source
from hooks.rules.labs import latest, order_tests, runs_on, window_start
from hooks.valuesets import LabTest

IRON_STUDIES_DUE = "rls-iron-studies-due"
IRON_LOW = "rls-iron-low"
FERRITIN_TEST = ("2276-4", "Ferritin [Mass/volume] in Serum or Plasma")
TSAT_TEST = ("2502-3", "Iron saturation [Mass Fraction] in Serum or Plasma")
ORAL_IRON = {
    "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "24947",
                "display": "ferrous sulfate"}],
    "text": "ferrous sulfate (oral iron): choose product and dose",
}


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
        irons = observations.results(context.record.observations, self.serum_iron.value_set,
                                     self.serum_iron.units)
        capacities = observations.results(context.record.observations, self.tibc.value_set,
                                          self.tibc.units)
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


@dataclass(frozen=True)
class RlsIronStudiesDue:
    catalog_code: ClassVar[str] = "R1"
    title: ClassVar[str] = "RLS without recent iron studies"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seed 002"
    applies: ClassVar[str] = (
        "patient-view; order hooks while an RLS or cramp drug is ordered."
    )
    labs: IronLabs
    rule_id: str = IRON_STUDIES_DUE
    defaults: Mapping[str, Any] = field(default_factory=lambda: {"iron_lookback_days": 365})

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return self.labs.reads()

    def evaluate(self, context: RuleContext) -> list[Card]:
        rls = self.labs.applies(context)
        if not rls:
            return []
        picture = self.labs.picture(context)
        missing = []
        if picture.ferritin is None:
            missing.append(FERRITIN_TEST)
        if picture.saturation is None and picture.computed_saturation is None:
            missing.append(TSAT_TEST)
        if not missing:
            return []
        days = context.settings["iron_lookback_days"]
        base = context.code_system_base
        names = " and ".join("ferritin" if t is FERRITIN_TEST else "transferrin saturation"
                             for t in missing)
        condition = rls[0]
        detail = "\n\n".join([
            f"**Found:** {condition.label} ({condition.reference}, onset "
            f"{format_date(context.record.onset(condition.condition))}); no {names} result in "
            f"the last {days} days.",
            "**Why:** The restless legs guidance recommends checking iron stores (serum "
            "ferritin and transferrin saturation) in RLS: low iron stores worsen symptoms and "
            "can be corrected.",
            "**Consider:** ordering the missing test(s); if ferritin is 75 ng/mL or less or "
            "transferrin saturation is below 20%, iron supplementation is an option.",
        ])
        return [Card(
            summary=f"Restless legs: no {names} in the last {days} days; check iron stores",
            indicator="info",
            source=source(base, IRON_STUDIES_DUE, "Restless legs guidance: iron studies",
                          "Iron studies due in RLS"),
            detail=detail,
            suggestions=(Suggestion(
                label=f"Order {names}",
                actions=order_tests(context, missing, condition),
                is_recommended=True),),
            selection_behavior="at-most-one",
            override_reasons=(
                override_reason(base, "results-elsewhere", "Recent results held elsewhere"),
                override_reason(base, "not-clinically-indicated", "Not clinically indicated"),
            ),
            identity="iron-studies:" + ",".join(code for code, _ in missing),
        )]


@dataclass(frozen=True)
class RlsIronLow:
    catalog_code: ClassVar[str] = "R2"
    title: ClassVar[str] = "RLS with low iron stores"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seed 002"
    applies: ClassVar[str] = (
        "patient-view; order hooks while an RLS or cramp drug is ordered."
    )
    labs: IronLabs
    rule_id: str = IRON_LOW
    defaults: Mapping[str, Any] = field(default_factory=lambda: {
        "iron_lookback_days": 365, "ferritin_max_ng_ml": 75.0, "tsat_min_percent": 20.0})

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return self.labs.reads()

    def evaluate(self, context: RuleContext) -> list[Card]:
        rls = self.labs.applies(context)
        if not rls:
            return []
        picture = self.labs.picture(context)
        ferritin_max = context.settings["ferritin_max_ng_ml"]
        tsat_min = context.settings["tsat_min_percent"]
        low = []
        ferritin = picture.ferritin
        if ferritin and ferritin.is_at_or_below(ferritin_max):
            limit = f"{ferritin_max:g} ng/mL = ug/L"
            low.append(f"ferritin {ferritin.describe()} (at or below {limit})")
        saturation = picture.saturation
        if saturation and saturation.normalised is not None:
            if saturation.is_below(tsat_min):
                low.append(f"transferrin saturation {saturation.describe()} (below "
                           f"{tsat_min:g}%)")
        elif picture.computed_saturation:
            percent, iron, capacity = picture.computed_saturation
            if percent < tsat_min:
                low.append(f"transferrin saturation {percent:.0f}% computed from serum iron "
                           f"{iron.describe()} and TIBC {capacity.describe()} (below "
                           f"{tsat_min:g}%)")
        if not low:
            return []
        base = context.code_system_base
        condition = rls[0]
        detail = "\n\n".join([
            f"**Found:** {condition.label} ({condition.reference}) with low iron stores:\n"
            + "\n".join(f"- {line}" for line in low),
            "**Why:** The restless legs guidance suggests considering iron supplementation "
            f"when ferritin is {ferritin_max:g} ng/mL or less or transferrin saturation is "
            f"below {tsat_min:g}%.",
            "**Consider:** oral iron (the draft below leaves product and dose to you), and "
            "looking for the cause of iron deficiency.",
        ])
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
        return [Card(
            summary="Restless legs with low iron stores: consider iron supplementation",
            indicator="warning",
            source=source(base, IRON_LOW, "Restless legs guidance: iron supplementation",
                          "Low iron stores in RLS"),
            detail=detail,
            suggestions=(Suggestion(
                label="Draft an oral iron order",
                actions=(Action(type="create", description="Draft an oral iron order",
                                resource=iron_order),)),),
            selection_behavior="at-most-one",
            override_reasons=(
                override_reason(base, "iron-already-given", "Already receiving iron"),
                override_reason(base, "iron-contraindicated", "Iron contraindicated"),
            ),
            identity="iron-low",
        )]
