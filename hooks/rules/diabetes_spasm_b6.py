"""V1 `diabetes-spasm-b6`: diabetes with persistent muscle spasm and no vitamin B6 result (info).

Origin: seed 001 (muscle spasms that have not settled with stretching and rest need further
investigation; in diabetic patients with persistent muscle spasms, consider checking pyridoxine).
No primary source was found for vitamin B6 in cramps with diabetes (the AAN 2010 assessment rates
vitamin B complex only "possibly effective" for cramps in general), so the card is information
only, never a recommended action, says the evidence is limited, and runs on patient-view only
(at order entry it would not be about the order in hand). Open for clinical review (hazard log).

Fires (patient-view only): an active diabetes condition, an active leg cramp condition (the
`leg-cramps` value set) whose onset is at least `persistent_days` (42) before now and which is
still active, and no vitamin B6 result within `b6_lookback_days` (365: a level from the past
year answers the question; an older one may predate the spasm). The missing result is the
finding. The onset says how long the condition has been on record, not that the spasm persists:
the card says so.
Suggests a draft ServiceRequest for vitamin B6 (pyridoxal 5'-phosphate, LOINC 62236-5 when the
`vitamin-b6` lab holds it).
Quiet: no diabetes or no spasm condition that counts (resolved, inactive, refuted, entered in
error); a spasm with onset less than `persistent_days` ago, or with no onset or recorded date
(persistence cannot be judged: stay quiet); any vitamin B6 result in the window.

What counts as a B6 result: an Observation (or a component) of the `vitamin-b6` lab, matched by
code and, failing that, by name; status final, amended, corrected or preliminary; timed by
effective[x] or issued; carrying a value (valueQuantity with a number, a string, a coded value,
an integer, a range or a ratio) and no dataAbsentReason. The value is never compared, so a
quantity without a unit, or in a unit the lab does not convert, still counts as a result: the
test was done, and this rule only asks whether it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import ClassVar

from cds_service.kit import COUNTABLE_STATUSES
from cds_service.kit import PATIENT_VIEW
from cds_service.kit import Action
from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import Suggestion
from cds_service.kit import ValueSet
from cds_service.kit import as_instant
from cds_service.kit import concept_label
from cds_service.kit import newest
from cds_service.kit import observation_time
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import format_date
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.labs import service_request
from hooks.rules.sources import AAN_CRAMPS_2010
from hooks.rules.sources import Reference
from hooks.valuesets import LabTest
from hooks.valuesets import uses
from hooks.valuesets import uses_lab

RULE_ID = "diabetes-spasm-b6"

VITAMIN_B6_KEY = "vitaminB6"
# The test the suggestion orders: pyridoxal 5'-phosphate, serum or plasma (ARUP's PLP code).
# Its LOINC display is not verified in the shared reference, so the coding carries none.
B6_ORDER_CODE = "62236-5"
B6_ORDER_TEXT = "Vitamin B6 (pyridoxal 5'-phosphate), serum or plasma"

_VALUE_FIELDS = (
    "valueString",
    "valueCodeableConcept",
    "valueInteger",
    "valueRange",
    "valueRatio",
)


@dataclass(frozen=True)
class B6Result:
    observation: Any
    when: datetime
    shown: str

    def describe(self) -> str:
        return f"{self.shown} on {format_date(self.when)}"


def _shown(holder: Any) -> str | None:
    """The result as reported, or None when the Observation (or component) carries no value."""
    if getattr(holder, "dataAbsentReason", None) is not None:
        return None
    quantity = holder.valueQuantity
    if quantity is not None:
        if quantity.value is None:
            return None
        unit = quantity.unit or quantity.code or "(no unit)"
        return f"{quantity.comparator or ''}{quantity.value:g} {unit}"
    if holder.valueString is not None:
        return str(holder.valueString)
    if holder.valueCodeableConcept is not None:
        return concept_label(holder.valueCodeableConcept) or "a coded result"
    if holder.valueInteger is not None:
        return str(holder.valueInteger)
    if any(getattr(holder, name, None) is not None for name in _VALUE_FIELDS):
        return "a reported value"
    return None


def latest_b6(observations: Iterable[Any], value_set: ValueSet) -> B6Result | None:
    """The newest countable vitamin B6 result with a value (components too), validating as
    few Observations as it can."""
    return newest(observations, value_set, lambda o: _b6_of(o, value_set))


def _b6_of(observation: Any, value_set: ValueSet) -> list[B6Result]:
    """The B6 result one Observation holds (itself or its first matching component)."""
    if observation.status not in COUNTABLE_STATUSES:
        return []
    when = observation_time(observation)
    if when is None:
        return []
    holders = [observation] if value_set.match(observation.code) else []
    holders += [c for c in observation.component or [] if value_set.match(c.code)]
    for holder in holders:
        shown = _shown(holder)
        if shown is not None:
            return [B6Result(observation, when, shown)]
    return []


@dataclass(frozen=True)
class DiabetesSpasmB6:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "V1"
    references: ClassVar[tuple[Reference, ...]] = (AAN_CRAMPS_2010,)
    title: ClassVar[str] = "Diabetes with persistent spasm and no vitamin B6 result"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seed 001"
    applies: ClassVar[str] = (
        "patient-view only. Needs active diabetes and an active leg cramp condition on record "
        "for at least persistent_days, and no vitamin B6 result in b6_lookback_days."
    )
    diabetes: ValueSet = uses("diabetes")
    muscle_spasm: ValueSet = uses("leg-cramps")
    vitamin_b6: LabTest = uses_lab("vitamin-b6")

    @dataclass(frozen=True)
    class Settings(RuleSettings):
        """This rule's thresholds and windows, with their defaults."""

        persistent_days: int = 42  # a cramp condition on record this long, still active
        b6_lookback_days: int = 365

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.CONDITIONS, data.VITAMIN_B6) if hook == PATIENT_VIEW else ()

    def persistent_spasms(
        self, context: RuleContext[Settings]
    ) -> list[tuple[ConditionMatch, datetime]]:
        """Active cramp or spasm conditions with an onset at least `persistent_days` ago."""
        cutoff = context.now - timedelta(days=context.settings.persistent_days)
        found = []
        for spasm in context.record.active_conditions(self.muscle_spasm):
            onset = as_instant(context.record.onset(spasm.condition))
            if onset is not None and onset <= cutoff:
                found.append((spasm, onset))
        return sorted(found, key=lambda item: item[1])

    def evaluate(self, context: RuleContext[Settings]) -> list[Card]:
        if context.is_order_hook:  # chart-level information, never about the order in hand
            return []
        diabetes = context.record.active_conditions(self.diabetes)
        if not diabetes:
            return []
        spasms = self.persistent_spasms(context)
        if not spasms:
            return []
        lookback = context.settings.b6_lookback_days
        since = context.now - timedelta(days=lookback)
        result = latest_b6(context.record.observations, self.vitamin_b6.value_set)
        if result is not None and result.when >= since:
            return []
        return [self._card(context, diabetes, spasms, result)]

    def _order(
        self, context: RuleContext[Settings], spasm: ConditionMatch, diabetes: ConditionMatch
    ) -> dict[str, Any]:
        codes = self.vitamin_b6.loinc_codes
        code = B6_ORDER_CODE if B6_ORDER_CODE in codes or not codes else codes[0]
        request = service_request(context, code, B6_ORDER_TEXT)
        request["code"]["coding"][0].pop("display", None)
        reasons = [c.reference for c in (spasm, diabetes) if c.condition.id]
        if reasons:
            request["reasonReference"] = [{"reference": r} for r in reasons]
        return request

    def _card(
        self,
        context: RuleContext[Settings],
        diabetes: list[ConditionMatch],
        spasms: list[tuple[ConditionMatch, datetime]],
        last: B6Result | None,
    ) -> Card:
        base = context.code_system_base
        record = context.record
        lookback = context.settings.b6_lookback_days
        longest = (context.now - spasms[0][1]).days
        spasm_lines = "; ".join(
            f"{condition_line(c, onset)}, on record as active for {(context.now - onset).days} "
            "days" for c, onset in spasms
        )
        if last is None:
            b6 = "no vitamin B6 result on record"
        else:
            b6 = (
                f"the last vitamin B6 result, {last.describe()}, is older than {lookback} days"
            )
        detail = "\n\n".join(
            [
                "**Found:** "
                + "; ".join(condition_line(c, record.onset(c.condition)) for c in diabetes)
                + f", with {spasm_lines}; {b6}.",
                "**Why:** Cramps that have not settled with stretching and rest are a reason to "
                "look for a cause. Checking vitamin B6 in diabetes is a local suggestion: the "
                "evidence is limited (no guideline recommends it; the AAN 2010 assessment rates "
                "vitamin B complex only possibly effective for cramps in general). The onset "
                "date says how long the condition has been on record, not that the cramps "
                "still occur: ask the patient.",
                "**Consider, if the cramps persist:** a vitamin B6 (pyridoxal 5'-phosphate) "
                "level; and whether neurological signs point to spasticity rather than simple "
                "cramps.",
            ]
        )
        return Card(
            summary=(
                f"Diabetes, cramps on record {longest} days, no vitamin B6 result in {lookback} "
                "days: a B6 level is an option (limited evidence)"
            ),
            indicator="info",
            source=source(
                base,
                RULE_ID,
                AAN_CRAMPS_2010.label + " (limited evidence; local suggestion)",
                "Diabetes with persistent spasm and no vitamin B6 result",
                AAN_CRAMPS_2010.url,
            ),
            detail=detail,
            suggestions=(
                Suggestion(
                    label="Order vitamin B6 (pyridoxal 5'-phosphate)",
                    actions=(
                        Action(
                            type="create",
                            description=f"Order {B6_ORDER_TEXT}",
                            resource=self._order(context, spasms[0][0], diabetes[0]),
                        ),
                    ),
                    is_recommended=False,
                ),
            ),
            selection_behavior="at-most-one",
            override_reasons=(
                override_reason(base, "results-elsewhere", "Recent results held elsewhere"),
                override_reason(base, "not-clinically-indicated", "Not clinically indicated"),
            ),
            identity="diabetes-spasm-b6:"
            + ",".join(sorted({c.reference for c in diabetes} | {c.reference for c, _ in spasms})),
            repeat_quietly=True,
        )
