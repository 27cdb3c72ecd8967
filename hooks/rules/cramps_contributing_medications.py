"""M1 `cramps-contributing-medications`: medicines that may contribute to leg cramps (info).

Source: seed 003 (medication side effects are among the causes of cramps to look for; review the
medicines that may contribute: diuretics, statins and beta-blockers; periodic electrolyte tests
for patients on diuretics).

Fires: patient-view only, when the patient has an active leg cramp condition (`leg-cramps` value
set) and one or more active diuretics (of any kind, potassium-sparing included), statins or
beta-blockers. One card per patient lists every such medicine with its order and start date.
Quiet: on order-select and order-sign (a review of the standing medicines belongs to the chart,
not to a new order); no active cramp condition; none of these medicines active.
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
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import format_date
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.sources import DRUGS_PRECEDING_CRAMPS_2012
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "cramps-contributing-medications"


@dataclass(frozen=True)
class Contributor:
    order: MedicationOrder
    match: Match
    classes: tuple[str, ...]

    def line(self) -> str:
        order = self.order
        return (
            f"- **{order.medication_label}** ({' and '.join(self.classes)}, "
            f"since {format_date(order.authored_on)})"
        )


@dataclass(frozen=True)
class CrampsContributingMedications:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "M1"
    references: ClassVar[tuple[Reference, ...]] = (DRUGS_PRECEDING_CRAMPS_2012,)
    title: ClassVar[str] = "Medicines that may contribute to leg cramps"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seed 003"
    applies: ClassVar[str] = (
        "patient-view only: active leg cramps and an active diuretic, statin or beta-blocker; "
        "quiet on order hooks."
    )
    leg_cramps: ValueSet = uses("leg-cramps")
    diuretics: ValueSet = uses("diuretics")
    statins: ValueSet = uses("statins")
    beta_blockers: ValueSet = uses("beta-blockers")
    Settings = RuleSettings  # no thresholds

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        if hook == PATIENT_VIEW:
            return (data.ACTIVE_MEDICATIONS, data.CONDITIONS)
        return ()  # does not run on order hooks

    def contributors(self, context: RuleContext[RuleSettings]) -> list[Contributor]:
        classes = (
            ("diuretic", self.diuretics),
            ("statin", self.statins),
            ("beta-blocker", self.beta_blockers),
        )
        found = []
        for order in context.subject_orders:
            matches = [(name, m) for name, vs in classes if (m := order.match_medication(vs))]
            if matches:
                found.append(Contributor(order, matches[0][1], tuple(n for n, _ in matches)))
        return found

    def evaluate(self, context: RuleContext[RuleSettings]) -> list[Card]:
        if context.is_order_hook:
            return []
        cramps = context.record.active_conditions(self.leg_cramps)
        if not cramps:
            return []
        medicines = self.contributors(context)
        if not medicines:
            return []
        base = context.code_system_base
        conditions = "\n".join(
            f"- {condition_line(c, context.record.onset(c.condition))}" for c in cramps
        )
        diuretic = any("diuretic" in m.classes for m in medicines)
        detail = "\n\n".join(filter(None, [
            f"**Found:** leg cramps:\n{conditions}\n\nwhile taking:\n"
            + "\n".join(m.line() for m in medicines),
            "**Why:** Leg cramps follow the start of some medicines more often than chance: in "
            "prescription data the clearest signals were long-acting beta-agonists and "
            "thiazide-like or potassium-sparing diuretics; statins and loop diuretics showed "
            "small ones (Garrison 2012).",
            "**Consider:** whether each medicine is still needed, at this dose, and whether the "
            "cramps began or worsened after it was started.",
            "On a diuretic, electrolytes (potassium, magnesium, calcium) are checked "
            "periodically." if diuretic else "",
        ]))
        references = sorted(m.order.reference for m in medicines)
        return [
            Card(
                summary=_summary([m.order.medication_label for m in medicines]),
                indicator="info",
                source=source(base, RULE_ID, DRUGS_PRECEDING_CRAMPS_2012.label,
                              "Medicines that may contribute to leg cramps",
                              DRUGS_PRECEDING_CRAMPS_2012.url),
                detail=detail,
                override_reasons=(
                    override_reason(base, "reviewed-still-needed",
                                    "Reviewed: the medicines are still needed"),
                    override_reason(base, "other-cause-established",
                                    "The cramps have another established cause"),
                ),
                identity="contributing:" + ",".join(references),
                repeat_quietly=True,  # a chart review point, not news on every chart open
            )
        ]


def _summary(labels: list[str]) -> str:
    """'Leg cramps: <drugs> may contribute; review', the list cut to fit 139 characters."""
    head = "Leg cramps: "
    tail = " may contribute; review them" if len(labels) > 1 else " may contribute; review it"
    room = 139 - len(head) - len(tail)
    for count in range(len(labels), 0, -1):
        more = len(labels) - count
        names = labels[:count] + ([f"{more} more"] if more else [])
        shown = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        if len(shown) <= room:
            return head + shown + tail
    suffix = f" and {len(labels) - 1} more" if len(labels) > 1 else ""
    shown = labels[0][: room - len(suffix) - 3].rstrip() + "..." + suffix
    return head + shown + tail
