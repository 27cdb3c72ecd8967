"""D1 `rls-dopaminergic-augmentation`: dopaminergic drugs for restless legs (warning).

Source: seed 002 (levodopa, pramipexole, ropinirole and rotigotine are to be avoided for
long-term use because of augmentation; if one is used for RLS, watch for earlier onset and
worsening of symptoms; the alpha-2-delta ligands gabapentin, gabapentin enacarbil and pregabalin
are the first-line drugs).

Fires: a dopaminergic order among the orders the hook asks about (patient-view: the active
ones), and either an active restless legs condition or an order reason that is restless legs
(a reasonCode, or a reasonReference to a Condition that is not refuted or entered in error).
Quiet: the patient has Parkinson's disease (an active condition, or the order's own reason) and
the order's reason is not restless legs; no restless legs at all.

Suggestions (at most one may be chosen), order hooks only: replace the draft with gabapentin, or
with pregabalin (delete the draft, create a draft MedicationRequest for the ingredient, with the
restless legs condition as its reason). None when an alpha-2-delta ligand is already among the
draft orders (order hooks) or the active orders (patient-view): a replacement would duplicate
it. On patient-view there is none either: the order is already being taken, and replacing an
established drug is a planned change the service cannot state as one action; the card asks for
that review instead.

Safety gates (`patient_safety`), wherever the card names gabapentin or pregabalin:
- pregnancy (an active pregnancy condition within `pregnancy_window_days`, or a positive
  pregnancy test in that window): no replacement is offered; the card says drug treatment of
  restless legs in pregnancy is a specialist's choice (Picchietti 2015);
- reduced kidney function (eGFR below `egfr_moderate_below`, CKD stage 3 or 4, ESRD, dialysis):
  the card says the dose must follow the product's renal dosing, and so does the draft's note
  (the draft never carries a dose);
- breathing risk (an opioid, benzodiazepine or other sedative active or being ordered, COPD, age
  `older_adult_age` or over): the FDA 2019 warning beside the suggestion.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import ClassVar

from cds_service.kit import EXCLUDED_VERIFICATION_STATUSES
from cds_service.kit import RXNORM
from cds_service.kit import Action
from cds_service.kit import Card
from cds_service.kit import ConditionMatch
from cds_service.kit import DataRequirement
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import PatientRecord
from cds_service.kit import RuleContext
from cds_service.kit import Suggestion
from cds_service.kit import ValueSet
from cds_service.kit import concept_label
from cds_service.kit import condition_counts
from hooks import data
from hooks.rules.common import condition_line
from hooks.rules.common import describe_order
from hooks.rules.common import fit_summary
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import remove_order_action
from hooks.rules.common import source
from hooks.rules.patient_safety import BREATHING_WARNING
from hooks.rules.patient_safety import KIDNEY_DOSE_NOTE
from hooks.rules.patient_safety import PREGNANCY_NOTE
from hooks.rules.patient_safety import GabapentinoidGates
from hooks.rules.patient_safety import GabapentinoidSettings
from hooks.rules.sources import AASM_RLS_2024
from hooks.rules.sources import FDA_GABAPENTINOIDS_BREATHING_2019
from hooks.rules.sources import IRLSSG_AUGMENTATION_2016
from hooks.rules.sources import RLS_PREGNANCY_2015
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "rls-dopaminergic-augmentation"

# The first-line alternatives a suggestion drafts: RxNorm ingredient (IN) codes from the
# project's terminology reference (rls-drugs value set), never a product or a dose.
ALTERNATIVES = (("gabapentin", "25480"), ("pregabalin", "187832"))

SUMMARY_REASON = ": long-term dopaminergic use in restless legs risks augmentation"

WHY = (
    "**Why:** The AASM 2024 guideline suggests against the standard use of dopaminergic drugs "
    "(levodopa, pramipexole, ropinirole, rotigotine; a conditional recommendation). They may "
    "help for a time, but with continued use they can cause augmentation: symptoms start "
    "earlier in the day and grow worse than before treatment. The alpha-2-delta ligands "
    "(gabapentin, gabapentin enacarbil, pregabalin) are the first-line drugs, with little risk "
    "of augmentation (IRLSSG 2016)."
)

MONITOR = (
    "**Monitor:** if the dopaminergic drug is continued, ask at each review whether symptoms now "
    "begin earlier in the day, or are more intense than before it was started; either suggests "
    "augmentation and a review of treatment."
)


@dataclass(frozen=True)
class RlsReason:
    """Why the rule considers the order to treat restless legs."""

    conditions: list[ConditionMatch]  # active RLS conditions on the chart
    order_reasons: list[str]  # labels of order reasons that are RLS
    reason_condition: Any | None  # the Condition the order cites as its RLS reason, if any
    reason_code: dict[str, Any] | None  # the order's RLS reasonCode as sent, if any

    @property
    def by_order(self) -> bool:
        return bool(self.order_reasons)


@dataclass(frozen=True)
class Gates:
    """What the gates found about who the patient is (see `patient_safety`)."""

    pregnant_lines: list[str]
    kidney_lines: list[str]
    breathing_lines: list[str]

    @property
    def pregnant(self) -> bool:
        return bool(self.pregnant_lines)


@dataclass(frozen=True)
class RlsDopaminergicAugmentation(GabapentinoidGates):
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "D1"
    references: ClassVar[tuple[Reference, ...]] = (
        AASM_RLS_2024, IRLSSG_AUGMENTATION_2016, FDA_GABAPENTINOIDS_BREATHING_2019,
        RLS_PREGNANCY_2015,
    )
    title: ClassVar[str] = "Dopaminergic drugs for restless legs"
    indicator: ClassVar[str] = "warning"
    sources: ClassVar[str] = "seed 002"
    applies: ClassVar[str] = (
        "order hooks: dopaminergic orders asked about; patient-view: active dopaminergic drugs. "
        "Needs active restless legs or an RLS order reason; quiet for Parkinson's disease "
        "unless the order's reason is restless legs. Gates: no replacement in pregnancy; "
        "kidney-dosing note below eGFR 60 or on dialysis; breathing-risk warning with opioids, "
        "benzodiazepines or other sedatives, COPD, or age 65 or over."
    )
    dopaminergic: ValueSet = uses("dopaminergic-drugs")
    restless_legs: ValueSet = uses("restless-legs")
    parkinsons: ValueSet = uses("parkinsons-disease")
    alpha2delta: ValueSet = uses("alpha2delta-ligands")
    Settings = GabapentinoidSettings

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.with_safety_gates(data.order_rule_reads(hook))

    def evaluate(self, context: RuleContext[GabapentinoidSettings]) -> list[Card]:
        orders = matching_orders(context, self.dopaminergic)
        if not orders:
            return []
        record = context.record
        rls = record.active_conditions(self.restless_legs)
        parkinsons = record.active_conditions(self.parkinsons)
        cards = []
        for order, match in orders:
            reason = self._rls_reason(order, record, rls)
            # An RLS reason on the order decides; otherwise active RLS counts unless the patient
            # has Parkinson's disease (then the drug is most likely for that).
            if not reason.by_order and (
                not rls or parkinsons or self._reason_is_parkinsons(order, record)
            ):
                continue
            cards.append(self._card(order, match, reason, context))
        return cards

    def _rls_reason(
        self, order: MedicationOrder, record: PatientRecord, rls: list[ConditionMatch]
    ) -> RlsReason:
        labels: list[str] = []
        reason_code = None
        raw_codes = order.raw.get("reasonCode") or []
        for index, code in enumerate(order.reason_codes):
            if self.restless_legs.match(code):
                labels.append(concept_label(code) or "restless legs")
                if reason_code is None and index < len(raw_codes):
                    reason_code = raw_codes[index]
        reason_condition = None
        for reference in order.reason_references:
            condition = record.condition(reference)
            if condition is None or _verification(condition) in EXCLUDED_VERIFICATION_STATUSES:
                continue
            if self.restless_legs.match(condition.code):
                labels.append(concept_label(condition.code) or "restless legs")
                reason_condition = reason_condition or condition
        return RlsReason(rls, labels, reason_condition, reason_code)

    def _reason_is_parkinsons(self, order: MedicationOrder, record: PatientRecord) -> bool:
        if any(self.parkinsons.match(code) for code in order.reason_codes):
            return True
        return any(
            (c := record.condition(ref)) is not None
            and condition_counts(c)
            and self.parkinsons.match(c.code)
            for ref in order.reason_references
        )

    def _card(
        self,
        order: MedicationOrder,
        match: Match,
        reason: RlsReason,
        context: RuleContext[GabapentinoidSettings],
    ) -> Card:
        base = context.code_system_base
        found = [f"- {condition_line(c, context.record.onset(c.condition))}"
                 for c in reason.conditions]
        found += [f"- order reason: **{label}**" for label in reason.order_reasons]
        ligands = self._ligands_in_hand(order, context)
        found += [f"- also {_in_hand(o, context)}: **{o.medication_label}**" for o in ligands]
        # The gates hold for a gabapentinoid already in hand as for one the card suggests.
        gates = self._gates(order, context)
        # Replacing would add a second alpha-2-delta order when one is already in hand; in
        # pregnancy the choice of drug is not one click.
        suggestions = (() if ligands or gates.pregnant
                       else self._suggestions(order, reason, context, bool(gates.kidney_lines)))
        if ligands:
            consider = (
                "**Consider:** an alpha-2-delta ligand is already "
                + _in_hand(ligands[0], context)
                + ". If this is a planned switch, keep the dopaminergic drug only as long as "
                "the switch needs; if both are meant for the long term, review whether the "
                "dopaminergic drug is still needed."
            )
        elif gates.pregnant:
            consider = (
                "**Consider:** reviewing the restless legs treatment with the obstetric team "
                "or a specialist."
            )
        elif not context.is_order_hook:
            consider = (
                "**Consider:** reviewing whether long-term treatment should move to an "
                "alpha-2-delta ligand such as gabapentin or pregabalin. The order is already "
                "active, so no automatic change is offered: plan any switch with the patient."
            )
        elif suggestions:
            consider = (
                "**Consider:** replacing the order with gabapentin or pregabalin (choose one "
                "suggestion below; each removes this draft and starts a draft order for the "
                "ingredient, for you to complete with product and dose)."
            )
        else:
            consider = "**Consider:** ordering gabapentin or pregabalin instead."
        for what, lines in (("pregnancy", gates.pregnant_lines),
                            ("kidney function", gates.kidney_lines),
                            ("breathing risk with gabapentinoids", gates.breathing_lines)):
            if lines:
                found.append(f"- {what}: " + "; ".join(lines))
        parts = [
            f"**Found:** {describe_order(order, match, context.hook)}, for restless legs:\n"
            + "\n".join(found),
            WHY,
            MONITOR,
            consider,
        ]
        if gates.pregnant:
            parts.append(PREGNANCY_NOTE)
        else:
            if gates.kidney_lines:
                parts.append(KIDNEY_DOSE_NOTE)
            if gates.breathing_lines:
                parts.append(BREATHING_WARNING)
        detail = "\n\n".join(parts)
        return Card(
            summary=fit_summary(order.medication_label, SUMMARY_REASON),
            indicator="warning",
            source=source(base, RULE_ID, AASM_RLS_2024.label,
                          "Dopaminergic drug for restless legs", AASM_RLS_2024.url),
            detail=detail,
            suggestions=suggestions,
            selection_behavior="at-most-one" if suggestions else None,
            override_reasons=(
                override_reason(base, "lowest-effective-dose-reviewed",
                                "Already on the lowest effective dose, reviewed"),
                override_reason(base, "alpha2delta-tried-or-contraindicated",
                                "Alpha-2-delta ligand tried or contraindicated"),
                override_reason(base, "short-term-use", "Planned short-term use only"),
                override_reason(base, "specialist-directed", "Specialist-directed"),
            ),
            identity=order.reference,
            # On chart open the order is a standing one: say it once, not on every open.
            repeat_quietly=not context.is_order_hook,
        )

    def _ligands_in_hand(
        self, order: MedicationOrder, context: RuleContext[GabapentinoidSettings]
    ) -> list[MedicationOrder]:
        """Alpha-2-delta ligands among the open drafts (order hooks) and the active orders
        (every hook: a replacement beside an active gabapentin would double it), other than
        `order` itself."""
        record = context.record
        pool = [*(record.open_drafts() if context.is_order_hook else []),
                *record.active_medications(self.alpha2delta)]
        found: list[MedicationOrder] = []
        seen = {order.reference}
        for o in pool:
            if o.reference not in seen and o.match_medication(self.alpha2delta):
                found.append(o)
                seen.add(o.reference)
        return found

    def _gates(self, order: MedicationOrder,
               context: RuleContext[GabapentinoidSettings]) -> Gates:
        """Pregnancy, kidney function and breathing risk, as lines for the card."""
        record = context.record
        pregnancy = self.pregnancy(context)
        kidney = self.kidney_function(context)
        breathing = self.breathing_risk(context, exclude=(order,))
        return Gates(
            pregnant_lines=pregnancy.lines(record) if pregnancy.pregnant else [],
            kidney_lines=kidney.lines(record) if kidney.reduced else [],
            breathing_lines=(breathing.lines(record, context.is_order_hook)
                             if breathing.present else []),
        )

    def _suggestions(
        self, order: MedicationOrder, reason: RlsReason,
        context: RuleContext[GabapentinoidSettings], kidney_reduced: bool,
    ) -> tuple[Suggestion, ...]:
        """Replace with gabapentin / pregabalin: only on order hooks, for a draft with an id."""
        if not context.is_order_hook or not order.id:
            return ()
        suggestions = []
        for name, code in ALTERNATIVES:
            delete = remove_order_action(order, context.hook, order.medication_label)
            if delete is None:  # the order has an id, so this does not happen on order hooks
                continue
            create = Action(type="create", description=f"Start a draft {name} order",
                            resource=replacement_order(order, reason, context, name, code,
                                                       kidney_reduced))
            suggestions.append(Suggestion(label=f"Replace with {name}", actions=(delete, create)))
        return tuple(suggestions)


def replacement_order(
    order: MedicationOrder,
    reason: RlsReason,
    context: RuleContext[GabapentinoidSettings],
    name: str,
    code: str,
    kidney_reduced: bool = False,
) -> dict[str, Any]:
    """A draft FHIR R4 MedicationRequest for the ingredient, for the prescriber to complete.
    It never carries a dose; with reduced kidney function its note says the dose must follow
    the product's renal dosing."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": name}],
            "text": f"{name} (choose the product and dose)",
        },
        "subject": {"reference": f"Patient/{context.record.patient_id}"},
        "authoredOn": context.now.isoformat(timespec="seconds"),
        "note": [{"text": f"Replaces {order.medication_label} ({order.reference}): "
                          "first-line alpha-2-delta ligand for restless legs."}],
    }
    if kidney_reduced:
        resource["note"].append({"text": "Reduced kidney function: choose the dose from the "
                                         "product's renal dosing."})
    requester = order.raw.get("requester")
    if isinstance(requester, dict) and requester.get("reference"):
        resource["requester"] = {"reference": requester["reference"]}
    condition = reason.reason_condition
    if condition is None:
        condition = next((c.condition for c in reason.conditions if c.condition.id), None)
    if condition is not None and condition.id:
        resource["reasonReference"] = [{"reference": f"Condition/{condition.id}"}]
    elif reason.reason_code is not None:
        resource["reasonCode"] = [copy.deepcopy(reason.reason_code)]
    return resource


def _verification(condition: Any) -> str | None:
    status = condition.verificationStatus
    for coding in (status.coding or []) if status is not None else []:
        if coding.code:
            return str(coding.code)
    return None


def _in_hand(order: MedicationOrder, context: RuleContext[GabapentinoidSettings]) -> str:
    """How an alpha-2-delta order is in hand: being ordered (a draft on an order hook) or
    active."""
    return "being ordered" if context.is_order_hook and order.status == "draft" else "active"
