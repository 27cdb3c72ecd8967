"""E1 cramps-electrolytes-abnormal and E2 diuretic-electrolytes-due: electrolytes in cramps."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fhir import (
    ICD10CM,
    RX,
    SNOMED,
    actions_of,
    cards_by_rule,
    check_card,
    check_json_actions,
    concept,
    condition,
    date_of,
    day,
    evaluate,
    hook_request,
    medication_request,
    observation,
    only_card,
    ordered_loinc_codes,
    patient,
    quantity,
    rule,
    with_contained_medication,
)

ABNORMAL = "cramps-electrolytes-abnormal"
DUE = "diuretic-electrolytes-due"
CRAMP = concept(SNOMED, "449918009", "Cramp in lower leg")
BACLOFEN = concept(RX, "1292", "baclofen")
QUININE = concept(RX, "997010", "quinine sulfate 324 MG Oral Capsule")
ACETAMINOPHEN = concept(RX, "161", "acetaminophen")
GABAPENTIN = concept(RX, "310431", "gabapentin 300 MG Oral Capsule")
FUROSEMIDE = concept(RX, "313988", "furosemide 40 MG Oral Tablet")
SPIRONOLACTONE = concept(RX, "313096", "spironolactone 25 MG Oral Tablet")


@pytest.fixture(scope="module")
def e1() -> Any:
    return rule(ABNORMAL)


@pytest.fixture(scope="module")
def e2() -> Any:
    return rule(DUE)


def cramps(**extra: Any) -> dict[str, Any]:
    return condition(CRAMP, id="cramps", **extra)


def potassium(value: Any, unit: str | None = "mmol/L", days_ago: float = 10, **extra: Any):
    return observation("2823-3", value, unit, days_ago, **extra)


def magnesium(value: Any, unit: str | None = "mg/dL", days_ago: float = 10, **extra: Any):
    return observation("19123-9", value, unit, days_ago, **extra)


def calcium(value: Any, unit: str | None = "mg/dL", days_ago: float = 10, **extra: Any):
    return observation("17861-6", value, unit, days_ago, **extra)


def active(medication: dict[str, Any], id: str = "diuretic", **extra: Any) -> dict[str, Any]:
    return medication_request(medication, id=id, status="active", authored=day(200), **extra)


def view(a_rule: Any, *chart: dict[str, Any], **settings: Any) -> list[Any]:
    return evaluate(a_rule, "patient-view", [patient(), *chart], **settings)


NORMAL = (potassium(4.1), magnesium(2.0), calcium(9.4))


# E1 abnormal electrolytes ------------------------------------------------------------------------


def test_cramps_with_low_potassium_get_one_warning_with_value_unit_and_date(e1):
    card = only_card(view(e1, cramps(), potassium(3.2), magnesium(2.0), calcium(9.4)))
    check_card(card, ABNORMAL, "warning", "cramps", "potassium")
    assert "potassium** 3.2 mmol/L on " + date_of(10) in card.detail
    assert "below 3.5 mmol/L (the default limit)" in card.detail
    assert "Condition/cramps" in card.detail
    assert ordered_loinc_codes(card) == ["2823-3"]
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
        (observation("2601-3", 0.65, "mmol/L"), True),
        (observation("2601-3", 0.75, "mmol/L"), False),
        (observation("2601-3", 1.3, "meq/L"), True),  # 0.65 mmol/L, though 1.3 > 0.70
        (observation("2601-3", 1.6, "meq/L"), False),  # 0.80 mmol/L
    ],
    ids=["mg/dL-low", "mg/dL-normal", "mmol/L-low", "mmol/L-normal", "meq/L-low", "meq/L-normal"],
)
def test_magnesium_is_compared_in_mmol_per_l_whatever_its_unit(e1, result, fires):
    assert len(view(e1, cramps(), result)) == int(fires)


def test_magnesium_card_shows_the_value_as_reported_and_converted(e1):
    card = only_card(view(e1, cramps(), magnesium(1.5, "mg/dL")))
    assert "1.5 mg/dL (= 0.617 mmol/L)" in card.detail and date_of(10) in card.detail
    assert ordered_loinc_codes(card) == ["19123-9"]


@pytest.mark.parametrize(
    "result, fires",
    [
        (calcium(8.0, "mg/dL"), True),
        (calcium(9.0, "mg/dL"), False),
        (observation("2000-8", 2.0, "mmol/L"), True),
        (observation("2000-8", 2.2, "mmol/L"), False),
    ],
    ids=["mg/dL-low", "mg/dL-normal", "mmol/L-low", "mmol/L-normal"],
)
def test_total_calcium_is_compared_in_mmol_per_l_whatever_its_unit(e1, result, fires):
    assert len(view(e1, cramps(), result)) == int(fires)


def test_lab_reference_range_low_limit_is_used_before_the_default(e1):
    # 2.2 mmol/L is above the default 2.12 but below this lab's 2.25
    card = only_card(view(e1, cramps(), observation("2000-8", 2.2, "mmol/L", low=2.25)))
    assert "below 2.25 mmol/L (the lab's reference range)" in card.detail
    # 3.4 mmol/L is below the default 3.5 but within this lab's range from 3.3
    assert view(e1, cramps(), potassium(3.4, low=3.3)) == []
    # 1.6 mg/dL (0.66 mmol/L) is below the default 0.70 but within this lab's range from 1.5
    assert view(e1, cramps(), magnesium(1.6, low=1.5)) == []


def test_reference_range_in_another_unit_is_converted(e1):
    result = observation("2000-8", 2.2, "mmol/L", low=quantity(9.0, "mg/dL", "mg/dL"))
    card = only_card(view(e1, cramps(), result))  # 9.0 mg/dL = 2.25 mmol/L
    assert "the lab's reference range" in card.detail


def test_reference_range_without_a_unit_falls_back_to_the_default(e1):
    card = only_card(view(e1, cramps(), potassium(3.4, low=quantity(3.0))))
    assert "below 3.5 mmol/L (the default limit)" in card.detail


@pytest.mark.parametrize(
    "result",
    [
        magnesium(quantity(0.9, "mEq/L")),
        magnesium(quantity(0.9)),
        potassium(quantity(2.9, "mEq/L")),
        potassium(quantity(2.9)),
        magnesium(quantity(0.9, "mg/dl")),
        potassium(quantity(2.9, "mmol/L", "mmol/L", system="urn:local:units")),
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
    assert len(view(e1, cramps(), potassium(quantity(2.9, "meq/L")))) == 1


def test_card_says_which_value_was_not_compared(e1):
    card = only_card(
        view(e1, cramps(), potassium(3.0), observation("2601-3", quantity(1.3, "mEq/L")))
    )
    assert "magnesium 1.3 mEq/L on " + date_of(10) in card.detail
    assert "not compared (unit not recognised)" in card.detail
    assert "magnesium" not in card.summary
    assert ordered_loinc_codes(card) == ["2823-3"]


def test_several_low_values_give_one_card_listing_each(e1):
    card = only_card(view(e1, cramps(), potassium(3.1), magnesium(1.4), calcium(7.9)))
    assert "potassium, magnesium, calcium" in card.summary
    for shown in ("3.1 mmol/L", "1.4 mg/dL", "7.9 mg/dL"):
        assert shown in card.detail
    assert ordered_loinc_codes(card) == ["2823-3", "19123-9", "17861-6"]


def test_result_older_than_90_days_does_not_count(e1):
    assert view(e1, cramps(), potassium(2.9, days_ago=100)) == []
    assert len(view(e1, cramps(), potassium(2.9, days_ago=100), electrolyte_lookback_days=120)) == 1


def test_most_recent_result_decides(e1):
    assert view(e1, cramps(), potassium(2.9, days_ago=60), potassium(4.0, days_ago=5)) == []
    card = only_card(view(e1, cramps(), potassium(4.0, days_ago=60), potassium(3.0, days_ago=5)))
    assert date_of(5) in card.detail and date_of(60) not in card.detail


@pytest.mark.parametrize("code", ["51618-7", "2597-3"], ids=["K-pre-dialysis", "Mg-RBC"])
def test_results_outside_the_value_set_do_not_count(e1, code):
    assert view(e1, cramps(), observation(code, 0.5, "mmol/L")) == []


def test_amended_and_preliminary_results_count_but_cancelled_do_not(e1):
    assert len(view(e1, cramps(), potassium(3.0, status="amended"))) == 1
    assert len(view(e1, cramps(), potassium(3.0, status="preliminary"))) == 1
    assert view(e1, cramps(), potassium(3.0, status="cancelled")) == []


@pytest.mark.parametrize(
    "status",
    [
        {"clinical": "resolved"},
        {"clinical": "inactive"},
        {"verification": "refuted"},
        {"verification": "entered-in-error"},
    ],
    ids=lambda s: next(iter(s.values())),
)
def test_cramps_that_do_not_count_give_no_card_on_patient_view(e1, status):
    assert view(e1, cramps(**status), potassium(3.0)) == []


@pytest.mark.parametrize(
    "code",
    [
        CRAMP,
        concept(ICD10CM, "G47.62", "Sleep related leg cramps"),
        concept(ICD10CM, "M62.831", "Muscle spasm of calf"),
        concept(text="nocturnal leg cramps"),
    ],
    ids=["sct", "G47.62", "M62.831", "text"],
)
def test_cramp_or_spasm_condition_without_clinical_status_counts(e1, code):
    chart = condition(code, id="cramps", clinical=None, verification=None)
    assert len(view(e1, chart, potassium(3.0))) == 1


def test_spasticity_is_not_a_cramp(e1):
    spasticity = condition(concept(SNOMED, "221360009", "Spasticity"))
    assert view(e1, spasticity, potassium(3.0)) == []


def test_order_hooks_need_an_rls_or_cramp_drug_among_the_orders(e1):
    chart = [patient(), cramps(), potassium(3.0)]
    assert evaluate(e1, "order-sign", chart, [medication_request(ACETAMINOPHEN)]) == []
    for medication in (
        BACLOFEN,
        QUININE,
        GABAPENTIN,
        concept(text="Flexeril 10 mg"),
        concept(RX, "6585", "magnesium sulfate"),
    ):
        assert len(evaluate(e1, "order-sign", chart, [medication_request(medication)])) == 1


def test_cramp_drug_ordered_without_a_cramp_condition_still_triggers(e1):
    card = only_card(
        evaluate(
            e1,
            "order-sign",
            [patient(), potassium(3.0)],
            [medication_request(concept(text="Flexeril 10 mg"))],
        )
    )
    assert "Flexeril 10 mg being ordered (MedicationRequest/d1)" in card.detail
    assert all("reasonReference" not in a.resource for a in actions_of(card))


def test_contained_cramp_drug_medication_triggers(e1):
    order = with_contained_medication(medication_request(BACLOFEN))
    assert len(evaluate(e1, "order-sign", [patient(), potassium(3.0)], [order])) == 1


def test_rls_drug_without_a_cramp_condition_does_not_trigger(e1):
    assert (
        evaluate(e1, "order-sign", [patient(), potassium(3.0)], [medication_request(GABAPENTIN)])
        == []
    )


def test_magnesium_salt_of_another_drug_is_not_a_cramp_drug(e1):
    esomeprazole = medication_request(concept(text="esomeprazole magnesium 40 mg capsule"))
    assert evaluate(e1, "order-sign", [patient(), cramps(), potassium(3.0)], [esomeprazole]) == []


def test_order_select_needs_the_cramp_drug_among_the_selections(e1):
    chart = [patient(), cramps(), potassium(3.0)]
    drafts = [medication_request(ACETAMINOPHEN, id="apap"), medication_request(BACLOFEN, id="bac")]
    assert evaluate(e1, "order-select", chart, drafts, selections=["MedicationRequest/apap"]) == []
    assert (
        len(evaluate(e1, "order-select", chart, drafts, selections=["MedicationRequest/bac"])) == 1
    )


def test_e1_gives_one_card_per_request_whatever_the_number_of_orders(e1):
    drafts = [
        medication_request(BACLOFEN, id="a"),
        medication_request(QUININE, id="b"),
        medication_request(GABAPENTIN, id="c"),
    ]
    card = only_card(
        evaluate(e1, "order-sign", [patient(), cramps(), potassium(3.0), magnesium(1.4)], drafts)
    )
    assert "MedicationRequest/a" in card.detail and "MedicationRequest/b" in card.detail


# E2 electrolytes due on diuretics ----------------------------------------------------------------


def test_cramps_on_furosemide_without_results_get_one_info_card_ordering_both(e2):
    card = only_card(view(e2, cramps(), active(FUROSEMIDE)))
    check_card(card, DUE, "info", "diuretic", "potassium", "magnesium")
    assert "furosemide 40 MG Oral Tablet" in card.detail
    assert "MedicationRequest/diuretic" in card.detail and "Condition/cramps" in card.detail
    assert "90 days" in card.detail
    assert ordered_loinc_codes(card) == ["51990-0", "19123-9"]  # panel holds potassium
    assert card.suggestions[0].is_recommended is True


def test_card_names_magnesium_when_only_potassium_was_checked(e2):
    card = only_card(view(e2, cramps(), active(FUROSEMIDE), potassium(4.0)))
    assert "magnesium" in card.summary and "potassium" not in card.summary
    assert ordered_loinc_codes(card) == ["19123-9"]


def test_card_names_potassium_when_only_magnesium_was_checked(e2):
    card = only_card(view(e2, cramps(), active(FUROSEMIDE), magnesium(2.0)))
    assert "potassium" in card.summary and "magnesium" not in card.summary
    assert ordered_loinc_codes(card) == ["51990-0"]


def test_recent_potassium_and_magnesium_keep_e2_quiet(e2):
    assert view(e2, cramps(), active(FUROSEMIDE), potassium(4.0), magnesium(2.0)) == []


def test_results_in_another_unit_count_as_results(e2):
    chart = (
        cramps(),
        active(FUROSEMIDE),
        potassium(4.0, "meq/L"),
        observation("2601-3", 0.8, "mmol/L"),
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
    assert ordered_loinc_codes(card) == ["51990-0"]


def test_spironolactone_alone_does_not_count(e2):
    assert view(e2, cramps(), active(SPIRONOLACTONE)) == []
    assert view(e2, cramps(), active(concept(text="Aldactone 25 mg"))) == []


def test_spironolactone_with_furosemide_counts_and_the_card_names_the_loop_diuretic(e2):
    card = only_card(
        view(e2, cramps(), active(SPIRONOLACTONE, id="spiro"), active(FUROSEMIDE, id="furo"))
    )
    assert "MedicationRequest/furo" in card.detail
    assert "MedicationRequest/spiro" not in card.detail


@pytest.mark.parametrize(
    "medication",
    [
        concept(RX, "4603", "furosemide"),
        concept(text="Lasix 40 mg"),
        concept(RX, "310798", "hydrochlorothiazide 25 MG Oral Tablet"),
        concept(text="chlorthalidone 25 mg"),
        concept(text="bumetanide 1 mg"),
        concept(text="torsemide 20 mg"),
    ],
    ids=["ingredient", "lasix", "hctz-scd", "chlorthalidone", "bumetanide", "torsemide"],
)
def test_loop_and_thiazide_diuretics_count(e2, medication):
    assert len(view(e2, cramps(), active(medication))) == 1


def test_contained_diuretic_medication_counts(e2):
    order = with_contained_medication(active(FUROSEMIDE))
    assert len(view(e2, cramps(), order)) == 1


def test_two_diuretics_give_one_card_listing_both(e2):
    card = only_card(
        view(
            e2,
            cramps(),
            active(FUROSEMIDE, id="furo"),
            active(concept(text="hydrochlorothiazide 25 mg"), id="hctz"),
        )
    )
    assert "MedicationRequest/furo" in card.detail and "MedicationRequest/hctz" in card.detail


def test_stopped_diuretic_does_not_count(e2):
    stopped = medication_request(FUROSEMIDE, id="furo", status="stopped", authored=day(200))
    assert view(e2, cramps(), stopped) == []


def test_diuretic_without_cramps_gives_no_card(e2):
    assert view(e2, active(FUROSEMIDE)) == []


@pytest.mark.parametrize(
    "status",
    [{"clinical": "resolved"}, {"verification": "refuted"}, {"verification": "entered-in-error"}],
    ids=lambda s: next(iter(s.values())),
)
def test_cramps_that_do_not_count_keep_e2_quiet(e2, status):
    assert view(e2, cramps(**status), active(FUROSEMIDE)) == []


def test_cramps_without_clinical_status_count_for_e2(e2):
    assert len(view(e2, cramps(clinical=None), active(FUROSEMIDE))) == 1


def test_e2_on_order_hooks_only_while_a_cramp_or_rls_drug_is_ordered(e2):
    chart = [patient(), cramps(), active(FUROSEMIDE)]
    assert evaluate(e2, "order-sign", chart, [medication_request(ACETAMINOPHEN)]) == []
    drafts = [medication_request(BACLOFEN, id="a"), medication_request(QUININE, id="b")]
    assert len(evaluate(e2, "order-sign", chart, drafts)) == 1


def test_draft_diuretic_is_not_an_active_diuretic(e2):
    drafts = [medication_request(BACLOFEN, id="a"), medication_request(FUROSEMIDE, id="b")]
    assert evaluate(e2, "order-sign", [patient(), cramps()], drafts) == []


# Through the service ------------------------------------------------------------------------


def test_patient_view_answers_e1_and_e2_with_lab_orders_coded_in_loinc(call):
    chart = [patient(), cramps(), active(FUROSEMIDE), potassium(3.1)]
    response = call("legcramp-patient-view", hook_request("patient-view", chart))
    by_rule = cards_by_rule(response.get_json())
    (low,) = by_rule[ABNORMAL]
    (due,) = by_rule[DUE]
    assert low["indicator"] == "warning" and due["indicator"] == "info"
    assert "3.1 mmol/L" in low["detail"] and date_of(10) in low["detail"]
    assert "magnesium" in due["summary"] and "potassium" not in due["summary"]
    for card in (low, due):
        check_json_actions(card)
        for suggestion in card["suggestions"]:
            for action in suggestion["actions"]:
                assert action["type"] == "create"
                assert action["resource"]["resourceType"] == "ServiceRequest"
                assert action["resource"]["code"]["coding"][0]["system"] == "http://loinc.org"


def test_order_sign_answers_e1_once_for_two_cramp_drugs_and_not_for_other_drugs(call):
    chart = [patient(), cramps(), potassium(3.0)]
    drafts = [medication_request(BACLOFEN, id="bac"), medication_request(QUININE, id="qui")]
    response = call("legcramp-order-sign", hook_request("order-sign", chart, drafts))
    assert len(cards_by_rule(response.get_json())[ABNORMAL]) == 1
    other = hook_request("order-sign", chart, [medication_request(ACETAMINOPHEN)])
    assert ABNORMAL not in cards_by_rule(call("legcramp-order-sign", other).get_json())


def test_order_select_answers_e1_only_when_the_cramp_drug_is_selected(call):
    chart = [patient(), cramps(), magnesium(1.2)]
    drafts = [medication_request(BACLOFEN, id="bac"), medication_request(ACETAMINOPHEN, id="ap")]
    request = hook_request("order-select", chart, drafts, selections=["MedicationRequest/ap"])
    assert ABNORMAL not in cards_by_rule(call("legcramp-order-select", request).get_json())
    request["context"]["selections"] = ["MedicationRequest/bac"]
    (card,) = cards_by_rule(call("legcramp-order-select", request).get_json())[ABNORMAL]
    assert "1.2 mg/dL" in card["detail"]
