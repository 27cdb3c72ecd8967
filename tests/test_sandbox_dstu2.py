"""Sandbox-shaped requests on its default DSTU2 server (MedicationOrder) and on an STU3 server.

The sandbox (reference §6) sends `fhirServer`, `patientId` `smart-1288992`, `userId`
`Practitioner/COREPRACTITIONER1`, no `encounterId`, a draftOrders Bundle without `type`, and on
Rx View `selections: ["MedicationOrder/order-123"]` (DSTU2) or `["MedicationRequest/request-123"]`
(STU3); its first order-select call has no medication yet. Prefetch here is complete (every key
the services declare), copied from the full-prefetch fixture, with the chart's active
medications in the same FHIR version as the drafts.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import load_fixture
from tests.support.fhir_server import declared_prefetch
from tests.support.sandbox_orders import CRAMP, CYCLOBENZAPRINE, QUININE, UCUM

PATIENT = "smart-1288992"
USER = "Practitioner/COREPRACTITIONER1"
DSTU2_SERVER = "https://launch.smarthealthit.org/v/r2/fhir"
STU3_SERVER = "https://launch.smarthealthit.org/v/r3/fhir"
QUININE_RULE = "quinine-leg-cramps"
C1 = "cyclobenzaprine-duration"


def full_prefetch(version: str) -> dict[str, Any]:
    """The full-prefetch fixture's prefetch for PATIENT; active medications as `version`."""
    text = json.dumps(load_fixture("requests/order-select-quinine-full-prefetch.json")["prefetch"])
    prefetch: dict[str, Any] = json.loads(text.replace("cramps-001", PATIENT))
    if version == "DSTU2":
        for entry in prefetch["activeMedications"]["entry"]:
            order = entry["resource"]
            order["resourceType"] = "MedicationOrder"
            order["patient"] = order.pop("subject")
            order["dateWritten"] = order.pop("authoredOn")
            order["prescriber"] = order.pop("requester")
            order.pop("intent")
            if "reasonCode" in order:
                order["reasonCodeableConcept"] = order.pop("reasonCode")[0]
            entry["fullUrl"] = entry["fullUrl"].replace("MedicationRequest", "MedicationOrder")
    return prefetch


def draft(version: str, medication: dict[str, Any] | None, sign: bool = False) -> dict[str, Any]:
    """The sandbox's Rx View draft: DSTU2 MedicationOrder or STU3 MedicationRequest."""
    dose = {"value": 1, "system": UCUM, "code": "{pill}"}
    timing = {"repeat": {"frequency": 3, "period": 1}}
    if version == "DSTU2":
        timing["repeat"]["periodUnits"] = "d"
        order: dict[str, Any] = {
            "resourceType": "MedicationOrder", "id": "order-123", "status": "draft",
            "dateWritten": "2026-11-21", "patient": {"reference": f"Patient/{PATIENT}"}}
        if medication is not None:
            order["medicationCodeableConcept"] = medication
            order["reasonCodeableConcept"] = CRAMP
    else:
        timing["repeat"]["periodUnit"] = "d"
        order = {
            "resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
            "authoredOn": "2026-11-21", "subject": {"reference": f"Patient/{PATIENT}"}}
        if medication is not None:
            order["medicationCodeableConcept"] = medication
            order["reasonCode"] = [CRAMP]
    if medication is not None:
        order["dosageInstruction"] = [{"doseQuantity": dose, "timing": timing}]
    if sign:
        order["dispenseRequest"] = {
            "numberOfRepeatsAllowed": 0,
            "quantity": {"value": 90, "system": UCUM, "code": "{pill}"},
            "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM,
                                       "code": "d"}}
        if version == "STU3":
            order["intent"] = "order"
            order["category"] = {"coding": [{"code": "community"}]}
    return order


def sandbox_request(hook: str, version: str, order: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {
        "patientId": PATIENT, "userId": USER,
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": order}]}}
    if hook == "order-select":
        context["selections"] = [f"{order['resourceType']}/{order['id']}"]
    return {
        "hookInstance": str(uuid.uuid4()), "hook": hook,
        "fhirServer": DSTU2_SERVER if version == "DSTU2" else STU3_SERVER,
        "context": context, "prefetch": full_prefetch(version)}


def cards(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["cards"])


def by_rule(found: list[dict[str, Any]], rule_id: str) -> list[dict[str, Any]]:
    return [c for c in found if c["source"]["topic"]["code"] == rule_id]


@pytest.mark.parametrize("service_id", ["legcramp-order-select", "legcramp-order-sign",
                                        "legcramp-patient-view"])
def test_prefetch_here_carries_every_key_the_services_declare(service_id):
    assert set(declared_prefetch(service_id)) <= set(full_prefetch("DSTU2"))


@pytest.mark.parametrize("version", ["DSTU2", "STU3"])
def test_first_order_select_call_without_a_medication_answers_200(call, version):
    request = sandbox_request("order-select", version, draft(version, None))
    found = cards(call("legcramp-order-select", request))
    assert by_rule(found, QUININE_RULE) == [] and by_rule(found, C1) == []


@pytest.mark.parametrize("version", ["DSTU2", "STU3"])
def test_order_select_quinine_gets_the_card_and_a_delete_of_the_clients_reference(
    call, version
):
    request = sandbox_request("order-select", version, draft(version, QUININE))
    (card,) = by_rule(cards(call("legcramp-order-select", request)), QUININE_RULE)
    reference = request["context"]["selections"][0]
    assert reference not in card["detail"]  # the action names it; the text does not
    actions = [a for s in card["suggestions"] for a in s["actions"]]
    assert [(a["type"], a["resourceId"]) for a in actions] == [("delete", reference)]


@pytest.mark.parametrize("version", ["DSTU2", "STU3"])
def test_order_sign_quinine_gets_the_card(call, version):
    request = sandbox_request("order-sign", version, draft(version, QUININE, sign=True))
    (card,) = by_rule(cards(call("legcramp-order-sign", request)), QUININE_RULE)
    assert "quinine" in card["detail"].lower()


@pytest.mark.parametrize("version", ["DSTU2", "STU3"])
def test_order_sign_thirty_day_cyclobenzaprine_gets_c1_without_an_update(call, version):
    request = sandbox_request("order-sign", version, draft(version, CYCLOBENZAPRINE, sign=True))
    (card,) = by_rule(cards(call("legcramp-order-sign", request)), C1)
    assert card["indicator"] == "warning"
    assert not [a for s in card.get("suggestions", []) for a in s["actions"]
                if a["type"] == "update"]


def test_dstu2_active_medications_in_prefetch_are_read(call):
    """The chart's DSTU2 quinine order shows on patient-view, named as the client names it."""
    request = sandbox_request("order-sign", "DSTU2", draft("DSTU2", None))
    request["hook"] = "patient-view"
    request["context"].pop("draftOrders")
    (card,) = by_rule(cards(call("legcramp-patient-view", request)), QUININE_RULE)
    assert "MedicationOrder/" not in card["detail"] and "2026-10-03" in card["detail"]
