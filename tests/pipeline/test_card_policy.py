"""How cards reach the prescriber: ordered, combined when two rules say the same thing about
the same order, and guidance that does not repeat on every chart open."""

from __future__ import annotations

from cds_service.config import load_config
from cds_service.pipeline.card_policy import combined, ordered
from tests.support.card_policy import card, quiet_guidance_client, view


def test_two_rules_removing_the_same_order_become_one_card_led_by_the_most_severe():
    merged = combined([card("b", "warning"), card("a", "critical")])
    assert len(merged) == 1
    (lead,) = merged
    assert lead.indicator == "critical" and lead.source.topic.code == "a"
    assert "b summary" in lead.detail and "b detail" in lead.detail
    assert {r.code for r in lead.override_reasons} == {"a-reason", "b-reason"}


def test_different_orders_or_different_changes_stay_separate():
    assert len(combined([card("a"), card("b", identity="MedicationRequest/d2",
                                          delete="MedicationRequest/d2")])) == 2
    assert len(combined([card("a"), card("b", delete=None)])) == 2


def test_cards_are_ordered_critical_warning_info():
    cards = [card("i", "info", identity="x"), card("c", "critical", identity="y"),
             card("w", "warning", identity="z")]
    assert [c.indicator for c in ordered(cards)] == ["critical", "warning", "info"]


def test_guidance_shown_once_is_not_repeated_on_the_next_chart_open(make_app, config):
    client = quiet_guidance_client(make_app, config, days=30)
    first = view(client, "11111111-1111-4111-8111-111111111111")
    assert len(first) == 1
    again = view(client, "22222222-2222-4222-8222-222222222222")
    assert again == []


def test_quiet_repeats_are_per_clinician_a_second_user_sees_the_card(make_app, config):
    """The clinical review: a card shown to any user stayed hidden from every other user for
    30 days. The window is per patient, finding and userId."""
    client = quiet_guidance_client(make_app, config, days=30)
    first = view(client, "11111111-1111-4111-8111-111111111111", "Practitioner/a")
    assert len(first) == 1
    assert view(client, "22222222-2222-4222-8222-222222222222", "Practitioner/a") == []
    other = view(client, "33333333-3333-4333-8333-333333333333", "Practitioner/b")
    assert len(other) == 1
    assert other[0]["uuid"] != first[0]["uuid"]


def test_guidance_uuid_is_stable_per_patient_and_finding_across_hook_calls(make_app, config):
    client = quiet_guidance_client(make_app, config, days=0)  # 0: show on every chart open
    first = view(client, "11111111-1111-4111-8111-111111111111")
    again = view(client, "22222222-2222-4222-8222-222222222222")
    assert len(first) == len(again) == 1
    assert first[0]["uuid"] == again[0]["uuid"]


def test_every_embedded_default_keeps_quiet_repeats_on():
    assert load_config(None).cards.repeat_quiet_days == 30
