"""The fast paths of issue 7 answer exactly what the slow ones did.

- `check_parsed_limits` (raw-byte shortcuts after orjson) refuses what `check_limits` (the full
  walk) refuses, with the same diagnostics, and lets through what it lets through;
- `nested_deeper_than` (the depth read from the bytes) agrees with the depth of the document;
- the lazy record (validation only when a rule reads, `latest` newest first) finds the same
  conditions and the same latest lab result as validating every resource;
- `tune_garbage_collector` sets the configured threshold.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.errors import InvalidRequest
from cds_service.kit import LOINC, observations
from cds_service.kit import RXNORM as RX
from cds_service.kit.lazy import LazyResources
from cds_service.kit.parsing import ParseReport, ResourceRejected, parse_resource
from cds_service.kit.record import _may_count, condition_counts
from cds_service.kit.terminology import ValueSet, concept_terms
from cds_service.pipeline.record_builder import RecordBuilder
from cds_service.web.limits import (
    Limits,
    _may_hold_long_string,
    check_limits,
    check_parsed_limits,
    nested_deeper_than,
)
from tests.conftest import load_request
from tests.support.documents import depth

PROPERTIES = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

text = st.text(alphabet=st.sampled_from('ab"\\[]{}\u00e9 \n:,'), max_size=8)
scalars = st.none() | st.booleans() | st.integers(-5, 5) | text
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=4),
    max_leaves=60,
)


def outcome(check: Any, *args: Any) -> Any:
    try:
        check(*args)
    except InvalidRequest as exc:
        return exc.to_operation_outcome()
    return None


# --- limits read from the raw bytes ------------------------------------------------------------


@PROPERTIES
@given(documents, st.integers(1, 8))
def test_depth_from_the_bytes_is_the_documents_depth(document, limit):
    for raw in (orjson.dumps(document), json.dumps(document, indent=1).encode(),
                json.dumps(document, ensure_ascii=False).encode()):
        assert nested_deeper_than(raw, limit) == (depth(document) > limit)


@PROPERTIES
@given(documents, st.integers(1, 6), st.integers(0, 4), st.integers(0, 3), st.integers(1, 12),
       st.booleans())
def test_shortcut_limits_refuse_exactly_what_the_full_walk_refuses(
        document, max_depth, max_entries, max_keys, max_string, as_bundle):
    if as_bundle and isinstance(document, list):
        bundle = {"resourceType": "Bundle", "entry": document}
        document = {"prefetch": {"k": bundle}} if max_keys % 2 else bundle
    elif isinstance(document, dict) and max_keys and as_bundle:
        document = {"prefetch": document}
    limits = Limits(max_json_depth=max_depth, max_bundle_entries=max_entries,
                    max_prefetch_keys=max_keys, max_string_length=max_string)
    raw = orjson.dumps(document)
    assert outcome(check_parsed_limits, document, limits, raw) == outcome(
        check_limits, document, limits)


@PROPERTIES
@given(st.lists(st.integers(0, 30), min_size=1, max_size=40), st.integers(1, 20))
def test_the_block_proof_never_misses_a_long_string(runs, limit):
    text = b'"'.join(b"a" * n for n in runs)  # strings and gaps of these lengths
    longest = max(runs[1:-1], default=0)  # the first and last runs are outside any quotes
    if _may_hold_long_string(text, limit) is False:
        assert longest <= limit
    if longest > limit:
        assert _may_hold_long_string(text, limit)


def test_a_long_string_in_a_long_body_is_still_found():
    document = {"hook": "x", "extension": {"note": "a" * 50}}
    found = outcome(check_parsed_limits, document, Limits(max_string_length=40),
                    orjson.dumps(document))
    assert found is not None and found["issue"][0]["expression"] == ["$.extension.note"]


@pytest.mark.parametrize("where", ["prefetch", "draftOrders", "nested", "top"])
def test_a_bundle_over_the_entry_limit_is_found_wherever_it_is(where):
    big = {"resourceType": "Bundle", "entry": [{"resource": {"id": str(i)}} for i in range(6)]}
    small = {"resourceType": "Bundle", "entry": [{"resource": {"id": "1"}}]}
    documents = {
        "prefetch": {"prefetch": {"a": small, "b": big}},
        "draftOrders": {"context": {"draftOrders": big}, "prefetch": {"a": small}},
        "nested": {"prefetch": {"a": {"resourceType": "Bundle", "entry": [{"resource": big}]}}},
        "top": big,
    }
    document = documents[where]
    limits = Limits(max_bundle_entries=5)
    found = outcome(check_parsed_limits, document, limits, orjson.dumps(document))
    assert found is not None and "max_bundle_entries" in found["issue"][0]["diagnostics"]
    assert found == outcome(check_limits, document, limits)


def test_escapes_count_as_characters_of_a_string():
    document = {"note": "\n" * 6}  # six characters, each written as a two-byte escape
    raw = orjson.dumps(document)
    assert outcome(check_parsed_limits, document, Limits(max_string_length=6), raw) is None
    assert outcome(check_parsed_limits, document, Limits(max_string_length=5), raw) is not None


def test_deep_nesting_is_placed_where_it_is():
    document = {"extension": {"deep": [[[[[[["x"]]]]]]]}}
    found = outcome(check_parsed_limits, document, Limits(max_json_depth=5),
                    orjson.dumps(document))
    assert found is not None
    assert "nested deeper" in found["issue"][0]["diagnostics"]
    assert found["issue"][0]["expression"][0].startswith("$.extension.deep")


# --- raw screening -----------------------------------------------------------------------------

QUININE = ValueSet.from_document({
    "id": "q", "codes": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "9071"}],
    "icd10cm_prefixes": ["B50"], "text_terms": ["quinine"],
})

codings = st.fixed_dictionaries({}, optional={
    "system": st.sampled_from([RX, "http://hl7.org/fhir/sid/icd-10-cm", "http://x", 5]),
    "code": st.sampled_from(["9071", " 9071", "B50.9", "b509", "1", None, 9071]),
    "display": st.sampled_from(["Quinine sulfate", "quinidine", "x", None, ["quinine"]]),
})
concepts = st.one_of(
    st.none(), st.just([]), st.just("quinine"),
    st.fixed_dictionaries({}, optional={
        "coding": st.lists(codings, max_size=3) | codings | st.just("x"),
        "text": st.sampled_from(["quinine 300 mg", "tonic", None, 7]),
    }),
)


status_codings = st.fixed_dictionaries({}, optional={
    "system": st.just("http://terminology.hl7.org/CodeSystem/condition-clinical"),
    "code": st.sampled_from(["active", "resolved", "inactive", "relapse", "refuted",
                             "entered-in-error", "confirmed", "", None, 5, " active"]),
})
statuses = st.one_of(
    st.none(), st.just("resolved"), st.just([]),
    st.fixed_dictionaries({}, optional={
        "coding": st.lists(status_codings, max_size=3) | status_codings | st.just("x"),
        "text": st.sampled_from(["Resolved", None]),
    }),
)


@PROPERTIES
@given(statuses, statuses)
def test_a_condition_skipped_by_its_raw_status_is_one_that_would_not_count(clinical, verified):
    raw: dict[str, Any] = {"resourceType": "Condition", "id": "c1",
                           "subject": {"reference": "Patient/p1"}}
    for name, value in (("clinicalStatus", clinical), ("verificationStatus", verified)):
        if value is not None:
            raw[name] = value
    if _may_count(raw):
        return
    try:
        model = parse_resource(raw)
    except ResourceRejected:
        return  # the models would not have it either
    assert not condition_counts(model)


class Concept:
    """What `ValueSet.match` reads, from a concept the models accepted."""

    def __init__(self, model: Any):
        self.coding = model.coding
        self.text = model.text


@PROPERTIES
@given(concepts)
def test_screen_never_drops_a_concept_the_models_would_match(concept):
    raw = {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, "code": concept}
    if concept is None:
        del raw["code"]
    try:
        model = parse_resource(raw)
    except ResourceRejected:
        return  # the models reject it: it is skipped whether screened or not
    terms = concept_terms(concept)
    screened = terms is None or any(QUININE.has_code(*pair) for pair in terms[0]) or any(
        QUININE.matches_text(t) for t in terms[1])
    if QUININE.match(model.code):
        assert screened


# --- the lazy record finds what the eager one did ----------------------------------------------

POTASSIUM = ValueSet.from_document({"id": "k", "codes": [{"system": LOINC, "code": "2823-3"}]})
AS_OF = datetime(2026, 11, 21, tzinfo=UTC)


class Units:
    canonical_unit = "mmol/L"
    known_units = frozenset({"mmol/L"})

    def normalise(self, value: Any, ucum: str | None) -> float | None:
        return float(value) if ucum == "mmol/L" else None


def observation(index: int, day: int, status: str, code: str, when_form: str,
                component: bool) -> dict[str, Any]:
    when = (AS_OF - timedelta(days=day)).replace(hour=8)
    times = {
        "dateTime": {"effectiveDateTime": when.isoformat().replace("+00:00", "Z")},
        "date": {"effectiveDateTime": when.date().isoformat()},
        "period": {"effectivePeriod": {"start": when.isoformat()}},
        "issued": {"issued": when.isoformat()},
        "partial": {"effectiveDateTime": str(when.year)},
        "broken": {"effectiveDateTime": "yesterday"},
    }
    quantity = {"value": 3.0 + index / 10, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                "code": "mmol/L"}
    concept = {"coding": [{"system": LOINC, "code": code}]}
    raw: dict[str, Any] = {"resourceType": "Observation", "id": f"o{index}", "status": status,
                           "subject": {"reference": "Patient/p"}, **times[when_form]}
    if component:
        raw["code"] = {"text": "panel"}
        raw["component"] = [{"code": concept, "valueQuantity": quantity}]
    else:
        raw["code"] = concept
        raw["valueQuantity"] = quantity
    return raw


observation_sets = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(["final", "preliminary", "cancelled", 3]),
              st.sampled_from(["2823-3", "2601-3"]),
              st.sampled_from(["dateTime", "date", "period", "issued", "partial", "broken"]),
              st.booleans()),
    max_size=12,
)


@PROPERTIES
@given(observation_sets, st.integers(1, 400))
def test_latest_read_lazily_is_latest_of_every_validated_result(specs, window_days):
    raws = [observation(i, *spec) for i, spec in enumerate(specs)]
    eager = []
    for raw in raws:
        with contextlib.suppress(ResourceRejected):
            eager.append(parse_resource(raw))
    since = AS_OF - timedelta(days=window_days)
    expected = observations.latest(eager, POTASSIUM, Units(), since)
    # both ways to the newest: sort the candidates, or walk the record's newest-first order
    for few in (0, 10**9):
        with mock.patch.object(observations, "_FEW", few):
            record = RecordBuilder("p", AS_OF).build(raws, [])
            lazy = observations.latest(record.observations, POTASSIUM, Units(), since)
        assert (lazy and (lazy.observation.id, lazy.value, lazy.when)) == (
            expected and (expected.observation.id, expected.value, expected.when)), few
    assert observations.results(record.observations, POTASSIUM, Units()) == \
        observations.results(eager, POTASSIUM, Units())


def test_a_records_screen_answers_each_value_set_once():
    raws = [observation(i, i, "final", "2823-3", "dateTime", False) for i in range(5)]
    record = RecordBuilder("p", AS_OF).build(raws, [])
    first = record.observations.screened_indexes(POTASSIUM)
    with mock.patch.object(type(POTASSIUM), "has_code", side_effect=AssertionError("asked")):
        assert record.observations.screened_indexes(POTASSIUM) == first == list(range(5))


def test_latest_validates_only_what_it_needs():
    raws = [observation(i, day, "final", "2823-3", "dateTime", False)
            for i, day in enumerate(range(0, 300, 3))]
    record = RecordBuilder("p", AS_OF).build(raws, [])
    found = observations.latest(record.observations, POTASSIUM, Units(), AS_OF - timedelta(30))
    assert found is not None and found.observation.id == "o0"
    assert record.report.parsed["Observation"] == 1
    assert record.report.not_read["Observation"] == len(raws) - 1
    assert record.report.summary()["notRead"] == {"Observation": len(raws) - 1}


def test_a_resource_the_screen_cannot_read_is_validated_and_judged_by_the_models():
    readable = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p"},
                "code": {"coding": [{"system": RX, "code": "1"}]}}
    odd = {"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p"},
           "code": {"coding": {"system": RX, "code": "9071"}}}  # one Coding, not a list
    record = RecordBuilder("p", AS_OF).build([readable, odd], [])
    (found,) = record.active_conditions(QUININE)
    assert found.condition.id == "c2"
    assert record.report.not_read["Condition"] == 1  # c1 was screened out unread
    assert sum(record.report.repaired.values()) == 1


def test_lazy_resources_validate_each_resource_once():
    calls = []

    def parse(raw: dict[str, Any]) -> Any:
        calls.append(raw["id"])
        return raw["id"] if raw["id"] != "bad" else None

    lazy = LazyResources([{"id": "a"}, {"id": "bad"}, {"id": "b"}], parse)
    assert list(lazy) == ["a", "b"] and len(lazy) == 2 and lazy.model(0) == "a"
    assert calls == ["a", "bad", "b"]


def test_report_counts_unread_resources_by_type():
    report = ParseReport()
    report.not_read["Observation"] = 2
    report.not_read["Condition"] = 0
    assert report.summary()["notRead"] == {"Observation": 2}


# --- garbage collector ---------------------------------------------------------------------------


@pytest.fixture
def restore_gc():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_garbage_collector_sets_the_young_threshold(restore_gc):
    from cds_service.cli import tune_garbage_collector

    tune_garbage_collector(12345)
    assert gc.get_threshold()[0] == 12345
    assert gc.get_freeze_count() > 0


def test_active_medications_of_a_value_set_validate_only_what_may_match():
    def order(index: int, code: str, status: str = "active") -> dict[str, Any]:
        return {"resourceType": "MedicationRequest", "id": f"m{index}", "status": status,
                "intent": "order", "subject": {"reference": "Patient/p"},
                "medicationCodeableConcept": {"coding": [{"system": RX, "code": code}]}}

    by_reference = {"resourceType": "MedicationRequest", "id": "ref", "status": "active",
                    "intent": "order", "subject": {"reference": "Patient/p"},
                    "medicationReference": {"reference": "#q"},
                    "contained": [{"resourceType": "Medication", "id": "q",
                                   "code": {"coding": [{"system": RX, "code": "9071"}]}}]}
    raws = [order(i, "1") for i in range(20)] + [
        order(20, "9071"), order(21, "9071", "stopped"), by_reference]
    record = RecordBuilder("p", AS_OF).build(raws, [])
    found = record.active_medications(QUININE)
    assert [o.id for o in found] == ["m20", "ref"]
    assert record.report.parsed["MedicationRequest"] == 2  # the stopped one is not validated
    assert [o.id for o in record.active_medications()] == [f"m{i}" for i in range(21)] + ["ref"]


def test_an_integer_past_64_bits_echoed_in_a_suggestion_is_still_answered(client):
    """Found by the mutation fuzzer: 10**400 is past what orjson reads, so the standard parser
    reads it; the stop suggestion echoes the order, and orjson cannot write it back."""
    request = load_request("patient-view-full-prefetch")
    medications = request["prefetch"]["activeMedications"]["entry"]
    quinine = next(e["resource"] for e in medications
                   if "quinine" in json.dumps(e["resource"]).lower())
    quinine["dosageInstruction"] = [{"text": "huge", "doseAndRate": [
        {"doseQuantity": {"value": 10**400}}]}]
    response = client.post("/cds-services/legcramp-patient-view", data=json.dumps(request),
                           content_type="application/json")
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert "quinine-leg-cramps" in [c["source"]["topic"]["code"] for c in cards]
    assert str(10**400) in response.get_data(as_text=True)
