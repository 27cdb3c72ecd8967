"""C2 `cyclobenzaprine-cns-spasticity`: cyclobenzaprine for spasticity from CNS disease (warning).

Source: the cyclobenzaprine prescribing information (Indications: not found effective for
spasticity associated with cerebral or spinal cord disease, or in children with cerebral palsy);
origin: seed 000 (cyclobenzaprine does not work for spasm due to central nervous system
disease), seeds 001 and 002 (not effective for spasticity from cerebral or spinal cord disease;
tizanidine, baclofen or dantrolene for spasticity after stroke).

Fires: a cyclobenzaprine order among the orders the hook asks about, and either
- an active condition that makes the spasm central, whatever its age (value set
  cns-spasticity-conditions: multiple sclerosis, spinal cord injury or lesion, cerebral palsy,
  hemiplegia, hemiparesis or spasticity after a stroke, spastic hemiplegia or paraparesis);
- an active stroke (value set stroke) whose onset lies within `stroke_window_days` (default
  365) before now: early after a stroke, spasm is taken to be central;
- or the order's reason is spasticity or such a condition.
Quiet: a stroke older than the window, or with no recorded onset, and no sequela coded: an old
stroke alone does not make today's spasm central (clinical review, issue 15).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import ClassVar

from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import as_instant
from cds_service.kit import condition_counts
from hooks import data
from hooks.rules.common import format_date
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.sources import CYCLOBENZAPRINE_LABEL
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "cyclobenzaprine-cns-spasticity"


@dataclass(frozen=True)
class CyclobenzaprineCnsSpasticity:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "C2"
    references: ClassVar[tuple[Reference, ...]] = (CYCLOBENZAPRINE_LABEL,)
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

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        stroke_window_days: int = 365

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.order_rule_reads(hook)

    def central_conditions(self, context: RuleContext[Settings]) -> list[str]:
        """One line per active condition that makes the spasm central: CNS disease and
        post-stroke sequelae at any age, a stroke only within the window."""
        record = context.record
        window = timedelta(days=context.settings.stroke_window_days)
        lines: list[str] = []
        seen: set[int] = set()
        for found in record.active_conditions(self.cns_conditions):
            seen.add(id(found.condition))
            lines.append(_condition_line(found, record.onset(found.condition), self.cns_conditions))
        for found in record.active_conditions(self.stroke):
            if id(found.condition) in seen:
                continue
            onset = record.onset(found.condition)
            started = as_instant(onset)
            if started is not None and context.now - started <= window:
                lines.append(_condition_line(found, onset, self.stroke)
                             + f", within the last {context.settings.stroke_window_days} days")
        return lines

    def reason_lines(self, context: RuleContext[Settings], order: MedicationOrder) -> list[str]:
        """The order's reasons (coded, or a Condition it cites that counts) that are spasticity
        or a condition that makes spasm central."""
        record = context.record
        reasons = list(order.reason_codes)
        reasons += [
            c.code for ref in order.reason_references
            if (c := record.condition(ref)) is not None
            and c.code is not None
            and condition_counts(c)
        ]
        lines = []
        for reason in reasons:
            value_set = next((v for v in (self.spasticity, self.cns_conditions)
                              if v.match(reason)), None)
            if value_set is not None:
                lines.append(f"- order reason: **{_clinical_label(reason, value_set)}**")
        return lines

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        orders = matching_orders(context, self.cyclobenzaprine)
        if not orders:
            return []
        conditions = self.central_conditions(context)
        cards = []
        for order, _ in orders:
            found = conditions + self.reason_lines(context, order)
            if found:
                cards.append(self._card(order, found, context))
        return cards

    def _card(self, order: MedicationOrder, found: list[str],
              context: RuleContext[Settings]) -> Card:
        base = context.code_system_base
        status = order.status or "status not given"
        detail = "\n\n".join([
            f"**Found:** **{order.medication_label}** ({status}, ordered "
            f"{format_date(order.authored_on)}), with:\n" + "\n".join(found),
            "**Why:** Cyclobenzaprine relieves spasm of local, musculoskeletal origin; its "
            "prescribing information says it has not been found effective for spasticity "
            "associated with cerebral or spinal cord disease, or in children with cerebral "
            "palsy.",
            "**Consider:** for spasticity, tizanidine, baclofen or dantrolene are the usual drugs, "
            "alongside physiotherapy. If this order treats an acute musculoskeletal spasm "
            "rather than spasticity, choose that override reason.",
        ])
        return Card(
            summary="Cyclobenzaprine does not relieve spasticity from brain or spinal cord disease",
            indicator="warning",
            source=source(base, RULE_ID, CYCLOBENZAPRINE_LABEL.label,
                          "Cyclobenzaprine for spasticity of CNS origin",
                          CYCLOBENZAPRINE_LABEL.url),
            detail=detail,
            override_reasons=(
                override_reason(base, "musculoskeletal-spasm",
                                "Treating an acute musculoskeletal spasm, not spasticity"),
                override_reason(base, "specialist-directed", "Specialist-directed treatment"),
            ),
            identity=order.reference,
        )


def _clinical_label(concept: Any, value_set: ValueSet) -> str:
    """The concept's text or display, as the chart names it; a concept with codes only is named
    by what the value set holds, never by its code."""
    if getattr(concept, "text", None):
        return str(concept.text)
    for coding in getattr(concept, "coding", None) or []:
        if coding.display:
            return str(coding.display)
    return f"a condition coded as: {value_set.title}"


def _condition_line(found: ConditionMatch, onset: date | datetime | None,
                    value_set: ValueSet) -> str:
    label = _clinical_label(found.condition.code, value_set)
    return f"- **{label}**, onset {format_date(onset)}"
