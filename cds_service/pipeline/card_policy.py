"""Card policy: what happens to the cards the rules return before the prescriber sees them.

In this order, for every hook call:
1. **Stable uuids.** Each card and suggestion gets a uuid derived from the call (service and
   hookInstance) and the card's identity, so the same request gets the same uuids. Guidance
   about a standing finding (`repeat_quietly`) gets a uuid stable per patient and finding
   instead: a keyed hash (the store's secret), so it names no one and the EHR can collapse
   repeats.
2. **Quiet repeats.** On patient-view, such guidance shown within `repeat_quiet_days` (by this
   process, still queued, or by any replica, in the store) is left out; order hooks always show
   it, because the order makes it relevant now.
3. **Combining.** Two rules that would change the same order (delete or update the same
   resource) give one card, led by the more severe; the others add their detail and override
   reasons.
4. **Ordering.** Critical first, then warning, then info; stable within an indicator.

A store that cannot answer costs the prescriber nothing: the per-call uuid is used and the card
is shown (logged as a warning).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cds_service.kit.cards import INDICATOR_ORDER, Card
from cds_service.kit.hook_names import PATIENT_VIEW
from cds_service.store.card_log import CardLog
from cds_service.store.database import LazyStore, StoreError

log = logging.getLogger("legcramp_cds.engine")


def _action_targets(card: Card) -> frozenset[str]:
    targets = set()
    for suggestion in card.suggestions:
        for action in suggestion.actions:
            if action.type == "delete" and action.resource_id:
                targets.add(f"delete {action.resource_id}")
            elif action.type == "update" and action.resource:
                targets.add(f"update {action.resource.get('resourceType')}/"
                            f"{action.resource.get('id')}")
    return frozenset(targets)


def combined(cards: Sequence[Card]) -> list[Card]:
    """One card where several rules say the same thing about the same order: the same order
    (identity) and the same suggested change to it (delete or update of that resource). The
    most severe card leads; the others add their detail and override reasons."""
    result: list[Card] = []
    groups: dict[tuple[str, frozenset[str]], int] = {}
    for card in sorted(cards, key=lambda c: INDICATOR_ORDER[c.indicator]):
        targets = _action_targets(card)
        key = (card.identity, targets)
        if not card.identity or not targets or key not in groups:
            if card.identity and targets:
                groups[key] = len(result)
            result.append(card)
            continue
        lead = result[groups[key]]
        reasons = list(lead.override_reasons)
        reasons += [r for r in card.override_reasons
                    if (r.system, r.code) not in {(x.system, x.code) for x in reasons}]
        detail = (f"{lead.detail or ''}\n\n---\n\n**Also ({card.source.label}):** "
                  f"{card.summary}\n\n{card.detail or ''}").strip()
        result[groups[key]] = replace(lead, detail=detail, override_reasons=tuple(reasons))
    return result


def ordered(cards: Sequence[Card]) -> list[Card]:
    """Critical first, then warning, then info; stable within an indicator."""
    return sorted(cards, key=lambda card: INDICATOR_ORDER[card.indicator])


class CardPolicy:
    """The four steps above, with the store and card log that remember what was shown."""

    def __init__(self, store: LazyStore, card_log: CardLog, repeat_quiet_days: int):
        self.store = store
        self.card_log = card_log
        self.repeat_quiet_days = repeat_quiet_days

    def with_uuids(self, service_id: str, hook_instance: str, patient_id: str,
                   cards: Sequence[Card], caller: str = "") -> list[Card]:
        """Per-call uuids (stable for the same hookInstance from the same caller); guidance
        that repeats quietly gets a uuid stable per patient and finding (keyed, so it names no
        one). `caller` (issuer and tenant; empty when anonymous) keeps two callers' cards
        apart, so feedback can be tied to the caller that was shown the card."""
        seed = f"{service_id}|{caller}|{hook_instance}" if caller else \
            f"{service_id}|{hook_instance}"
        out = []
        for card in cards:
            finding_seed = None
            if card.repeat_quietly:
                try:
                    finding_seed = "finding|" + self.store.get().finding_key(
                        patient_id, card.topic_code or "", card.identity)
                except StoreError as exc:
                    log.warning("finding key unavailable", extra={"error": str(exc)})
            out.append(card.with_uuids(finding_seed or seed))
        return out

    def quiet_repeats(self, hook: str, cards: list[Card]) -> list[Card]:
        """On patient-view, guidance shown for the same finding within `repeat_quiet_days` is
        not shown again (order hooks always show it: the order makes it relevant now)."""
        days = self.repeat_quiet_days
        quiet = [card.uuid for card in cards if card.repeat_quietly and card.uuid]
        if hook != PATIENT_VIEW or not quiet or days <= 0:
            return cards
        try:
            shown = self.card_log.pending(quiet) | self.store.get().shown_since(
                quiet, datetime.now(UTC) - timedelta(days=days))
        except StoreError as exc:
            log.warning("repeat check unavailable; showing the cards", extra={"error": str(exc)})
            return cards
        return [card for card in cards if not (card.repeat_quietly and card.uuid in shown)]

    @staticmethod
    def arranged(cards: Sequence[Card]) -> list[Card]:
        """Combined where two rules change the same order, then ordered by indicator."""
        return ordered(combined(cards))
