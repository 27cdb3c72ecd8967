"""E1 cramps-electrolytes-abnormal: low potassium, magnesium or calcium in a patient with cramps."""

from __future__ import annotations

import pytest

from tests.support import fhir
from tests.support.cards import actions_of, cards_by_rule, check_card, only_card, ordered_loinc
from tests.support.concepts import ACETAMINOPHEN, BACLOFEN, CRAMP, GABAPENTIN, QUININE
from tests.support.electrolytes import calcium, cramps, magnesium, potassium
from tests.support.fhir import ICD10CM, RX, SNOMED
from tests.support.rules import evaluate, hook_request, not_counting, view

ABNORMAL = "cramps-electrolytes-abnormal"
NORMAL = (potassium(4.1), magnesium(2.0), calcium(9.4))


def test_cramps_with_low_potassium_get_one_warning_with_value_unit_and_date(e1):
    card = only_card(view(e1, cramps(), potassium(3.2), magnesium(2.0), calcium(9.4)))
    check_card(card, ABNORMAL, "warning", "cramps", "potassium")
    assert "potassium** 3.2 mmol/L on " + fhir.date_of(10) in card.detail
    assert "below 3.5 mmol/L (the default limit)" in card.detail
    assert "**Found:** Cramp in lower leg, and low electrolytes" in card.detail
    assert "Condition/" not in card.detail and "449918009" not in card.detail
    assert ordered_loinc(card) == ["2823-3"]
    assert {r.code for r in card.override_reasons} == {
        "already-being-corrected",
        "result-not-current",
    }
    for action in actions_of(card):
        assert action.resource["reasonReference"] == [{"reference": "Condition/cramps"}]


def test_normal_electrolytes_give_no_card(e1):
    assert view(e1, cramps(), *NORMAL) == []


def test_no_results_give_no_e1_card(e1):
    assert view(e1, cramps()) == []


@pytest.mark.parametrize("value, fires", [(3.4, True), (3.5, False)])
def test_potassium_below_3_5_by_default(e1, value, fires):
    assert len(view(e1, cramps(), potassium(value))) == int(fires)


@pytest.mark.parametrize(
    "result, fires",
    [
        (magnesium(1.5, "mg/dL"), True),  # 0.62 mmol/L
        (magnesium(1.8, "mg/dL"), False),  # 0.74 mmol/L
        (fhir.observation("2601-3", 0.65, "mmol/L"), True),
        (fhir.observation("2601-3", 0.75, "mmol/L"), False),
        (fhir.observation("2601-3", 1.3, "meq/L"), True),  # 0.65 mmol/L, though 1.3 > 0.70
        (fhir.observation("2601-3", 1.6, "meq/L"), False),  # 0.80 mmol/L
    ],
    ids=["mg/dL-low", "mg/dL-normal", "mmol/L-low", "mmol/L-normal", "meq/L-low", "meq/L-normal"],
)
def test_magnesium_is_compared_in_mmol_per_l_whatever_its_unit(e1, result, fires):
    assert len(view(e1, cramps(), result)) == int(fires)


def test_magnesium_card_shows_the_value_as_reported_and_converted(e1):
    card = only_card(view(e1, cramps(), magnesium(1.5, "mg/dL")))
    assert "1.5 mg/dL (= 0.617 mmol/L)" in card.detail and fhir.date_of(10) in card.detail
    assert ordered_loinc(card) == ["19123-9"]


@pytest.mark.parametrize(
    "result, fires",
    [
        (calcium(8.0, "mg/dL"), True),
        (calcium(9.0, "mg/dL"), False),
        (fhir.observation("2000-8", 2.0, "mmol/L"), True),
        (fhir.observation("2000-8", 2.2, "mmol/L"), False),
    ],
    ids=["mg/dL-low", "mg/dL-normal", "mmol/L-low", "mmol/L-normal"],
)
def test_total_calcium_is_compared_in_mmol_per_l_whatever_its_unit(e1, result, fires):
    assert len(view(e1, cramps(), result)) == int(fires)


def test_lab_reference_range_low_limit_is_used_before_the_default(e1):
    # 2.2 mmol/L is above the default 2.12 but below this lab's 2.25
    card = only_card(view(e1, cramps(), fhir.observation("2000-8", 2.2, "mmol/L", low=2.25)))
    assert "below 2.25 mmol/L (the lab's reference range)" in card.detail
    # 3.4 mmol/L is below the default 3.5 but within this lab's range from 3.3
    assert view(e1, cramps(), potassium(3.4, low=3.3)) == []
    # 1.6 mg/dL (0.66 mmol/L) is below the default 0.70 but within this lab's range from 1.5
    assert view(e1, cramps(), magnesium(1.6, low=1.5)) == []


def test_reference_range_in_another_unit_is_converted(e1):
    result = fhir.observation("2000-8", 2.2, "mmol/L", low=fhir.quantity(9.0, "mg/dL", "mg/dL"))
    card = only_card(view(e1, cramps(), result))  # 9.0 mg/dL = 2.25 mmol/L
    assert "the lab's reference range" in card.detail


def test_reference_range_without_a_unit_falls_back_to_the_default(e1):
    card = only_card(view(e1, cramps(), potassium(3.4, low=fhir.quantity(3.0))))
    assert "below 3.5 mmol/L (the default limit)" in card.detail


@pytest.mark.parametrize(
    "result",
    [
        magnesium(fhir.quantity(0.9, "mEq/L")),
        magnesium(fhir.quantity(0.9)),
        potassium(fhir.quantity(2.9, "mEq/L")),
        potassium(fhir.quantity(2.9)),
        magnesium(fhir.quantity(0.9, "mg/dl")),
        potassium(fhir.quantity(2.9, "mmol/L", "mmol/L", system="urn:local:units")),
    ],
    ids=[
        "Mg-mEq/L-label",
        "Mg-no-unit",
        "K-mEq/L-label",
        "K-no-unit",
        "Mg-mg/dl-label",
        "K-foreign-system",
    ],
)
def test_value_with_a_missing_or_unrecognised_unit_is_never_compared(e1, result):
    assert view(e1, cramps(), result) == []


def test_value_with_a_ucum_unit_given_only_as_its_label_is_compared(e1):
    assert len(view(e1, cramps(), potassium(fhir.quantity(2.9, "meq/L")))) == 1


def test_card_says_which_value_was_not_compared(e1):
    card = only_card(
        view(e1, cramps(), potassium(3.0), fhir.observation("2601-3", fhir.quantity(1.3, "mEq/L")))
    )
    assert "magnesium 1.3 mEq/L on " + fhir.date_of(10) in card.detail
    assert "not compared (unit not recognised)" in card.detail
    assert "magnesium" not in card.summary
    assert ordered_loinc(card) == ["2823-3"]


def test_several_low_values_give_one_card_listing_each(e1):
    card = only_card(view(e1, cramps(), potassium(3.1), magnesium(1.4), calcium(7.9)))
    assert "potassium, magnesium, calcium" in card.summary
    for shown in ("3.1 mmol/L", "1.4 mg/dL", "7.9 mg/dL"):
        assert shown in card.detail
    assert ordered_loinc(card) == ["2823-3", "19123-9", "17861-6"]


def test_result_older_than_90_days_does_not_count(e1):
    assert view(e1, cramps(), potassium(2.9, days_ago=100)) == []
    assert len(view(e1, cramps(), potassium(2.9, days_ago=100), electrolyte_lookback_days=120)) == 1


def test_most_recent_result_decides(e1):
    assert view(e1, cramps(), potassium(2.9, days_ago=60), potassium(4.0, days_ago=5)) == []
    card = only_card(view(e1, cramps(), potassium(4.0, days_ago=60), potassium(3.0, days_ago=5)))
    assert fhir.date_of(5) in card.detail and fhir.date_of(60) not in card.detail


@pytest.mark.parametrize("code", ["51618-7", "2597-3"], ids=["K-pre-dialysis", "Mg-RBC"])
def test_results_outside_the_value_set_do_not_count(e1, code):
    assert view(e1, cramps(), fhir.observation(code, 0.5, "mmol/L")) == []


def test_amended_and_preliminary_results_count_but_cancelled_do_not(e1):
    assert len(view(e1, cramps(), potassium(3.0, status="amended"))) == 1
    assert len(view(e1, cramps(), potassium(3.0, status="preliminary"))) == 1
    assert view(e1, cramps(), potassium(3.0, status="cancelled")) == []


@not_counting("resolved", "inactive", "refuted", "entered-in-error")
def test_cramps_that_do_not_count_give_no_card_on_patient_view(e1, status):
    assert view(e1, cramps(**status), potassium(3.0)) == []


@pytest.mark.parametrize(
    "code",
    [
        CRAMP,
        fhir.concept(ICD10CM, "G47.62", "Sleep related leg cramps"),
        fhir.concept(ICD10CM, "M62.831", "Muscle spasm of calf"),
        fhir.concept(text="nocturnal leg cramps"),
    ],
    ids=["sct", "G47.62", "M62.831", "text"],
)
def test_cramp_or_spasm_condition_without_clinical_status_counts(e1, code):
    chart = fhir.condition(code, id="cramps", clinical=None, verification=None)
    assert len(view(e1, chart, potassium(3.0))) == 1


def test_spasticity_is_not_a_cramp(e1):
    spasticity = fhir.condition(fhir.concept(SNOMED, "221360009", "Spasticity"))
    assert view(e1, spasticity, potassium(3.0)) == []


def test_order_hooks_need_a_cramp_treatment_among_the_orders(e1):
    chart = [fhir.patient(), cramps(), potassium(3.0)]
    assert evaluate(e1, "order-sign", chart, [fhir.medication_request(ACETAMINOPHEN)]) == []
    # An RLS drug is not about cramps: no electrolyte card rides along on it.
    assert evaluate(e1, "order-sign", chart, [fhir.medication_request(GABAPENTIN)]) == []
    for medication in (
        BACLOFEN,
        QUININE,
        fhir.concept(text="Flexeril 10 mg"),
        fhir.concept(RX, "6585", "magnesium sulfate"),
    ):
        assert len(evaluate(e1, "order-sign", chart, [fhir.medication_request(medication)])) == 1


def test_cramp_drug_ordered_without_a_cramp_condition_still_triggers(e1):
    card = only_card(
        evaluate(
            e1,
            "order-sign",
            [fhir.patient(), potassium(3.0)],
            [fhir.medication_request(fhir.concept(text="Flexeril 10 mg"))],
        )
    )
    assert "**Found:** Flexeril 10 mg being ordered, and low electrolytes" in card.detail
    assert "MedicationRequest/" not in card.detail
    assert all("reasonReference" not in a.resource for a in actions_of(card))


def test_contained_cramp_drug_medication_triggers(e1):
    order = fhir.with_contained_medication(fhir.medication_request(BACLOFEN))
    assert len(evaluate(e1, "order-sign", [fhir.patient(), potassium(3.0)], [order])) == 1


def test_rls_drug_without_a_cramp_condition_does_not_trigger(e1):
    assert (
        evaluate(
            e1,
            "order-sign",
            [fhir.patient(), potassium(3.0)],
            [fhir.medication_request(GABAPENTIN)],
        )
        == []
    )


def test_magnesium_salt_of_another_drug_is_not_a_cramp_drug(e1):
    esomeprazole = fhir.medication_request(
        fhir.concept(text="esomeprazole magnesium 40 mg capsule")
    )
    assert (
        evaluate(e1, "order-sign", [fhir.patient(), cramps(), potassium(3.0)], [esomeprazole]) == []
    )


def test_order_select_needs_the_cramp_drug_among_the_selections(e1):
    chart = [fhir.patient(), cramps(), potassium(3.0)]
    drafts = fhir.drafts(apap=ACETAMINOPHEN, bac=BACLOFEN)
    assert evaluate(e1, "order-select", chart, drafts, selections=["MedicationRequest/apap"]) == []
    assert (
        len(evaluate(e1, "order-select", chart, drafts, selections=["MedicationRequest/bac"])) == 1
    )


def test_e1_gives_one_card_per_request_whatever_the_number_of_orders(e1):
    drafts = fhir.drafts(a=BACLOFEN, b=QUININE, c=GABAPENTIN)
    card = only_card(
        evaluate(
            e1, "order-sign", [fhir.patient(), cramps(), potassium(3.0), magnesium(1.4)], drafts
        )
    )
    assert (
        "Cramp in lower leg; baclofen being ordered; "
        "quinine sulfate 324 MG Oral Capsule being ordered, and low electrolytes"
    ) in card.detail
    assert "gabapentin" not in card.detail  # not a cramp drug
    assert "MedicationRequest/" not in card.detail


# Through the service ------------------------------------------------------------------------


def test_order_sign_answers_e1_once_for_two_cramp_drugs_and_not_for_other_drugs(call):
    chart = [fhir.patient(), cramps(), potassium(3.0)]
    drafts = fhir.drafts(bac=BACLOFEN, qui=QUININE)
    response = call("legcramp-order-sign", hook_request("order-sign", chart, drafts))
    assert len(cards_by_rule(response.get_json())[ABNORMAL]) == 1
    other = hook_request("order-sign", chart, [fhir.medication_request(ACETAMINOPHEN)])
    assert ABNORMAL not in cards_by_rule(call("legcramp-order-sign", other).get_json())


def test_order_select_answers_e1_only_when_the_cramp_drug_is_selected(call):
    chart = [fhir.patient(), cramps(), magnesium(1.2)]
    drafts = fhir.drafts(bac=BACLOFEN, ap=ACETAMINOPHEN)
    request = hook_request("order-select", chart, drafts, selections=["MedicationRequest/ap"])
    assert ABNORMAL not in cards_by_rule(call("legcramp-order-select", request).get_json())
    request["context"]["selections"] = ["MedicationRequest/bac"]
    (card,) = cards_by_rule(call("legcramp-order-select", request).get_json())[ABNORMAL]
    assert "1.2 mg/dL" in card["detail"]


def test_a_magnesium_order_for_low_magnesium_is_the_correction_not_a_reason_for_a_card(e1):
    """The clinical review: E1 fired on the correction itself."""
    chart = [fhir.patient(), cramps(), magnesium(0.55)]
    ordered = fhir.medication_request(fhir.concept(RX, "6585", "magnesium sulfate"))
    assert evaluate(e1, "order-sign", chart, [ordered]) == []
    # Another low electrolyte beside it is still named; magnesium is not.
    [card] = evaluate(e1, "order-sign", [*chart, potassium(3.0)], [ordered])
    assert "potassium" in card.summary and "magnesium" not in card.summary
    # The same chart on patient-view, with no order in hand, keeps the magnesium card.
    assert "magnesium" in only_card(evaluate(e1, "patient-view", chart)).summary


# --- calcium: ionised first, else corrected for albumin, else said to be uncorrected ----------

albumin = fhir.lab_result("1751-7", "g/dL")
ionised = fhir.lab_result("1994-3", "mmol/L")


def test_low_total_calcium_with_low_albumin_is_a_normal_corrected_calcium_and_quiet(e1):
    """The clinical review: Ca 7.9 mg/dL with albumin 2.4 g/dL (corrected about 9.2) gave
    'correct electrolytes'."""
    assert view(e1, cramps(), calcium(7.9), albumin(2.4)) == []


def test_a_corrected_calcium_still_low_fires_and_shows_the_correction(e1):
    card = only_card(view(e1, cramps(), calcium(7.5), albumin(3.6)))
    assert "calcium" in card.summary
    assert "corrected for albumin" in card.detail and "7.8 mg/dL" in card.detail


def test_low_total_calcium_without_a_near_albumin_fires_and_says_it_is_uncorrected(e1):
    card = only_card(view(e1, cramps(), calcium(7.9)))
    assert "not corrected" in card.detail
    far = only_card(view(e1, cramps(), calcium(7.9, days_ago=10), albumin(2.4, days_ago=20)))
    assert "not corrected" in far.detail  # 10 days apart: not the same picture


def test_albumin_in_g_per_l_is_converted_before_correcting(e1):
    assert view(e1, cramps(), calcium(7.9), albumin(24, unit="g/L")) == []


def test_a_recent_ionised_calcium_decides_before_total_calcium(e1):
    assert view(e1, cramps(), calcium(7.9), ionised(1.2)) == []
    card = only_card(view(e1, cramps(), calcium(9.5), ionised(0.95)))
    assert "ionised calcium" in card.summary and "0.95 mmol/L" in card.detail


def test_a_lab_corrected_calcium_is_not_corrected_twice(e1):
    corrected = fhir.lab_result("29265-6", "mg/dL")
    card = only_card(view(e1, cramps(), corrected(7.9), albumin(2.4)))
    assert "corrected for albumin by the lab" in card.detail


def test_the_limit_is_shown_in_the_unit_the_lab_reported_with_the_canonical_beside_it(e1):
    card = only_card(view(e1, cramps(), magnesium(1.2)))  # mg/dL
    assert "below 1.7 mg/dL (0.7 mmol/L)" in card.detail


@pytest.mark.parametrize(("low", "product", "name"), [
    ("potassium", fhir.concept(RX, "8591", "potassium chloride"), "potassium"),
    ("calcium", fhir.concept(RX, "1897", "calcium carbonate"), "calcium"),
])
def test_a_potassium_or_calcium_order_for_its_own_low_value_is_the_correction(
        e1, low, product, name):
    """With a cramp treatment and the correction both in hand, E1 does not ask to correct
    what is being corrected; with the cramp treatment alone it does."""
    result = potassium(3.0) if low == "potassium" else calcium(7.5)
    chart = [fhir.patient(), cramps(), result]
    baclofen = fhir.medication_request(BACLOFEN, id="bac")
    correction = fhir.medication_request(product, id="fix")
    assert evaluate(e1, "order-sign", chart, [baclofen, correction]) == []
    assert name in only_card(evaluate(e1, "order-sign", chart, [baclofen])).summary
