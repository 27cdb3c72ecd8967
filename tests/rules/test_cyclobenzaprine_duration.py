"""C1 cyclobenzaprine-duration, C2 cyclobenzaprine-cns-spasticity, C3 cyclobenzaprine-dose."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hooks.valuesets import documents
from tests.support.fhir import (
    ATC,
    ICD10CM,
    RX,
    SNOMED,
    UCUM,
    actions_of,
    cards_by_rule,
    check_card,
    check_json_actions,
    concept,
    condition,
    date_of,
    day,
    dosage,
    evaluate,
    hook_request,
    medication_request,
    only_card,
    patient,
    quantity,
    rule,
    supply,
    validate_fhir,
    with_contained_medication,
)

DURATION = "cyclobenzaprine-duration"
CNS = "cyclobenzaprine-cns-spasticity"
DOSE = "cyclobenzaprine-dose"

TABLET_10 = concept(RX, "828348", "cyclobenzaprine hydrochloride 10 MG Oral Tablet")
TABLET_5 = concept(RX, "828320", "cyclobenzaprine hydrochloride 5 MG Oral Tablet")
TABLET_7_5 = concept(RX, "828299", "cyclobenzaprine hydrochloride 7.5 MG Oral Tablet")
ER_30 = concept(
    RX, "828353", "24 HR cyclobenzaprine hydrochloride 30 MG Extended Release Oral Capsule"
)
INGREDIENT = concept(RX, "21949", "cyclobenzaprine")
FLEXERIL = concept(text="Flexeril 10 mg")
METHOCARBAMOL = concept(RX, "6845", "methocarbamol")
MS = concept(ICD10CM, "G35.A", "Relapsing-remitting multiple sclerosis")
SPASTICITY = concept(SNOMED, "221360009", "Spasticity")


@pytest.fixture(scope="module")
def c1() -> Any:
    return rule(DURATION)


@pytest.fixture(scope="module")
def c2() -> Any:
    return rule(CNS)


@pytest.fixture(scope="module")
def c3() -> Any:
    return rule(DOSE)


def cyclobenzaprine_products() -> list[str]:
    return [c["code"] for c in documents()["cyclobenzaprine"]["codes"] if c["system"] == RX]


# C1 duration ------------------------------------------------------------------------------------


def test_thirty_day_supply_gets_one_duration_warning_with_the_computation(c1):
    order = medication_request(TABLET_10, dispenseRequest=supply(30), dosageInstruction=[dosage()])
    card = only_card(evaluate(c1, "order-sign", [patient()], [order]))
    check_card(card, DURATION, "warning", "cyclobenzaprine", "21 days")
    assert "30 days" in card.detail and "expectedSupplyDuration" in card.detail
    assert "MedicationRequest/d1" in card.detail and "2026-11-21" in card.detail
    assert {r.code for r in card.override_reasons} == {
        "specialist-directed",
        "patient-re-evaluated",
    }
    assert card.identity == "MedicationRequest/d1"


def test_fourteen_day_supply_gets_no_duration_card(c1):
    order = medication_request(TABLET_10, dispenseRequest=supply(14), dosageInstruction=[dosage()])
    assert evaluate(c1, "order-sign", [patient()], [order]) == []


@pytest.mark.parametrize("days, fires", [(21, False), (22, True)])
def test_duration_limit_is_over_21_days_not_at_it(c1, days, fires):
    order = medication_request(TABLET_10, dispenseRequest=supply(days))
    assert len(evaluate(c1, "order-sign", [patient()], [order])) == int(fires)


def test_seven_days_with_three_refills_counts_as_28_days(c1):
    order = medication_request(TABLET_10, dispenseRequest=supply(7, refills=3))
    card = only_card(evaluate(c1, "order-sign", [patient()], [order]))
    assert "28 days" in card.detail and "3 refills" in card.detail


def test_seven_days_without_refills_gets_no_card(c1):
    order = medication_request(TABLET_10, dispenseRequest=supply(7, refills=0))
    assert evaluate(c1, "order-sign", [patient()], [order]) == []


def test_ninety_tablets_at_one_three_times_a_day_counts_as_30_days(c1):
    order = medication_request(
        TABLET_10,
        dispenseRequest={"quantity": quantity(90, "tablet", "{tablet}")},
        dosageInstruction=[dosage(1, timing_code="TID")],
    )
    card = only_card(evaluate(c1, "order-sign", [patient()], [order]))
    assert "30 days" in card.detail and "dispense quantity 90" in card.detail


def test_forty_two_tablets_at_one_three_times_a_day_is_a_two_week_course(c1):
    order = medication_request(
        TABLET_10,
        dispenseRequest={"quantity": quantity(42, "tablet", "{tablet}")},
        dosageInstruction=[dosage(1, timing_code="TID")],
    )
    assert evaluate(c1, "order-sign", [patient()], [order]) == []


def test_validity_period_and_dosage_bounds_also_give_the_duration(c1):
    by_validity = medication_request(
        TABLET_10, dispenseRequest={"validityPeriod": {"start": date_of(0), "end": date_of(-29)}}
    )
    card = only_card(evaluate(c1, "order-sign", [patient()], [by_validity]))
    assert "validityPeriod" in card.detail and "30 days" in card.detail
    bounded = dosage()
    bounded["timing"]["repeat"]["boundsDuration"] = {
        "value": 4,
        "unit": "weeks",
        "system": UCUM,
        "code": "wk",
    }
    card = only_card(
        evaluate(
            c1,
            "order-sign",
            [patient()],
            [medication_request(TABLET_10, dosageInstruction=[bounded])],
        )
    )
    assert "boundsDuration" in card.detail and "28 days" in card.detail


def test_order_without_any_duration_and_no_earlier_use_gets_no_card(c1):
    order = medication_request(TABLET_10, dosageInstruction=[dosage()])
    assert evaluate(c1, "order-sign", [patient()], [order]) == []


@pytest.mark.parametrize(
    "medication",
    [
        TABLET_10,
        INGREDIENT,
        concept(ATC, "M03BX08"),
        FLEXERIL,
        concept(text="Amrix 15 mg"),
        concept(text="Fexmid 7.5 mg tablet"),
    ],
    ids=["product", "ingredient", "atc", "flexeril", "amrix", "fexmid"],
)
def test_cyclobenzaprine_is_recognised_by_any_code_or_brand_name(c1, medication):
    order = medication_request(medication, dispenseRequest=supply(30))
    card = only_card(evaluate(c1, "order-sign", [patient()], [order]))
    identified = "by code" if medication.get("coding") else "by its name"
    assert identified in card.detail


def test_every_product_code_of_the_value_set_is_recognised(c1):
    codes = cyclobenzaprine_products()
    assert len(codes) >= 6
    for code in codes:
        order = medication_request(concept(RX, code), dispenseRequest=supply(30))
        assert len(evaluate(c1, "order-sign", [patient()], [order])) == 1, code


def test_medication_reference_to_contained_medication_is_recognised(c1):
    order = with_contained_medication(medication_request(TABLET_10, dispenseRequest=supply(30)))
    card = only_card(evaluate(c1, "order-sign", [patient()], [order]))
    (action,) = actions_of(card)
    assert action.resource["contained"] == order["contained"]
    assert action.resource["medicationReference"] == {"reference": "#med"}
    validate_fhir(action.resource)


def test_other_muscle_relaxant_gets_no_card(c1):
    order = medication_request(METHOCARBAMOL, dispenseRequest=supply(30))
    assert evaluate(c1, "order-sign", [patient()], [order]) == []


def test_suggested_update_is_the_complete_draft_with_a_14_day_supply_and_no_refills(c1):
    order = medication_request(
        TABLET_10,
        dispenseRequest=supply(30, refills=2, quantity=quantity(90, "tablet", "{tablet}")),
        dosageInstruction=[dosage(1, timing_code="TID")],
        note=[{"text": "for acute low back spasm"}],
    )
    card = only_card(evaluate(c1, "order-sign", [patient()], [order]))
    (suggestion,) = card.suggestions
    assert suggestion.is_recommended is True and card.selection_behavior == "at-most-one"
    (action,) = suggestion.actions
    assert action.type == "update" and action.resource_id is None
    updated = action.resource
    model = validate_fhir(updated)
    assert model.get_resource_type() == "MedicationRequest"
    for key in set(order) - {"dispenseRequest"}:
        assert updated[key] == order[key], key
    dispense = updated["dispenseRequest"]
    assert dispense["expectedSupplyDuration"] == {
        "value": 14,
        "unit": "days",
        "system": UCUM,
        "code": "d",
    }
    assert dispense["numberOfRepeatsAllowed"] == 0
    assert "quantity" not in dispense and "validityPeriod" not in dispense
    assert order["dispenseRequest"]["numberOfRepeatsAllowed"] == 2  # the draft is not mutated


def test_suggested_update_shortens_dosage_bounds_too(c1):
    bounded = dosage()
    bounded["timing"]["repeat"]["boundsPeriod"] = {"start": date_of(0), "end": date_of(-40)}
    order = medication_request(TABLET_10, dosageInstruction=[bounded])
    (action,) = actions_of(only_card(evaluate(c1, "order-sign", [patient()], [order])))
    repeat = action.resource["dosageInstruction"][0]["timing"]["repeat"]
    assert "boundsPeriod" not in repeat
    assert repeat["boundsDuration"]["value"] == 14
    validate_fhir(action.resource)


def test_active_order_from_40_days_ago_plus_new_7_day_draft_is_continuous_use(c1):
    active = medication_request(TABLET_10, id="m-old", status="active", authored=day(40))
    draft = medication_request(TABLET_10, dispenseRequest=supply(7))
    card = only_card(evaluate(c1, "order-sign", [patient(), active], [draft]))
    check_card(card, DURATION, "warning", "cyclobenzaprine")
    assert "MedicationRequest/m-old" in card.detail and "40 days ago" in card.detail
    assert "47 days" in card.detail  # the 40 days so far plus this 7-day order
    assert card.identity == "MedicationRequest/d1"


def test_recent_active_order_plus_short_draft_is_not_continuous_use(c1):
    active = medication_request(TABLET_10, id="m-old", status="active", authored=day(10))
    draft = medication_request(TABLET_10, dispenseRequest=supply(7))
    assert evaluate(c1, "order-sign", [patient(), active], [draft]) == []


def test_active_order_of_18_days_plus_7_day_draft_is_cumulative_use_over_21_days(c1):
    active = medication_request(TABLET_10, id="m-old", status="active", authored=day(18))
    draft = medication_request(TABLET_10, dispenseRequest=supply(7))
    card = only_card(evaluate(c1, "order-sign", [patient(), active], [draft]))
    assert "18 days ago" in card.detail and "25 days in all" in card.detail


def test_stopped_old_order_is_not_continuous_use(c1):
    stopped = medication_request(TABLET_10, id="m-old", status="stopped", authored=day(40))
    draft = medication_request(TABLET_10, dispenseRequest=supply(7))
    assert evaluate(c1, "order-sign", [patient(), stopped], [draft]) == []


def test_long_supply_and_continuous_use_on_one_order_give_one_card(c1):
    active = medication_request(TABLET_10, id="m-old", status="active", authored=day(40))
    draft = medication_request(TABLET_10, dispenseRequest=supply(30))
    card = only_card(evaluate(c1, "order-sign", [patient(), active], [draft]))
    assert "intended duration 30 days" in card.detail and "continuous use" in card.detail


def test_one_card_per_long_order(c1):
    drafts = [
        medication_request(TABLET_10, id="d1", dispenseRequest=supply(30)),
        medication_request(FLEXERIL, id="d2", dispenseRequest=supply(28)),
    ]
    cards = evaluate(c1, "order-sign", [patient()], drafts)
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]


def test_order_select_judges_only_the_selected_order(c1):
    drafts = [
        medication_request(TABLET_10, id="d1", dispenseRequest=supply(30)),
        medication_request(METHOCARBAMOL, id="d2"),
    ]
    assert (
        evaluate(c1, "order-select", [patient()], drafts, selections=["MedicationRequest/d2"]) == []
    )
    assert (
        len(evaluate(c1, "order-select", [patient()], drafts, selections=["MedicationRequest/d1"]))
        == 1
    )


def test_patient_view_flags_active_order_running_for_40_days_without_suggestion(c1):
    active = medication_request(TABLET_10, id="m-old", status="active", authored=day(40))
    card = only_card(evaluate(c1, "patient-view", [patient(), active]))
    check_card(card, DURATION, "warning", "cyclobenzaprine")
    assert "40 days ago" in card.detail and card.suggestions == ()


def test_patient_view_is_quiet_for_a_recent_short_course(c1):
    active = medication_request(
        TABLET_10, id="m1", status="active", authored=day(5), dispenseRequest=supply(10)
    )
    assert evaluate(c1, "patient-view", [patient(), active]) == []


# C2 CNS spasticity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        concept(SNOMED, "230690007", "Cerebrovascular accident"),
        concept(ICD10CM, "I61.9", "Nontraumatic intracerebral hemorrhage, unspecified"),
        MS,
        concept(ICD10CM, "G35", "Multiple sclerosis"),
        concept(SNOMED, "24700007", "Multiple sclerosis"),
        concept(SNOMED, "90584004", "Spinal cord injury"),
        concept(ICD10CM, "S14.119A", "Complete lesion of cervical spinal cord"),
        concept(ICD10CM, "G80.1", "Spastic diplegic cerebral palsy"),
        concept(SNOMED, "128188000", "Cerebral palsy"),
        concept(text="Multiple sclerosis, secondary progressive"),
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
    chart = [patient(), condition(code, id="cns")]
    card = only_card(evaluate(c2, "order-sign", chart, [medication_request(TABLET_10)]))
    check_card(card, CNS, "warning", "cyclobenzaprine", "spasticity")
    label = code.get("text") or code["coding"][0]["display"]
    assert label in card.detail and "Condition/cns" in card.detail
    for alternative in ("tizanidine", "baclofen", "dantrolene"):
        assert alternative in card.detail


def test_cns_card_shows_the_condition_onset_and_the_order(c2):
    chart = [patient(), condition(MS, id="ms", onset=day(400))]
    card = only_card(evaluate(c2, "order-sign", chart, [medication_request(TABLET_10)]))
    assert date_of(400) in card.detail
    assert "MedicationRequest/d1" in card.detail and "828348" in card.detail
    assert {r.code for r in card.override_reasons} == {
        "musculoskeletal-spasm",
        "specialist-directed",
    }


@pytest.mark.parametrize(
    "status",
    [
        {"clinical": "resolved"},
        {"clinical": "inactive"},
        {"clinical": "remission"},
        {"verification": "refuted"},
        {"verification": "entered-in-error"},
    ],
    ids=lambda s: next(iter(s.values())),
)
def test_cns_condition_that_does_not_count_gives_no_card(c2, status):
    chart = [patient(), condition(MS, **status)]
    assert evaluate(c2, "order-sign", chart, [medication_request(TABLET_10)]) == []


def test_cns_condition_without_clinical_status_counts(c2):
    chart = [patient(), condition(MS, clinical=None, verification=None)]
    assert len(evaluate(c2, "order-sign", chart, [medication_request(TABLET_10)])) == 1


def test_no_cns_condition_and_no_spasticity_reason_gives_no_card(c2):
    chart = [patient(), condition(concept(SNOMED, "449918009", "Cramp in lower leg"))]
    order = medication_request(
        TABLET_10, reasonCode=[concept(SNOMED, "279039007", "Low back pain")]
    )
    assert evaluate(c2, "order-sign", chart, [order]) == []


def test_history_of_stroke_code_is_not_a_stroke_for_c2(c2):
    chart = [patient(), condition(concept(ICD10CM, "Z86.73", "Personal history of TIA"))]
    assert evaluate(c2, "order-sign", chart, [medication_request(TABLET_10)]) == []


@pytest.mark.parametrize(
    "reason", [SPASTICITY, concept(text="spasticity of both legs")], ids=["code", "text"]
)
def test_spasticity_as_order_reason_fires_without_a_cns_condition(c2, reason):
    order = medication_request(TABLET_10, reasonCode=[reason])
    card = only_card(evaluate(c2, "order-sign", [patient()], [order]))
    assert "order reason" in card.detail
    assert (reason.get("text") or "Spasticity") in card.detail


def test_spasticity_condition_cited_by_reason_reference_fires(c2):
    chart = [patient(), condition(SPASTICITY, id="sp")]
    order = medication_request(TABLET_10, reasonReference=[{"reference": "Condition/sp"}])
    card = only_card(evaluate(c2, "order-sign", chart, [order]))
    assert "Spasticity" in card.detail


def test_refuted_spasticity_condition_cited_as_reason_gives_no_card(c2):
    chart = [patient(), condition(SPASTICITY, id="sp", verification="refuted")]
    order = medication_request(TABLET_10, reasonReference=[{"reference": "Condition/sp"}])
    assert evaluate(c2, "order-sign", chart, [order]) == []


def test_several_cns_findings_on_one_order_give_one_card(c2):
    chart = [
        patient(),
        condition(MS, id="ms"),
        condition(concept(SNOMED, "230690007", "Cerebrovascular accident"), id="cva"),
    ]
    order = medication_request(TABLET_10, reasonCode=[SPASTICITY])
    card = only_card(evaluate(c2, "order-sign", chart, [order]))
    assert "Condition/ms" in card.detail and "Condition/cva" in card.detail


@pytest.mark.parametrize("medication", [INGREDIENT, FLEXERIL], ids=["ingredient", "text"])
def test_c2_recognises_cyclobenzaprine_by_ingredient_and_brand(c2, medication):
    chart = [patient(), condition(MS)]
    assert len(evaluate(c2, "order-sign", chart, [medication_request(medication)])) == 1


def test_c2_recognises_contained_medication(c2):
    order = with_contained_medication(medication_request(TABLET_10))
    assert len(evaluate(c2, "order-sign", [patient(), condition(MS)], [order])) == 1


def test_c2_ignores_other_drugs_for_ms_patients(c2):
    chart = [patient(), condition(MS)]
    assert evaluate(c2, "order-sign", chart, [medication_request(METHOCARBAMOL)]) == []


def test_c2_patient_view_flags_active_cyclobenzaprine(c2):
    chart = [
        patient(),
        condition(MS),
        medication_request(TABLET_10, id="m1", status="active", authored=day(3)),
    ]
    card = only_card(evaluate(c2, "patient-view", chart))
    assert card.identity == "MedicationRequest/m1"


# C3 dose ------------------------------------------------------------------------------------


def test_ten_mg_three_times_a_day_is_within_the_label(c3):
    order = medication_request(TABLET_10, dosageInstruction=[dosage(1, timing_code="TID")])
    assert evaluate(c3, "order-sign", [patient()], [order]) == []


def test_ten_mg_four_times_a_day_gets_a_dose_warning(c3):
    order = medication_request(TABLET_10, dosageInstruction=[dosage(10, "mg", "mg", per_day=4)])
    card = only_card(evaluate(c3, "order-sign", [patient()], [order]))
    check_card(card, DOSE, "warning", "cyclobenzaprine", "40 mg/day", "30 mg/day")
    assert "40 mg a day" in card.detail and "MedicationRequest/d1" in card.detail
    assert {r.code for r in card.override_reasons} == {"specialist-directed", "dose-verified"}


def test_two_tablets_of_a_10_mg_product_three_times_a_day_is_60_mg(c3):
    order = medication_request(TABLET_10, dosageInstruction=[dosage(2, timing_code="TID")])
    card = only_card(evaluate(c3, "order-sign", [patient()], [order]))
    assert "60 mg/day" in card.summary
    assert "10 mg per unit" in card.detail and "TID" in card.detail


@pytest.mark.parametrize(
    "medication, tablets, per_day, fires",
    [
        (TABLET_5, 2, 3, False),
        (TABLET_7_5, 1, 4, False),
        (TABLET_7_5, 1, 5, True),
        (TABLET_5, 2, 4, True),
    ],
    ids=["5mg-2tab-tid-30", "7.5mg-qid-30", "7.5mg-5x-37.5", "5mg-2tab-qid-40"],
)
def test_strength_from_the_product_name_sets_the_daily_dose(
    c3, medication, tablets, per_day, fires
):
    order = medication_request(medication, dosageInstruction=[dosage(tablets, per_day=per_day)])
    assert len(evaluate(c3, "order-sign", [patient()], [order])) == int(fires)


def test_brand_name_with_strength_in_text_gets_a_dose_warning(c3):
    order = medication_request(FLEXERIL, dosageInstruction=[dosage(2, timing_code="TID")])
    card = only_card(evaluate(c3, "order-sign", [patient()], [order]))
    assert "Flexeril 10 mg" in card.detail and "60 mg/day" in card.summary


def test_contained_medication_product_gets_a_dose_warning(c3):
    order = with_contained_medication(
        medication_request(TABLET_10, dosageInstruction=[dosage(2, timing_code="TID")])
    )
    assert len(evaluate(c3, "order-sign", [patient()], [order])) == 1


def test_as_needed_up_to_four_times_a_day_counts_the_most_allowed(c3):
    instruction = dosage(1, per_day=1, asNeededBoolean=True)
    instruction["timing"]["repeat"]["frequencyMax"] = 4
    order = medication_request(TABLET_10, dosageInstruction=[instruction])
    card = only_card(evaluate(c3, "order-sign", [patient()], [order]))
    assert "40 mg/day" in card.summary


@pytest.mark.parametrize(
    "medication",
    [
        ER_30,
        concept(text="Amrix 15 mg capsule"),
        concept(
            RX, "828358", "24 HR cyclobenzaprine hydrochloride 15 MG Extended Release Oral Capsule"
        ),
    ],
    ids=["er-scd-30", "amrix-text", "er-scd-15"],
)
def test_extended_release_products_are_left_alone(c3, medication):
    order = medication_request(
        medication, dosageInstruction=[dosage(2, "capsule", "{capsule}", per_day=2)]
    )
    assert evaluate(c3, "order-sign", [patient()], [order]) == []


@pytest.mark.parametrize(
    "instruction",
    [
        {"text": "take as directed"},
        dosage(2, timing_code=None, per_day=3, timing={"code": {"text": "TID"}}),
        dosage(2, unit="puff", code="{puff}", timing_code="TID"),
    ],
    ids=["text-only", "timing-text-only", "unknown-dose-unit"],
)
def test_dose_that_cannot_be_computed_gets_no_card(c3, instruction):
    order = medication_request(TABLET_10, dosageInstruction=[instruction])
    assert evaluate(c3, "order-sign", [patient()], [order]) == []


def test_tablet_count_of_ingredient_only_order_is_not_computable(c3):
    order = medication_request(INGREDIENT, dosageInstruction=[dosage(4, timing_code="QID")])
    assert evaluate(c3, "order-sign", [patient()], [order]) == []


def test_contained_medication_ingredient_strength_gives_the_daily_dose(c3):
    order = with_contained_medication(
        medication_request(INGREDIENT, dosageInstruction=[dosage(2, timing_code="TID")]),
        ingredient=[
            {
                "itemCodeableConcept": INGREDIENT,
                "isActive": True,
                "strength": {
                    "numerator": quantity(10, "mg", "mg"),
                    "denominator": quantity(1, "tablet", "{tablet}"),
                },
            }
        ],
    )
    card = only_card(evaluate(c3, "order-sign", [patient()], [order]))
    assert "60 mg/day" in card.summary


def test_extended_release_product_coded_without_display_is_left_alone(c3):
    order = medication_request(
        concept(RX, "828353"), dosageInstruction=[dosage(30, "mg", "mg", per_day=2)]
    )
    assert evaluate(c3, "order-sign", [patient()], [order]) == []


def test_one_dose_card_per_order(c3):
    drafts = [
        medication_request(TABLET_10, id="d1", dosageInstruction=[dosage(2, per_day=3)]),
        medication_request(TABLET_10, id="d2", dosageInstruction=[dosage(1, per_day=3)]),
        medication_request(FLEXERIL, id="d3", dosageInstruction=[dosage(1, per_day=4)]),
    ]
    cards = evaluate(c3, "order-sign", [patient()], drafts)
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d3"]


def test_patient_view_flags_active_high_dose_order(c3):
    active = medication_request(
        TABLET_10,
        id="m1",
        status="active",
        authored=day(3),
        dosageInstruction=[dosage(10, "mg", "mg", per_day=4)],
    )
    card = only_card(evaluate(c3, "patient-view", [patient(), active]))
    assert card.identity == "MedicationRequest/m1"


# Through the service ------------------------------------------------------------------------


def long_high_dose_draft(**extra: Any) -> dict[str, Any]:
    return medication_request(
        TABLET_10,
        id="cbp-1",
        dispenseRequest=supply(30),
        dosageInstruction=[dosage(10, "mg", "mg", per_day=4)],
        **extra,
    )


def test_order_select_answers_duration_dose_and_cns_cards_for_the_selected_order(call):
    other = medication_request(METHOCARBAMOL, id="other-1")
    request = hook_request(
        "order-select",
        [patient(), condition(MS, id="ms")],
        [long_high_dose_draft(), other],
        selections=["MedicationRequest/cbp-1"],
    )
    response = call("legcramp-order-select", request)
    assert response.status_code == 200
    by_rule = cards_by_rule(response.get_json())
    assert {DURATION, CNS, DOSE} <= set(by_rule)
    assert all(len(by_rule[r]) == 1 for r in (DURATION, CNS, DOSE))
    (update,) = by_rule[DURATION][0]["suggestions"][0]["actions"]
    assert update["type"] == "update" and "resourceId" not in update
    assert update["resource"]["id"] == "cbp-1"
    assert update["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] == 14
    for cards in by_rule.values():
        for card in cards:
            check_json_actions(card)
            assert all(r.get("display") for r in card.get("overrideReasons", []))

    request["context"]["selections"] = ["MedicationRequest/other-1"]
    quiet = cards_by_rule(call("legcramp-order-select", request).get_json())
    assert not {DURATION, CNS, DOSE} & set(quiet)


def test_order_sign_reviews_a_contained_medication_draft(call):
    draft = with_contained_medication(long_high_dose_draft())
    response = call("legcramp-order-sign", hook_request("order-sign", [patient()], [draft]))
    by_rule = cards_by_rule(response.get_json())
    assert len(by_rule[DURATION]) == 1 and len(by_rule[DOSE]) == 1
    assert CNS not in by_rule
    resource = by_rule[DURATION][0]["suggestions"][0]["actions"][0]["resource"]
    assert resource["medicationReference"] == {"reference": "#med"}
    validate_fhir(resource)


def test_patient_view_flags_long_running_active_cyclobenzaprine(call):
    active = medication_request(TABLET_10, id="m-old", status="active", authored=day(40))
    chart = [patient(), active, condition(MS, id="ms")]
    response = call("legcramp-patient-view", hook_request("patient-view", chart))
    by_rule = cards_by_rule(response.get_json())
    assert len(by_rule[DURATION]) == 1 and len(by_rule[CNS]) == 1
    assert "suggestions" not in by_rule[DURATION][0]
    assert DOSE not in by_rule


def test_disabled_duration_rule_gives_no_duration_card(make_app):
    from cds_service.config import load_config

    app = make_app(load_config(None, overrides={"rules": {DURATION: {"enabled": False}}}))
    request = hook_request("order-sign", [patient()], [long_high_dose_draft()])
    body = app.test_client().post("/cds-services/legcramp-order-sign", json=request).get_json()
    assert DURATION not in cards_by_rule(body) and DOSE in cards_by_rule(body)


def test_configured_max_days_changes_the_duration_limit(make_app):
    from cds_service.config import load_config

    app = make_app(load_config(None, overrides={"rules": {DURATION: {"max_days": 35}}}))
    request = hook_request("order-sign", [patient()], [copy.deepcopy(long_high_dose_draft())])
    body = app.test_client().post("/cds-services/legcramp-order-sign", json=request).get_json()
    assert DURATION not in cards_by_rule(body)
