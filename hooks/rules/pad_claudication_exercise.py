"""P1 `pad-claudication-exercise`: peripheral artery disease with leg cramping (info).

Source: seed 003 (PAD causes claudication, cramping or aching of the calves, thighs or buttocks
on walking; supervised exercise therapy is a class I recommendation, level of evidence A, for
claudication symptoms; programs usually run about 3 months with three sessions a week).

Fires: an active PAD condition (the `pad` value set) together with leg cramping: an active leg
cramp / muscle spasm condition, or a PAD condition that itself records intermittent claudication
(SNOMED 63491006, or "claudication" in its name or code display), since claudication is the
cramping the guidance describes. On order hooks only while an RLS or cramp drug is among the
orders asked about. Suggests a draft ServiceRequest referring the patient to supervised exercise
therapy, with the PAD condition as reason.
Quiet: no PAD condition that counts; PAD with no cramp condition and no claudication code;
resolved, inactive, refuted or entered-in-error conditions.

The referral's code: SNOMED CT 229065009 "Exercise therapy" (read on this machine in the
Synthea R4 sample records under shared/data/synthea-r4, 29 CarePlan activities, and in public
FHIR code bases through the search tool), with the text naming the supervised program. No more
specific "supervised exercise therapy" concept could be verified, so none is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import ClassVar

from cds_service.kit import SNOMED
from cds_service.kit import UCUM
from cds_service.kit import Action
from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import RuleContext
from cds_service.kit import RuleSettings
from cds_service.kit import Suggestion
from cds_service.kit import ValueSet
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.labs import runs_on
from hooks.rules.sources import PAD_2024
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "pad-claudication-exercise"

INTERMITTENT_CLAUDICATION = (SNOMED, "63491006")
CLAUDICATION = re.compile(r"\bclaudication\b", re.IGNORECASE)
EXERCISE_THERAPY = {"system": SNOMED, "code": "229065009", "display": "Exercise therapy"}
REFERRAL_TEXT = "Supervised exercise therapy for claudication (about 12 weeks, 3 sessions a week)"
PROGRAM_WEEKS = 12
SESSIONS_PER_WEEK = 3


def records_claudication(found: ConditionMatch) -> bool:
    code = found.condition.code
    codings = getattr(code, "coding", None) or []
    if any((c.system, c.code) == INTERMITTENT_CLAUDICATION for c in codings):
        return True
    names = [getattr(code, "text", None), *(c.display for c in codings)]
    return any(name and CLAUDICATION.search(name) for name in names)


def exercise_referral(context: RuleContext, reason: ConditionMatch) -> dict[str, Any]:
    """A draft FHIR R4 ServiceRequest: supervised exercise therapy, 3 sessions a week for about
    12 weeks, for the PAD condition."""
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [dict(EXERCISE_THERAPY)], "text": REFERRAL_TEXT},
        "subject": {"reference": f"Patient/{context.record.patient_id}"},
        "occurrenceTiming": {
            "repeat": {
                "boundsDuration": {
                    "value": PROGRAM_WEEKS,
                    "unit": "weeks",
                    "system": UCUM,
                    "code": "wk",
                },
                "frequency": SESSIONS_PER_WEEK,
                "period": 1,
                "periodUnit": "wk",
            }
        },
        "authoredOn": context.now.isoformat(timespec="seconds"),
        "note": [
            {
                "text": "Supervised exercise therapy for claudication: class I recommendation, "
                "level of evidence A."
            }
        ],
    }
    if reason.condition.id:
        request["reasonReference"] = [{"reference": reason.reference}]
    return request


@dataclass(frozen=True)
class PadClaudicationExercise:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "P1"
    references: ClassVar[tuple[Reference, ...]] = (PAD_2024,)
    title: ClassVar[str] = "PAD with leg cramping: supervised exercise therapy"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "seed 003"
    applies: ClassVar[str] = (
        "patient-view; order hooks while an RLS or cramp drug is ordered. Needs active PAD and "
        "active leg cramps (or a claudication code)."
    )
    pad: ValueSet = uses("pad")
    leg_cramps: ValueSet = uses("leg-cramps")
    cramp_drugs: ValueSet = uses("cramp-drugs")
    Settings = RuleSettings

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (data.CONDITIONS,)

    def evaluate(self, context: RuleContext[RuleSettings]) -> list[Card]:
        if not runs_on(context, self.cramp_drugs):
            return []
        record = context.record
        pad = record.active_conditions(self.pad)
        if not pad:
            return []
        cramps = record.active_conditions(self.leg_cramps)
        claudication = [c for c in pad if records_claudication(c)]
        if not cramps and not claudication:
            return []
        base = context.code_system_base
        # The referral's reason: a PAD condition with an id, the arterial disease first.
        claudicating = {id(c.condition) for c in claudication}
        reasons = [c for c in pad if id(c.condition) not in claudicating] + claudication
        reason = next((c for c in reasons if c.condition.id), reasons[0])
        symptoms = cramps + claudication
        found = (
            "**Found:** "
            + "; ".join(condition_line(c, record.onset(c.condition)) for c in pad)
            + (
                ", with "
                + "; ".join(condition_line(c, record.onset(c.condition)) for c in cramps)
                if cramps
                else " (claudication recorded)"
            )
            + "."
        )
        why = (
            "**Why:** PAD can cause claudication: cramping, aching or pain in the calves, thighs "
            "or buttocks on walking. For claudication, the 2024 ACC/AHA PAD guideline gives "
            "supervised exercise therapy a class 1 recommendation with level A evidence; "
            "programs usually "
            f"last about 3 months ({PROGRAM_WEEKS} weeks), with {SESSIONS_PER_WEEK} sessions a "
            "week."
        )
        consider = (
            "**Consider:** a referral to a supervised exercise program (draft order below), and "
            "whether the cramps are claudication (brought on by walking) rather than cramps at "
            "rest or at night."
        )
        return [
            Card(
                summary=(
                    "PAD with leg cramping: supervised exercise therapy is class I, level A "
                    f"(about {PROGRAM_WEEKS} weeks, {SESSIONS_PER_WEEK} sessions a week)"
                ),
                indicator="info",
                source=source(
                    base,
                    RULE_ID,
                    PAD_2024.label,
                    "PAD with leg cramping: supervised exercise therapy", PAD_2024.url),
                detail="\n\n".join([found, why, consider]),
                suggestions=(
                    Suggestion(
                        label="Refer to supervised exercise therapy",
                        actions=(
                            Action(
                                type="create",
                                description="Draft a referral to supervised exercise therapy",
                                resource=exercise_referral(context, reason),
                            ),
                        ),
                        is_recommended=True,
                    ),
                ),
                selection_behavior="at-most-one",
                override_reasons=(
                    override_reason(base, "already-referred", "Already in an exercise program"),
                    override_reason(base, "unable-to-exercise", "Unable to take part in exercise"),
                    override_reason(base, "not-clinically-indicated", "Not clinically indicated"),
                ),
                identity="pad-exercise:"
                + ",".join(sorted({c.reference for c in pad} | {c.reference for c in symptoms})),
                repeat_quietly=True,
            )
        ]
