"""The PatientRecord: lenient where clients are sloppy, skips and counts what it cannot parse."""

from __future__ import annotations

import copy

import pytest

from cds_service.kit.parsing import ParseReport, ResourceRejected, parse_resource
from cds_service.kit.record import condition_counts, reference_key
from cds_service.pipeline.record_builder import RecordBuilder
from tests.conftest import AS_OF, load_fixture, load_request


def chart():
    return [e["resource"] for e in load_fixture("patients/cramps-001.json")["entry"]]


def test_category_sent_as_object_is_wrapped_and_counted():
    order = load_request("order-select-sandbox-shape")["context"]["draftOrders"]["entry"][0][
        "resource"
    ]
    report = ParseReport()
    model = parse_resource(order, report)
    assert model.category[0].coding[0].code == "community"
    assert sum(report.repaired.values()) == 1
    assert isinstance(order["category"], dict)  # the request itself is left as it came


def test_unparseable_resource_is_rejected_with_a_value_free_reason():
    bad = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/x"},
        "onsetDateTime": "Tuesday, secret-value",
    }
    try:
        parse_resource(bad)
    except ResourceRejected as exc:
        assert "onsetDateTime" in exc.reason
        assert "secret-value" not in str(exc)
    else:
        raise AssertionError("a Condition with a bad date parsed")


def test_unparseable_resources_are_skipped_counted_and_not_fatal(call):
    request = load_request("patient-view-full-prefetch")
    entries = request["prefetch"]["conditions"]["entry"]
    entries.append(
        {
            "resource": {
                "resourceType": "Condition",
                "id": "broken",
                "subject": {"reference": "Patient/cramps-001"},
                "clinicalStatus": "active",
            }
        }
    )
    entries.append({"resource": {"resourceType": "NotAType", "id": "x"}})
    response = call("legcramp-patient-view", request)
    assert response.status_code == 200
    topics = [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]
    assert topics.count("quinine-leg-cramps") == 1

    builder = RecordBuilder("cramps-001", AS_OF)
    record = builder.build([e["resource"] for e in entries], [])
    assert record.report.not_read["Condition"] == 4  # validated only when a rule reads them
    assert len(record.conditions) == 3  # reads all four; NotAType is not a type rules read
    assert record.report.skipped_total == 1  # the Condition whose clinicalStatus is a string
    assert record.report.not_read["Condition"] == 0


def test_resources_of_another_patient_are_dropped_and_counted():
    resources = chart()
    stranger = copy.deepcopy(
        [r for r in resources if r["resourceType"] == "MedicationRequest"][-1])
    stranger["id"] = "someone-else-m1"
    stranger["subject"] = {"reference": "Patient/someone-else"}
    record = RecordBuilder("cramps-001", AS_OF).build([*resources, stranger], [])
    assert [o.id for o in record.active_medications()] == ["cramps-001-m1", "cramps-001-m2"]
    assert record.report.other_patient["MedicationRequest"] == 1


def test_duplicate_resources_across_keys_count_once():
    resources = chart()
    record = RecordBuilder("cramps-001", AS_OF).build(resources + copy.deepcopy(resources), [])
    assert len(record.conditions) == 3
    assert len(record.medication_requests) == 2
    assert len(record.observations) == 2


def test_condition_status_ground_rules():
    def condition(clinical=None, verification=None):
        raw = {"resourceType": "Condition", "subject": {"reference": "Patient/p"}}
        if clinical:
            raw["clinicalStatus"] = {"coding": [{"code": clinical}]}
        if verification:
            raw["verificationStatus"] = {"coding": [{"code": verification}]}
        return parse_resource(raw)

    assert condition_counts(condition())
    assert condition_counts(condition("recurrence"))
    assert condition_counts(condition("relapse", "provisional"))
    assert not condition_counts(condition("resolved"))
    assert not condition_counts(condition("inactive"))
    assert not condition_counts(condition("active", "refuted"))
    assert not condition_counts(condition("active", "entered-in-error"))


def test_reference_forms():
    assert reference_key("Condition/1") == "Condition/1"
    assert reference_key("https://ehr.example/fhir/Condition/1/_history/3") == "Condition/1"
    assert reference_key("#med1") is None
    assert reference_key("urn:uuid:1234") is None


def test_medication_reference_that_cannot_be_resolved_is_counted():
    order = load_request("order-sign-medication-reference-server")["context"]["draftOrders"][
        "entry"
    ][0]["resource"]
    record = RecordBuilder("cramps-001", AS_OF).build(chart(), [(order, None)])
    (draft,) = record.draft_orders
    assert draft.medication is None and draft.medication_origin == "unresolved"
    assert (
        record.report.skipped[("MedicationRequest", "medicationReference could not be resolved")]
        == 1
    )


def test_a_resource_nested_past_the_models_recursion_is_rejected_not_raised():
    """A FHIR server's answer is bounded only by the parser's depth (1,024): a resource nested a
    few hundred levels deep is skipped and counted like any other the models cannot parse."""
    extension: dict = {"url": "http://example.org/x", "valueString": "a"}
    for _ in range(600):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    raw = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "extension": [extension]}
    with pytest.raises(ResourceRejected) as rejected:
        parse_resource(raw)
    assert rejected.value.resource_type == "Observation"
