"""Property-based fuzzing of the HTTP surface: whatever arrives, never a 5xx, always JSON.

(a) arbitrary JSON (and bytes) to every service and feedback endpoint, and random queries to
discovery; (b) valid fixture requests with random mutations (keys deleted, values replaced with
random JSON, entries duplicated, types changed); (c) after a burst of garbage the service still
answers a valid request with its card. Every response is also held to the schemas by the
contract checker of `conftest.make_app`.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.pipeline import contracts
from hooks import build_services
from tests.conftest import FIXTURES, assert_valid_response, load_fixture, load_request

SERVICES = {s.id: s for s in build_services()}
SERVICE_PATHS = [f"/cds-services/{service_id}" for service_id in SERVICES]
POST_PATHS = SERVICE_PATHS + [f"{path}/feedback" for path in SERVICE_PATHS]
HOOKS = sorted({s.hook for s in SERVICES.values()})
QUININE_SUMMARY_START = "Quinine is not recommended for leg cramps"

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no .hypothesis directory in the repository
    derandomize=bool(os.environ.get("CI")),  # CI replays a fixed set; developers explore
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _service_for(request: dict[str, Any]) -> str:
    return next(s.id for s in SERVICES.values() if s.hook == request["hook"])


def _full_prefetch_fixtures() -> dict[str, dict[str, Any]]:
    """Fixture requests whose prefetch holds every key their service's discovery asks for."""
    found = {}
    for path in sorted((FIXTURES / "requests").glob("*.json")):
        request = load_fixture(f"requests/{path.name}")
        wanted = SERVICES[_service_for(request)].discovery_entry().get("prefetch") or {}
        if set(wanted) <= set(request.get("prefetch") or {}):
            found[Path(path).stem] = request
    return found


FULL_PREFETCH = _full_prefetch_fixtures()

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)  # infinity stays: json.dumps writes it as `Infinity`
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
# Shaped like a hook request, so fuzzing reaches past "the body must be an object".
hook_shaped = st.fixed_dictionaries(
    {
        "hook": st.sampled_from(HOOKS) | st.text(max_size=12),
        "hookInstance": st.text(max_size=40) | json_values,
        "context": st.dictionaries(
            st.sampled_from(["patientId", "userId", "selections", "draftOrders", "encounterId"])
            | st.text(max_size=8),
            json_values,
            max_size=5,
        ),
    },
    optional={
        "prefetch": st.dictionaries(st.text(max_size=12), json_values, max_size=5),
        "fhirServer": st.sampled_from(["http://127.0.0.1:9/fhir", "https://", "http://"])
        | json_values,
        "fhirAuthorization": json_values,
        "feedback": json_values,
    },
)
bodies = json_values | hook_shaped


def assert_sound(response: Any, path: str) -> Any:
    """Never a 5xx; always a JSON body, and the right schema for the status."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, (path, response.status_code, text)
    assert response.is_json, (path, response.status_code, response.mimetype)
    body = json.loads(text)
    if response.status_code >= 400:
        assert not contracts.violations("operation-outcome.schema.json", body), body
    return body


def post_json(client: Any, path: str, value: Any) -> Any:
    return client.post(path, data=json.dumps(value), content_type="application/json")


# --- 5xx the properties once found, kept as regression tests ----------------------------------


def unhashable_resource_type_example() -> dict[str, Any]:
    request = load_request("order-select-quinine-full-prefetch")
    entry = request["prefetch"]["electrolytes"]["entry"][1]["resource"]
    entry["resourceType"] = [entry["resourceType"], entry["resourceType"]]
    return request


def unknown_contained_type_example() -> dict[str, Any]:
    request = load_request("order-sign-medication-reference-contained")
    request["context"]["draftOrders"]["entry"][0]["resource"]["contained"][0]["resourceType"] = ""
    return request


def test_non_string_resource_type_in_a_prefetch_bundle_entry_is_skipped(client):
    """Was a 500 (TypeError in RecordBuilder.build), shrunk by hypothesis."""
    path = "/cds-services/legcramp-order-select"
    response = post_json(client, path, unhashable_resource_type_example())
    assert response.status_code == 200
    assert_sound(response, path)


def test_unknown_resource_type_in_contained_is_skipped(client):
    """Was a 500 (KeyError from fhir_core not caught in parse_resource), shrunk by hypothesis."""
    path = "/cds-services/legcramp-order-sign"
    response = post_json(client, path, unknown_contained_type_example())
    assert response.status_code == 200
    assert_sound(response, path)


# --- (a) arbitrary JSON -----------------------------------------------------------------------


@FUZZ
@given(path=st.sampled_from(POST_PATHS), value=bodies)
def test_arbitrary_json_never_gives_a_5xx(client, path, value):
    assert_sound(post_json(client, path, value), path)


@FUZZ
@given(
    path=st.sampled_from(POST_PATHS),
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(["application/json", "application/fhir+json", "text/plain"]),
)
def test_arbitrary_bytes_never_give_a_5xx(client, path, raw, content_type):
    response = client.post(path, data=raw, content_type=content_type)
    assert_sound(response, path)
    assert response.status_code >= 400 or raw.strip().startswith(b"{")


@settings(FUZZ, max_examples=60)
@given(query=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4))
def test_discovery_with_any_query_is_the_discovery_document(client, query):
    response = client.get("/cds-services", query_string=query)
    body = assert_sound(response, "/cds-services")
    assert response.status_code == 200
    assert not contracts.violations("discovery.schema.json", body)


# --- (b) mutated valid requests ---------------------------------------------------------------


def _slots(document: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in `document`, found without recursion."""
    slots: list[tuple[Any, Any]] = []
    stack = [document]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            slots.append((node, key))
            if isinstance(node[key], dict | list):
                stack.append(node[key])
    return slots


def _retyped(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else 0
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return [value] if len(value) % 2 else len(value)
    if value is None:
        return {}
    if isinstance(value, dict):
        return list(value.values())
    return {str(i): item for i, item in enumerate(value)}


MUTATIONS = ("delete", "replace", "duplicate", "retype")
# (which slot, modulo the slots the document has then; what to do; the value for "replace")
mutations = st.lists(
    st.tuples(st.integers(0, 1 << 16), st.sampled_from(MUTATIONS), json_values),
    min_size=1,
    max_size=4,
)


def mutate(document: Any, steps: list[tuple[int, str, Any]]) -> Any:
    for index, kind, value in steps:
        slots = _slots(document)
        if not slots:
            break
        parent, key = slots[index % len(slots)]
        if kind == "delete":
            del parent[key]
        elif kind == "replace":
            parent[key] = copy.deepcopy(value)
        elif kind == "duplicate":
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(parent[key]))
            elif isinstance(parent[key], list) and parent[key]:
                parent[key].extend(copy.deepcopy(parent[key]))
            else:
                parent[key] = [parent[key], copy.deepcopy(parent[key])]
        else:
            parent[key] = _retyped(parent[key])
    return document


@FUZZ
@given(name=st.sampled_from(sorted(FULL_PREFETCH)), steps=mutations)
def test_mutated_valid_requests_never_give_a_5xx(client, name, steps):
    request = mutate(copy.deepcopy(FULL_PREFETCH[name]), steps)
    path = f"/cds-services/{_service_for(FULL_PREFETCH[name])}"
    response = post_json(client, path, request)
    body = assert_sound(response, path)
    if response.status_code == 200:
        assert_valid_response(body)


def test_the_mutation_corpus_is_the_full_prefetch_fixtures():
    assert "order-select-quinine-full-prefetch" in FULL_PREFETCH
    assert "patient-view-no-prefetch" not in FULL_PREFETCH
    assert "order-sign-quinine-partial-prefetch" not in FULL_PREFETCH


# --- (c) still healthy after garbage ----------------------------------------------------------


def test_a_valid_request_still_gets_its_card_after_a_burst_of_garbage(client):
    @settings(FUZZ, max_examples=150)
    @given(
        path=st.sampled_from(POST_PATHS),
        value=bodies,
        name=st.sampled_from(sorted(FULL_PREFETCH)),
        steps=mutations,
    )
    def garbage(path, value, name, steps):
        assert_sound(post_json(client, path, value), path)
        request = mutate(copy.deepcopy(FULL_PREFETCH[name]), steps)
        service_path = f"/cds-services/{_service_for(FULL_PREFETCH[name])}"
        assert_sound(post_json(client, service_path, request), service_path)
        deep = "[" * 5000 + "]" * 5000
        response = client.post(path, data=deep, content_type="application/json")
        assert_sound(response, path)

    garbage()
    request = load_fixture("requests/order-select-quinine-full-prefetch.json")
    response = post_json(client, "/cds-services/legcramp-order-select", request)
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    quinine = [c for c in cards if c["summary"].startswith(QUININE_SUMMARY_START)]
    assert quinine and quinine[0]["indicator"] == "critical", cards
    assert client.get("/health").get_json() == {"status": "ok"}


@pytest.mark.parametrize("entry", [True, 5, "text", {"resource": {}}])
def test_a_prefetch_bundle_whose_entry_is_not_an_array_is_a_400(client, entry):
    """Was a 500 (TypeError iterating a boolean), found by the mutation property."""
    request = load_request("patient-view-full-prefetch")
    request["prefetch"]["conditions"]["entry"] = entry
    path = "/cds-services/legcramp-patient-view"
    response = post_json(client, path, request)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = assert_sound(response, path)
    assert body["issue"][0]["expression"] == ["$.prefetch.conditions.entry"]


CONTEXT_SCHEMAS = {
    "patient-view": "context-patient-view.schema.json",
    "order-select": "context-order-select.schema.json",
    "order-sign": "context-order-sign.schema.json",
    "medication-refill": "context-medication-refill.schema.json",
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FULL_PREFETCH)), steps=mutations)
def test_the_compiled_schema_and_jsonschema_give_the_same_verdict(name, steps):
    """Requests are accepted by the compiled schema (jsonschema-rs) and refused with
    jsonschema's messages: the two must agree on every mutated request, or a request could be
    let through that the documented schema refuses (or refused with no message)."""
    request = mutate(copy.deepcopy(FULL_PREFETCH[name]), steps)
    pairs = [("request.schema.json", request)]
    hook = request.get("hook") if isinstance(request, dict) else None
    context = request.get("context") if isinstance(request, dict) else None
    if isinstance(hook, str) and hook in CONTEXT_SCHEMAS and context is not None:
        pairs.append((CONTEXT_SCHEMAS[hook], context))
    for schema, instance in pairs:
        fast = contracts.compiled(schema).is_valid(instance)
        slow = contracts.validator(schema).is_valid(instance)
        assert fast == slow, (schema, fast, slow)
        assert (contracts.violations(schema, instance) == []) == slow
