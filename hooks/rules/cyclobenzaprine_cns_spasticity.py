"""C2 `cyclobenzaprine-cns-spasticity`: cyclobenzaprine for spasticity from CNS disease (warning).

Source: seed 000 (cyclobenzaprine does not work for spasm due to central nervous system
disease), seeds 001 and 002 (not effective for spasticity from cerebral or spinal cord disease;
tizanidine, baclofen or dantrolene for spasticity after stroke).

Fires: a cyclobenzaprine order among the orders the hook asks about, and an active stroke,
multiple sclerosis, spinal cord injury or cerebral palsy condition, or the order's reason is
spasticity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import concept_label
from cds_service.kit import condition_counts
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import describe_order
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.valuesets import uses

RULE_ID = "cyclobenzaprine-cns-spasticity"


@dataclass(frozen=True)
class CyclobenzaprineCnsSpasticity:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "C2"
    title: ClassVar[str] = "Cyclobenzaprine for spasticity from CNS disease"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seeds 000, 001, 002"
    applies: ClassVar[str] = (
        "order hooks: cyclobenzaprine orders asked about; patient-view: active cyclobenzaprine."
    )
    cyclobenzaprine: ValueSet = uses("cyclobenzaprine")
    cns_conditions: ValueSet = uses("cns-spasticity-conditions")
    stroke: ValueSet = uses("stroke")
    spasticity: ValueSet = uses("spasticity")
    Settings = RuleSettings

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.order_rule_reads(hook)

    def evaluate(self, context: RuleContext[RuleSettings]) -> list[Card]:
        record = context.record
        conditions = record.active_conditions(self.cns_conditions) + record.active_conditions(
            self.stroke)
        cards = []
        for order, match in matching_orders(context, self.cyclobenzaprine):
            reasons = [r for r in order.reason_codes if self.spasticity.match(r)]
            reasons += [
                c.code for ref in order.reason_references
                if (c := record.condition(ref)) is not None
                and c.code is not None
                and condition_counts(c)
                and self.spasticity.match(c.code)
            ]
            if not conditions and not reasons:
                continue
            found = [f"- {condition_line(c, record.onset(c.condition))}" for c in conditions]
            found += [f"- order reason: **{concept_label(r)}**" for r in reasons]
            cards.append(self._card(order, match, found, context))
        return cards

    def _card(self, order: MedicationOrder, match: Match, found: list[str],
              context: RuleContext[RuleSettings]) -> Card:
        base = context.code_system_base
        detail = "\n\n".join([
            f"**Found:** {describe_order(order, match)}, with:\n" + "\n".join(found),
            "**Why:** Cyclobenzaprine relieves spasm of local, musculoskeletal origin; the "
            "guidance says it does not work for spasm or spasticity caused by disease of the "
            "brain or spinal cord.",
            "**Consider:** for spasticity the guidance names tizanidine, baclofen or dantrolene, "
            "alongside physiotherapy. If this order treats an acute musculoskeletal spasm "
            "rather than spasticity, choose that override reason.",
        ])
        return Card(
            summary="Cyclobenzaprine does not relieve spasticity from brain or spinal cord disease",
            indicator="warning",
            source=source(base, RULE_ID,
                          "Leg spasm guidance: cyclobenzaprine and CNS spasticity",
                          "Cyclobenzaprine for spasticity of CNS origin"),
            detail=detail,
            override_reasons=(
                override_reason(base, "musculoskeletal-spasm",
                                "Treating an acute musculoskeletal spasm, not spasticity"),
                override_reason(base, "specialist-directed", "Specialist-directed treatment"),
            ),
            identity=order.reference,
        )
