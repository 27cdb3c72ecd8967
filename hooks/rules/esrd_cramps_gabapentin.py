"""S1 `esrd-cramps-gabapentin`: ESRD or dialysis with restless legs or leg cramps (info).

Source: seed 002 (in end-stage renal disease with leg spasms, gabapentin is the treatment option
the guidance suggests; alpha-2-delta ligands are its first-line drugs for RLS-related spasms),
seed 003 (cramps in patients on dialysis: sodium profiling, changes to the dialysate, or
midodrine). Gabapentin and pregabalin are cleared by the kidneys, so the card says the dose must
be adjusted to kidney function.

Fires: an active end-stage renal disease condition or a current dialysis condition, together with
an active restless legs or leg cramp / muscle spasm condition. On order hooks only while an RLS
or cramp drug (gabapentin and pregabalin included) is among the orders asked about.
The card names the dialysis measures only when the patient is on dialysis and has cramps, and
says the dose must be renally adjusted when gabapentin or pregabalin is being ordered or active.
Quiet: no kidney condition or no symptom condition that counts (resolved, inactive, refuted,
entered in error); a history-of-dialysis code (SNOMED 161693006, or a condition named "history
of ...") never stands for current dialysis, whatever a value set holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cds_service.kit import SNOMED
from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import describe_order
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.labs import runs_on
from hooks.valuesets import uses

RULE_ID = "esrd-cramps-gabapentin"

# "History of renal dialysis": a past procedure, not current dialysis (terminology pitfalls).
HISTORY_OF_DIALYSIS = frozenset({(SNOMED, "161693006")})
HISTORY_OF = re.compile(r"\b(history|h/o)\b", re.IGNORECASE)

# Ingredient names for the summary, most specific first (enacarbil is a different ingredient).
_LIGAND_NAMES = (
    ("gabapentin enacarbil", re.compile(r"\b(gabapentin\s+enacarbil|horizant)\b", re.I)),
    ("pregabalin", re.compile(r"\b(pregabalin|lyrica)\b", re.I)),
    ("gabapentin", re.compile(r"\b(gabapentin|neurontin|gralise)\b", re.I)),
)


def _is_history(found: ConditionMatch) -> bool:
    codings = getattr(found.condition.code, "coding", None) or []
    if any((c.system, c.code) in HISTORY_OF_DIALYSIS for c in codings):
        return True
    return bool(HISTORY_OF.search(found.label))


def _unique(found: Iterable[ConditionMatch]) -> list[ConditionMatch]:
    """Each Condition once, in the order found (a code may sit in two value sets)."""
    seen: set[int] = set()
    out = []
    for item in found:
        if id(item.condition) not in seen:
            seen.add(id(item.condition))
            out.append(item)
    return out


def ligand_name(order: MedicationOrder) -> str:
    for name, pattern in _LIGAND_NAMES:
        if pattern.search(order.medication_label):
            return name
    return "gabapentinoid"


@dataclass(frozen=True)
class EsrdCrampsGabapentin:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "S1"
    title: ClassVar[str] = "ESRD or dialysis with restless legs or leg cramps"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seeds 002, 003"
    applies: ClassVar[str] = (
        "patient-view; order hooks while an RLS or cramp drug (gabapentin, pregabalin included) "
        "is ordered. Needs active ESRD or current dialysis and active RLS or leg cramps."
    )
    esrd: ValueSet = uses("esrd")
    dialysis: ValueSet = uses("dialysis")
    restless_legs: ValueSet = uses("restless-legs")
    leg_cramps: ValueSet = uses("leg-cramps")
    alpha2delta_ligands: ValueSet = uses("alpha2delta-ligands")
    rls_drugs: ValueSet = uses("rls-drugs")
    cramp_drugs: ValueSet = uses("cramp-drugs")
    Settings = RuleSettings

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        # Active gabapentin or pregabalin changes the card on every hook, not only patient-view.
        return (data.CONDITIONS, data.ACTIVE_MEDICATIONS)

    def evaluate(self, context: RuleContext[RuleSettings]) -> list[Card]:
        if not runs_on(context, self.rls_drugs, self.cramp_drugs, self.alpha2delta_ligands):
            return []
        record = context.record
        dialysis = [c for c in record.active_conditions(self.dialysis) if not _is_history(c)]
        esrd = [c for c in record.active_conditions(self.esrd) if not _is_history(c)]
        kidney = _unique([*dialysis, *esrd])
        cramps = record.active_conditions(self.leg_cramps)
        rls = record.active_conditions(self.restless_legs)
        symptoms = _unique([*rls, *cramps])
        if not kidney or not symptoms:
            return []
        ordered, active = self._ligands(context)
        on_dialysis = bool(dialysis)
        return [self._card(context, kidney, rls, cramps, on_dialysis, ordered, active)]

    def _ligands(
        self, context: RuleContext[RuleSettings]
    ) -> tuple[list[tuple[MedicationOrder, Match]], list[tuple[MedicationOrder, Match]]]:
        """Gabapentin or pregabalin being ordered (order hooks) and already active (any hook)."""
        ordered = []
        if context.is_order_hook:
            ordered = [
                (o, m)
                for o in context.subject_orders
                if (m := o.match_medication(self.alpha2delta_ligands))
            ]
        seen = {o.reference for o, _ in ordered}
        active = [
            (o, m)
            for o in context.record.active_medications(self.alpha2delta_ligands)
            if (m := o.match_medication(self.alpha2delta_ligands)) and o.reference not in seen
        ]
        return ordered, active

    def _card(
        self,
        context: RuleContext[RuleSettings],
        kidney: list[ConditionMatch],
        rls: list[ConditionMatch],
        cramps: list[ConditionMatch],
        on_dialysis: bool,
        ordered: list[tuple[MedicationOrder, Match]],
        active: list[tuple[MedicationOrder, Match]],
    ) -> Card:
        base = context.code_system_base
        record = context.record
        who = "On dialysis" if on_dialysis else "ESRD"
        what = " and ".join(
            name for name, found in (("restless legs", rls), ("leg cramps", cramps)) if found
        )
        ligands = ordered + active
        if ligands:
            drug = ligand_name(ligands[0][0])
            verb = "ordered" if ordered else "active"
            summary = (
                f"{who} with {what}, {drug} {verb}: the dose must be adjusted to kidney function"
            )
        else:
            summary = (
                f"{who} with {what}: gabapentin, renally dosed, is the option the guidance names"
            )
            if on_dialysis and cramps:
                summary += "; review dialysis settings"

        found = [
            "**Found:** "
            + "; ".join(condition_line(c, record.onset(c.condition)) for c in kidney)
            + ", with "
            + "; ".join(condition_line(c, record.onset(c.condition)) for c in _unique(rls + cramps))
            + "."
        ]
        if ordered:
            found.append(
                "Being ordered: " + "; ".join(describe_order(o, m) for o, m in ordered) + "."
            )
        if active:
            found.append("Active: " + "; ".join(describe_order(o, m) for o, m in active) + ".")

        why = [
            "**Why:** For leg spasms in end-stage renal disease, the leg spasm guidance suggests "
            "gabapentin as a treatment option"
            + (
                "; for restless legs it names the alpha-2-delta ligands (gabapentin, gabapentin "
                "enacarbil, pregabalin) as first-line drugs"
                if rls
                else ""
            )
            + ". Gabapentin and pregabalin are cleared by the kidneys: in kidney failure the dose "
            "has to be lowered to suit the remaining kidney function, or the drug accumulates."
        ]
        if on_dialysis and cramps:
            why.append(
                "For cramps in patients on dialysis, the leg cramp guidance suggests sodium "
                "profiling, changes to the dialysate, or midodrine."
            )

        consider = ["**Consider:**"]
        if ligands:
            consider.append(
                "- Check that the gabapentin or pregabalin dose and frequency follow the "
                "product's renal dosing for the patient's current kidney function"
                + (" and dialysis schedule." if on_dialysis else ".")
            )
        else:
            consider.append(
                "- Gabapentin at a dose adjusted to kidney function (see the product's renal "
                "dosing) for the leg symptoms."
            )
        if on_dialysis and cramps:
            consider.append(
                "- With the dialysis team: sodium profiling, dialysate changes, or midodrine for "
                "the cramps."
            )
        consider.append(
            "- First-line measures still apply: stretching, and a review of electrolytes."
        )

        reasons = [
            override_reason(base, "managed-by-nephrology", "Managed with the kidney care team"),
        ]
        if ligands:
            reasons.append(
                override_reason(base, "dose-already-adjusted", "Dose already adjusted")
            )
        reasons.append(
            override_reason(base, "not-clinically-indicated", "Not clinically indicated")
        )
        identity = "esrd-cramps:" + ",".join(
            sorted({c.reference for c in kidney} | {c.reference for c in rls + cramps})
        )
        if ligands:
            identity += "|" + ",".join(sorted({o.reference for o, _ in ligands}))
        return Card(
            summary=summary,
            indicator="info",
            source=source(
                base,
                RULE_ID,
                "Leg spasm and leg cramp guidance: kidney failure and dialysis",
                "ESRD or dialysis with restless legs or leg cramps",
            ),
            detail="\n\n".join([" ".join(found), " ".join(why), "\n".join(consider)]),
            override_reasons=tuple(reasons),
            identity=identity,
            repeat_quietly=True,
        )
