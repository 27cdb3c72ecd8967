"""C2 cyclobenzaprine-cns-spasticity: cyclobenzaprine for spasticity of central origin (stroke,
multiple sclerosis, spinal cord injury, cerebral palsy)."""

from __future__ import annotations

import pytest

from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.cyclobenzaprine import FLEXERIL, INGREDIENT, METHOCARBAMOL, MS, TABLET_10
from tests.support.fhir import ICD10CM, SNOMED
from tests.support.rules import evaluate, not_counting

CNS = "cyclobenzaprine-cns-spasticity"
SPASTICITY = fhir.concept(SNOMED, "221360009", "Spasticity")


@pytest.mark.parametrize(
    "code",
    [
        fhir.concept(SNOMED, "230690007", "Cerebrovascular accident"),
        fhir.concept(ICD10CM, "I61.9", "Nontraumatic intracerebral hemorrhage, unspecified"),
        MS,
        fhir.concept(ICD10CM, "G35", "Multiple sclerosis"),
        fhir.concept(SNOMED, "24700007", "Multiple sclerosis"),
        fhir.concept(SNOMED, "90584004", "Spinal cord injury"),
        fhir.concept(ICD10CM, "S14.119A", "Complete lesion of cervical spinal cord"),
        fhir.concept(ICD10CM, "G80.1", "Spastic diplegic cerebral palsy"),
        fhir.concept(SNOMED, "128188000", "Cerebral palsy"),
        fhir.concept(text="Multiple sclerosis, secondary progressive"),
    ],
    ids=[
        "cva",
        "ich",
        "ms-fy2026",
        "ms-g35",
        "ms-sct",
        "sci-sct",
        "sci-icd",
        "cp-icd",
        "cp-sct",
        "ms-text",
    ],
)
def test_cns_condition_gets_one_warning_naming_it(c2, code):
    chart = [fhir.patient(), fhir.condition(code, id="cns")]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    check_card(card, CNS, "warning", "cyclobenzaprine", "spasticity")
    label = code.get("text") or code["coding"][0]["display"]
    assert label in card.detail and "Condition/cns" in card.detail
    for alternative in ("tizanidine", "baclofen", "dantrolene"):
        assert alternative in card.detail


def test_cns_card_shows_the_condition_onset_and_the_order(c2):
    chart = [fhir.patient(), fhir.condition(MS, id="ms", onset=fhir.day(400))]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    assert fhir.date_of(400) in card.detail
    assert "MedicationRequest/d1" in card.detail and "828348" in card.detail
    assert {r.code for r in card.override_reasons} == {
        "musculoskeletal-spasm",
        "specialist-directed",
    }


@not_counting("resolved", "inactive", "remission", "refuted", "entered-in-error")
def test_cns_condition_that_does_not_count_gives_no_card(c2, status):
    chart = [fhir.patient(), fhir.condition(MS, **status)]
    assert evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]) == []


def test_cns_condition_without_clinical_status_counts(c2):
    chart = [fhir.patient(), fhir.condition(MS, clinical=None, verification=None)]
    assert len(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)])) == 1


def test_no_cns_condition_and_no_spasticity_reason_gives_no_card(c2):
    chart = [
        fhir.patient(),
        fhir.condition(fhir.concept(SNOMED, "449918009", "Cramp in lower leg")),
    ]
    order = fhir.medication_request(
        TABLET_10, reasonCode=[fhir.concept(SNOMED, "279039007", "Low back pain")]
    )
    assert evaluate(c2, "order-sign", chart, [order]) == []


def test_history_of_stroke_code_is_not_a_stroke_for_c2(c2):
    chart = [
        fhir.patient(),
        fhir.condition(fhir.concept(ICD10CM, "Z86.73", "Personal history of TIA")),
    ]
    assert evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]) == []


@pytest.mark.parametrize(
    "reason", [SPASTICITY, fhir.concept(text="spasticity of both legs")], ids=["code", "text"]
)
def test_spasticity_as_order_reason_fires_without_a_cns_condition(c2, reason):
    order = fhir.medication_request(TABLET_10, reasonCode=[reason])
    card = only_card(evaluate(c2, "order-sign", [fhir.patient()], [order]))
    assert "order reason" in card.detail
    assert (reason.get("text") or "Spasticity") in card.detail


def test_spasticity_condition_cited_by_reason_reference_fires(c2):
    chart = [fhir.patient(), fhir.condition(SPASTICITY, id="sp")]
    order = fhir.medication_request(TABLET_10, reasonReference=[{"reference": "Condition/sp"}])
    card = only_card(evaluate(c2, "order-sign", chart, [order]))
    assert "Spasticity" in card.detail


def test_refuted_spasticity_condition_cited_as_reason_gives_no_card(c2):
    chart = [fhir.patient(), fhir.condition(SPASTICITY, id="sp", verification="refuted")]
    order = fhir.medication_request(TABLET_10, reasonReference=[{"reference": "Condition/sp"}])
    assert evaluate(c2, "order-sign", chart, [order]) == []


def test_several_cns_findings_on_one_order_give_one_card(c2):
    chart = [
        fhir.patient(),
        fhir.condition(MS, id="ms"),
        fhir.condition(fhir.concept(SNOMED, "230690007", "Cerebrovascular accident"), id="cva"),
    ]
    order = fhir.medication_request(TABLET_10, reasonCode=[SPASTICITY])
    card = only_card(evaluate(c2, "order-sign", chart, [order]))
    assert "Condition/ms" in card.detail and "Condition/cva" in card.detail


@pytest.mark.parametrize("medication", [INGREDIENT, FLEXERIL], ids=["ingredient", "text"])
def test_c2_recognises_cyclobenzaprine_by_ingredient_and_brand(c2, medication):
    chart = [fhir.patient(), fhir.condition(MS)]
    assert len(evaluate(c2, "order-sign", chart, [fhir.medication_request(medication)])) == 1


def test_c2_recognises_contained_medication(c2):
    order = fhir.with_contained_medication(fhir.medication_request(TABLET_10))
    assert len(evaluate(c2, "order-sign", [fhir.patient(), fhir.condition(MS)], [order])) == 1


def test_c2_ignores_other_drugs_for_ms_patients(c2):
    chart = [fhir.patient(), fhir.condition(MS)]
    assert evaluate(c2, "order-sign", chart, [fhir.medication_request(METHOCARBAMOL)]) == []


def test_c2_patient_view_flags_active_cyclobenzaprine(c2):
    chart = [
        fhir.patient(),
        fhir.condition(MS),
        fhir.active_order(TABLET_10, id="m1", days_ago=3),
    ]
    card = only_card(evaluate(c2, "patient-view", chart))
    assert card.identity == "MedicationRequest/m1"
