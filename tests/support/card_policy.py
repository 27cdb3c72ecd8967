"""A card as the card policy tests build one, and a one-rule service whose guidance repeats
quietly, served by a test app: shared by the card policy and card log tests."""

from __future__ import annotations

from dataclasses import replace

from cds_service.kit import RuleSettings, ServiceDeclaration
from cds_service.kit.cards import Action, Card, Coding, Source, Suggestion
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


class QuietGuidance:
    rule_id = "quiet-guidance"
    title = indicator = sources = applies = "t"
    Settings = RuleSettings

    def reads(self, hook):
        return ()

    def evaluate(self, context):
        return [card("quiet-guidance", "info", identity="finding-1", delete=None,
                     repeat_quietly=True)]


def quiet_guidance_client(make_app, config, days):
    service = ServiceDeclaration(id="view", hook="patient-view", title="t", description="d",
                                 usage_requirements="", rules=(QuietGuidance(),))
    cfg = replace(config, rules={}, cards=replace(config.cards, repeat_quiet_days=days))
    return make_app(cfg, services=[service]).test_client()


def view(client, hook_instance, user_id=None):
    request = load_request("patient-view-full-prefetch", hookInstance=hook_instance)
    if user_id is not None:
        request["context"]["userId"] = user_id
    response = client.post("/cds-services/view", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["cards"]
