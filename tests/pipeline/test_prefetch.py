"""Prefetch resolution (CDS Hooks 2.0 §3) through the HTTP API, against a real loopback FHIR server.

Per key: absent -> fetched with the same template; `null` -> never fetched; an OperationOutcome
-> fetched; a Bundle -> used, and its `next` links followed (under the fhirServer base only, up
to `fhir.max_pages` pages in total). Data that cannot be had -> 412 OperationOutcome whose issue
names `prefetch.<key>`. Unit-level tests cover parallel fetching and template filling.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from cds_service.config import Config, load_config
from cds_service.errors import DataUnavailable, TemplateError
from cds_service.kit.requirements import DataRequirement, validate_template
from cds_service.pipeline.fhir_client import FhirError
from cds_service.pipeline.prefetch import fill_template, resolve
from cds_service.web.errors import status_of
from hooks import data
from tests.conftest import (
    assert_operation_outcome,
    load_fixture,
    load_request,
    make_caller,
)
from tests.support.fhir_server import (
    HeldHandler,
    declared_prefetch,
    expected_request,
    received_requests,
    serve_observation_searches,
)
from tests.support.live_server import free_port

PATIENT_VIEW = "legcramp-patient-view"
ORDER_SIGN = "legcramp-order-sign"
RULE = "quinine-leg-cramps"
TOKEN = "example-access-token-not-real"
FHIR_JSON = "application/fhir+json"
PATIENT_ID = "cramps-001"


# --- helpers --------------------------------------------------------------------------------


def chart(name: str = "cramps-001") -> list[dict[str, Any]]:
    """The resources of a patient fixture (a collection Bundle)."""
    return [entry["resource"] for entry in load_fixture(f"patients/{name}.json")["entry"]]


def of_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == resource_type]


def searchset(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": copy.deepcopy(r), "search": {"mode": "match"}} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def active_malaria(patient_id: str = PATIENT_ID) -> dict[str, Any]:
    """malaria-002's active falciparum malaria, recorded for `patient_id`."""
    condition = copy.deepcopy(of_type(chart("malaria-002"), "Condition")[0])
    condition["id"] = f"{patient_id}-malaria"
    condition["subject"] = {"reference": f"Patient/{patient_id}"}
    return condition


def quinine_cards(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        card for card in body["cards"]
        if (card.get("source", {}).get("topic") or {}).get("code") == RULE
    ]


def assert_one_quinine_card(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = quinine_cards(response.get_json())
    assert len(cards) == 1, response.get_json()
    assert cards[0]["indicator"] == "critical"
    return cards[0]


def assert_no_quinine_card(response: Any) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert quinine_cards(response.get_json()) == [], response.get_json()


def assert_412_for(response: Any, *keys: str) -> dict[str, Any]:
    """412 OperationOutcome naming exactly `keys`, saying nothing of the token or patient id."""
    body = assert_operation_outcome(response, 412)
    named = sorted(e for issue in body["issue"] for e in issue.get("expression", []))
    assert named == sorted(f"prefetch.{key}" for key in keys), body
    text = response.get_data(as_text=True)
    assert TOKEN not in text
    assert PATIENT_ID not in text
    return body


def fhir_base(server: HTTPServer) -> str:
    return server.url_for("/fhir")


def received(server: HTTPServer) -> list[tuple[str, str]]:
    """(path, query string) of every request the server got, in order."""
    return [(req.path, req.query_string.decode()) for req, _ in server.log]


def paths(server: HTTPServer) -> list[str]:
    return [req.path for req, _ in server.log]


def serve_json(server: HTTPServer, path: str, body: Any, status: int = 200,
               query_string: str | None = None) -> None:
    server.expect_request(path, query_string=query_string).respond_with_json(
        body, status=status, content_type=FHIR_JSON
    )


def serve_chart(server: HTTPServer, resources: list[dict[str, Any]]) -> None:
    """Patient read, Condition, MedicationRequest and each declared Observation search over
    `resources`."""
    patient = of_type(resources, "Patient")[0]
    serve_json(server, f"/fhir/Patient/{patient['id']}", patient)
    serve_json(server, "/fhir/Condition", searchset(of_type(resources, "Condition")))
    active = [r for r in of_type(resources, "MedicationRequest") if r.get("status") == "active"]
    serve_json(server, "/fhir/MedicationRequest", searchset(active))
    serve_observation_searches(server, patient["id"], of_type(resources, "Observation"))


def declared_keys(service_id: str) -> list[str]:
    return sorted(declared_prefetch(service_id))


def every_declared_request(service_id: str, *supplied: str) -> list[tuple[str, Any]]:
    """Sorted (path, query) of the fetch of every key `service_id` declares but `supplied`."""
    return sorted(
        expected_request(template, PATIENT_ID)
        for key, template in declared_prefetch(service_id).items()
        if key not in supplied
    )


def caller(make_app: Callable[..., Any], cfg: Config) -> Callable[[str, dict[str, Any]], Any]:
    """Like the `call` fixture, for an app built from `cfg`."""
    return make_caller(make_app(cfg).test_client())


def patient_view_without(server: HTTPServer, *absent: str, **values: Any) -> dict[str, Any]:
    """The full-prefetch patient-view request against `server`, `absent` keys removed."""
    request = load_request("patient-view-full-prefetch", fhirServer=fhir_base(server))
    for key in absent:
        del request["prefetch"][key]
    request["prefetch"].update(values)
    return request


def order_sign_fetching_conditions(server: HTTPServer) -> dict[str, Any]:
    """order-sign of a quinine draft: `conditions` left to fetch, every other declared key
    prefetched (`patient` by the partial fixture, the rest from cramps-001's full prefetch)."""
    request = load_request("order-sign-quinine-partial-prefetch", fhirServer=fhir_base(server))
    chart_prefetch = load_request("patient-view-full-prefetch")["prefetch"]
    for key in declared_prefetch(ORDER_SIGN):
        if key != "conditions":
            request["prefetch"].setdefault(key, chart_prefetch[key])
    assert set(declared_prefetch(ORDER_SIGN)) - set(request["prefetch"]) == {"conditions"}
    return request




@pytest.fixture
def other_host() -> Iterator[HTTPServer]:
    """A second FHIR-like server on another loopback address, serving valid pages."""
    server = HTTPServer(host="127.0.0.2", port=0)
    server.start()
    server.expect_request("/fhir/Condition").respond_with_json(
        searchset([]), content_type=FHIR_JSON)
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


# --- 1. no prefetch: every key fetched --------------------------------------------------------


@pytest.mark.parametrize("with_token", [True, False], ids=["fhirAuthorization", "open-server"])
def test_patient_view_without_prefetch_fetches_every_key_and_finds_the_quinine(
    call, httpserver, with_token
):
    serve_chart(httpserver, chart())
    request = load_request("patient-view-no-prefetch", fhirServer=fhir_base(httpserver))
    if with_token:
        request["fhirAuthorization"] = load_request("patient-view-full-prefetch")[
            "fhirAuthorization"]

    response = call(PATIENT_VIEW, request)

    card = assert_one_quinine_card(response)
    assert card["source"]["topic"]["code"] == RULE
    # each key discovery declares, fetched once with exactly its template's query
    assert sorted(received_requests(httpserver)) == every_declared_request(PATIENT_VIEW)
    assert ("/fhir/Condition", "patient=cramps-001") in received(httpserver)
    assert ("/fhir/MedicationRequest", "patient=cramps-001&status=active") in received(httpserver)
    assert ("/fhir/Patient/cramps-001", "") in received(httpserver)
    for req, _ in httpserver.log:
        assert req.headers.get("Accept") == FHIR_JSON
        if with_token:
            assert req.headers.get("Authorization") == f"Bearer {TOKEN}"
        else:
            assert "Authorization" not in req.headers


def test_fetched_data_is_what_the_rules_judge(call, httpserver):
    """The same request with active malaria on the server: the fetched Condition silences Q1."""
    resources = [*chart(), active_malaria()]
    serve_chart(httpserver, resources)
    request = load_request("patient-view-no-prefetch", fhirServer=fhir_base(httpserver))

    assert_no_quinine_card(call(PATIENT_VIEW, request))
    assert sorted(received_requests(httpserver)) == every_declared_request(PATIENT_VIEW)


def test_patient_read_answered_404_means_no_patient_data_not_412(call, httpserver):
    serve_json(httpserver, "/fhir/Patient/cramps-001",
               {"resourceType": "OperationOutcome", "issue": [
                   {"severity": "error", "code": "not-found"}]}, status=404)
    request = patient_view_without(httpserver, "patient")

    assert_one_quinine_card(call(PATIENT_VIEW, request))
    assert received(httpserver) == [("/fhir/Patient/cramps-001", "")]


# --- 2. partial prefetch ----------------------------------------------------------------------


def test_partial_prefetch_fetches_only_the_missing_keys(call, httpserver):
    serve_chart(httpserver, chart())
    request = load_request("order-sign-quinine-partial-prefetch", fhirServer=fhir_base(httpserver))
    assert set(request["prefetch"]) == {"patient"}

    assert_one_quinine_card(call(ORDER_SIGN, request))
    assert sorted(received_requests(httpserver)) == every_declared_request(ORDER_SIGN, "patient")
    assert "/fhir/Patient/cramps-001" not in paths(httpserver)
    for req, _ in httpserver.log:
        assert req.headers.get("Authorization") == f"Bearer {TOKEN}"


def test_partial_prefetch_missing_one_key_fetches_only_that_key(call, httpserver):
    serve_chart(httpserver, chart())
    request = order_sign_fetching_conditions(httpserver)

    assert_one_quinine_card(call(ORDER_SIGN, request))
    assert received(httpserver) == [("/fhir/Condition", "patient=cramps-001")]
    assert httpserver.log[0][0].headers.get("Authorization") == f"Bearer {TOKEN}"


# --- 3. null: no data, never fetched ----------------------------------------------------------


@pytest.mark.parametrize("key", declared_keys(PATIENT_VIEW))
def test_a_key_given_as_null_is_never_requested(call, httpserver, key):
    serve_chart(httpserver, [*chart(), active_malaria()])  # fetching would change the answer
    request = patient_view_without(httpserver, key, **{key: None})

    response = call(PATIENT_VIEW, request)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert httpserver.log == []
    if key == "activeMedications":
        assert_no_quinine_card(response)  # no active medications: nothing to judge
    else:
        assert_one_quinine_card(response)


def test_every_key_null_sends_nothing_even_without_fhir_server(call):
    request = load_request("patient-view-no-prefetch")
    del request["fhirServer"]
    request["prefetch"] = dict.fromkeys(declared_prefetch(PATIENT_VIEW))

    response = call(PATIENT_VIEW, request)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["cards"] == []


# --- 4. OperationOutcome: the client's fetch failed, fetch it ---------------------------------


def test_a_key_given_as_operation_outcome_is_fetched(call, httpserver):
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "timeout"}]}
    serve_json(httpserver, "/fhir/Condition", searchset([*of_type(chart(), "Condition"),
                                                         active_malaria()]))
    request = patient_view_without(httpserver, "conditions", conditions=outcome)

    response = call(PATIENT_VIEW, request)

    assert received(httpserver) == [("/fhir/Condition", "patient=cramps-001")]
    assert_no_quinine_card(response)  # the fetched malaria was used, not the OperationOutcome


def test_operation_outcome_key_without_fhir_server_is_412(call):
    request = load_request("patient-view-full-prefetch")
    del request["fhirServer"]
    del request["fhirAuthorization"]
    request["prefetch"]["conditions"] = {"resourceType": "OperationOutcome",
                                         "issue": [{"severity": "error", "code": "exception"}]}

    assert_412_for(call(PATIENT_VIEW, request), "conditions")


# --- 5. paged Bundles -------------------------------------------------------------------------


def test_prefetched_bundle_next_link_is_followed_for_quinine_on_page_two(call, httpserver):
    medications = of_type(chart(), "MedicationRequest")
    hctz, quinine = medications[0], medications[1]
    page_two = fhir_base(httpserver) + "?_getpages=meds&_getpagesoffset=1"
    serve_json(httpserver, "/fhir", searchset([quinine]),
               query_string="_getpages=meds&_getpagesoffset=1")
    request = patient_view_without(httpserver, "activeMedications",
                                   activeMedications=searchset([hctz], next_url=page_two))

    card = assert_one_quinine_card(call(PATIENT_VIEW, request))

    assert "cramps-001-m2" not in card["detail"] and "active" in card["detail"]
    assert received(httpserver) == [("/fhir", "_getpages=meds&_getpagesoffset=1")]
    assert httpserver.log[0][0].headers.get("Authorization") == f"Bearer {TOKEN}"


def test_prefetched_bundle_without_next_link_sends_nothing(call, httpserver):
    medications = of_type(chart(), "MedicationRequest")
    request = patient_view_without(httpserver, "activeMedications",
                                   activeMedications=searchset([medications[0]]))

    assert_no_quinine_card(call(PATIENT_VIEW, request))
    assert httpserver.log == []


@pytest.mark.parametrize("malaria_on_page_two", [True, False], ids=["malaria", "no-malaria"])
def test_fetched_search_second_page_is_read_for_malaria(call, httpserver, malaria_on_page_two):
    conditions = of_type(chart(), "Condition")
    page_two = fhir_base(httpserver) + "?_getpages=cond&_getpagesoffset=3"
    serve_json(httpserver, "/fhir/Condition", searchset(conditions, next_url=page_two))
    second = [active_malaria()] if malaria_on_page_two else []
    serve_json(httpserver, "/fhir", searchset(second),
               query_string="_getpages=cond&_getpagesoffset=3")

    response = call(ORDER_SIGN, order_sign_fetching_conditions(httpserver))

    assert received(httpserver) == [("/fhir/Condition", "patient=cramps-001"),
                                    ("/fhir", "_getpages=cond&_getpagesoffset=3")]
    if malaria_on_page_two:
        assert_no_quinine_card(response)
    else:
        assert_one_quinine_card(response)


# --- 6. page cap and foreign next links -------------------------------------------------------


def chain_of_pages(server: HTTPServer, count: int, first: list[dict[str, Any]]) -> None:
    """A Condition search of `count` pages: /fhir/Condition, then /fhir?page=2..count."""
    def url(number: int) -> str | None:
        return fhir_base(server) + f"?page={number}" if number <= count else None

    serve_json(server, "/fhir/Condition", searchset(first, next_url=url(2)))
    for number in range(2, count + 1):
        serve_json(server, "/fhir", searchset([], next_url=url(number + 1)),
                   query_string=f"page={number}")


def test_search_of_exactly_max_pages_is_accepted(make_app, httpserver):
    post = caller(make_app, load_config(None, overrides={"fhir": {"max_pages": 3}}))
    chain_of_pages(httpserver, 3, of_type(chart(), "Condition"))

    assert_one_quinine_card(post(ORDER_SIGN, order_sign_fetching_conditions(httpserver)))
    assert len(httpserver.log) == 3


def test_search_with_more_pages_than_max_pages_is_412_naming_the_key(make_app, httpserver):
    post = caller(make_app, load_config(None, overrides={"fhir": {"max_pages": 3}}))
    chain_of_pages(httpserver, 4, of_type(chart(), "Condition"))

    assert_412_for(post(ORDER_SIGN, order_sign_fetching_conditions(httpserver)), "conditions")
    assert ("/fhir", "page=4") not in received(httpserver)


def test_prefetched_bundle_counts_as_the_first_of_max_pages(make_app, httpserver):
    post = caller(make_app, load_config(None, overrides={"fhir": {"max_pages": 2}}))
    base = fhir_base(httpserver)
    serve_json(httpserver, "/fhir", searchset([], next_url=base + "?page=3"),
               query_string="page=2")
    serve_json(httpserver, "/fhir", searchset([]), query_string="page=3")
    request = patient_view_without(
        httpserver, "conditions",
        conditions=searchset(of_type(chart(), "Condition"), next_url=base + "?page=2"))

    assert_412_for(post(PATIENT_VIEW, request), "conditions")
    assert ("/fhir", "page=3") not in received(httpserver)


def test_prefetched_next_link_to_another_host_is_refused(call, httpserver, other_host):
    foreign = other_host.url_for("/fhir/Condition") + "?page=2"
    request = patient_view_without(
        httpserver, "conditions",
        conditions=searchset(of_type(chart(), "Condition"), next_url=foreign))

    assert_412_for(call(PATIENT_VIEW, request), "conditions")
    assert other_host.log == []
    assert httpserver.log == []


def test_fetched_page_linking_to_another_host_is_refused(call, httpserver, other_host):
    foreign = other_host.url_for("/fhir/Condition") + "?page=2"
    serve_json(httpserver, "/fhir/Condition",
               searchset(of_type(chart(), "Condition"), next_url=foreign))

    assert_412_for(call(ORDER_SIGN, order_sign_fetching_conditions(httpserver)), "conditions")
    assert other_host.log == []
    assert received(httpserver) == [("/fhir/Condition", "patient=cramps-001")]


def test_next_link_to_the_unreachable_address_of_the_brief_is_refused(call, httpserver, caplog):
    request = patient_view_without(
        httpserver, "conditions",
        conditions=searchset(of_type(chart(), "Condition"),
                             next_url="http://127.0.0.2:1/fhir/Condition?page=2"))

    body = assert_412_for(call(PATIENT_VIEW, request), "conditions")
    why = unobtainable(caplog)["conditions"]
    assert "outside" in why["reason"] and why["code"] == "outside_base"  # not "unreachable"
    assert "outside" not in body["issue"][0]["diagnostics"]  # the caller learns the key only


def test_next_link_on_the_same_host_outside_the_base_path_is_refused(call, httpserver):
    serve_json(httpserver, "/other/Condition", searchset([]))
    request = patient_view_without(
        httpserver, "conditions",
        conditions=searchset(of_type(chart(), "Condition"),
                             next_url=httpserver.url_for("/other/Condition") + "?page=2"))

    assert_412_for(call(PATIENT_VIEW, request), "conditions")
    assert httpserver.log == []


def test_patient_id_with_dot_segments_never_reaches_outside_the_base(call, httpserver):
    serve_chart(httpserver, chart())
    httpserver.expect_request("/outside").respond_with_json(
        {"resourceType": "Patient", "id": "outside"}, content_type=FHIR_JSON)
    request = load_request("patient-view-no-prefetch", fhirServer=fhir_base(httpserver))
    request["fhirAuthorization"] = load_request("patient-view-full-prefetch")["fhirAuthorization"]
    request["context"]["patientId"] = "../../outside"

    response = call(PATIENT_VIEW, request)

    # The escaped id holds an encoded slash, so the Patient read is refused before sending.
    outside = [path for path in paths(httpserver) if not path.startswith("/fhir/")]
    assert outside == []
    assert "/fhir/Patient/..%2F..%2Foutside" not in paths(httpserver)
    assert response.status_code == 412


# --- 7. FHIR server failures ------------------------------------------------------------------


def test_fhir_server_answering_401_is_412_naming_the_key(call, httpserver):
    serve_json(httpserver, "/fhir/Condition",
               {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "login"}]}, status=401)

    assert_412_for(call(ORDER_SIGN, order_sign_fetching_conditions(httpserver)), "conditions")
    assert len(httpserver.log) == 1


def test_fhir_server_slower_than_read_timeout_is_412(make_app, httpserver):
    post = caller(make_app, load_config(None, overrides={"fhir": {"read_timeout_seconds": 0.3}}))
    slow = HeldHandler(httpserver, searchset([]))
    httpserver.expect_request("/fhir/Condition").respond_with_handler(slow)
    try:
        response = post(ORDER_SIGN, order_sign_fetching_conditions(httpserver))
    finally:
        slow.finish()

    assert_412_for(response, "conditions")


def test_redirect_is_not_followed_and_is_412(call, httpserver):
    target = httpserver.url_for("/fhir/Condition-moved")
    httpserver.expect_request("/fhir/Condition").respond_with_data(
        "", status=302, headers={"Location": target})
    serve_json(httpserver, "/fhir/Condition-moved", searchset([]))

    assert_412_for(call(ORDER_SIGN, order_sign_fetching_conditions(httpserver)), "conditions")
    assert paths(httpserver) == ["/fhir/Condition"]


def test_non_json_answer_is_412(call, httpserver):
    httpserver.expect_request("/fhir/Condition").respond_with_data(
        "<html><body>Login</body></html>", content_type="text/html")

    assert_412_for(call(ORDER_SIGN, order_sign_fetching_conditions(httpserver)), "conditions")


def test_search_answered_with_something_other_than_a_bundle_is_412(call, httpserver):
    serve_json(httpserver, "/fhir/Condition", of_type(chart(), "Condition")[0])

    assert_412_for(call(ORDER_SIGN, order_sign_fetching_conditions(httpserver)), "conditions")


def test_unreachable_fhir_server_is_412(call, caplog):
    request = load_request("order-sign-quinine-partial-prefetch",
                           fhirServer="http://127.0.0.1:1/fhir")  # allowed, nothing listens

    body = assert_412_for(call(ORDER_SIGN, request),
                          *(set(declared_prefetch(ORDER_SIGN)) - {"patient"}))
    logged = unobtainable(caplog)
    assert sorted(logged) == sorted(set(declared_prefetch(ORDER_SIGN)) - {"patient"})
    for issue in body["issue"]:
        why = logged[issue["expression"][0].split(".")[1]]
        assert why["code"] in ("unreachable", "circuit_open"), why  # breaker: after 5 faults
        assert "reached" not in issue["diagnostics"]
    assert any(why["code"] == "unreachable" for why in logged.values())


# --- 8. nothing to fetch from -----------------------------------------------------------------


def test_no_prefetch_and_no_fhir_server_is_412_naming_every_missing_key(call):
    request = load_request("patient-view-no-prefetch")
    del request["fhirServer"]

    body = assert_412_for(call(PATIENT_VIEW, request), *declared_keys(PATIENT_VIEW))
    assert {issue["code"] for issue in body["issue"]} == {"incomplete"}


def test_partial_prefetch_without_fhir_server_names_only_the_missing_keys(call):
    request = load_request("order-sign-quinine-partial-prefetch")
    del request["fhirServer"]
    del request["fhirAuthorization"]
    missing = set(declared_prefetch(ORDER_SIGN)) - {"patient"}
    assert set(request["prefetch"]) == {"patient"} and "conditions" in missing

    assert_412_for(call(ORDER_SIGN, request), *missing)


def test_prefetch_missing_only_conditions_without_fhir_server_names_only_conditions(
    call, httpserver
):
    request = order_sign_fetching_conditions(httpserver)
    del request["fhirServer"]
    del request["fhirAuthorization"]

    assert_412_for(call(ORDER_SIGN, request), "conditions")


# --- 9. parallel fetching (unit) --------------------------------------------------------------


class BarrierServer:
    """A fake FhirServer whose calls each wait for another call to arrive."""

    slots = None  # no per-server gate

    def __init__(self, parties: int = 2):
        self.barrier = threading.Barrier(parties, timeout=5)
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _arrive(self, kind: str, relative: str) -> None:
        with self._lock:
            self.calls.append((kind, relative))
        self.barrier.wait()

    def read(self, relative: str) -> dict[str, Any] | None:
        self._arrive("read", relative)
        return {"resourceType": "Patient", "id": "p1"}

    def search(self, relative: str) -> list[dict[str, Any]]:
        self._arrive("search", relative)
        return [searchset([{"resourceType": "Condition", "id": "c1"}])]

    def follow(self, bundle: dict[str, Any]) -> list[dict[str, Any]]:
        return []


def test_missing_keys_are_fetched_in_parallel():
    server = BarrierServer(parties=2)
    with ThreadPoolExecutor(4) as executor:
        resolved = resolve((data.PATIENT, data.CONDITIONS), None, {"patientId": "p1"},
                           server, executor)  # type: ignore[arg-type]

    assert sorted(server.calls) == [("read", "Patient/p1"), ("search", "Condition?patient=p1")]
    assert sorted(resolved.fetched) == ["conditions", "patient"]
    assert resolved.resources["patient"] == [{"resourceType": "Patient", "id": "p1"}]
    assert resolved.resources["conditions"] == [{"resourceType": "Condition", "id": "c1"}]


def unobtainable(caplog: Any) -> dict[str, dict[str, str]]:
    """What the last 412 logged: key -> reason and code (never sent to the caller)."""
    records = [r for r in caplog.records if r.name == "legcramp_cds.prefetch"]
    assert records, "no prefetch log line"
    return records[-1].unobtainable


def test_one_failed_fetch_names_its_key_and_not_the_others():
    class HalfBroken:
        slots = None

        def read(self, relative: str) -> dict[str, Any] | None:
            return {"resourceType": "Patient", "id": "p1"}

        def search(self, relative: str) -> list[dict[str, Any]]:
            raise FhirError("FHIR server answered 503", 503)

    with ThreadPoolExecutor(4) as executor, pytest.raises(DataUnavailable) as caught:
        resolve((data.PATIENT, data.CONDITIONS), None, {"patientId": "p1"},
                HalfBroken(), executor)  # type: ignore[arg-type]

    assert status_of(caught.value) == 412
    assert caught.value.missing == {"conditions": "FHIR server answered 503"}


def test_user_id_template_is_fetched_as_a_read():
    calls: list[tuple[str, str]] = []
    practitioner = {"resourceType": "Practitioner", "id": "abc"}

    class Server:
        slots = None

        def read(self, relative: str) -> dict[str, Any] | None:
            calls.append(("read", relative))
            return practitioner

        def search(self, relative: str) -> list[dict[str, Any]]:
            calls.append(("search", relative))
            raise FhirError("FHIR search did not answer with a Bundle", 200)

    user = DataRequirement("user", "{{context.userId}}")
    with ThreadPoolExecutor(2) as executor:
        resolved = resolve((user,), None, {"userId": "Practitioner/abc"},
                           Server(), executor)  # type: ignore[arg-type]

    assert calls == [("read", "Practitioner/abc")]
    assert resolved.resources["user"] == [practitioner]


# --- 10. templates (unit) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "patient_id", "expected"),
    [
        ("Patient/{{context.patientId}}", "a b", "Patient/a%20b"),
        ("Condition?patient={{context.patientId}}", "x&status=active",
         "Condition?patient=x%26status%3Dactive"),
        ("Condition?patient={{ context.patientId }}", "p+1#2", "Condition?patient=p%2B1%232"),
        ("MedicationRequest?patient={{context.patientId}}&status=active", "cramps-001",
         "MedicationRequest?patient=cramps-001&status=active"),
    ],
)
def test_fill_template_url_escapes_context_values(template, patient_id, expected):
    assert fill_template(template, {"patientId": patient_id}) == expected


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [
        ("Patient/{{context.patientId}}", {"patientId": "../../outside"},
         "Patient/..%2F..%2Foutside"),
        ("Encounter/{{context.encounterId}}", {"encounterId": "a/b"}, "Encounter/a%2Fb"),
        ("{{context.userId}}", {"userId": "Practitioner/abc"}, "Practitioner/abc"),
        ("{{context.userId}}", {"userId": "PractitionerRole/r 1"}, "PractitionerRole/r%201"),
        ("Practitioner/{{userPractitionerId}}", {"userId": "Practitioner/a/../b"},
         "Practitioner/a%2F..%2Fb"),
    ],
)
def test_fill_template_keeps_ids_inside_one_path_segment(template, context, expected):
    assert fill_template(template, context) == expected


@pytest.mark.parametrize(
    ("token", "user_id", "expected"),
    [
        ("userPractitionerId", "Practitioner/abc", "abc"),
        ("userPractitionerRoleId", "PractitionerRole/role-1", "role-1"),
        ("userPatientId", "Patient/p 1", "p%201"),
        ("userRelatedPersonId", "RelatedPerson/rp-9", "rp-9"),
    ],
)
def test_fill_template_fills_user_tokens_from_user_id(token, user_id, expected):
    assert fill_template(f"X?who={{{{{token}}}}}", {"userId": user_id}) == f"X?who={expected}"


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("Encounter/{{context.encounterId}}", {"patientId": "p1"}),
        ("Encounter/{{context.encounterId}}", {"encounterId": ""}),
        ("Patient/{{userPatientId}}", {"userId": "Practitioner/abc"}),
        ("Practitioner/{{userPractitionerId}}", {"userId": "Practitioner"}),
        ("Practitioner/{{userPractitionerId}}", {}),
        ("Patient/{{context.patientId}}", {"patientId": ["p1"]}),
    ],
)
def test_fill_template_raises_for_a_token_without_value(template, context):
    with pytest.raises(TemplateError):
        fill_template(template, context)


@pytest.mark.parametrize(
    "template",
    [
        "MedicationRequest/{{context.draftOrders}}",
        "Medication/{{context.medication.id}}",
        "Observation?date=gt{{today()}}",
        "Patient/{{Patient.id}}",
        "Condition?patient={{context.patientId}}&x={{context.selections}}",
    ],
)
def test_validate_template_rejects_tokens_2_0_does_not_allow(template):
    with pytest.raises(TemplateError):
        validate_template(template, "order-sign")


@pytest.mark.parametrize("hook", ["patient-view", "order-select", "order-sign",
                                  "medication-refill"])
@pytest.mark.parametrize(
    "template",
    [
        "Patient/{{context.patientId}}",
        "{{context.userId}}",
        "Encounter/{{context.encounterId}}",
        "PractitionerRole/{{userPractitionerRoleId}}",
        "Practitioner/{{userPractitionerId}}",
        "Condition?patient={{context.patientId}}&encounter={{context.encounterId}}",
    ],
)
def test_validate_template_accepts_2_0_tokens(template, hook):
    validate_template(template, hook)


def test_every_template_in_live_discovery_is_valid_for_its_hook(client):
    services = client.get("/cds-services").get_json()["services"]
    templates = [(s["hook"], t) for s in services for t in (s.get("prefetch") or {}).values()]

    assert len(templates) == sum(len(declared_prefetch(s["id"])) for s in services)
    assert {hook for hook, _ in templates} == {"patient-view", "order-select", "order-sign",
                                               "medication-refill"}
    for hook, template in templates:
        validate_template(template, hook)
        filled = fill_template(template, {"patientId": "p1", "userId": "Practitioner/u1"})
        assert "{{" not in filled


def loinc_search(*codes: str) -> str:
    """The documented lab template: Observation by LOINC codes, newest first, no date token."""
    code = ",".join(f"http://loinc.org|{c}" for c in codes)
    return f"Observation?patient={{{{context.patientId}}}}&code={code}&_sort=-date"


IRON_STUDIES_LOINC = (
    "2276-4", "20567-4", "24373-3",  # ferritin
    "2502-3", "14801-5",  # transferrin saturation
    "2498-4", "14798-3",  # serum iron
    "2500-7", "14800-7",  # TIBC
)
ELECTROLYTES_LOINC = (
    "2823-3", "6298-4", "77142-8", "39789-3", "32713-0", "22760-3", "75940-7", "12812-4",
    "12813-2",  # potassium
    "19123-9", "2601-3",  # magnesium
    "17861-6", "2000-8", "49765-1", "29265-6",  # total calcium
    "1994-3", "1995-0", "17863-2", "17864-0", "12180-6",  # ionised calcium
    "1751-7",  # albumin
)


def test_live_discovery_declares_the_documented_prefetch(client):
    from hooks.valuesets import documents, lab

    by_id = {s["id"]: s.get("prefetch") for s in client.get("/cds-services").get_json()["services"]}
    documented = {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "activeMedications": "MedicationRequest?patient={{context.patientId}}&status=active",
        "ironStudies": loinc_search(*IRON_STUDIES_LOINC),
        "electrolytes": loinc_search(*ELECTROLYTES_LOINC),
        "vitaminB6": loinc_search(*lab("vitamin-b6").loinc_codes),
        # The safety gates (issue 16): stopped MAO inhibitors, eGFR, pregnancy tests.
        # Bounded by code: an order carries an ingredient, clinical or branded drug code.
        "maoInhibitorHistory": (
            "MedicationRequest?patient={{context.patientId}}&status=completed,stopped,on-hold"
            "&code=" + ",".join(
                f"{c['system']}|{c['code']}" for c in documents()["mao-inhibitors"]["codes"]
                if c["kind"] in ("ingredient", "SCD", "SBD", "GPCK", "BPCK"))),
        "kidneyFunction": loinc_search(*lab("egfr").loinc_codes),
        "pregnancyTests": loinc_search("2106-3", "2118-8", "2110-5", "2112-1"),
    }
    at_order_entry = {k: v for k, v in documented.items() if k != "vitaminB6"}  # V1: view only
    assert by_id["legcramp-order-select"] == at_order_entry
    assert by_id["legcramp-order-sign"] == at_order_entry
    assert by_id[PATIENT_VIEW] == documented
    # Refills run the order-safety rules only: no iron or electrolyte searches.
    refill = {k: v for k, v in at_order_entry.items() if k not in ("ironStudies", "electrolytes")}
    assert by_id["legcramp-medication-refill"] == refill


def test_lab_searches_ask_for_every_loinc_code_of_the_value_sets_the_rules_judge():
    from hooks.valuesets import lab

    def codes(*value_sets: str) -> list[str]:
        return [code for vs in value_sets for code in lab(vs).loinc_codes]

    assert list(IRON_STUDIES_LOINC) == codes(
        "ferritin", "transferrin-saturation", "serum-iron", "tibc")
    assert list(ELECTROLYTES_LOINC) == codes("potassium", "magnesium", "calcium-total",
                                             "calcium-ionized", "albumin")


# --- 11. medicationReference read from the server ---------------------------------------------


def medication_reference_request(server: HTTPServer) -> dict[str, Any]:
    return load_request("order-sign-medication-reference-server", fhirServer=fhir_base(server))


def test_medication_reference_not_in_the_request_is_read_from_the_server(call, httpserver):
    serve_json(httpserver, "/fhir/Medication/quinine-324",
               load_fixture("patients/medication-quinine-324.json"))

    card = assert_one_quinine_card(call(ORDER_SIGN, medication_reference_request(httpserver)))

    assert "draft-quinine-srv" in json.dumps(card)
    assert received(httpserver) == [("/fhir/Medication/quinine-324", "")]
    assert httpserver.log[0][0].headers.get("Accept") == FHIR_JSON


def assert_412_naming_the_medication(response: Any) -> None:
    """Fail closed: the order could not be judged, and the answer says which reference."""
    body = assert_operation_outcome(response, 412)
    [issue] = body["issue"]
    assert issue["code"] == "incomplete"
    assert "'Medication/quinine-324' could not be read" in issue["diagnostics"]


def test_medication_reference_answered_404_is_412_naming_it(call, httpserver):
    serve_json(httpserver, "/fhir/Medication/quinine-324",
               {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-found"}]}, status=404)

    assert_412_naming_the_medication(
        call(ORDER_SIGN, medication_reference_request(httpserver)))
    assert paths(httpserver) == ["/fhir/Medication/quinine-324"]


@pytest.mark.parametrize("status", [500, 503, 401, 403])
def test_medication_reference_the_server_fails_to_give_is_412_never_a_silent_200(
        call, httpserver, status):
    """The brief's case: a quinine order by reference with its server failing used to get 200
    with no cards, the critical card silently gone."""
    serve_json(httpserver, "/fhir/Medication/quinine-324",
               {"resourceType": "OperationOutcome", "issue": []}, status=status)
    response = call(ORDER_SIGN, medication_reference_request(httpserver))
    assert_412_naming_the_medication(response)
    assert str(status) not in json.dumps(response.get_json())  # why stays in the log


def test_medication_reference_on_an_unreachable_server_is_412(call):
    request = load_request("order-sign-medication-reference-server",
                           fhirServer=f"http://127.0.0.1:{free_port()}/fhir")
    assert_412_naming_the_medication(call(ORDER_SIGN, request))


def test_medication_reference_with_no_fhir_server_to_read_it_from_is_412(call):
    request = load_request("order-sign-medication-reference-server")
    request.pop("fhirServer")
    request.pop("fhirAuthorization", None)
    assert_412_naming_the_medication(call(ORDER_SIGN, request))


def test_contained_medication_is_not_read_from_the_server(call, httpserver):
    request = load_request("order-sign-medication-reference-contained",
                           fhirServer=fhir_base(httpserver))

    assert_one_quinine_card(call(ORDER_SIGN, request))
    assert httpserver.log == []


# --- 11b. the same on medication-refill: its refill requests are resolved as draft orders are --


REFILL = "legcramp-medication-refill"


def as_refill(request: dict[str, Any]) -> dict[str, Any]:
    """An order-sign request sent as medication-refill: its drafts are the refill requests."""
    request = copy.deepcopy(request)
    request["hook"] = "medication-refill"
    context = request["context"]
    context["medications"] = context.pop("draftOrders")
    context.pop("userId")
    return request


def test_refill_medication_reference_is_read_from_the_server_and_q1_deletes_the_refill(
        call, httpserver):
    serve_json(httpserver, "/fhir/Medication/quinine-324",
               load_fixture("patients/medication-quinine-324.json"))

    card = assert_one_quinine_card(call(REFILL, as_refill(medication_reference_request(
        httpserver))))

    [action] = card["suggestions"][0]["actions"]
    assert action == {"type": "delete", "resourceId": "MedicationRequest/draft-quinine-srv",
                      "description": "Decline the quinine refill request"}
    assert received(httpserver) == [("/fhir/Medication/quinine-324", "")]


@pytest.mark.parametrize("status", [404, 500])
def test_refill_medication_reference_the_server_fails_to_give_is_412_naming_it(
        call, httpserver, status):
    serve_json(httpserver, "/fhir/Medication/quinine-324",
               {"resourceType": "OperationOutcome", "issue": []}, status=status)
    assert_412_naming_the_medication(
        call(REFILL, as_refill(medication_reference_request(httpserver))))


def test_refill_medication_reference_with_no_fhir_server_to_read_it_from_is_412(call):
    request = as_refill(load_request("order-sign-medication-reference-server"))
    request.pop("fhirServer")
    request.pop("fhirAuthorization", None)
    assert_412_naming_the_medication(call(REFILL, request))


def test_refill_medication_in_the_medications_bundle_resolves_the_reference(call, httpserver):
    """A Medication sent beside the refill request in the Bundle is used, as in draftOrders."""
    request = as_refill(medication_reference_request(httpserver))
    request["context"]["medications"]["entry"].append(
        {"resource": load_fixture("patients/medication-quinine-324.json")})
    assert_one_quinine_card(call(REFILL, request))
    assert httpserver.log == []


# --- 12. a reason Condition the order cites, read from the server -----------------------------


def quinine_with_reason(server: HTTPServer, reference: str) -> dict[str, Any]:
    request = load_request("order-sign-medication-reference-server",
                           fhirServer=fhir_base(server))
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["reasonReference"] = [{"reference": reference}]
    serve_json(server, "/fhir/Medication/quinine-324",
               load_fixture("patients/medication-quinine-324.json"))
    return request


def condition(condition_id: str, system: str, code: str, display: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": condition_id, "subject": {
        "reference": "Patient/cramps-001"}, "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": system, "code": code, "display": display}]}}


def test_a_reason_condition_not_in_the_request_is_read_and_malaria_keeps_q1_quiet(
        call, httpserver):
    serve_json(httpserver, "/fhir/Condition/reason-1", condition(
        "reason-1", "http://snomed.info/sct", "61462000", "Malaria"))
    response = call(ORDER_SIGN, quinine_with_reason(httpserver, "Condition/reason-1"))
    assert_no_quinine_card(response)
    assert "/fhir/Condition/reason-1" in paths(httpserver)


def test_a_reason_condition_read_from_the_server_that_is_not_malaria_leaves_q1_firing(
        call, httpserver):
    serve_json(httpserver, "/fhir/Condition/reason-2", condition(
        "reason-2", "http://snomed.info/sct", "55300003", "Cramp"))
    assert_one_quinine_card(call(ORDER_SIGN, quinine_with_reason(httpserver,
                                                                 "Condition/reason-2")))


@pytest.mark.parametrize("status", [404, 500])
@pytest.mark.parametrize("hook", ["order-sign", "medication-refill"])
def test_a_reason_condition_that_cannot_be_read_is_412_naming_it(call, httpserver, status, hook):
    """It could be malaria: Q1 may neither fire nor stay quiet on a guess."""
    serve_json(httpserver, "/fhir/Condition/reason-3",
               {"resourceType": "OperationOutcome", "issue": []}, status=status)
    request = quinine_with_reason(httpserver, "Condition/reason-3")
    if hook == "medication-refill":
        response = call(REFILL, as_refill(request))
    else:
        response = call(ORDER_SIGN, request)
    body = assert_operation_outcome(response, 412)
    assert "reasonReference 'Condition/reason-3' could not be read" in body["issue"][0][
        "diagnostics"]
