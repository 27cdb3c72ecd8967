"""Medications named by reference and read from the request's FHIR server: asked for together
with `Medication?_id=...`, read one by one when the search fails or leaves one out, and never
more than `fhir.max_medication_references` for one request."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import load_fixture, load_request, make_caller
from tests.support.fhir_server import FHIR_JSON

ORDER_SIGN = "legcramp-order-sign"
QUININE = load_fixture("patients/medication-quinine-324.json")


def medication(med_id: str) -> dict[str, Any]:
    """A Medication the rules have nothing to say about."""
    return {"resourceType": "Medication", "id": med_id,
            "code": {"text": f"unremarkable product {med_id}"}}


def request_naming(server: HTTPServer, *med_ids: str) -> dict[str, Any]:
    """The quinine-by-reference order-sign, with one more draft per further Medication id."""
    request = load_request("order-sign-medication-reference-server",
                           fhirServer=server.url_for("/fhir"))
    entries = request["context"]["draftOrders"]["entry"]
    template = entries[0]["resource"]
    for n, med_id in enumerate(med_ids):
        draft = copy.deepcopy(template)
        draft["id"] = f"draft-{n}"
        draft["medicationReference"] = {"reference": f"Medication/{med_id}"}
        entries.append({"resource": draft})
    return request


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


def quinine_cards(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [c for c in response.get_json()["cards"] if "quinine" in json.dumps(c).lower()]


def requests_seen(server: HTTPServer) -> list[tuple[str, dict[str, str]]]:
    return [(req.path, dict(req.args)) for req, _ in server.log]


def test_several_medications_are_asked_for_in_one_search(call, httpserver):
    httpserver.expect_request("/fhir/Medication").respond_with_json(
        bundle(QUININE, medication("b"), medication("c")), content_type=FHIR_JSON)

    assert len(quinine_cards(call(ORDER_SIGN, request_naming(httpserver, "b", "c")))) == 1
    assert requests_seen(httpserver) == [
        ("/fhir/Medication", {"_id": "quinine-324,b,c", "_count": "3"})]


def test_a_medication_the_search_left_out_is_read_on_its_own(call, httpserver):
    httpserver.expect_request("/fhir/Medication").respond_with_json(
        bundle(medication("b"), medication("c")), content_type=FHIR_JSON)
    httpserver.expect_request("/fhir/Medication/quinine-324").respond_with_json(
        QUININE, content_type=FHIR_JSON)

    assert len(quinine_cards(call(ORDER_SIGN, request_naming(httpserver, "b", "c")))) == 1
    assert [path for path, _ in requests_seen(httpserver)] == [
        "/fhir/Medication", "/fhir/Medication/quinine-324"]


def test_a_server_refusing_the_search_gets_one_read_per_medication(call, httpserver):
    httpserver.expect_request("/fhir/Medication").respond_with_json(
        {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-supported"}]}, status=400,
        content_type=FHIR_JSON)

    def read(request: Request) -> Response:
        med_id = request.path.rsplit("/", 1)[-1]
        body = QUININE if med_id == "quinine-324" else medication(med_id)
        return Response(json.dumps(body), content_type=FHIR_JSON)

    for med_id in ("quinine-324", "b"):
        httpserver.expect_request(f"/fhir/Medication/{med_id}").respond_with_handler(read)

    assert len(quinine_cards(call(ORDER_SIGN, request_naming(httpserver, "b")))) == 1
    assert sorted(path for path, _ in requests_seen(httpserver)) == [
        "/fhir/Medication", "/fhir/Medication/b", "/fhir/Medication/quinine-324"]


def test_ids_that_cannot_go_into_a_search_are_read_on_their_own(call, httpserver):
    """A comma would split an id across two search values: such an id is read alone."""
    httpserver.expect_request("/fhir/Medication/quinine-324").respond_with_json(
        QUININE, content_type=FHIR_JSON)
    httpserver.expect_request("/fhir/Medication/a,b").respond_with_json(
        medication("x"), content_type=FHIR_JSON)

    assert len(quinine_cards(call(ORDER_SIGN, request_naming(httpserver, "a,b")))) == 1
    assert "/fhir/Medication" not in [path for path, _ in requests_seen(httpserver)]


def test_more_medications_than_the_cap_is_412_and_nothing_is_read(make_app, config, httpserver):
    capped = replace(config, fhir=replace(config.fhir, max_medication_references=3))
    call = make_caller(make_app(capped).test_client())

    response = call(ORDER_SIGN, request_naming(httpserver, "b", "c", "d"))

    assert response.status_code == 412
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "at most 3" in outcome["issue"][0]["diagnostics"]
    assert httpserver.log == []


def test_a_thousand_medications_by_reference_make_at_most_the_cap_in_reads(call, httpserver):
    """The attack of the brief (10,000 made 1,657 reads): past the default cap of 200,
    nothing is read at all."""
    response = call(ORDER_SIGN, request_naming(httpserver, *(f"m{i}" for i in range(1000))))
    assert response.status_code == 412
    assert "1001 Medications" in response.get_json()["issue"][0]["diagnostics"]
    assert "at most 200" in response.get_json()["issue"][0]["diagnostics"]
    assert httpserver.log == []
