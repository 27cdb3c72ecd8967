"""C5 `cyclobenzaprine-contraindication`: cyclobenzaprine where its label says never (warning;
critical with an MAO inhibitor).

Source: the cyclobenzaprine labels (tablets and extended-release capsules), Contraindications:
use with a monoamine oxidase (MAO) inhibitor or within 14 days after one is stopped; the acute
recovery phase of a myocardial infarction; arrhythmias, heart block or conduction disturbances;
congestive heart failure; hyperthyroidism.

Fires: a cyclobenzaprine order among the orders the hook asks about (patient-view: active
cyclobenzaprine) with any of
- an MAO inhibitor active, on hold or being ordered, or completed or stopped with its last
  day (authored date plus its longest duration estimate, or its dosage bounds) within
  `mao_washout_days` (14) calendar days before now: critical. An ended MAO inhibitor whose
  last day cannot be worked out counts when it was authored within
  `mao_unknown_end_lookback_days` (90): the card says the stop date is not recorded;
- an active myocardial infarction with onset within `recent_mi_days` (90) or no onset recorded;
- an active arrhythmia, heart block or conduction disturbance; active heart failure; active
  hyperthyroidism.
Each finding is named with the patient's own evidence (drug and dates, condition and onset).
Quiet: none of these; an MAO inhibitor that ended longer ago than the washout; a myocardial
infarction older than the window; conditions that do not count (resolved, refuted, entered in
error) and history-of codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import ClassVar

from cds_service.kit import ENDED_ORDER_STATUSES
from cds_service.kit import ON_HOLD
from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import ValueSet
from cds_service.kit import as_instant
from cds_service.kit import intended_duration
from cds_service.kit import setting
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import describe_order
from hooks.rules.common import format_date
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import remove_order_suggestion
from hooks.rules.common import source
from hooks.rules.sources import CYCLOBENZAPRINE_ER_LABEL
from hooks.rules.sources import CYCLOBENZAPRINE_LABEL
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "cyclobenzaprine-contraindication"


@dataclass(frozen=True)
class MaoFinding:
    """An MAO inhibitor order that bears on cyclobenzaprine, as the card names it."""

    order: MedicationOrder
    line: str
    certain: bool  # active, ordered, or ended within the washout by a known date


@dataclass(frozen=True)
class CyclobenzaprineContraindication:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "C5"
    references: ClassVar[tuple[Reference, ...]] = (CYCLOBENZAPRINE_LABEL,
                                                    CYCLOBENZAPRINE_ER_LABEL)
    title: ClassVar[str] = "Cyclobenzaprine contraindicated"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "cyclobenzaprine labels, Contraindications (issue 16)"
    applies: ClassVar[str] = (
        "order hooks: cyclobenzaprine orders asked about; patient-view: active cyclobenzaprine. "
        "Needs an MAO inhibitor active or ended within 14 days (critical), a recent myocardial "
        "infarction, an arrhythmia or conduction disturbance, heart failure or hyperthyroidism."
    )
    cyclobenzaprine: ValueSet = uses("cyclobenzaprine")
    mao_inhibitors: ValueSet = uses("mao-inhibitors")
    myocardial_infarction: ValueSet = uses("myocardial-infarction")
    arrhythmia: ValueSet = uses("arrhythmia-conduction")
    heart_failure: ValueSet = uses("heart-failure")
    hyperthyroidism: ValueSet = uses("hyperthyroidism")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's windows, with their defaults."""

        mao_washout_days: int = setting(
            14, "cyclobenzaprine labels: within 14 days after an MAO inhibitor is stopped")
        mao_unknown_end_lookback_days: int = setting(
            90, "chosen: an ended MAO inhibitor without a stop date counts when ordered within "
            "about 3 months")
        recent_mi_days: int = setting(
            90, "chosen: the labels give no length for the acute recovery phase after a "
            "myocardial infarction (open for clinical review)")

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.with_reads(data.order_rule_reads(hook), data.ACTIVE_MEDICATIONS,
                               data.MAO_INHIBITOR_HISTORY)

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        orders = matching_orders(context, self.cyclobenzaprine)
        if not orders:
            return []
        conditions = self._conditions(context)
        cards = []
        for order, match in orders:
            mao = self._mao_findings(context, order)
            if mao or conditions:
                cards.append(self._card(context, order, match, mao, conditions))
        return cards

    # --- findings ----------------------------------------------------------------------------

    def _mao_findings(self, context: RuleContext[Settings],
                      order: MedicationOrder) -> list[MaoFinding]:
        """Each MAO inhibitor once (by order, and by product: a refill request and the order it
        renews name the same drug), in the order that matters: in hand, active, on hold, then
        ended within the washout."""
        record = context.record
        in_hand = [("being ordered", o) for o in
                   (record.open_drafts() if context.is_order_hook else [])]
        current = [*in_hand,
                   *(("active", o) for o in record.active_medications(self.mao_inhibitors)),
                   *(("on hold", o) for o in record.orders_with_status(
                       self.mao_inhibitors, frozenset({ON_HOLD})))]
        found: list[MaoFinding] = []
        seen = {order.reference}
        names: set[str] = set()
        for state, other in [*current, *(("ended", o) for o in record.orders_with_status(
                self.mao_inhibitors, ENDED_ORDER_STATUSES))]:
            match = other.match_medication(self.mao_inhibitors)
            if match is None or other.reference in seen or other.medication_label in names:
                continue
            seen.add(other.reference)
            described = describe_order(other, match, context.hook)
            finding = (MaoFinding(other, f"{state}: {described}", True) if state != "ended"
                       else self._ended(context, other, described))
            if finding is not None:
                names.add(other.medication_label)
                found.append(finding)
        return found

    def _ended(self, context: RuleContext[Settings], other: MedicationOrder,
               described: str) -> MaoFinding | None:
        """A completed or stopped MAO inhibitor that still counts: its last day within the
        washout (certain), or no last day but authored recently (the stop date not recorded)."""
        settings = context.settings
        now = as_instant(context.now)
        assert now is not None
        last_day = self._last_day(other)
        if last_day is not None:
            # Calendar days: a last day 14 days ago is within '14 days after', all day.
            if (now.date() - last_day.date()).days <= settings.mao_washout_days:
                return MaoFinding(other, f"{other.status}: {described}, last day "
                                  f"{format_date(last_day)}", True)
            return None
        authored = as_instant(other.authored_on)
        if authored is not None and now - authored <= timedelta(
                days=settings.mao_unknown_end_lookback_days):
            return MaoFinding(other, f"{other.status}: {described}, stop date not recorded",
                              False)
        return None

    def _last_day(self, order: MedicationOrder) -> datetime | None:
        """The order's last day of use: its dosage bounds' end, else its authored date plus the
        longest duration the order states. None when neither is known."""
        ends = []
        for dosage in order.model.dosageInstruction or []:
            repeat = dosage.timing.repeat if dosage.timing is not None else None
            bounds = repeat.boundsPeriod if repeat is not None else None
            end = as_instant(bounds.end) if bounds is not None else None
            if end is not None:
                ends.append(end)
        if ends:
            return max(ends)
        authored = as_instant(order.authored_on)
        estimate = intended_duration(order.model)
        if authored is None or estimate is None:
            return None
        return authored + timedelta(days=estimate.days)

    def _conditions(self, context: RuleContext[Settings]) -> list[tuple[str, ConditionMatch]]:
        record = context.record
        now = as_instant(context.now)
        assert now is not None
        since = now - timedelta(days=context.settings.recent_mi_days)
        found: list[tuple[str, ConditionMatch]] = []
        for c in record.active_conditions(self.myocardial_infarction):
            onset = as_instant(record.onset(c.condition))
            if onset is None or onset >= since:
                found.append(("recent myocardial infarction", c))
        for what, value_set in (("arrhythmia or conduction disturbance", self.arrhythmia),
                                ("heart failure", self.heart_failure),
                                ("hyperthyroidism", self.hyperthyroidism)):
            found += [(what, c) for c in record.active_conditions(value_set)]
        return found

    # --- card --------------------------------------------------------------------------------

    def _card(self, context: RuleContext[Settings], order: MedicationOrder, match: Match,
              mao: list[MaoFinding], conditions: list[tuple[str, ConditionMatch]]) -> Card:
        base = context.code_system_base
        record = context.record
        critical = any(f.certain for f in mao)
        reasons = []
        if mao:
            reasons.append("an MAO inhibitor" + ("" if critical else " (stop date unknown)"))
        reasons += list(dict.fromkeys(what for what, _ in conditions))
        found = [f"**Found:** {describe_order(order, match, context.hook)}, with:"]
        found += [f"- MAO inhibitor {f.line}" for f in mao]
        found += [f"- {what}: {condition_line(c, record.onset(c.condition))}"
                  for what, c in conditions]
        why = ["**Why:** The cyclobenzaprine labels list as contraindications:"]
        if mao:
            why.append(
                "use with an MAO inhibitor or within 14 days after one is stopped (hyperpyretic "
                "crises, seizures and deaths have occurred with cyclobenzaprine or tricyclic "
                "drugs given with MAO inhibitors, and the combination risks serotonin syndrome)"
                + ("" if critical else "; the MAO inhibitor's stop date is not recorded, so the "
                   "14 days cannot be checked here") + ";")
        if conditions:
            why.append("the acute recovery phase after a myocardial infarction, arrhythmias, "
                       "heart block or conduction disturbances, congestive heart failure, and "
                       "hyperthyroidism (cyclobenzaprine has tricyclic-like effects on the heart).")
        consider = ("**Consider:** not using cyclobenzaprine; for muscle spasm, non-drug measures "
                    "and an analgesic that suits the patient's condition. If the finding is no "
                    "longer current, update the record.")
        summary = "Cyclobenzaprine is contraindicated: " + ", ".join(reasons)
        if len(summary) > 139:
            summary = summary[:136].rstrip(", ") + "..."
        suggestions = remove_order_suggestion(order, context.hook, "cyclobenzaprine")
        return Card(
            summary=summary,
            indicator="critical" if critical else "warning",
            source=source(base, RULE_ID, CYCLOBENZAPRINE_LABEL.label, self.title,
                          CYCLOBENZAPRINE_LABEL.url),
            detail="\n\n".join(["\n".join(found), " ".join(why), consider]),
            suggestions=suggestions,
            selection_behavior="at-most-one" if suggestions else None,
            override_reasons=(
                override_reason(base, "finding-not-current", "Finding no longer current"),
                override_reason(base, "benefit-outweighs-risk", "Benefit outweighs risk"),
                override_reason(base, "specialist-directed", "Specialist-directed"),
            ),
            identity=order.reference,
            repeat_quietly=not context.is_order_hook,
        )
