"""DSTU2 MedicationOrder and STU3 MedicationRequest mapped onto R4 (pipeline.versions)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.kit.parsing import parse_resource
from cds_service.pipeline.record_builder import RecordBuilder
from cds_service.pipeline.versions import (
    DSTU2,
    R4,
    STU3,
    medication_to_r4,
    order_version,
    to_r4,
)
from tests.conftest import load_request
from tests.support.sandbox_orders import CRAMP, CYCLOBENZAPRINE, QUININE, UCUM

PATIENT = "cramps-001"

def dstu2_order(order_id: str = "order-123", **changes: Any) -> dict[str, Any]:
    """A MedicationOrder as the sandbox builds one on its default (DSTU2) FHIR server."""
    order: dict[str, Any] = {
        "resourceType": "MedicationOrder",
        "id": order_id,
        "dateWritten": "2026-11-21",
        "status": "draft",
        "patient": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": QUININE,
        "reasonCodeableConcept": CRAMP,
        "dosageInstruction": [{
            "doseQuantity": {"value": 1, "system": UCUM, "code": "{pill}"},
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnits": "d",
                                  "boundsPeriod": {"start": "2026-11-21", "end": "2026-12-21"}}},
        }],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": 1,
            "quantity": {"value": 30, "system": UCUM, "code": "{pill}"},
            "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"},
        },
    }
    order.update(changes)
    return order


def stu3_request(order_id: str = "request-123", **changes: Any) -> dict[str, Any]:
    """An STU3 MedicationRequest: dose on the dosage itself, `context`, `requester.agent`."""
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "authoredOn": "2026-11-21",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "context": {"reference": "Encounter/enc-1"},
        "requester": {"agent": {"reference": "Practitioner/COREPRACTITIONER1"}},
        "medicationCodeableConcept": CYCLOBENZAPRINE,
        "reasonCode": [CRAMP],
        "dosageInstruction": [{
            "doseQuantity": {"value": 1, "system": UCUM, "code": "{pill}"},
            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
        }],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": 0,
            "quantity": {"value": 90, "system": UCUM, "code": "{pill}"},
            "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"},
        },
        "substitution": {"allowed": True},
    }
    order.update(changes)
    return order


# --- mapping -------------------------------------------------------------------------------------


def test_dstu2_medication_order_maps_to_a_valid_r4_medication_request():
    mapped = to_r4(dstu2_order())
    assert (mapped.source_type, mapped.fhir_version) == ("MedicationOrder", DSTU2)
    r4 = mapped.resource
    assert r4["resourceType"] == "MedicationRequest" and r4["id"] == "order-123"
    assert r4["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert r4["authoredOn"] == "2026-11-21"
    assert r4["intent"] == "order" and r4["status"] == "draft"
    assert r4["reasonCode"] == [CRAMP]
    dosage = r4["dosageInstruction"][0]
    assert dosage["doseAndRate"] == [
        {"doseQuantity": {"value": 1, "system": UCUM, "code": "{pill}"}}]
    assert dosage["timing"]["repeat"]["periodUnit"] == "d"
    assert "periodUnits" not in dosage["timing"]["repeat"]
    assert r4["dispenseRequest"]["expectedSupplyDuration"]["value"] == 30
    assert r4["dispenseRequest"]["numberOfRepeatsAllowed"] == 1
    for dstu2_only in ("patient", "dateWritten", "reasonCodeableConcept"):
        assert dstu2_only not in r4
    parse_resource(r4)


def test_dstu2_reason_reference_note_prescriber_and_unknown_fields():
    raw = dstu2_order(reasonCodeableConcept=None, reasonReference={"reference": "Condition/c1"},
                      note="take at night", prescriber={"reference": "Practitioner/p1"},
                      dateEnded="2026-12-01", priorPrescription={"reference": "MedicationOrder/x"},
                      substitution={"type": {"text": "generic"}}, status="bogus")
    r4 = to_r4(raw).resource
    assert r4["reasonReference"] == [{"reference": "Condition/c1"}]
    assert r4["note"] == [{"text": "take at night"}]
    assert r4["requester"] == {"reference": "Practitioner/p1"}
    assert r4["status"] == "unknown"
    for dropped in ("dateEnded", "priorPrescription", "substitution", "reasonCode"):
        assert dropped not in r4
    parse_resource(r4)


@pytest.mark.parametrize("status", ["active", "on-hold", "completed", "entered-in-error",
                                    "stopped", "draft"])
def test_dstu2_statuses_keep_their_meaning(status):
    assert to_r4(dstu2_order(status=status)).resource["status"] == status


def test_dstu2_timing_units_bounds_and_when_are_renamed():
    raw = dstu2_order(dosageInstruction=[{
        "doseRange": {"low": {"value": 1}, "high": {"value": 2}},
        "asNeededBoolean": True,
        "additionalInstructions": {"text": "with food"},
        "siteCodeableConcept": {"text": "mouth"},
        "timing": {"repeat": {"boundsQuantity": {"value": 10, "code": "d", "system": UCUM},
                              "duration": 1, "durationUnits": "h", "when": "HS"}},
    }])
    dosage = to_r4(raw).resource["dosageInstruction"][0]
    assert dosage["doseAndRate"] == [{"doseRange": {"low": {"value": 1}, "high": {"value": 2}}}]
    assert dosage["asNeededBoolean"] is True
    assert dosage["additionalInstruction"] == [{"text": "with food"}]
    assert dosage["site"] == {"text": "mouth"}
    repeat = dosage["timing"]["repeat"]
    assert repeat["boundsDuration"]["value"] == 10
    assert repeat["durationUnit"] == "h" and repeat["when"] == ["HS"]
    parse_resource(to_r4(raw).resource)


def test_stu3_medication_request_is_detected_by_shape_and_mapped():
    raw = stu3_request()
    assert order_version(raw) == STU3
    mapped = to_r4(raw)
    assert (mapped.source_type, mapped.fhir_version) == ("MedicationRequest", STU3)
    r4 = mapped.resource
    assert r4["encounter"] == {"reference": "Encounter/enc-1"} and "context" not in r4
    assert r4["requester"] == {"reference": "Practitioner/COREPRACTITIONER1"}
    assert r4["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 1
    assert "doseQuantity" not in r4["dosageInstruction"][0]
    assert r4["substitution"] == {"allowedBoolean": True}
    parse_resource(r4)


@pytest.mark.parametrize("signal", [
    {"context": {"reference": "Encounter/e"}},
    {"requester": {"agent": {"reference": "Practitioner/p"}}},
    {"dosageInstruction": [{"doseQuantity": {"value": 1}}]},
])
def test_each_stu3_signal_alone_marks_the_request_stu3(signal):
    raw = {"resourceType": "MedicationRequest", "id": "x", "status": "draft",
           "subject": {"reference": "Patient/p"}, **signal}
    assert order_version(raw) == STU3


def test_r4_medication_request_passes_through_untouched():
    raw = load_request("order-select-quinine-full-prefetch")["context"]["draftOrders"][
        "entry"][0]["resource"]
    before = copy.deepcopy(raw)
    mapped = to_r4(raw)
    assert mapped.fhir_version == R4 and mapped.resource is raw and raw == before
    sandbox_r4 = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
                  "category": {"coding": [{"code": "community"}]},
                  "subject": {"reference": "Patient/p"}}
    assert order_version(sandbox_r4) == R4


@pytest.mark.parametrize("raw", [
    {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
     "intent": "order", "subject": {"reference": f"Patient/{PATIENT}"},
     "context": {"reference": "Encounter/e"}},
    {"resourceType": "MedicationOrder", "id": "order-123", "status": "draft",
     "patient": {"reference": f"Patient/{PATIENT}"}, "dateWritten": "2026-11-21"},
])
def test_order_with_no_medication_yet_is_skipped_and_counted_like_an_r4_one(raw):
    """The sandbox's first order-select call: R4 requires medication[x], so nothing to judge."""
    builder = RecordBuilder(PATIENT, datetime(2026, 11, 21, tzinfo=UTC))
    record = builder.build([], [(raw, None)])
    assert record.draft_orders == ()
    assert record.report.skipped_total == 1


def test_dstu2_medication_is_mapped_to_r4_shape():
    raw = {"resourceType": "Medication", "id": "m1", "code": QUININE, "isBrand": False,
           "product": {"form": {"text": "capsule"},
                       "ingredient": [{"item": {"reference": "Substance/q"},
                                       "amount": {"numerator": {"value": 324}}}]}}
    r4 = medication_to_r4(raw)
    assert r4["code"] == QUININE and r4["form"] == {"text": "capsule"}
    assert r4["ingredient"] == [{"itemReference": {"reference": "Substance/q"},
                                 "strength": {"numerator": {"value": 324}}}]
    parse_resource(r4)
    r4_medication = {"resourceType": "Medication", "id": "m2", "code": QUININE}
    assert medication_to_r4(r4_medication) is r4_medication


# --- the record keeps the client's reference -----------------------------------------------------


def _builder() -> RecordBuilder:
    return RecordBuilder(PATIENT, datetime(2026, 11, 21, tzinfo=UTC))


def test_dstu2_draft_keeps_the_medication_order_reference():
    record = _builder().build([], [(dstu2_order(), None)])
    (order,) = record.draft_orders
    assert order.reference == "MedicationOrder/order-123"
    assert not order.is_r4 and order.fhir_version == DSTU2
    assert record.draft("MedicationOrder/order-123") is order
    assert order.medication_label == "quinine sulfate 324 MG Oral Capsule"
    assert order.reason_codes and order.authored_on is not None


def test_dstu2_medication_reference_is_resolved_from_contained_dstu2_medication():
    raw = dstu2_order(medicationCodeableConcept=None,
                      medicationReference={"reference": "#med"},
                      contained=[{"resourceType": "Medication", "id": "med", "code": QUININE,
                                  "isBrand": False}])
    del raw["medicationCodeableConcept"]
    builder = _builder()
    assert builder.unresolved_medication_references([], [(raw, None)]) == []
    (order,) = builder.build([], [(raw, None)]).draft_orders
    assert order.medication_origin == "contained"
    assert order.medication_label == "quinine sulfate 324 MG Oral Capsule"


def test_dstu2_medication_reference_to_the_server_is_fetched():
    raw = dstu2_order(medicationReference={"reference": "Medication/m9"})
    del raw["medicationCodeableConcept"]
    assert _builder().unresolved_medication_references([], [(raw, None)]) == ["Medication/m9"]


def test_mixed_chart_bundle_of_dstu2_stu3_and_r4_orders():
    chart = [
        dstu2_order("chart-dstu2", status="active"),
        stu3_request("chart-stu3", status="active"),
        {"resourceType": "MedicationRequest", "id": "chart-r4", "status": "active",
         "intent": "order", "medicationCodeableConcept": QUININE,
         "subject": {"reference": f"Patient/{PATIENT}"}},
        dstu2_order("other-patient", status="active", patient={"reference": "Patient/else"}),
    ]
    record = _builder().build(chart, [])
    assert sorted(o.reference for o in record.active_medications()) == [
        "MedicationOrder/chart-dstu2", "MedicationRequest/chart-r4",
        "MedicationRequest/chart-stu3"]
    assert {o.reference: o.fhir_version for o in record.active_medications()} == {
        "MedicationOrder/chart-dstu2": DSTU2, "MedicationRequest/chart-r4": R4,
        "MedicationRequest/chart-stu3": STU3}
    assert record.report.other_patient["MedicationOrder"] == 1


# --- through the service -------------------------------------------------------------------------


def sandbox_request(hook: str, orders: list[dict[str, Any]],
                    selections: list[str] | None = None) -> dict[str, Any]:
    """The full-prefetch fixture with the sandbox's draft orders (no Bundle type)."""
    request = load_request("order-select-quinine-full-prefetch", hook=hook)
    context = request["context"]
    context["draftOrders"] = {"resourceType": "Bundle",
                              "entry": [{"resource": o} for o in orders]}
    if selections is None:
        context.pop("selections", None)
    else:
        context["selections"] = selections
    context.pop("encounterId", None)
    request.pop("fhirAuthorization", None)
    return request


def cards_of(response: Any, rule_id: str) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == rule_id]


def test_quinine_fires_on_a_dstu2_medication_order_draft_with_its_own_reference(call):
    request = sandbox_request("order-select", [dstu2_order()], ["MedicationOrder/order-123"])
    (card,) = cards_of(call("legcramp-order-select", request), "quinine-leg-cramps")
    assert "MedicationOrder/" not in card["detail"]  # clinician words only
    actions = [a for s in card.get("suggestions", []) for a in s["actions"]]
    assert actions and all(a["type"] == "delete" for a in actions)
    assert {a["resourceId"] for a in actions} == {"MedicationOrder/order-123"}


def refill_request(orders: list[dict[str, Any]]) -> dict[str, Any]:
    """The sandbox's orders sent as medication-refill requests (context.medications)."""
    request = sandbox_request("medication-refill", orders)
    context = request["context"]
    context["medications"] = context.pop("draftOrders")
    context.pop("userId")
    return request


def test_quinine_fires_on_a_dstu2_medication_order_refill_with_its_own_reference(call):
    (card,) = cards_of(call("legcramp-medication-refill", refill_request([dstu2_order()])),
                       "quinine-leg-cramps")
    actions = [a for s in card["suggestions"] for a in s["actions"]]
    assert [(a["type"], a["resourceId"]) for a in actions] == [
        ("delete", "MedicationOrder/order-123")]


def test_stu3_thirty_day_cyclobenzaprine_refill_gets_c1_without_an_update(call):
    response = call("legcramp-medication-refill", refill_request([stu3_request()]))
    (card,) = cards_of(response, "cyclobenzaprine-duration")
    assert not [a for s in card.get("suggestions", []) for a in s["actions"]
                if a["type"] == "update"]


def test_dstu2_draft_not_selected_gets_no_order_select_card(call):
    request = sandbox_request("order-select", [dstu2_order()], ["MedicationOrder/other"])
    assert cards_of(call("legcramp-order-select", request), "quinine-leg-cramps") == []


def test_stu3_thirty_day_cyclobenzaprine_gets_c1_without_an_update(call):
    request = sandbox_request("order-sign", [stu3_request()])
    (card,) = cards_of(call("legcramp-order-sign", request), "cyclobenzaprine-duration")
    assert "MedicationRequest/" not in card["detail"]  # clinician words only
    actions = [a for s in card.get("suggestions", []) for a in s["actions"]]
    assert not [a for a in actions if a["type"] == "update"]


def test_r4_thirty_day_cyclobenzaprine_still_gets_its_update(call):
    r4 = to_r4(stu3_request()).resource
    (card,) = cards_of(call("legcramp-order-sign", sandbox_request("order-sign", [r4])),
                       "cyclobenzaprine-duration")
    actions = [a for s in card["suggestions"] for a in s["actions"]]
    assert [a["type"] for a in actions] == ["update"]


def test_patient_view_active_dstu2_quinine_gets_a_card_but_no_r4_update(call):
    request = load_request("patient-view-full-prefetch")
    bundle = request["prefetch"]["activeMedications"]
    patient_id = request["context"]["patientId"]
    bundle["entry"] = [{"resource": dstu2_order(
        "chart-q", status="active", patient={"reference": f"Patient/{patient_id}"},
        dateWritten="2026-10-03")}]
    (card,) = cards_of(call("legcramp-patient-view", request), "quinine-leg-cramps")
    assert "MedicationOrder/" not in card["detail"]  # clinician words only
    assert not [a for s in card.get("suggestions", []) for a in s["actions"]
                if a["type"] == "update"]


# --- evaluate --as-of ----------------------------------------------------------------------------


@pytest.fixture
def restore_service_logger() -> Iterator[None]:
    """`evaluate` configures the `legcramp_cds` logger for the process; undo it."""
    logger = logging.getLogger("legcramp_cds")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _evaluate(tmp_path: Path, request: dict[str, Any], *options: str) -> Any:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f'[evaluation]\nas_of = "2026-10-05"\n[store]\n'
                      f'url = "sqlite:///{tmp_path}/store.sqlite3"\n', encoding="utf-8")
    return CliRunner(env={"LEGCRAMP_CDS_CONFIG": None}).invoke(
        main, ["evaluate", str(path), "--config", str(config), *options])


def test_evaluate_as_of_overrides_the_configured_date(tmp_path, restore_service_logger):
    """Cyclobenzaprine active since 1 October: 4 days on the configured 5 October (quiet),
    51 days on --as-of 21 November (C1 card)."""
    request = load_request("patient-view-full-prefetch")
    patient_id = request["context"]["patientId"]
    request["prefetch"]["activeMedications"]["entry"] = [{"resource": {
        "resourceType": "MedicationRequest", "id": "chart-cbz", "status": "active",
        "intent": "order", "medicationCodeableConcept": CYCLOBENZAPRINE,
        "subject": {"reference": f"Patient/{patient_id}"}, "authoredOn": "2026-10-01"}}]

    def c1_cards(result: Any) -> list[Any]:
        assert result.exit_code == 0, result.output
        return [c for c in json.loads(result.output)["cards"]
                if c["source"]["topic"]["code"] == "cyclobenzaprine-duration"]

    assert c1_cards(_evaluate(tmp_path, request)) == []
    assert len(c1_cards(_evaluate(tmp_path, request, "--as-of", "2026-11-21"))) == 1


def test_evaluate_rejects_an_as_of_that_is_not_a_date(tmp_path, restore_service_logger):
    result = _evaluate(tmp_path, load_request("order-sign-quinine-malaria"),
                       "--as-of", "next tuesday")
    assert result.exit_code != 0 and "--as-of" in result.output
    assert "Traceback" not in result.output
