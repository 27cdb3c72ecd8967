"""A2 `rls-worsening-drugs`: sedating antihistamines and serotonergic antidepressants in
restless legs (info).

Sources: the AASM 2024 restless legs guideline asks clinicians to address what aggravates
restless legs, medicines among them (antihistamines, serotonergic antidepressants, dopamine
antagonists); in a randomised trial, bupropion did not worsen restless legs and may be a
reasonable choice when an antidepressant is needed (Bayard 2011). Dopamine-blocking drugs,
promethazine included, are A1's.

Fires: a first-generation (sedating) antihistamine or a serotonergic antidepressant (SSRI, SNRI,
tricyclic, mirtazapine) among the orders the hook asks about (patient-view: the active ones)
while restless legs is an active condition. The card names the drug and the alternative to
consider.
Quiet: no active restless legs condition; other drugs (bupropion, non-sedating antihistamines);
a combination with a dopamine blocker (A1 speaks for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

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
from hooks.rules.common import fit_summary
from hooks.rules.common import matching_orders
from hooks.rules.common import override_reason
from hooks.rules.common import source
from hooks.rules.sources import AASM_RLS_2024
from hooks.rules.sources import BUPROPION_RLS_2011
from hooks.rules.sources import Reference
from hooks.valuesets import uses

RULE_ID = "rls-worsening-drugs"

ANTIHISTAMINE = (
    " is a sedating antihistamine and may worsen the patient's restless legs",
    "**Why:** Sedating (first-generation) antihistamines are among the medicines that "
    "aggravate restless legs; the AASM 2024 guideline asks clinicians to address such "
    "aggravating factors.",
    "**Consider:** whether it is needed. For allergy, a less sedating antihistamine; for "
    "sleep or nausea, an option that is not a sedating antihistamine. If it is continued, ask "
    "about restless legs symptoms at follow-up.",
)
ANTIDEPRESSANT = (
    " is a serotonergic antidepressant and may worsen the patient's restless legs",
    "**Why:** Serotonergic antidepressants (SSRIs, SNRIs, tricyclics, mirtazapine) can start or "
    "worsen restless legs; the AASM 2024 guideline asks clinicians to address such aggravating "
    "factors. In a small randomised trial, bupropion did not worsen restless legs (Bayard "
    "2011).",
    "**Consider:** if an antidepressant is needed, whether bupropion would suit the patient "
    "(it did not worsen restless legs in a trial); do not stop an antidepressant abruptly. If "
    "it is continued, ask about restless legs symptoms at follow-up.",
)


@dataclass(frozen=True)
class RlsWorseningDrugs:
    rule_id: ClassVar[str] = RULE_ID
    catalog_code: ClassVar[str] = "A2"
    references: ClassVar[tuple[Reference, ...]] = (AASM_RLS_2024, BUPROPION_RLS_2011)
    title: ClassVar[str] = "Antihistamines and serotonergic antidepressants in restless legs"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "AASM 2024 RLS guideline; Bayard 2011 (issue 16)"
    applies: ClassVar[str] = (
        "order hooks: sedating antihistamine or serotonergic antidepressant orders asked about; "
        "patient-view: active ones. Needs an active restless legs condition."
    )
    antihistamines: ValueSet = uses("sedating-antihistamines")
    antidepressants: ValueSet = uses("serotonergic-antidepressants")
    restless_legs: ValueSet = uses("restless-legs")
    dopamine_blockers: ValueSet = uses("dopamine-blockers")
    Settings = RuleSettings  # no thresholds

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return data.order_rule_reads(hook)

    def evaluate(self, context: RuleContext[RuleSettings]) -> list[Card]:
        # A combination with a dopamine blocker (fluoxetine/olanzapine) is A1's: bupropion
        # cannot stand in for its antipsychotic part.
        held = {o.reference for o, _ in matching_orders(context, self.dopamine_blockers)}
        found = [(o, m, ANTIHISTAMINE) for o, m in matching_orders(context, self.antihistamines)
                 if o.reference not in held]
        held |= {o.reference for o, _, _ in found}
        found += [(o, m, ANTIDEPRESSANT) for o, m in matching_orders(context, self.antidepressants)
                  if o.reference not in held]
        if not found:
            return []
        rls = context.record.active_conditions(self.restless_legs)
        if not rls:
            return []
        return [self._card(order, match, rls, text, context) for order, match, text in found]

    def _card(
        self, order: MedicationOrder, match: Match, rls: list[ConditionMatch],
        text: tuple[str, str, str], context: RuleContext[RuleSettings],
    ) -> Card:
        base = context.code_system_base
        summary_reason, why, consider = text
        conditions = "\n".join(
            f"- {condition_line(c, context.record.onset(c.condition))}" for c in rls
        )
        cited = BUPROPION_RLS_2011 if text is ANTIDEPRESSANT else AASM_RLS_2024
        return Card(
            summary=fit_summary(order.medication_label, summary_reason),
            indicator="info",
            source=source(base, RULE_ID, cited.label, self.title, cited.url),
            detail="\n\n".join([
                f"**Found:** {describe_order(order, match, context.hook)}, while the patient has "
                "restless legs:\n" + conditions,
                why,
                consider,
            ]),
            override_reasons=(
                override_reason(base, "needed-reviewed", "Needed; the benefit was reviewed"),
                override_reason(base, "no-suitable-alternative", "No suitable alternative"),
                override_reason(base, "specialist-directed", "Specialist-directed"),
            ),
            identity=order.reference,
            repeat_quietly=not context.is_order_hook,
        )
