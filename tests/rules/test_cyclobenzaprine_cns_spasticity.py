"""C2 cyclobenzaprine-cns-spasticity: cyclobenzaprine for spasticity of central origin (a recent
stroke, post-stroke hemiplegia or spasticity, multiple sclerosis, spinal cord injury or lesion,
cerebral palsy)."""

from __future__ import annotations

import pytest

from hooks.rules.sources import CYCLOBENZAPRINE_LABEL
from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.cyclobenzaprine import FLEXERIL, INGREDIENT, METHOCARBAMOL, MS, TABLET_10
from tests.support.fhir import ICD10CM, SNOMED
from tests.support.rules import evaluate, not_counting

CNS = "cyclobenzaprine-cns-spasticity"
SPASTICITY = fhir.concept(SNOMED, "221360009", "Spasticity")
STROKE = fhir.concept(SNOMED, "230690007", "Stroke")  # as Synthea sends it
POST_STROKE_HEMIPLEGIA = fhir.concept(
    ICD10CM,
    "I69.351",
    "Hemiplegia and hemiparesis following cerebral infarction affecting right dominant side",
)
CORD_LESION = fhir.concept(SNOMED, "698754002", "Chronic paralysis due to lesion of spinal cord")
TWO_YEARS = 730


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
        CORD_LESION,
        POST_STROKE_HEMIPLEGIA,
        fhir.concept(ICD10CM, "I69.954", "Hemiplegia and hemiparesis following unspecified "
                     "cerebrovascular disease affecting left non-dominant side"),
        fhir.concept(SNOMED, "108691000119102", "Spasticity as sequela of stroke"),
        fhir.concept(SNOMED, "442733008", "Hemiplegia as late effect of cerebrovascular accident"),
        fhir.concept(ICD10CM, "G81.13", "Spastic hemiplegia affecting right nondominant side"),
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
        "cord-lesion-sct",
        "post-stroke-hemiplegia-icd",
        "post-cvd-hemiplegia-icd",
        "post-stroke-spasticity-sct",
        "post-stroke-hemiplegia-sct",
        "spastic-hemiplegia-icd",
    ],
)
def test_cns_condition_gets_one_warning_naming_it(c2, code):
    chart = [fhir.patient(), fhir.condition(code, id="cns")]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    check_card(card, CNS, "warning", "cyclobenzaprine", "spasticity")
    label = code.get("text") or code["coding"][0]["display"]
    assert f"**{label}**, onset {fhir.date_of(30)}" in card.detail
    assert "Condition/" not in card.detail
    for alternative in ("tizanidine", "baclofen", "dantrolene"):
        assert alternative in card.detail


def test_cns_card_names_the_condition_its_onset_and_the_order_in_clinician_words(c2):
    chart = [fhir.patient(), fhir.condition(MS, id="ms", onset=fhir.day(400))]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    assert f"**Relapsing-remitting multiple sclerosis**, onset {fhir.date_of(400)}" in card.detail
    assert "cyclobenzaprine hydrochloride 10 MG Oral Tablet" in card.detail
    for machine_word in ("Condition/", "MedicationRequest/", "828348", "G35", "http"):
        assert machine_word not in card.detail
    assert card.identity == "MedicationRequest/d1"
    assert card.source.url == CYCLOBENZAPRINE_LABEL.url
    assert "not been found effective for spasticity" in card.detail
    assert {r.code for r in card.override_reasons} == {
        "musculoskeletal-spasm",
        "specialist-directed",
    }


def test_a_condition_coded_without_a_name_is_named_by_its_value_set_not_its_code(c2):
    chart = [fhir.patient(), fhir.condition(fhir.concept(ICD10CM, "G35.A"), id="ms")]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    assert "multiple sclerosis" in card.detail and "G35" not in card.detail


# Stroke: recent only, unless a sequela is coded -----------------------------------------------


def test_recent_stroke_fires_and_says_it_is_recent(c2):
    chart = [fhir.patient(), fhir.condition(STROKE, id="cva", onset=fhir.day(30))]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    assert f"**Stroke**, onset {fhir.date_of(30)}, within the last 365 days" in card.detail


@pytest.mark.parametrize(
    ("days_ago", "fires"), [(364, True), (366, False), (TWO_YEARS, False)],
    ids=["inside", "just-outside", "two-years"],
)
def test_stroke_alone_counts_only_within_the_365_day_window(c2, days_ago, fires):
    chart = [fhir.patient(), fhir.condition(STROKE, onset=fhir.day(days_ago))]
    cards = evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)])
    assert len(cards) == (1 if fires else 0)


def test_stroke_from_two_years_ago_alone_is_quiet(c2):
    chart = [
        fhir.patient(),
        fhir.condition(STROKE, id="cva", onset=fhir.day(TWO_YEARS)),
        fhir.condition(fhir.concept(SNOMED, "279039007", "Low back pain"), id="lbp"),
    ]
    assert evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]) == []


def test_stroke_without_a_recorded_onset_alone_is_quiet(c2):
    chart = [fhir.patient(), fhir.condition(STROKE, onset=None)]
    assert evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]) == []


def test_stroke_window_is_configurable(c2):
    chart = [fhir.patient(), fhir.condition(STROKE, onset=fhir.day(TWO_YEARS))]
    drafts = [fhir.medication_request(TABLET_10)]
    card = only_card(evaluate(c2, "order-sign", chart, drafts, stroke_window_days=800))
    assert "within the last 800 days" in card.detail


def test_old_stroke_with_post_stroke_hemiplegia_fires_naming_the_hemiplegia(c2):
    chart = [
        fhir.patient(),
        fhir.condition(STROKE, id="cva", onset=fhir.day(TWO_YEARS)),
        fhir.condition(POST_STROKE_HEMIPLEGIA, id="hemi", onset=fhir.day(TWO_YEARS - 10)),
    ]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    assert "**Hemiplegia and hemiparesis following cerebral infarction" in card.detail
    assert fhir.date_of(TWO_YEARS - 10) in card.detail
    assert "**Stroke**" not in card.detail


def test_spinal_cord_lesion_fires_whatever_its_age(c2):
    chart = [fhir.patient(), fhir.condition(CORD_LESION, onset=fhir.day(20 * 365))]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    assert "**Chronic paralysis due to lesion of spinal cord**" in card.detail


def test_ms_fires(c2):
    chart = [fhir.patient(), fhir.condition(fhir.concept(SNOMED, "24700007",
                                                         "Multiple sclerosis"))]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    assert "**Multiple sclerosis**" in card.detail


@pytest.mark.parametrize(
    "code",
    [
        fhir.concept(SNOMED, "279039007", "Low back pain"),
        fhir.concept(SNOMED, "203095000", "Spasm of back muscles"),
        fhir.concept(ICD10CM, "M62.830", "Muscle spasm of back"),
        fhir.concept(SNOMED, "278860009", "Chronic low back pain (finding)"),
        fhir.concept(ICD10CM, "G81.04", "Flaccid hemiplegia affecting left nondominant side"),
    ],
    ids=["low-back-pain", "back-spasm-sct", "back-spasm-icd", "chronic-lbp", "flaccid"],
)
def test_back_pain_or_back_spasm_only_is_quiet(c2, code):
    chart = [fhir.patient(), fhir.condition(code)]
    order = fhir.medication_request(TABLET_10, reasonCode=[code])
    assert evaluate(c2, "order-sign", chart, [order]) == []


@not_counting("resolved", "inactive", "remission", "refuted", "entered-in-error")
def test_recent_stroke_that_does_not_count_gives_no_card(c2, status):
    chart = [fhir.patient(), fhir.condition(STROKE, **status)]
    assert evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]) == []


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
    assert f"order reason: **{reason.get('text') or 'Spasticity'}**" in card.detail


def test_reason_code_spasticity_fires_beside_an_old_stroke(c2):
    chart = [fhir.patient(), fhir.condition(STROKE, onset=fhir.day(TWO_YEARS))]
    order = fhir.medication_request(TABLET_10, reasonCode=[SPASTICITY])
    card = only_card(evaluate(c2, "order-sign", chart, [order]))
    assert "order reason: **Spasticity**" in card.detail and "**Stroke**" not in card.detail


def test_a_cns_condition_as_order_reason_fires(c2):
    order = fhir.medication_request(TABLET_10, reasonCode=[CORD_LESION])
    card = only_card(evaluate(c2, "order-sign", [fhir.patient()], [order]))
    assert "order reason: **Chronic paralysis due to lesion of spinal cord**" in card.detail


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
    for label in ("Relapsing-remitting multiple sclerosis", "Cerebrovascular accident",
                  "order reason: **Spasticity**"):
        assert label in card.detail


def test_a_condition_in_both_cns_and_stroke_sets_is_listed_once(c2):
    chart = [fhir.patient(), fhir.condition(fhir.concept(SNOMED, "116288000", "Paralytic stroke"))]
    card = only_card(evaluate(c2, "order-sign", chart, [fhir.medication_request(TABLET_10)]))
    assert card.detail.count("**Paralytic stroke**") == 1


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
