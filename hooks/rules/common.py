"""Small helpers every rule's card uses: codings in the project's code systems, dates, orders."""

from __future__ import annotations

import copy
from datetime import date
from datetime import datetime
from typing import Any

from cds_service.kit import MEDICATION_REFILL
from cds_service.kit import ORDER_HOOKS
from cds_service.kit import Action
from cds_service.kit import Coding
from cds_service.kit import ConditionMatch
from cds_service.kit import Match
from cds_service.kit import MedicationOrder
from cds_service.kit import RuleContext
from cds_service.kit import Source
from cds_service.kit import Suggestion
from cds_service.kit import ValueSet


def topic(base: str, rule_id: str, display: str) -> Coding:
    """source.topic: the rule id as a code, so feedback and reports group by rule."""
    return Coding(system=f"{base}/rule", code=rule_id, display=display)


def source(base: str, rule_id: str, label: str, display: str, url: str | None = None) -> Source:
    """`label` and `url` name the primary source the card applies (hooks.rules.sources)."""
    return Source(label=label, url=url, topic=topic(base, rule_id, display))


def override_reason(base: str, code: str, display: str) -> Coding:
    return Coding(system=f"{base}/override-reason", code=code, display=display)


def format_date(value: date | datetime | str | None) -> str:
    """A date as a clinician reads it. A partial FHIR date ('2019', '2019-03'), which the models
    keep as text, is shown as recorded: a card never fails on a date it cannot complete."""
    if value is None:
        return "date not recorded"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def describe_order(order: MedicationOrder, match: Match, hook: str | None = None) -> str:
    """One Markdown fragment a clinician reads: the drug, its status and date. No FHIR ids or
    code numbers (the card's actions name the resource for the EHR). On medication-refill the
    order in hand is a refill request, and reads so in a refill queue."""
    status = order.status or "status not given"
    if hook == MEDICATION_REFILL and status == "draft":
        return (f"**{order.medication_label}** (refill requested, "
                f"{format_date(order.authored_on)})")
    when = "ordered" if status == "draft" else "authored"
    return f"**{order.medication_label}** ({status}, {when} {format_date(order.authored_on)})"


def matching_orders(
    context: RuleContext[Any], value_set: ValueSet
) -> list[tuple[MedicationOrder, Match]]:
    """The orders this hook asks about whose medication is in `value_set`, with how it matched."""
    found = []
    for order in context.subject_orders:
        match = order.match_medication(value_set)
        if match is not None:
            found.append((order, match))
    return found


def condition_line(found: ConditionMatch, onset: date | datetime | None) -> str:
    """A condition as a clinician reads it: its name and onset, no FHIR id."""
    return f"**{found.label}** (onset {format_date(onset)})"


def remove_order_suggestion(
    order: MedicationOrder, hook: str, what: str
) -> tuple[Suggestion, ...]:
    action = remove_order_action(order, hook, what)
    if action is None:
        return ()
    return (Suggestion(label=remove_label(hook, what, action), actions=(action,),
                       is_recommended=True),)


def remove_label(hook: str, what: str, action: Action) -> str:
    """The suggestion's label: remove a draft, decline a refill (the refill queue's own word),
    or stop an active order."""
    if action.type != "delete":
        return f"Stop {what}"
    return f"Decline the {what} refill" if hook == MEDICATION_REFILL else f"Remove the {what} order"


def remove_order_action(order: MedicationOrder, hook: str, what: str) -> Action | None:
    """Delete a draft on order hooks (on medication-refill, the refill request: declining it);
    on patient-view, stop the active order (complete update).

    None when the order has no id to name: a suggestion must point at a real resource; and
    no update for an order the client sent as DSTU2/STU3 (we would send it back as R4).
    """
    if not order.id:
        return None
    if hook == MEDICATION_REFILL:
        return Action(type="delete", description=f"Decline the {what} refill request",
                      resource_id=order.reference)
    if hook in ORDER_HOOKS:
        return Action(
            type="delete", description=f"Remove the draft {what} order", resource_id=order.reference
        )
    if not order.is_r4:  # `raw` is our R4 mapping, not the client's DSTU2/STU3 resource
        return None
    updated: dict[str, Any] = copy.deepcopy(order.raw)
    updated["status"] = "stopped"
    return Action(type="update", description=f"Stop the active {what} order", resource=updated)


def fit_summary(label: str, rest: str) -> str:
    """`label` + `rest`, the label shortened so the summary stays under 140 characters (CDS
    Hooks' advice for a card summary)."""
    room = 139 - len(rest)
    if len(label) > room:
        label = label[: room - 3].rstrip() + "..."
    return label + rest
