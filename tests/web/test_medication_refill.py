"""The medication-refill hook: the refill requests in `context.medications` are judged by the
order-safety rules as draft orders are, and suggestions act on the refill request itself."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cds_service.kit import RXNORM
from tests.conftest import assert_operation_outcome, complete, load_request

REFILL = "legcramp-medication-refill"
SIGN = "legcramp-order-sign"
QUININE_REFILL = "MedicationRequest/refill-quinine-1"


def refill_request(**changes: Any) -> dict[str, Any]:
    return load_request("medication-refill-quinine", **changes)


def refill_order(request: dict[str, Any]) -> dict[str, Any]:
    return request["context"]["medications"]["entry"][0]["resource"]


def as_order_sign(request: dict[str, Any]) -> dict[str, Any]:
    """The same orders sent at signing: draftOrders for medications, a prescriber for userId."""
    sign = copy.deepcopy(request)
    sign["hook"] = "order-sign"
    context = sign["context"]
    context["draftOrders"] = context.pop("medications")
    context["userId"] = "Practitioner/example-prescriber"
    return complete(sign)


def topics(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return topics_of(response.get_json()["cards"])


def topics_of(cards: list[dict[str, Any]]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in cards]


def test_quinine_refill_for_leg_cramps_gets_q1_deleting_the_refill_request(call):
    response = call(REFILL, refill_request())
    assert topics(response) == ["quinine-leg-cramps"]
    [card] = response.get_json()["cards"]
    assert card["indicator"] == "critical"
    [suggestion] = card["suggestions"]
    assert suggestion["isRecommended"] is True
    assert suggestion["actions"] == [{"type": "delete", "resourceId": QUININE_REFILL,
                                      "description": "Decline the quinine refill request"}]


@pytest.mark.parametrize("context", [
    {"userId": "Practitioner/example-prescriber", "encounterId": "enc-77"},
    {"userId": "PractitionerRole/refill-desk"},
], ids=["with-user-and-encounter", "with-practitioner-role"])
def test_refill_with_the_optional_user_and_encounter_is_answered_the_same(call, context):
    request = refill_request()
    request["context"].update(context)
    assert topics(call(REFILL, request)) == ["quinine-leg-cramps"]


def test_refill_of_a_drug_outside_the_order_safety_rules_gets_no_card(call):
    """Baclofen for cramps: at signing E2 asks for electrolytes (the patient is on a diuretic),
    chart-level guidance a refill queue does not carry; no order-safety rule is about it."""
    request = refill_request()
    order = refill_order(request)
    order["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": "197381", "display": "baclofen 10 MG Oral Tablet"}],
        "text": "baclofen 10 MG Oral Tablet"}
    assert topics(call(REFILL, request)) == []
    assert topics(call(SIGN, as_order_sign(request))) == ["diuretic-electrolytes-due"]


def test_quinine_card_on_refill_reads_as_at_signing_without_the_chart_level_guidance(call):
    """The same order at signing gets the same Q1 card (uuids aside), and E2's electrolytes
    card beside it, which refill leaves out."""
    request = refill_request()
    at_signing = call(SIGN, as_order_sign(request)).get_json()["cards"]
    on_refill = call(REFILL, request).get_json()["cards"]

    def q1(cards: list[dict[str, Any]]) -> dict[str, Any]:
        [card] = [c for c in cards if c["source"]["topic"]["code"] == "quinine-leg-cramps"]
        card = {k: v for k, v in card.items() if k != "uuid"}
        card["suggestions"] = [{k: v for k, v in s.items() if k != "uuid"}
                               for s in card["suggestions"]]
        return card

    # The same card, but the suggestion declines the refill rather than removing a draft.
    # The order reads as a refill request in the refill queue's own words.
    refill_card, signing_card = q1(on_refill), q1(at_signing)
    assert refill_card.pop("suggestions")[0]["label"] == "Decline the quinine refill"
    assert signing_card.pop("suggestions")[0]["label"] == "Remove the quinine order"
    assert "(refill requested, 2026-11-21)" in refill_card.pop("detail")
    assert "(draft, ordered 2026-11-21)" in signing_card.pop("detail")
    assert refill_card == signing_card
    assert "diuretic-electrolytes-due" in topics_of(at_signing)
    assert topics_of(on_refill) == ["quinine-leg-cramps"]


def test_cancelled_refill_request_is_not_judged(call):
    request = refill_request()
    refill_order(request)["status"] = "cancelled"
    assert topics(call(REFILL, request)) == []


@pytest.mark.parametrize("member", ["medications", "patientId"])
def test_refill_request_without_a_required_member_is_400_naming_it(client, member):
    request = refill_request()
    del request["context"][member]
    body = assert_operation_outcome(client.post(f"/cds-services/{REFILL}", json=request), 400)
    [issue] = body["issue"]
    assert issue["expression"] == ["$.context"]
    assert f"missing required member: '{member}'" in issue["diagnostics"]


def test_refill_medications_that_are_not_a_bundle_are_400(client):
    request = refill_request()
    request["context"]["medications"] = refill_order(request)
    body = assert_operation_outcome(client.post(f"/cds-services/{REFILL}", json=request), 400)
    assert body["issue"][0]["expression"] == ["$.context.medications.resourceType"]


def test_refill_draft_orders_in_place_of_medications_are_400(client):
    """A refill sent with the order hooks' member: no refill request to judge, not a 200."""
    request = refill_request()
    request["context"]["draftOrders"] = request["context"].pop("medications")
    assert_operation_outcome(client.post(f"/cds-services/{REFILL}", json=request), 400)


def test_refill_request_sent_to_the_order_sign_service_is_400_naming_the_hook(client):
    body = assert_operation_outcome(
        client.post(f"/cds-services/{SIGN}", json=refill_request()), 400)
    assert body["issue"][0]["expression"] == ["$.hook"]


@pytest.mark.parametrize("fixture", ["order-sign-quinine-malaria", "patient-view-full-prefetch"])
def test_another_hooks_request_sent_to_the_refill_service_is_400_naming_the_hook(client, fixture):
    body = assert_operation_outcome(
        client.post(f"/cds-services/{REFILL}", json=load_request(fixture)), 400)
    assert body["issue"][0]["expression"] == ["$.hook"]


def test_order_sign_medications_member_is_not_read_as_orders(call):
    """Only medication-refill reads `medications`: an order-sign request carrying one (and no
    draft order) gets no card about it."""
    request = as_order_sign(refill_request())
    request["context"]["medications"] = request["context"]["draftOrders"]
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": []}
    assert topics(call(SIGN, request)) == []


def test_refill_judges_its_medications_and_not_a_draft_orders_member(call):
    """Each hook reads its own member: quinine in a stray draftOrders of a refill request is
    no refill request, while the baclofen in medications is (and gets no card)."""
    request = refill_request()
    request["context"]["draftOrders"] = copy.deepcopy(request["context"]["medications"])
    refill_order(request)["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": "197381", "display": "baclofen 10 MG Oral Tablet"}],
        "text": "baclofen 10 MG Oral Tablet"}
    assert topics(call(REFILL, request)) == []


@pytest.mark.parametrize("to_sign", [False, True], ids=["refill", "order-sign"])
def test_an_entry_whose_full_url_is_not_a_string_is_400_not_a_crash(call, to_sign):
    """Found by the fuzz test: a fullUrl that is a list reached the engine and raised (500)."""
    request = refill_request()
    if to_sign:
        request = as_order_sign(request)
    bundle = request["context"]["draftOrders" if to_sign else "medications"]
    bundle["entry"][0]["fullUrl"] = ["urn:uuid:0c6f1a2e-4b7d-4e91-a3c5-8d2b6f0e9a14"]
    response = call(SIGN if to_sign else REFILL, request)
    body = assert_operation_outcome(response, 400)
    assert any("fullUrl" in " ".join(i.get("expression", [])) for i in body["issue"]), body
