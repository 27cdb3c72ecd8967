"""E1 `cramps-electrolytes-abnormal`: cramps with abnormal electrolytes (warning).

Sources: seeds 003 and 004 (electrolyte balance: potassium, magnesium, calcium), seed 000
(electrolyte imbalance as a cause of spasm).

Fires: leg cramps or muscle spasm (an active condition, or a cramp drug among the orders asked
about) and the most recent potassium, magnesium or total calcium within
`electrolyte_lookback_days` (90) below its low limit: the lab's own reference range first, else
K < 3.5, Mg < 0.70, Ca < 2.12 mmol/L. Values in units that are not recognised are listed as not
compared. Suggests rechecking the low tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import LabResult
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import Suggestion
from cds_service.kit import results
from hooks import data
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.electrolytes import TESTS
from hooks.rules.electrolytes import Electrolytes
from hooks.rules.labs import latest
from hooks.rules.labs import limit_in_lab_unit
from hooks.rules.labs import order_tests
from hooks.rules.labs import runs_on
from hooks.rules.sources import CRAMP_WORKUP_2015
from hooks.rules.sources import Reference

ABNORMAL = "cramps-electrolytes-abnormal"
MMOL_PER_MG_DL = 0.2495  # calcium: 10 / 40.08 (its molar mass); as the calcium value sets
# A low result as the card shows it: name, value as shown, limit (canonical unit), its basis,
# and the result whose unit the limit is shown in.
Low = tuple[str, str, float, str, LabResult]
CORRECTED_CALCIUM_LOINC = "29265-6"  # calcium corrected for albumin: never corrected twice


def _is_corrected(result: LabResult) -> bool:
    codings = getattr(getattr(result.observation, "code", None), "coding", None) or []
    return any(c.code == CORRECTED_CALCIUM_LOINC for c in codings)


@dataclass(frozen=True)
class CrampsElectrolytesAbnormal:
    rule_id: ClassVar[str] = ABNORMAL
    catalog_code: ClassVar[str] = "E1"
    references: ClassVar[tuple[Reference, ...]] = (CRAMP_WORKUP_2015,)
    title: ClassVar[str] = "Cramps with abnormal electrolytes"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seeds 000, 003, 004"
    applies: ClassVar[str] = (
        "patient-view; order hooks while a cramp treatment is ordered, and not for the "
        "electrolyte the order in hand corrects (magnesium, potassium or calcium)."
    )
    labs: Electrolytes = field(default_factory=Electrolytes)

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        electrolyte_lookback_days: int = 90
        potassium_low_mmol_l: float = 3.5  # used only when the lab gives no reference range
        magnesium_low_mmol_l: float = 0.7
        calcium_low_mmol_l: float = 2.12  # total or albumin-corrected calcium
        ionised_calcium_low_mmol_l: float = 1.10  # when the lab gives no reference range
        albumin_within_days: int = 2  # an albumin this close to the calcium corrects it

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.CONDITIONS, data.ELECTROLYTES)

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        labs = self.labs
        if not runs_on(context, labs.cramp_drugs):
            return []
        cramps = context.record.active_conditions(labs.leg_cramps)
        cramp_orders = [o for o in context.subject_orders if o.match_medication(labs.cramp_drugs)]
        if not cramps and not cramp_orders:
            return []
        abnormal: list[Low] = []
        uncompared: list[tuple[str, LabResult]] = []
        tests = labs.tests()
        for name in ("potassium", "magnesium"):
            result = latest(context, tests[name], context.settings.electrolyte_lookback_days)
            if result is None:
                continue
            if result.normalised is None:
                uncompared.append((name, result))
                continue
            limit, basis = self._low_limit(context, name, result)
            if result.is_below(limit):
                abnormal.append((name, result.describe(), limit, basis, result))
        calcium = self._calcium(context, uncompared)
        if calcium is not None:
            abnormal.append(calcium)
        # At order entry the order in hand may be the correction itself (a magnesium product
        # for low magnesium): a card asking to correct what is being corrected is noise.
        corrections = {"magnesium": labs.magnesium_products,
                       "potassium": labs.potassium_products,
                       "calcium": labs.calcium_products,
                       "ionised calcium": labs.calcium_products}
        abnormal = [item for item in abnormal if not (
            context.is_order_hook and item[0] in corrections and any(
                order.match_medication(corrections[item[0]])
                for order in context.subject_orders))]
        if not abnormal:
            return []
        return [self._card(context, cramps, cramp_orders, abnormal, uncompared)]

    def _calcium(self, context: RuleContext[Settings],
                 uncompared: list[tuple[str, LabResult]]) -> Low | None:
        """Low calcium judged as the physiology asks: a recent ionised calcium first (albumin
        does not change it); else total calcium corrected for an albumin drawn within
        `albumin_within_days` of it (corrected = total + 0.8 x (4.0 - albumin g/dL), in
        mg/dL); else total calcium, said to be uncorrected. A low total calcium with a low
        albumin can be a normal corrected one: that used to give a false card."""
        labs, settings = self.labs, context.settings
        lookback = settings.electrolyte_lookback_days
        ionised = latest(context, labs.ionised_calcium, lookback)
        if ionised is not None and ionised.normalised is not None:
            if ionised.low_limit is not None:
                limit, basis = ionised.low_limit, "the lab's reference range"
            else:
                limit, basis = settings.ionised_calcium_low_mmol_l, "the default limit"
            if ionised.is_below(limit):
                return ("ionised calcium", ionised.describe(), limit, basis, ionised)
            return None
        total = latest(context, labs.calcium, lookback)
        if total is None:
            return None
        if total.normalised is None:
            uncompared.append(("calcium", total))
            return None
        limit, basis = self._low_limit(context, "calcium", total)
        if _is_corrected(total):
            if total.is_below(limit):
                return ("calcium", f"{total.describe()} (corrected for albumin by the lab)",
                        limit, basis, total)
            return None
        albumin = self._albumin_near(context, total)
        if albumin is None:
            if total.is_below(limit):
                return ("calcium", f"{total.describe()} (total calcium, not corrected: no "
                        f"albumin within {settings.albumin_within_days} days)", limit, basis,
                        total)
            return None
        total_mg_dl = total.normalised / MMOL_PER_MG_DL
        corrected_mg_dl = total_mg_dl + 0.8 * (4.0 - (albumin.normalised or 0.0))
        corrected = corrected_mg_dl * MMOL_PER_MG_DL
        if total.comparator is None and corrected < limit:
            shown = (f"{total.describe()}, corrected for albumin {albumin.describe()}: "
                     f"{corrected_mg_dl:.1f} mg/dL (= {corrected:.2f} mmol/L)")
            return ("calcium", shown, limit, basis, total)
        return None

    def _albumin_near(self, context: RuleContext[Settings], total: LabResult) -> LabResult | None:
        window = timedelta(days=context.settings.albumin_within_days)
        for albumin in results(context.record.observations, self.labs.albumin.value_set,
                               self.labs.albumin.units):
            if albumin.comparable and abs(albumin.when - total.when) <= window:
                return albumin
        return None

    @staticmethod
    def _low_limit(
        context: RuleContext[Settings], name: str, result: LabResult
    ) -> tuple[float, str]:
        if result.low_limit is not None:
            return result.low_limit, "the lab's reference range"
        defaults = {
            "potassium": context.settings.potassium_low_mmol_l,
            "magnesium": context.settings.magnesium_low_mmol_l,
            "calcium": context.settings.calcium_low_mmol_l,
        }
        return defaults[name], "the default limit"

    def _card(
        self,
        context: RuleContext[Settings],
        cramps: list[ConditionMatch],
        cramp_orders: list,
        abnormal: list,
        uncompared: list,
    ) -> Card:
        base = context.code_system_base
        why_here = [c.label for c in cramps]
        why_here += [f"{o.medication_label} being ordered" for o in cramp_orders]
        lines = [
            f"- **{name}** {shown}: below {limit_in_lab_unit(limit, result)} ({basis})"
            for name, shown, limit, basis, result in abnormal
        ]
        lines += [
            f"- {name} {result.describe()}: not compared (unit not recognised)"
            for name, result in uncompared
        ]
        names = ", ".join(name for name, *_ in abnormal)
        detail = "\n\n".join(
            [
                f"**Found:** {'; '.join(why_here)}, and low electrolytes in the last "
                f"{context.settings.electrolyte_lookback_days} days:\n" + "\n".join(lines),
                "**Why:** Low potassium, magnesium or calcium is a treatable cause of cramps that "
                "the work-up of cramps looks for (Katzberg 2015); correcting it comes before "
                "drug treatment of the cramps. Most night-time leg cramps have no such cause, "
                "so this card fires only on a low result.",
                "**Consider:** looking for the cause (diuretics, diet, losses), correcting the "
                "deficit, and rechecking.",
            ]
        )
        reason = cramps[0] if cramps else None
        tests = [TESTS["calcium" if "calcium" in name else name] for name, *_ in abnormal]
        return Card(
            summary=f"Cramps with low {names}: correct electrolytes before treating the cramps",
            indicator="warning",
            source=source(
                base,
                ABNORMAL,
                CRAMP_WORKUP_2015.label,
                "Cramps with abnormal electrolytes", CRAMP_WORKUP_2015.url),
            detail=detail,
            suggestions=(
                Suggestion(label=f"Recheck {names}", actions=order_tests(context, tests, reason)),
            ),
            selection_behavior="at-most-one",
            override_reasons=(
                override_reason(base, "already-being-corrected", "Already being corrected"),
                override_reason(base, "result-not-current", "Result no longer current"),
            ),
            identity="electrolytes-low:" + ",".join(name for name, *_ in abnormal),
        )
