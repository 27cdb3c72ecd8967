"""Q1 quinine-leg-cramps: fires on any quinine order, quiet for malaria and when unsure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cds_service.kit import RuleContext
from cds_service.pipeline.record_builder import RecordBuilder
from hooks.rules.quinine_leg_cramps import RULE_ID
from tests.conftest import AS_OF, load_fixture, load_request
from tests.support import fhir
from tests.support.cards import check_delete_suggestion
from tests.support.concepts import QUININE
from tests.support.fhir import RX
from tests.support.rules import BASE


def chart(name: str = "cramps-001") -> list[dict[str, Any]]:
    return [e["resource"] for e in load_fixture(f"patients/{name}.json")["entry"]]


def draft(concept: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A draft order for cramps-001 authored on AS_OF: quinine 324 mg unless `concept` says."""
    subject = {"reference": "Patient/cramps-001"}
    return fhir.medication_request(concept or QUININE, **{"subject": subject, **extra})


def evaluate(rule, hook: str, resources, drafts=(), patient_id: str = "cramps-001"):
    record = RecordBuilder(patient_id, AS_OF).build(resources, [(d, None) for d in drafts])
    subjects = (
        tuple(record.active_medications())
        if hook == "patient-view"
        else tuple(record.open_drafts())
    )
    context = RuleContext(
        hook=hook,
        record=record,
        subject_orders=subjects,
        context_orders=(),
        now=AS_OF,
        settings=rule.Settings(),
        code_system_base=BASE,
    )
    return rule.evaluate(context)


def test_quinine_draft_gets_one_critical_card_with_delete_suggestion(q1):
    cards = evaluate(q1, "order-sign", chart(), [draft()])
    assert len(cards) == 1
    card = cards[0]
    assert card.indicator == "critical"
    assert card.source.topic.code == RULE_ID
    assert len(card.summary) < 140 and "quinine" in card.summary.lower()
    check_delete_suggestion(card, "MedicationRequest/d1")
    assert {r.code for r in card.override_reasons} == {
        "treating-malaria",
        "other-documented-indication",
    }
    assert all(r.display for r in card.override_reasons)
    assert "**quinine sulfate 324 MG Oral Capsule** (draft, ordered 2026-11-21)" in card.detail
    assert "MedicationRequest/" not in card.detail and "997010" not in card.detail


def test_quinine_matched_by_ingredient_code_or_atc(q1):
    for coding in (
        {"system": RX, "code": "9071"},
        {"system": "http://www.whocc.no/atc", "code": "P01BC01"},
    ):
        assert len(evaluate(q1, "order-sign", chart(), [draft({"coding": [coding]})])) == 1


def test_brand_name_without_code_is_matched_by_whole_word_text(q1):
    cards = evaluate(q1, "order-sign", chart(), [draft({"text": "Qualaquin 324 mg capsule"})])
    assert len(cards) == 1
    assert "**Qualaquin 324 mg capsule** (draft, ordered 2026-11-21)" in cards[0].detail
    assert "by the drug name" not in cards[0].detail


@pytest.mark.parametrize(
    "concept",
    [
        {"coding": [{"system": RX, "code": "9068", "display": "quinidine"}]},
        {"text": "Quinidine gluconate 324 MG Extended Release Oral Tablet"},
        {"text": "dextromethorphan / quinidine (Nuedexta)"},
        {"coding": [{"system": RX, "code": "283742", "display": "esomeprazole"}]},
    ],
)
def test_quinidine_and_lookalikes_get_no_card(q1, concept):
    assert evaluate(q1, "order-sign", chart(), [draft(concept)]) == []


def test_active_malaria_keeps_the_rule_quiet(q1):
    assert (
        evaluate(
            q1,
            "order-sign",
            chart("malaria-002"),
            [draft(subject={"reference": "Patient/malaria-002"})],
            patient_id="malaria-002",
        )
        == []
    )


def test_resolved_malaria_does_not_count_as_malaria(q1):
    # cramps-001 had malaria in 2009, clinicalStatus resolved
    assert len(evaluate(q1, "order-sign", chart(), [draft()])) == 1


def test_refuted_malaria_does_not_keep_the_rule_quiet(q1):
    resources = chart("malaria-002")
    condition = next(r for r in resources if r["resourceType"] == "Condition")
    condition["verificationStatus"]["coding"][0]["code"] = "refuted"
    cards = evaluate(
        q1,
        "order-sign",
        resources,
        [draft(subject={"reference": "Patient/malaria-002"})],
        "malaria-002",
    )
    assert len(cards) == 1


def test_malaria_as_order_reason_code_keeps_the_rule_quiet(q1):
    reason = [
        {"coding": [{"system": "http://snomed.info/sct", "code": "61462000", "display": "Malaria"}]}
    ]
    assert evaluate(q1, "order-sign", chart(), [draft(reasonCode=reason)]) == []
    by_text = [{"text": "falciparum malaria, returned traveller"}]
    assert evaluate(q1, "order-sign", chart(), [draft(reasonCode=by_text)]) == []


def test_malaria_condition_as_reason_reference_keeps_the_rule_quiet(q1):
    resources = chart()
    # the 2009 malaria condition is resolved, but the order cites it as its reason
    order = draft(reasonReference=[{"reference": "Condition/cramps-001-c3"}])
    assert evaluate(q1, "order-sign", resources, [order]) == []


def test_unresolvable_reason_reference_keeps_the_rule_quiet(q1):
    order = draft(reasonReference=[{"reference": "Condition/not-in-the-record"}])
    assert evaluate(q1, "order-sign", chart(), [order]) == []


def test_leg_cramp_reason_reference_still_fires(q1):
    order = draft(reasonReference=[{"reference": "Condition/cramps-001-c1"}])
    assert len(evaluate(q1, "order-sign", chart(), [order])) == 1


def test_patient_view_active_quinine_suggests_stopping_with_complete_resource(q1):
    (card,) = evaluate(q1, "patient-view", chart())
    (action,) = card.suggestions[0].actions
    assert action.type == "update"
    assert action.resource["id"] == "cramps-001-m2"
    assert action.resource["status"] == "stopped"
    assert action.resource["medicationCodeableConcept"]["coding"][0]["code"] == "997010"
    assert "Night leg cramps" in card.detail


def test_patient_view_ignores_stopped_quinine_and_deceased_patients(q1):
    resources = chart()
    stopped = copy.deepcopy(resources)
    for resource in stopped:
        if resource.get("id") == "cramps-001-m2":
            resource["status"] = "stopped"
    assert evaluate(q1, "patient-view", stopped) == []
    deceased = copy.deepcopy(resources)
    deceased[0]["deceasedDateTime"] = "2026-11-01T00:00:00Z"
    assert evaluate(q1, "patient-view", deceased) == []


def test_cancelled_draft_gets_no_card(q1):
    assert evaluate(q1, "order-sign", chart(), [draft(status="cancelled")]) == []


def test_one_card_per_order(q1):
    second = draft(id="d2")
    cards = evaluate(q1, "order-sign", chart(), [draft(), second])
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]


# Through the service ------------------------------------------------------------------------


def test_order_select_cards_only_for_selected_orders(call):
    request = load_request("order-select-quinine-full-prefetch")
    cards = call("legcramp-order-select", request).get_json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == [RULE_ID]
    request["context"]["selections"] = ["MedicationRequest/draft-apap-2"]
    assert call("legcramp-order-select", request).get_json()["cards"] == []


def test_order_sign_reviews_every_draft(call):
    request = load_request("order-select-quinine-full-prefetch", hook="order-sign")
    del request["context"]["selections"]
    cards = call("legcramp-order-sign", request).get_json()["cards"]
    assert len(cards) == 1 and cards[0]["indicator"] == "critical"
    action = cards[0]["suggestions"][0]["actions"][0]
    assert action == {
        "type": "delete",
        "description": action["description"],
        "resourceId": "MedicationRequest/draft-quinine-1",
    }


def test_malaria_patient_order_sign_answers_no_cards(call):
    response = call("legcramp-order-sign", load_request("order-sign-quinine-malaria"))
    assert response.get_json() == {"cards": []}


def test_card_and_suggestion_uuids_are_stable_per_request_and_new_per_hook_instance(call):
    request = load_request("order-select-quinine-full-prefetch")
    first = call("legcramp-order-select", request).get_json()["cards"][0]
    again = call("legcramp-order-select", request).get_json()["cards"][0]
    assert first["uuid"] == again["uuid"]
    assert first["suggestions"][0]["uuid"] == again["suggestions"][0]["uuid"]
    request["hookInstance"] = "11111111-2222-4333-8444-555555555555"
    other = call("legcramp-order-select", request).get_json()["cards"][0]
    assert other["uuid"] != first["uuid"]


def test_medication_reference_to_contained_medication_is_resolved(call):
    response = call(
        "legcramp-order-sign", load_request("order-sign-medication-reference-contained")
    )
    assert [c["source"]["topic"]["code"] for c in response.get_json()["cards"]] == [RULE_ID]


def test_medication_reference_to_medication_in_draft_bundle_is_resolved(call):
    request = load_request("order-sign-medication-reference-server")
    del request["fhirServer"]
    medication = load_fixture("patients/medication-quinine-324.json")
    request["context"]["draftOrders"]["entry"].append({"resource": medication})
    cards = call("legcramp-order-sign", request).get_json()["cards"]
    assert len(cards) == 1
    assert "Quinine sulfate 324 mg capsule" in cards[0]["detail"]


def test_rule_disabled_in_configuration_gives_no_card(make_app):
    from cds_service.config import load_config

    app = make_app(load_config(None, overrides={"rules": {RULE_ID: {"enabled": False}}}))
    response = app.test_client().post(
        "/cds-services/legcramp-order-select",
        json=load_request("order-select-quinine-full-prefetch"),
    )
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


# --- what the summary asserts, and where its claim comes from ---------------------------------


def test_with_cramps_on_the_chart_the_summary_says_leg_cramps_and_cites_the_fda(q1):
    """cramps-001 has an active leg cramp condition."""
    [card] = evaluate(q1, "order-sign", chart(), [draft()])
    assert card.summary.startswith("Quinine is not recommended for leg cramps")
    assert card.source.url.startswith("https://www.fda.gov/")
    assert "FDA" in card.source.label and "Leg cramp guidance" not in card.source.label


def test_another_documented_indication_gets_the_harm_without_a_cramp_claim(q1):
    """The clinical review: 'not recommended for leg cramps' on a babesiosis order."""
    no_cramps = [r for r in chart() if r["resourceType"] != "Condition"]
    babesiosis = fhir.concept("http://snomed.info/sct", "21061004", "Babesiosis")
    [card] = evaluate(q1, "order-sign", no_cramps, [draft(reasonCode=[babesiosis])])
    assert "leg cramps" not in card.summary
    assert "blood reactions" in card.summary and "check the indication" in card.summary
    assert "Babesiosis" in card.detail


def test_a_cramp_reason_on_the_order_gets_the_leg_cramp_wording(q1):
    no_cramps = [r for r in chart() if r["resourceType"] != "Condition"]
    cramp = fhir.concept("http://snomed.info/sct", "55300003", "Cramp")
    [card] = evaluate(q1, "order-sign", no_cramps, [draft(reasonCode=[cramp])])
    assert card.summary.startswith("Quinine is not recommended for leg cramps")
