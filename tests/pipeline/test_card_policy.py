"""How cards reach the prescriber: ordered, combined when two rules say the same thing about
the same order, and guidance that does not repeat on every chart open."""

from __future__ import annotations

from dataclasses import replace

from cds_service.config import load_config
from cds_service.kit import RuleSettings, ServiceDeclaration
from cds_service.kit.cards import Action, Card, Coding, Source, Suggestion
from cds_service.pipeline.card_policy import combined, ordered
from tests.conftest import load_request


def card(rule: str, indicator: str = "warning", identity: str = "MedicationRequest/d1",
         delete: str | None = "MedicationRequest/d1", **extra) -> Card:
    suggestions = ()
    if delete:
        suggestions = (Suggestion(label="Remove", actions=(
            Action(type="delete", description="Remove the draft", resource_id=delete),)),)
    return Card(
        summary=f"{rule} summary", indicator=indicator,
        source=Source(label=f"{rule} label", topic=Coding("urn:rule", rule)),
        detail=f"{rule} detail", suggestions=suggestions,
        selection_behavior="at-most-one" if suggestions else None,
        override_reasons=(Coding("urn:reason", f"{rule}-reason", f"{rule} reason"),),
        identity=identity, **extra)


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


class QuietGuidance:
    rule_id = "quiet-guidance"
    title = indicator = sources = applies = "t"
    Settings = RuleSettings

    def reads(self, hook):
        return ()

    def evaluate(self, context):
        return [card("quiet-guidance", "info", identity="finding-1", delete=None,
                     repeat_quietly=True)]


def _app(make_app, config, days):
    service = ServiceDeclaration(id="view", hook="patient-view", title="t", description="d",
                                 usage_requirements="", rules=(QuietGuidance(),))
    cfg = replace(config, rules={}, cards=replace(config.cards, repeat_quiet_days=days))
    return make_app(cfg, services=[service]).test_client()


def _view(client, hook_instance):
    request = load_request("patient-view-full-prefetch", hookInstance=hook_instance)
    response = client.post("/cds-services/view", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["cards"]


def test_guidance_shown_once_is_not_repeated_on_the_next_chart_open(make_app, config):
    client = _app(make_app, config, days=30)
    first = _view(client, "11111111-1111-4111-8111-111111111111")
    assert len(first) == 1
    again = _view(client, "22222222-2222-4222-8222-222222222222")
    assert again == []


def test_guidance_uuid_is_stable_per_patient_and_finding_across_hook_calls(make_app, config):
    client = _app(make_app, config, days=0)  # 0: show on every chart open
    first = _view(client, "11111111-1111-4111-8111-111111111111")
    again = _view(client, "22222222-2222-4222-8222-222222222222")
    assert len(first) == len(again) == 1
    assert first[0]["uuid"] == again[0]["uuid"]


def test_every_embedded_default_keeps_quiet_repeats_on():
    assert load_config(None).cards.repeat_quiet_days == 30
