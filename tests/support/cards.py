"""What the rule tests check of a card: the one card, its actions, the contract every card owes
the catalog, and the same for cards as the service serialises them."""

from __future__ import annotations

from typing import Any

from cds_service.kit import Card
from tests.support.fhir import LOINC, PATIENT_ID, validate


def only_card(cards: list[Card]) -> Card:
    assert len(cards) == 1, [c.summary for c in cards]
    return cards[0]


def actions_of(card: Card) -> list[Any]:
    return [action for suggestion in card.suggestions for action in suggestion.actions]


def check_card(card: Card, rule_id: str, indicator: str, *summary_words: str) -> None:
    """What every card owes the catalog: indicator, topic, short summary naming what and why,
    Markdown detail, override reasons with displays, real FHIR in every action."""
    assert card.indicator == indicator
    assert card.source.label
    assert card.source.topic is not None and card.source.topic.code == rule_id
    assert 0 < len(card.summary) < 140
    for word in summary_words:
        assert word.lower() in card.summary.lower(), (word, card.summary)
    assert card.detail and "**Why:**" in card.detail
    assert card.override_reasons, "a clinician may proceed: override reasons are offered"
    assert all(reason.code and reason.display for reason in card.override_reasons)
    for action in actions_of(card):
        if action.type == "delete":
            assert action.resource is None
            assert action.resource_id and action.resource_id.startswith("MedicationRequest/")
            continue
        validate(action.resource)
        if action.resource["resourceType"] == "ServiceRequest":
            codes = action.resource["code"]["coding"]
            assert codes and all(c["system"] == LOINC for c in codes)
            assert (action.resource["status"], action.resource["intent"]) == ("draft", "order")
            assert action.resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}


def ordered_loinc(card: Card) -> list[str]:
    """The LOINC codes of the lab orders the card suggests, in order."""
    return [
        coding["code"]
        for action in actions_of(card)
        if action.resource and action.resource["resourceType"] == "ServiceRequest"
        for coding in action.resource["code"]["coding"]
    ]


def check_delete_suggestion(card: Card, reference: str) -> None:
    """The card's one suggestion is recommended and only deletes the draft `reference`."""
    (suggestion,) = card.suggestions
    assert suggestion.is_recommended is True
    (action,) = suggestion.actions
    assert (action.type, action.resource_id, action.resource) == ("delete", reference, None)


# Cards as the service serialises them ------------------------------------------------------------


def cards_by_rule(response_json: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for card in response_json["cards"]:
        found.setdefault(card["source"]["topic"]["code"], []).append(card)
    return found


def check_json_actions(card: dict[str, Any]) -> None:
    """Every action in a serialised card: deletes name resourceId only, others carry valid R4."""
    for suggestion in card.get("suggestions", []):
        for action in suggestion.get("actions", []):
            if action["type"] == "delete":
                assert "resource" not in action
                assert action["resourceId"].startswith("MedicationRequest/")
            else:
                validate(action["resource"])
