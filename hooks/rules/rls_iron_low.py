"""R2 `rls-iron-low`: RLS with low iron stores (warning).

Source: the AASM 2024 restless legs guideline's iron bands; origin: seed 002.

Fires: active RLS and, on the most recent results within `iron_lookback_days` (365):
- adults: ferritin at or below `ferritin_max_ng_ml` (75; ng/mL = ug/L) or transferrin
  saturation below `tsat_min_percent` (20): warning with a draft oral iron order; else ferritin
  above 75 and at most `iv_ferritin_max_ng_ml` (100): info, intravenous iron, no oral draft;
- children (under `child_age_below`, 18, by birth date): ferritin below
  `child_ferritin_below_ng_ml` (50): warning with a draft oral iron order;
- ESRD or dialysis: ferritin below `esrd_ferritin_below_ng_ml` (200) and saturation below
  `esrd_tsat_below_percent` (20): warning, intravenous iron with the kidney team, never an oral
  draft.
When no saturation is reported, one computed from serum iron and TIBC of the same draw counts (a
0-1 fraction is converted). A value whose unit is not recognised is never compared; '<x'
results count when x is below the limit. No iron draft while iron is active or being ordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import ClassVar
from typing import Literal

from cds_service.kit import RXNORM
from cds_service.kit import Action
from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import PatientRecord
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import Suggestion
from cds_service.kit import ValueSet
from cds_service.kit import setting
from hooks.rules.common import condition_line
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.iron import IronLabs
from hooks.rules.iron import IronPicture
from hooks.rules.patient import age_years
from hooks.rules.patient import current
from hooks.rules.sources import AASM_RLS_2024
from hooks.rules.sources import Reference
from hooks.valuesets import uses

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


@dataclass
class Band:
    """Which AASM 2024 band the patient's iron falls in, what was found, and why it matters:
    the band decides the route (oral or intravenous) and whether an oral draft is offered."""

    kind: str  # oral-or-iv | iv-only | iv-esrd
    lines: list[str]
    why: str


@dataclass(frozen=True)
class RlsIronLow:
    rule_id: ClassVar[str] = IRON_LOW
    catalog_code: ClassVar[str] = "R2"
    references: ClassVar[tuple[Reference, ...]] = (AASM_RLS_2024,)
    title: ClassVar[str] = "RLS with low iron stores"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "AASM 2024 RLS guideline (its iron bands); origin: seed 002"
    applies: ClassVar[str] = (
        "patient-view; order hooks while an RLS drug or iron is ordered. Adults: ferritin at "
        "or below 75 ng/mL or saturation below 20% (oral iron draft), ferritin above 75 and at "
        "most 100 (IV iron, no draft); children under 18: ferritin below 50; ESRD or dialysis: "
        "ferritin below 200 and saturation below 20% (IV iron, never an oral draft). No iron "
        "draft while iron is already active or being ordered."
    )
    labs: IronLabs = field(default_factory=IronLabs)
    esrd: ValueSet = uses("esrd")
    dialysis: ValueSet = uses("dialysis")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults (AASM 2024)."""

        iron_lookback_days: int = setting(
            365, "chosen: iron studies within a year stand for the current iron stores")
        ferritin_max_ng_ml: float = setting(  # ng/mL = ug/L
            75.0, "AASM 2024: oral or IV iron at ferritin 75 ng/mL or less")
        tsat_min_percent: float = setting(
            20.0, "AASM 2024: oral or IV iron at transferrin saturation below 20%")
        iv_ferritin_max_ng_ml: float = setting(
            100.0, "AASM 2024: IV iron only, for ferritin above 75 and at most 100 ng/mL")
        child_age_below: int = setting(18, "AASM 2024: its recommendations for children")
        child_ferritin_below_ng_ml: float = setting(
            50.0, "AASM 2024: iron for children with ferritin below 50 ng/mL")
        esrd_ferritin_below_ng_ml: float = setting(
            200.0, "AASM 2024: IV iron in ESRD for ferritin below 200 ng/mL ...")
        esrd_tsat_below_percent: float = setting(
            20.0, "AASM 2024: ... and transferrin saturation below 20%")

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return self.labs.reads()

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        rls = self.labs.applies(context)
        if not rls:
            return []
        settings = context.settings
        picture = self.labs.picture(context, settings.iron_lookback_days)
        record = context.record
        kidney = current([*record.active_conditions(self.esrd),
                          *record.active_conditions(self.dialysis)])
        age = age_years(record, context.now)
        if kidney:
            band = self._esrd_band(picture, settings, kidney, record)
        elif age is not None and age < settings.child_age_below:
            band = self._child_band(picture, settings, age)
        else:
            band = self._adult_band(picture, settings)
        if band is None:
            return []
        band.lines.extend(
            f"{name} {r.describe()}: not compared (unit not recognised)"
            for name, r in (("ferritin", picture.ferritin),
                            ("transferrin saturation", picture.saturation))
            if r is not None and r.normalised is None)
        on_iron = [o for o in [*context.subject_orders, *context.record.active_medications(
            self.labs.iron_products)] if o.match_medication(self.labs.iron_products)]
        if on_iron:
            return [self._on_iron(context, rls[0], band, on_iron[0])]
        return [self._card(context, rls[0], band)]

    # --- bands (AASM 2024) -------------------------------------------------------------------

    def _saturation_below(self, picture: IronPicture, limit: float) -> str | None:
        """The card's line when transferrin saturation is below `limit` percent: the reported
        value ('<x' counts when x is at or below the limit), else one computed from serum iron
        and TIBC of one draw. None when it is not below, or not known."""
        saturation = picture.saturation
        if saturation is not None:
            if saturation.normalised is not None and saturation.is_below(limit):
                return f"transferrin saturation {saturation.describe()} (below {limit:g}%)"
            return None
        if picture.computed_saturation:
            percent, iron, capacity = picture.computed_saturation
            if percent < limit:
                return (f"transferrin saturation {percent:.0f}% computed from serum iron "
                        f"{iron.describe()} and TIBC {capacity.describe()} (below {limit:g}%)")
        return None

    def _adult_band(self, picture: IronPicture, settings: Settings) -> Band | None:
        ferritin_max = settings.ferritin_max_ng_ml
        tsat_min = settings.tsat_min_percent
        lines = []
        ferritin = picture.ferritin
        if ferritin and ferritin.is_at_or_below(ferritin_max):
            lines.append(f"ferritin {ferritin.describe()} (at or below {ferritin_max:g} ng/mL "
                         "= ug/L)")
        low_saturation = self._saturation_below(picture, tsat_min)
        if low_saturation:
            lines.append(low_saturation)
        if lines:
            return Band("oral-or-iv", lines, (
                "**Why:** The AASM 2024 guideline suggests oral or intravenous iron for adults "
                f"with restless legs when ferritin is {ferritin_max:g} ng/mL or less or "
                f"transferrin saturation is below {tsat_min:g}%."))
        iv_max = settings.iv_ferritin_max_ng_ml
        if (ferritin is not None and ferritin.comparable and ferritin.normalised is not None
                and ferritin_max < ferritin.normalised <= iv_max):
            return Band("iv-only", [f"ferritin {ferritin.describe()} (above {ferritin_max:g} "
                                    f"and at most {iv_max:g} ng/mL)"], (
                "**Why:** The AASM 2024 guideline suggests intravenous iron, not oral iron, for "
                f"adults with restless legs whose ferritin is above {ferritin_max:g} and at "
                f"most {iv_max:g} ng/mL: oral iron is poorly absorbed at these levels."))
        return None

    def _child_band(self, picture: IronPicture, settings: Settings, age: int) -> Band | None:
        below = settings.child_ferritin_below_ng_ml
        ferritin = picture.ferritin
        if ferritin is None or not ferritin.is_below(below):
            return None
        return Band("oral-or-iv", [f"ferritin {ferritin.describe()} (below {below:g} ng/mL, "
                                   f"the threshold for children; age {age})"], (
            "**Why:** For children with restless legs, the AASM 2024 guideline suggests iron "
            f"supplementation when ferritin is below {below:g} ng/mL."))

    def _esrd_band(self, picture: IronPicture, settings: Settings,
                   kidney: list[ConditionMatch], record: PatientRecord) -> Band | None:
        ferritin_below = settings.esrd_ferritin_below_ng_ml
        tsat_below = settings.esrd_tsat_below_percent
        ferritin = picture.ferritin
        low_saturation = self._saturation_below(picture, tsat_below)
        if ferritin is None or not ferritin.is_below(ferritin_below) or low_saturation is None:
            return None
        who = "; ".join(condition_line(c, record.onset(c.condition)) for c in kidney)
        return Band("iv-esrd", [
            f"ferritin {ferritin.describe()} (below {ferritin_below:g} ng/mL)",
            low_saturation,
            f"kidney: {who}",
        ], (
            "**Why:** For restless legs with end-stage renal disease, the AASM 2024 guideline "
            f"suggests intravenous iron when ferritin is below {ferritin_below:g} ng/mL and "
            f"transferrin saturation is below {tsat_below:g}%. Oral iron is not the route "
            "here."))

    # --- cards -------------------------------------------------------------------------------

    def _card(self, context: RuleContext[Settings], condition: ConditionMatch,
              band: Band) -> Card:
        base = context.code_system_base
        found = (f"**Found:** {condition.label} with low iron stores:\n"
                 + "\n".join(f"- {line}" for line in band.lines))
        suggestions: tuple[Suggestion, ...] = ()
        indicator: Literal["info", "warning", "critical"]
        if band.kind == "oral-or-iv":
            summary = "Restless legs with low iron stores: consider iron supplementation"
            indicator = "warning"
            consider = ("**Consider:** oral iron (the draft below leaves product and dose to "
                        "you) or intravenous iron, and looking for the cause of iron "
                        "deficiency.")
            suggestions = (Suggestion(label="Draft an oral iron order", actions=(Action(
                type="create", description="Draft an oral iron order",
                resource=self._oral_iron(context, condition)),)),)
        elif band.kind == "iv-only":
            settings = context.settings
            summary = (f"Restless legs with ferritin above {settings.ferritin_max_ng_ml:g} and "
                       f"at most {settings.iv_ferritin_max_ng_ml:g} ng/mL: consider intravenous "
                       "iron")
            indicator = "info"
            consider = ("**Consider:** intravenous iron (for example ferric carboxymaltose) if "
                        "symptoms warrant it; oral iron is not suggested at this ferritin. No "
                        "order is drafted: intravenous iron is planned with the team that "
                        "gives it.")
        else:
            summary = ("Restless legs on dialysis or with ESRD and low iron: consider "
                       "intravenous iron with the kidney team")
            indicator = "warning"
            consider = ("**Consider:** intravenous iron with the kidney care team, who may "
                        "already give it with dialysis. No oral iron is suggested.")
        return Card(
            summary=summary,
            indicator=indicator,
            source=source(base, IRON_LOW, AASM_RLS_2024.label, "Low iron stores in RLS",
                          AASM_RLS_2024.url),
            detail="\n\n".join([found, band.why, consider]),
            suggestions=suggestions,
            selection_behavior="at-most-one" if suggestions else None,
            override_reasons=(
                override_reason(base, "iron-already-given", "Already receiving iron"),
                override_reason(base, "iron-contraindicated", "Iron contraindicated"),
            ),
            identity="iron-low",
        )

    def _oral_iron(self, context: RuleContext[Settings],
                   condition: ConditionMatch) -> dict[str, Any]:
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
        return iron_order

    def _on_iron(self, context: RuleContext[Settings], condition: Any, band: Band,
                 iron: Any) -> Card:
        """Iron already prescribed (active, or the order in hand): no second iron draft; the
        iron studies are rechecked once the therapy has had time to work. The band's route
        advice stands: where the guidance says intravenous iron, oral iron is not the answer."""
        base = context.code_system_base
        route = {
            "iv-only": " At this ferritin the guideline suggests intravenous iron, not oral "
            "iron: if the iron prescribed is oral, consider intravenous iron instead.",
            "iv-esrd": " With end-stage renal disease the guideline suggests intravenous iron: "
            "if the iron prescribed is oral, consider intravenous iron with the kidney team.",
        }.get(band.kind, "")
        detail = "\n\n".join([
            f"**Found:** {condition.label} with low iron stores:\n"
            + "\n".join(f"- {line}" for line in band.lines)
            + f"\n\nIron is already prescribed: **{iron.medication_label}**.",
            band.why + " Iron is already prescribed, so a second iron order is not offered.",
            "**Consider:** rechecking ferritin and transferrin saturation after about 3 months "
            "of iron therapy (in the morning, without iron for 24 hours), and whether the "
            "current iron is taken and tolerated." + route,
        ])
        return Card(
            summary="Restless legs with low iron stores, iron already prescribed: recheck iron "
            "studies after 3 months",
            indicator="info" if band.kind == "iv-only" else "warning",
            source=source(base, IRON_LOW, AASM_RLS_2024.label, "Low iron stores in RLS",
                          AASM_RLS_2024.url),
            detail=detail,
            override_reasons=(
                override_reason(base, "iron-already-given", "Already receiving iron"),
            ),
            identity="iron-low",
        )
