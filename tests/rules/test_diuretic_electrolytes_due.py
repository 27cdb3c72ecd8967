"""E2 diuretic-electrolytes-due: potassium and magnesium due for a patient with cramps on a loop
or thiazide diuretic."""

from __future__ import annotations

import pytest

from tests.support import fhir
from tests.support.cards import check_card, only_card, ordered_loinc
from tests.support.concepts import ACETAMINOPHEN, BACLOFEN, QUININE
from tests.support.electrolytes import FUROSEMIDE, active, cramps, magnesium, potassium
from tests.support.fhir import RX
from tests.support.rules import evaluate, not_counting, view

DUE = "diuretic-electrolytes-due"
SPIRONOLACTONE = fhir.concept(RX, "313096", "spironolactone 25 MG Oral Tablet")


def test_cramps_on_furosemide_without_results_get_one_info_card_ordering_both(e2):
    card = only_card(view(e2, cramps(), active(FUROSEMIDE)))
    check_card(card, DUE, "info", "diuretic", "potassium", "magnesium")
    assert "**Found:** Cramp in lower leg while on **furosemide 40 MG Oral Tablet**;" in card.detail
    assert "MedicationRequest/" not in card.detail and "Condition/" not in card.detail
    assert "313988" not in card.detail and "449918009" not in card.detail
    assert "90 days" in card.detail
    assert ordered_loinc(card) == ["51990-0", "19123-9"]  # panel holds potassium
    assert card.suggestions[0].is_recommended is True


def test_card_names_magnesium_when_only_potassium_was_checked(e2):
    card = only_card(view(e2, cramps(), active(FUROSEMIDE), potassium(4.0)))
    assert "magnesium" in card.summary and "potassium" not in card.summary
    assert ordered_loinc(card) == ["19123-9"]


def test_card_names_potassium_when_only_magnesium_was_checked(e2):
    card = only_card(view(e2, cramps(), active(FUROSEMIDE), magnesium(2.0)))
    assert "potassium" in card.summary and "magnesium" not in card.summary
    assert ordered_loinc(card) == ["51990-0"]


def test_recent_potassium_and_magnesium_keep_e2_quiet(e2):
    assert view(e2, cramps(), active(FUROSEMIDE), potassium(4.0), magnesium(2.0)) == []


def test_results_in_another_unit_count_as_results(e2):
    chart = (
        cramps(),
        active(FUROSEMIDE),
        potassium(4.0, "meq/L"),
        fhir.observation("2601-3", 0.8, "mmol/L"),
    )
    assert view(e2, *chart) == []


def test_stale_results_count_as_missing(e2):
    card = only_card(
        view(
            e2,
            cramps(),
            active(FUROSEMIDE),
            potassium(4.0, days_ago=120),
            magnesium(2.0, days_ago=5),
        )
    )
    assert ordered_loinc(card) == ["51990-0"]


def test_spironolactone_alone_does_not_count(e2):
    assert view(e2, cramps(), active(SPIRONOLACTONE)) == []
    assert view(e2, cramps(), active(fhir.concept(text="Aldactone 25 mg"))) == []


def test_spironolactone_with_furosemide_counts_and_the_card_names_the_loop_diuretic(e2):
    card = only_card(
        view(e2, cramps(), active(SPIRONOLACTONE, id="spiro"), active(FUROSEMIDE, id="furo"))
    )
    assert "**furosemide 40 MG Oral Tablet**" in card.detail
    assert "spironolactone" not in card.detail


@pytest.mark.parametrize(
    "medication",
    [
        fhir.concept(RX, "4603", "furosemide"),
        fhir.concept(text="Lasix 40 mg"),
        fhir.concept(RX, "310798", "hydrochlorothiazide 25 MG Oral Tablet"),
        fhir.concept(text="chlorthalidone 25 mg"),
        fhir.concept(text="bumetanide 1 mg"),
        fhir.concept(text="torsemide 20 mg"),
    ],
    ids=["ingredient", "lasix", "hctz-scd", "chlorthalidone", "bumetanide", "torsemide"],
)
def test_loop_and_thiazide_diuretics_count(e2, medication):
    assert len(view(e2, cramps(), active(medication))) == 1


def test_contained_diuretic_medication_counts(e2):
    order = fhir.with_contained_medication(active(FUROSEMIDE))
    assert len(view(e2, cramps(), order)) == 1


def test_two_diuretics_give_one_card_listing_both(e2):
    card = only_card(
        view(
            e2,
            cramps(),
            active(FUROSEMIDE, id="furo"),
            active(fhir.concept(text="hydrochlorothiazide 25 mg"), id="hctz"),
        )
    )
    both = "while on **furosemide 40 MG Oral Tablet**; **hydrochlorothiazide 25 mg**; no"
    assert both in card.detail
    assert "MedicationRequest/" not in card.detail


def test_stopped_diuretic_does_not_count(e2):
    stopped = fhir.medication_request(
        FUROSEMIDE, id="furo", status="stopped", authored=fhir.day(200)
    )
    assert view(e2, cramps(), stopped) == []


def test_diuretic_without_cramps_gives_no_card(e2):
    assert view(e2, active(FUROSEMIDE)) == []


@not_counting("resolved", "refuted", "entered-in-error")
def test_cramps_that_do_not_count_keep_e2_quiet(e2, status):
    assert view(e2, cramps(**status), active(FUROSEMIDE)) == []


def test_cramps_without_clinical_status_count_for_e2(e2):
    assert len(view(e2, cramps(clinical=None), active(FUROSEMIDE))) == 1


def test_e2_on_order_hooks_only_while_a_cramp_or_rls_drug_is_ordered(e2):
    chart = [fhir.patient(), cramps(), active(FUROSEMIDE)]
    assert evaluate(e2, "order-sign", chart, [fhir.medication_request(ACETAMINOPHEN)]) == []
    drafts = fhir.drafts(a=BACLOFEN, b=QUININE)
    assert len(evaluate(e2, "order-sign", chart, drafts)) == 1


def test_draft_diuretic_is_not_an_active_diuretic(e2):
    drafts = fhir.drafts(a=BACLOFEN, b=FUROSEMIDE)
    assert evaluate(e2, "order-sign", [fhir.patient(), cramps()], drafts) == []
