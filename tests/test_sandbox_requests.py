"""Requests the official CDS Hooks sandbox really sent, replayed against our services.

The captured requests (`shared/data/sandbox-captured/`) were sent to probe services whose
prefetch keys (`activeMeds`, `potassium`, ...) are not ours, so our services fetch what they
declare (`patient`, `conditions`, `activeMedications`, `ironStudies`, `electrolytes`: whatever
`hooks.services` declares, which discovery is generated from) from `fhirServer`. Here
`fhirServer` is rewritten to a loopback `httpserver` that answers exactly those queries; the
replay with the captured `fhirServer` left as is checks the 412 path.
"""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from cds_service.kit.parsing import ParseReport, parse_resource
from hooks.services import service_for_hook
from tests.conftest import SHARED, assert_operation_outcome, load_request
from tests.support.fhir_server import declared_prefetch, expected_request, received_requests

CAPTURED_DIR = SHARED / "data" / "sandbox-captured"
if not CAPTURED_DIR.is_dir():
    pytest.skip(f"no captured sandbox requests at {CAPTURED_DIR}", allow_module_level=True)

SERVICE_FOR_HOOK = service_for_hook()  # hook -> service id, from hooks/services.py
# What each of our services fetches when prefetch does not carry it (discovery checks this).
OUR_PREFETCH = {hook: declared_prefetch(service) for hook, service in SERVICE_FOR_HOOK.items()}
OUR_KEYS = {hook: set(prefetch) for hook, prefetch in OUR_PREFETCH.items()}
CAPTURED_FHIR_SERVER = ("127.0.0.1", 8104)
FHIR_BASE_PATH = "/fhir"
QUININE_SUMMARY_START = "Quinine is not recommended for leg cramps"
# With cramps on the chart or the order, the cramp wording; else the harm and the indication.
QUININE_SUMMARY_STARTS = (QUININE_SUMMARY_START, "Quinine carries a risk of serious")

CAPTURED_FILES = sorted(CAPTURED_DIR.glob("*.json"))


def _captured(name: str) -> dict[str, Any]:
    path = CAPTURED_DIR / name
    return json.loads(path.read_text(encoding="utf-8"))


def captured_request(stem_prefix: str) -> dict[str, Any]:
    matches = [p for p in CAPTURED_FILES if p.name.startswith(stem_prefix)]
    assert len(matches) == 1, f"expected one captured file starting {stem_prefix!r}: {matches}"
    return copy.deepcopy(_captured(matches[0].name)["request"])


def _searchset(entries: list[dict[str, Any]]) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return bundle


def _entries_of(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict):
        return []
    return [
        {"fullUrl": entry.get("fullUrl"), "resource": entry["resource"],
         "search": {"mode": "match"}}
        for entry in bundle.get("entry") or []
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    ]


def our_requests(request: dict[str, Any]) -> list[tuple[str, Any]]:
    """Sorted (path, query) of each query the request's service declares and prefetch lacks."""
    supplied = set(request.get("prefetch") or {})
    return sorted(
        expected_request(template, request["context"]["patientId"], FHIR_BASE_PATH)
        for key, template in OUR_PREFETCH[request["hook"]].items()
        if key not in supplied
    )


def serve_patient_chart(httpserver: Any, request: dict[str, Any]) -> str:
    """Answer each query our service for the request's hook declares, at exactly its path and
    query for the request's patient; return the new fhirServer base.

    Patient: the captured prefetch's Patient, else 404; MedicationRequest: the captured
    `activeMeds`; Condition and the Observation searches: an empty searchset.
    """
    patient_id = request["context"]["patientId"]
    prefetch = request.get("prefetch") or {}
    patient = prefetch.get("patient")
    for template in OUR_PREFETCH[request["hook"]].values():
        path, query = expected_request(template, patient_id, FHIR_BASE_PATH)
        handler = httpserver.expect_request(path, method="GET", query_string=dict(query))
        resource_type = path.removeprefix(f"{FHIR_BASE_PATH}/").split("/")[0]
        if resource_type == "Patient":
            if isinstance(patient, dict) and patient.get("resourceType") == "Patient":
                handler.respond_with_json(patient, content_type="application/fhir+json")
            else:
                handler.respond_with_json(
                    {"resourceType": "OperationOutcome",
                     "issue": [{"severity": "error", "code": "not-found"}]},
                    status=404, content_type="application/fhir+json")
        elif resource_type == "MedicationRequest":
            handler.respond_with_json(_searchset(_entries_of(prefetch.get("activeMeds"))),
                                      content_type="application/fhir+json")
        else:
            assert resource_type in ("Condition", "Observation"), template
            handler.respond_with_json(_searchset([]), content_type="application/fhir+json")
    return httpserver.url_for(FHIR_BASE_PATH)


def requested_paths(httpserver: Any) -> list[str]:
    return [request.path for request, _ in httpserver.log]


def replay(call: Any, httpserver: Any, stem_prefix: str) -> tuple[dict[str, Any], Any]:
    request = captured_request(stem_prefix)
    request["fhirServer"] = serve_patient_chart(httpserver, request)
    response = call(SERVICE_FOR_HOOK[request["hook"]], request)
    assert response.status_code == 200, response.get_data(as_text=True)
    httpserver.check_assertions()  # no request the loopback server had no handler for
    return request, response


def quinine_cards(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in body["cards"]
            if c["source"]["topic"]["code"] == "quinine-leg-cramps"
            and c["summary"].startswith(QUININE_SUMMARY_STARTS)]


# --- the data we rely on --------------------------------------------------------------------


def test_captured_directory_holds_the_five_sandbox_requests():
    assert len(CAPTURED_FILES) == 5
    hooks = sorted(_captured(p.name)["request"]["hook"] for p in CAPTURED_FILES)
    assert hooks == ["order-select", "order-select", "order-sign", "patient-view", "patient-view"]


def test_discovery_declares_the_prefetch_keys_the_replays_serve(client):
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    for hook, service_id in SERVICE_FOR_HOOK.items():
        assert services[service_id]["prefetch"] == OUR_PREFETCH[hook]
        assert {"patient", "conditions", "activeMedications"} <= OUR_KEYS[hook]
    assert services["legcramp-patient-view"]["prefetch"]["activeMedications"] == (
        "MedicationRequest?patient={{context.patientId}}&status=active")
    assert services["legcramp-order-select"]["prefetch"]["conditions"] == (
        "Condition?patient={{context.patientId}}")


# --- replays against a loopback FHIR server -------------------------------------------------


@pytest.mark.parametrize("path", CAPTURED_FILES, ids=lambda p: p.stem)
def test_every_captured_sandbox_request_gets_a_schema_valid_200(call, httpserver, path):
    request, response = replay(call, httpserver, path.name)
    body = response.get_json()
    assert isinstance(body["cards"], list)
    # None of the captured charts or drafts holds quinine.
    assert quinine_cards(body) == []
    # Our keys the request did not carry were fetched, once each; nothing else was.
    assert sorted(received_requests(httpserver)) == our_requests(request)
    paths = set(requested_paths(httpserver))
    patient_id = request["context"]["patientId"]
    assert {f"{FHIR_BASE_PATH}/Condition", f"{FHIR_BASE_PATH}/MedicationRequest",
            f"{FHIR_BASE_PATH}/Observation"} <= paths
    assert (f"{FHIR_BASE_PATH}/Patient/{patient_id}" in paths) == (
        "patient" not in (request.get("prefetch") or {}))


def test_patient_view_with_prefetch_uses_the_supplied_patient_and_fetches_the_rest(
    call, httpserver
):
    request, _ = replay(call, httpserver, "002-")
    paths = requested_paths(httpserver)
    assert f"{FHIR_BASE_PATH}/Patient/{request['context']['patientId']}" not in paths
    # Our two MedicationRequest searches: active orders, and the MAO inhibitor history (C5).
    order_searches = [k for k, t in OUR_PREFETCH["patient-view"].items()
                      if t.startswith("MedicationRequest?")]
    assert sorted(order_searches) == ["activeMedications", "maoInhibitorHistory"]
    assert paths.count(f"{FHIR_BASE_PATH}/MedicationRequest") == len(order_searches)
    assert paths.count(f"{FHIR_BASE_PATH}/Condition") == 1
    # the captured `potassium` key is not ours: our Observation searches are still sent
    lab_keys = [k for k, t in OUR_PREFETCH["patient-view"].items() if t.startswith("Observation?")]
    assert {"ironStudies", "electrolytes"} <= set(lab_keys)
    assert paths.count(f"{FHIR_BASE_PATH}/Observation") == len(lab_keys)
    assert sorted(received_requests(httpserver)) == our_requests(request)


def test_patient_view_without_prefetch_reads_patient_even_when_it_is_not_found(call, httpserver):
    request, response = replay(call, httpserver, "001-rw-probe-noprefetch")
    assert f"{FHIR_BASE_PATH}/Patient/{request['context']['patientId']}" in (
        requested_paths(httpserver))
    assert response.get_json() == {"cards": []}


def test_sandbox_draft_without_medication_or_intent_yields_no_cards(call, httpserver):
    request, response = replay(call, httpserver, "003-")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    assert "intent" not in draft and not any(k.startswith("medication") for k in draft)
    assert response.get_json() == {"cards": []}


def test_sandbox_category_object_is_parsed_as_a_list():
    draft = captured_request("004-")["context"]["draftOrders"]["entry"][0]["resource"]
    assert isinstance(draft["category"], dict)
    report = ParseReport()
    model = parse_resource(draft, report)
    assert [c.coding[0].code for c in model.category] == ["community"]
    assert report.repaired, "the object should have been wrapped in a list"
    assert draft["category"]["coding"][0]["code"] == "community"  # the input is not mutated


def test_sandbox_lorazepam_order_with_category_object_gets_no_quinine_card(call, httpserver):
    request, response = replay(call, httpserver, "004-")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    assert "Lorazepam" in draft["medicationCodeableConcept"]["text"]
    assert quinine_cards(response.get_json()) == []


def test_sandbox_order_with_category_object_is_judged_when_it_is_quinine(call, httpserver):
    """The same captured request with the drug swapped for quinine: the draft, category object
    and all, is parsed and judged (were it skipped, there would be no card)."""
    request = captured_request("004-")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {
        "text": "quinine sulfate 324 MG Oral Capsule",
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "997010",
                    "display": "quinine sulfate 324 MG Oral Capsule"}],
    }
    request["fhirServer"] = serve_patient_chart(httpserver, request)
    response = call("legcramp-order-select", request)
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = quinine_cards(response.get_json())
    assert len(cards) == 1
    assert cards[0]["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/request-123"


def test_replay_is_rejected_when_the_service_is_called_for_another_hook(call, httpserver):
    request = captured_request("002-")
    request["fhirServer"] = serve_patient_chart(httpserver, request)
    body = assert_operation_outcome(call("legcramp-order-sign", request), 400)
    assert body["issue"][0]["expression"] == ["$.hook"]
    assert httpserver.log == []  # refused before any fetch


# --- replays with the captured fhirServer (nothing listens there) ---------------------------


def _something_listens(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("path", CAPTURED_FILES, ids=lambda p: p.stem)
def test_captured_request_with_unreachable_fhir_server_answers_412_naming_the_keys(
    call, path: Path, caplog: pytest.LogCaptureFixture
):
    if _something_listens(CAPTURED_FHIR_SERVER):
        pytest.skip("something listens on 127.0.0.1:8104; this case needs nothing there")
    request = captured_request(path.name)
    assert request["fhirServer"] == "http://127.0.0.1:8104"
    response = call(SERVICE_FOR_HOOK[request["hook"]], request)
    assert response.status_code != 500
    body = assert_operation_outcome(response, 412)
    missing = OUR_KEYS[request["hook"]] - set(request.get("prefetch") or {})
    assert missing, "every captured request lacks at least one of our keys"
    named = {expr.removeprefix("prefetch.") for issue in body["issue"]
             for expr in issue.get("expression", [])}
    assert named == missing
    logged = [r for r in caplog.records if r.name == "legcramp_cds.prefetch"][-1].unobtainable
    assert set(logged) == missing
    for issue in body["issue"]:
        assert issue["code"] == "incomplete"
        key = issue["expression"][0].removeprefix("prefetch.")
        # why, in the log only: unreachable, or (once enough of this request's calls failed)
        # the server's breaker open
        assert logged[key]["code"] in ("unreachable", "circuit_open"), logged[key]
        assert "reached" not in issue["diagnostics"]
        assert "127.0.0.1:8104" not in issue["diagnostics"]  # no URL (it carries patient ids)
        assert request["context"]["patientId"] not in issue["diagnostics"]


def test_captured_request_with_malformed_fhir_server_never_answers_500(call):
    request = captured_request("001-rw-probe-noprefetch")
    request["fhirServer"] = "http://[::1"  # passes the request schema's ^https?:// pattern
    response = call(SERVICE_FOR_HOOK[request["hook"]], request)
    assert response.status_code in (400, 412), response.get_data(as_text=True)
    assert_operation_outcome(response, response.status_code)


# --- sandbox-shaped fixtures ---------------------------------------------------------------


def test_sandbox_shaped_quinine_draft_gets_the_critical_card_deleting_the_draft(call):
    request = load_request("order-select-sandbox-shape")
    response = call("legcramp-order-select", request)
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "critical"
    assert card["summary"].startswith(QUININE_SUMMARY_START)
    assert card["selectionBehavior"] == "at-most-one"
    actions = [a for s in card["suggestions"] for a in s["actions"]]
    assert actions == [{"type": "delete", "description": actions[0]["description"],
                        "resourceId": "MedicationRequest/request-123"}]
    assert card["suggestions"][0]["isRecommended"] is True


def test_sandbox_empty_draft_first_call_gets_no_cards(call):
    response = call("legcramp-order-select", load_request("order-select-sandbox-empty-draft"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"cards": []}
