"""M1 cramps-contributing-medications: on chart open, list the diuretics, statins and
beta-blockers a patient with leg cramps is taking."""

from __future__ import annotations

from typing import Any

import pytest

from hooks import data
from hooks.valuesets import documents
from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.fhir import ICD10CM, RX, SNOMED
from tests.support.rules import declared_defaults, evaluate, not_counting, view

M1 = "cramps-contributing-medications"
FUROSEMIDE_80 = fhir.concept(RX, "197732", "furosemide 80 MG Oral Tablet")
ATORVASTATIN = fhir.concept(RX, "83367", "atorvastatin")
ATENOLOL_25 = fhir.concept(RX, "197380", "atenolol 25 MG Oral Tablet")
SPIRONOLACTONE_100 = fhir.concept(RX, "198222", "spironolactone 100 MG Oral Tablet")


def cramps(**extra: Any) -> dict[str, Any]:
    return fhir.condition(fhir.concept(ICD10CM, "G47.62", "Sleep related leg cramps"),
                          id="cramps", onset=fhir.day(60), **extra)


def active(medication: dict[str, Any], id: str, days_ago: float = 300, **extra: Any):
    return fhir.active_order(medication, id=id, days_ago=days_ago, **extra)


def test_cramps_on_a_diuretic_and_a_statin_get_one_card_listing_both(m1):
    card = only_card(view(m1, cramps(), active(FUROSEMIDE_80, "m1", 300),
                          active(ATORVASTATIN, "m2", 700)))
    check_card(card, M1, "info", "leg cramps", "furosemide", "atorvastatin")
    assert card.identity == "contributing:MedicationRequest/m1,MedicationRequest/m2"
    assert f"- **furosemide 80 MG Oral Tablet** (diuretic, since {fhir.date_of(300)})" in (
        card.detail
    )
    assert f"- **atorvastatin** (statin, since {fhir.date_of(700)})" in card.detail
    assert f"- **Sleep related leg cramps** (onset {fhir.date_of(60)})" in card.detail
    assert "MedicationRequest/" not in card.detail and "Condition/" not in card.detail
    assert "197732" not in card.detail and "83367" not in card.detail
    assert "electrolyte" in card.detail
    assert card.suggestions == ()


def test_identity_is_stable_whatever_the_order_of_the_chart(m1):
    first = only_card(view(m1, cramps(), active(ATORVASTATIN, "m2"), active(FUROSEMIDE_80, "m1")))
    second = only_card(view(m1, cramps(), active(FUROSEMIDE_80, "m1"), active(ATORVASTATIN, "m2")))
    assert first.identity == second.identity


@pytest.mark.parametrize(
    "medication, label, code",
    [
        (SPIRONOLACTONE_100, "spironolactone 100 MG Oral Tablet", "198222"),
        (fhir.concept(RX, "9997", "spironolactone"), "spironolactone", "9997"),
        (fhir.concept(text="Spironolactone 25 mg tablet"), "Spironolactone 25 mg tablet", None),
    ],
    ids=["spironolactone-product", "spironolactone-ingredient", "spironolactone-text"],
)
def test_spironolactone_counts_as_a_diuretic(m1, medication, label, code):
    card = only_card(view(m1, cramps(), active(medication, "m1")))
    assert f"- **{label}** (diuretic, since" in card.detail
    assert "identified" not in card.detail
    if code is not None:
        assert code not in card.detail
    assert "spironolactone" in card.summary.lower()


@pytest.mark.parametrize(
    "medication, kind",
    [
        (ATENOLOL_25, "beta-blocker"),
        (fhir.concept(RX, "6918", "metoprolol"), "beta-blocker"),
        (fhir.concept(text="carvedilol 6.25 mg twice daily"), "beta-blocker"),
        (fhir.concept(RX, "36567", "simvastatin"), "statin"),
        (fhir.concept(text="rosuvastatin 10 mg"), "statin"),
        (fhir.concept(RX, "5487", "hydrochlorothiazide"), "diuretic"),
    ],
    ids=["atenolol-product", "metoprolol-in", "carvedilol-text", "simvastatin-in",
         "rosuvastatin-text", "hctz-in"],
)
def test_each_class_is_recognised(m1, medication, kind):
    card = only_card(view(m1, cramps(), active(medication, "m1")))
    label = medication.get("text") or medication["coding"][0]["display"]
    assert f"- **{label}** ({kind}, since {fhir.date_of(300)})" in card.detail


@pytest.mark.parametrize("value_set_id", ["diuretics", "statins", "beta-blockers"])
def test_every_code_of_the_three_value_sets_is_listed(m1, value_set_id):
    codes = [(c["system"], c["code"]) for c in documents()[value_set_id]["codes"]]
    assert len(codes) > 50
    missed = [code for code in codes
              if len(view(m1, cramps(), active(fhir.concept(*code), "m1"))) != 1]
    assert missed == []


def test_contained_medication_is_recognised(m1):
    order = fhir.with_contained_medication(active(ATENOLOL_25, "m1"))
    card = only_card(view(m1, cramps(), order))
    assert "atenolol 25 MG Oral Tablet" in card.summary and "beta-blocker" in card.detail


def test_a_combination_product_is_listed_once_with_both_classes(m1):
    combination = fhir.concept(text="atenolol 50 mg / chlorthalidone 25 mg tablet")
    card = only_card(view(m1, cramps(), active(combination, "m1")))
    name = "**atenolol 50 mg / chlorthalidone 25 mg tablet**"
    assert card.detail.count(name) == 1
    assert f"{name} (diuretic and beta-blocker, since" in card.detail


def test_many_long_names_keep_the_summary_under_140(m1):
    chart = [cramps()] + [
        active(
            fhir.concept(text=f"24 HR metoprolol succinate {n} MG Extended Release Oral Tablet"),
            f"m{n}")
        for n in (25, 50, 100, 200)
    ]
    card = only_card(view(m1, *chart))
    assert len(card.summary) < 140 and "more" in card.summary
    assert card.summary.startswith("Leg cramps")
    single = only_card(view(m1, cramps(), active(fhir.concept(text="atenolol " + "x" * 200), "m1")))
    assert len(single.summary) < 140


def test_cramps_without_clinical_status_count(m1):
    chart = [fhir.condition(fhir.concept(SNOMED, "449918009", "Cramp in lower leg"), id="c",
                            clinical=None, verification=None)]
    assert len(view(m1, *chart, active(ATORVASTATIN, "m1"))) == 1


# Quiet --------------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_quiet_on_order_hooks(m1, hook):
    chart = [fhir.patient(), cramps(), active(FUROSEMIDE_80, "m1"), active(ATORVASTATIN, "m2")]
    drafts = [fhir.medication_request(SPIRONOLACTONE_100, id="d1")]
    assert evaluate(m1, hook, chart, drafts) == []


@not_counting("resolved", "inactive", "refuted", "entered-in-error")
def test_quiet_when_cramps_do_not_count(m1, status):
    assert view(m1, cramps(**status), active(FUROSEMIDE_80, "m1")) == []


def test_quiet_without_cramps_or_without_contributing_medicines(m1):
    rls = fhir.condition(fhir.concept(SNOMED, "32914008", "Restless legs"), id="rls")
    assert view(m1, rls, active(FUROSEMIDE_80, "m1")) == []
    assert view(m1, cramps(), active(fhir.concept(RX, "25480", "gabapentin"), "m1")) == []
    assert view(m1, cramps(), active(fhir.concept(text="amlodipine 5 mg"), "m1")) == []


def test_stopped_and_draft_orders_do_not_count(m1):
    stopped = fhir.medication_request(ATORVASTATIN, id="m1", status="stopped",
                                      authored=fhir.day(100))
    draft = fhir.medication_request(FUROSEMIDE_80, id="m2", status="draft")
    assert view(m1, cramps(), stopped, draft) == []
    card = only_card(view(m1, cramps(), stopped, active(ATENOLOL_25, "m3")))
    assert "atorvastatin" not in card.detail and "furosemide" not in card.detail
    assert "**atenolol 25 MG Oral Tablet** (beta-blocker" in card.detail
    assert card.identity == "contributing:MedicationRequest/m3"


def test_deceased_patient_has_no_active_medicines(m1):
    chart = [fhir.patient(deceasedBoolean=True), cramps(), active(FUROSEMIDE_80, "m1")]
    assert evaluate(m1, "patient-view", chart) == []


def test_m1_reads(m1):
    assert m1.reads("patient-view") == (data.ACTIVE_MEDICATIONS, data.CONDITIONS)
    assert tuple(m1.reads("order-sign")) == () and tuple(m1.reads("order-select")) == ()
    assert declared_defaults(m1) == {} and m1.catalog_code == "M1" and m1.indicator == "info"


def test_the_card_repeats_quietly(m1):
    assert only_card(view(m1, cramps(), active(ATORVASTATIN, "m1"))).repeat_quietly is True
