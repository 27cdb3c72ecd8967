"""V1 diabetes-spasm-b6: persistent muscle spasm or cramps with diabetes and no recent vitamin
B6 level; the level drafted as a lab order."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cds_service.kit import SUPPORTED_HOOKS
from cds_service.kit.requirements import validate_template
from hooks import data
from hooks.rules.diabetes_spasm_b6 import VITAMIN_B6_KEY
from tests.support import fhir
from tests.support.cards import actions_of, check_card, only_card, ordered_loinc
from tests.support.concepts import ACETAMINOPHEN, CRAMP
from tests.support.fhir import ICD10CM, LOINC, RX, SNOMED, UCUM
from tests.support.guidance import SPASM, check_guidance, cond
from tests.support.rules import not_counting, sign, view

V1 = "diabetes-spasm-b6"
DIABETES = fhir.concept(SNOMED, "44054006", "Type 2 diabetes mellitus")


b6 = fhir.lab_result("62236-5", "nmol/L")


def diabetic(*chart: dict[str, Any], spasm_days: float = 60) -> list[dict[str, Any]]:
    return [
        cond(DIABETES, "dm", onset=fhir.day(3000)),
        cond(SPASM, "spasm", onset=fhir.day(spasm_days)),
        *chart,
    ]


def test_vitamin_b6_prefetch_is_built_like_the_other_observation_keys(v1):
    (requirement,) = [r for r in v1.reads("patient-view") if r.key == VITAMIN_B6_KEY]
    codes = ",".join(f"http://loinc.org|{c}" for c in v1.vitamin_b6.loinc_codes)
    assert "62236-5" in v1.vitamin_b6.loinc_codes
    assert requirement.template == (
        "Observation?patient={{context.patientId}}&code=" + codes + "&_sort=-date"
    )
    for hook in SUPPORTED_HOOKS:
        validate_template(requirement.template, hook)
    shared = getattr(data, "VITAMIN_B6", None)
    if shared is not None:  # once the key moves to hooks/data.py it must be the same query
        assert (shared.key, shared.template) == (requirement.key, requirement.template)


def test_diabetes_with_cramps_on_record_60_days_and_no_b6_offers_a_b6_level_as_information(v1):
    card = only_card(view(v1, *diabetic()))
    check_card(card, V1, "info", "diabetes", "60 days", "vitamin B6", "365 days",
               "limited evidence")
    check_guidance(card, V1)
    assert f"**Type 2 diabetes mellitus** (onset {fhir.date_of(3000)})" in card.detail
    assert f"**Muscle spasm of calf** (onset {fhir.date_of(60)})" in card.detail
    assert "Condition/" not in card.detail
    assert "no vitamin B6 result on record" in card.detail
    assert ordered_loinc(card) == ["62236-5"]
    request = actions_of(card)[0].resource
    assert request["reasonReference"] == [
        {"reference": "Condition/spasm"}, {"reference": "Condition/dm"}
    ]
    assert "display" not in request["code"]["coding"][0]
    assert "pyridoxal" in request["code"]["text"]
    assert card.suggestions[0].is_recommended is False  # information, never recommended
    assert card.identity == "diabetes-spasm-b6:Condition/dm,Condition/spasm"
    # The onset is how long the condition has been on record, not proof the cramps persist.
    assert "on record as active for 60 days" in card.detail
    assert "evidence is limited" in card.detail and "ask the patient" in card.detail
    assert card.source.url == "https://pubmed.ncbi.nlm.nih.gov/20177124/"


def test_spasm_of_10_days_is_not_yet_persistent(v1):
    assert view(v1, *diabetic(spasm_days=10)) == []


@pytest.mark.parametrize("days, fires", [(30, False), (41, False), (42, True), (43, True)])
def test_persistence_starts_at_persistent_days(v1, days, fires):
    assert len(view(v1, *diabetic(spasm_days=days))) == int(fires)


def test_persistent_days_is_configurable(v1):
    assert len(view(v1, *diabetic(spasm_days=10), persistent_days=7)) == 1


def test_spasm_without_onset_uses_recorded_date_else_stays_quiet(v1):
    dm = cond(DIABETES, "dm")
    assert view(v1, dm, cond(SPASM, "spasm", onset=None)) == []
    recorded = cond(SPASM, "spasm", onset=None, recordedDate=fhir.date_of(50))
    assert len(view(v1, dm, recorded)) == 1


def test_leg_cramp_condition_counts_as_well_as_muscle_spasm(v1):
    assert len(view(v1, cond(DIABETES, "dm"), cond(CRAMP, "c", onset=fhir.day(60)))) == 1


def test_b6_result_within_the_window_keeps_it_quiet(v1):
    assert view(v1, *diabetic(b6(45, days_ago=100))) == []


def test_stale_b6_result_fires_and_names_it(v1):
    card = only_card(view(v1, *diabetic(b6(45, days_ago=400))))
    assert "45 nmol/L" in card.detail and fhir.date_of(400) in card.detail
    assert "older than 365 days" in card.detail


def test_b6_lookback_is_configurable(v1):
    chart = diabetic(b6(45, days_ago=200))
    assert view(v1, *chart) == []
    assert len(view(v1, *chart, b6_lookback_days=180)) == 1


@pytest.mark.parametrize(
    "value",
    [fhir.quantity(45), fhir.quantity(45, "mcg per litre"), fhir.quantity(3, "umol/L", "umol/L"),
     {"value": 5, "comparator": "<", "unit": "nmol/L", "system": UCUM, "code": "nmol/L"}],
    ids=["no-unit", "unknown-label", "unconverted-unit", "below-detection"],
)
def test_b6_result_without_a_usable_unit_still_counts_as_a_result(v1, value):
    assert view(v1, *diabetic(b6(value))) == []


def test_b6_reported_as_text_counts_as_a_result(v1):
    result = b6(0)
    del result["valueQuantity"]
    result["valueString"] = "below 5 nmol/L"
    assert view(v1, *diabetic(result)) == []


def test_b6_without_a_value_is_not_a_result(v1):
    result = b6(0)
    del result["valueQuantity"]
    result["dataAbsentReason"] = {"text": "specimen haemolysed"}
    assert len(view(v1, *diabetic(result))) == 1


@pytest.mark.parametrize("status", ["registered", "cancelled", "entered-in-error"])
def test_b6_result_that_is_not_final_does_not_count(v1, status):
    assert len(view(v1, *diabetic(b6(45, status=status)))) == 1


@pytest.mark.parametrize("code", ["30552-4", "39786-9"])
def test_other_b6_loinc_codes_count(v1, code):
    assert view(v1, *diabetic(fhir.observation(code, 10, "ug/L"))) == []


def test_b6_in_a_panel_component_counts(v1):
    panel = b6(0, id="panel")
    del panel["valueQuantity"]
    panel["code"] = fhir.concept(LOINC, "00000-0", "Vitamin panel")
    panel["component"] = [
        {"code": fhir.concept(LOINC, "62236-5"), "valueQuantity": fhir.quantity(40)}
    ]
    assert view(v1, *diabetic(panel)) == []


def test_b6_result_of_another_test_does_not_count(v1):
    assert len(view(v1, *diabetic(fhir.observation("2132-9", 300, "pg/mL")))) == 1


@not_counting("resolved", "refuted")
def test_v1_diabetes_or_spasm_that_does_not_count_keeps_it_quiet(v1, status):
    assert view(v1, cond(DIABETES, "dm", **status), cond(SPASM, "sp", onset=fhir.day(60))) == []
    assert view(v1, cond(DIABETES, "dm"), cond(SPASM, "sp", onset=fhir.day(60), **status)) == []


def test_v1_needs_diabetes(v1):
    assert view(v1, cond(SPASM, "spasm", onset=fhir.day(60))) == []
    icd = cond(
        fhir.concept(ICD10CM, "E11.9", "Type 2 diabetes mellitus without complications"), "e11"
    )
    assert len(view(v1, icd, cond(SPASM, "spasm", onset=fhir.day(60)))) == 1


def test_v1_runs_on_patient_view_only_never_about_an_order(v1):
    """At order entry only cards about the order in hand: V1 is chart-level information."""
    assert sign(v1, diabetic(), fhir.medication_request(ACETAMINOPHEN)) == []
    cyclobenzaprine = fhir.medication_request(fhir.concept(RX, "21949", "cyclobenzaprine"))
    assert sign(v1, diabetic(), cyclobenzaprine) == []
    assert v1.reads("order-sign") == () and v1.reads("order-select") == ()
    assert len(view(v1, *diabetic())) == 1


def test_v1_order_is_valid_fhir_and_uses_the_summary_limit(v1):
    card = only_card(view(v1, *diabetic(spasm_days=10000), b6_lookback_days=10000))
    assert len(card.summary) < 140
    resource = copy.deepcopy(actions_of(card)[0].resource)
    fhir.validate(resource)
