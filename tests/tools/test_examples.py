"""Example requests completed for prefetch keys declared after they were written: a golden
case that lacks a key gets the same answer once completed from its own chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import pytest

from cds_service.config import load_config
from cds_service.kit import Card, DataRequirement, RuleContext, RuleSettings, ServiceDeclaration
from cds_service.tools.examples import CHART_KEY, complete_prefetch, search
from hooks import build_services
from tests.conftest import FIXTURES, make_caller

GOLDEN = FIXTURES / "golden"
CASES = sorted(p.name.removesuffix(".request.json") for p in GOLDEN.glob("*.request.json"))
HEMOGLOBIN = DataRequirement(
    key="hemoglobinForTest",
    template="Observation?patient={{context.patientId}}&code=http://loinc.org|718-7&_sort=-date",
)


@dataclass(frozen=True)
class ReadsANewKey:
    """A rule added after every fixture was written, reading a key none of them carries."""

    rule_id: ClassVar[str] = "reads-a-new-key"
    catalog_code: ClassVar[str] = "T1"
    title: ClassVar[str] = "test"
    indicator: ClassVar[str] = "info"
    sources: ClassVar[str] = "test"
    applies: ClassVar[str] = "test"
    Settings = RuleSettings

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        return (HEMOGLOBIN,)

    def evaluate(self, context: RuleContext[RuleSettings]) -> list[Card]:
        return []


def with_new_key() -> list[ServiceDeclaration]:
    return [replace(s, rules=(*s.rules, ReadsANewKey())) for s in build_services()]


@pytest.fixture
def call(make_app):
    config = load_config(None, overrides={"store": {"patient_hash_key": "golden-files-key"}})
    return make_caller(make_app(config, services=with_new_key()).test_client())


@pytest.mark.parametrize("case", CASES)
def test_a_key_added_after_the_golden_cases_changes_none_of_their_answers(call, case):
    request = json.loads((GOLDEN / f"{case}.request.json").read_text(encoding="utf-8"))
    expected = json.loads((GOLDEN / f"{case}.response.json").read_text(encoding="utf-8"))
    service = next(s for s in with_new_key() if s.hook == request["hook"])
    assert HEMOGLOBIN.key not in request["prefetch"]
    assert call(service.id, request).status_code == 412  # as written: the new key is missing
    response = call(service.id, complete_prefetch(request, service.requirements))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == expected


def test_a_request_without_its_chart_is_left_to_fetch_from_the_server():
    request = {"hook": "patient-view", "context": {"patientId": "p"},
               "prefetch": {"patient": {"resourceType": "Patient", "id": "p"}}}
    requirements = next(s for s in build_services() if s.hook == "patient-view").requirements
    assert complete_prefetch(request, requirements) is request


def test_search_filters_by_type_patient_status_and_code():
    chart = [
        {"resourceType": "MedicationRequest", "id": "a", "status": "active",
         "subject": {"reference": "Patient/p"}},
        {"resourceType": "MedicationRequest", "id": "b", "status": "stopped",
         "subject": {"reference": "Patient/p"}},
        {"resourceType": "MedicationRequest", "id": "c", "status": "active",
         "subject": {"reference": "Patient/q"}},
        {"resourceType": "Observation", "id": "k", "subject": {"reference": "Patient/p"},
         "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]}},
        {"resourceType": "Observation", "id": "x", "subject": {"reference": "Patient/p"},
         "code": {"coding": [{"system": "http://other", "code": "2823-3"}]}},
    ]
    ids = lambda url: [r["id"] for r in search(chart, url)]  # noqa: E731
    assert ids("MedicationRequest?patient=p&status=active") == ["a"]
    assert ids("Observation?patient=p&code=http://loinc.org|2823-3&_sort=-date") == ["k"]
    assert ids("Observation?patient=p&code=2823-3") == ["k", "x"]
    with pytest.raises(ValueError, match="date"):
        search(chart, "Observation?patient=p&date=ge2020")


def test_a_read_template_finds_the_resource_or_null():
    request = {"hook": "patient-view", "context": {"patientId": "p"},
               "prefetch": {CHART_KEY: {"resourceType": "Bundle", "type": "searchset"}}}
    wanted = DataRequirement("someone", "Patient/{{context.patientId}}")
    assert complete_prefetch(request, [wanted])["prefetch"]["someone"] is None
