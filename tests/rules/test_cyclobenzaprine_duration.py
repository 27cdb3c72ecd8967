"""C1 cyclobenzaprine-duration: cyclobenzaprine ordered or taken for longer than three weeks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hooks.valuesets import documents
from tests.support import fhir
from tests.support.cards import actions_of, cards_by_rule, check_card, only_card
from tests.support.cyclobenzaprine import (
    FLEXERIL,
    INGREDIENT,
    METHOCARBAMOL,
    TABLET_10,
    long_high_dose_draft,
)
from tests.support.fhir import ATC, RX, UCUM
from tests.support.rules import evaluate, hook_request

DURATION = "cyclobenzaprine-duration"
DOSE = "cyclobenzaprine-dose"


def cyclobenzaprine_products() -> list[str]:
    return [c["code"] for c in documents()["cyclobenzaprine"]["codes"] if c["system"] == RX]


def test_thirty_day_supply_gets_one_duration_warning_with_the_computation(c1):
    order = fhir.medication_request(
        TABLET_10, dispenseRequest=fhir.supply(30), dosageInstruction=[fhir.dosage()]
    )
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    check_card(card, DURATION, "warning", "cyclobenzaprine", "21 days")
    assert "intended duration 30 days: expected supply 30 days" in card.detail
    assert "dispenseRequest" not in card.detail and "expectedSupplyDuration" not in card.detail
    assert "**cyclobenzaprine hydrochloride 10 MG Oral Tablet** (draft, ordered 2026-11-21)" in (
        card.detail
    )
    assert "MedicationRequest/" not in card.detail and "828348" not in card.detail
    assert {r.code for r in card.override_reasons} == {
        "specialist-directed",
        "patient-re-evaluated",
    }
    assert card.identity == "MedicationRequest/d1"


def test_fourteen_day_supply_gets_no_duration_card(c1):
    order = fhir.medication_request(
        TABLET_10, dispenseRequest=fhir.supply(14), dosageInstruction=[fhir.dosage()]
    )
    assert evaluate(c1, "order-sign", [fhir.patient()], [order]) == []


@pytest.mark.parametrize("days, fires", [(21, False), (22, True)])
def test_duration_limit_is_over_21_days_not_at_it(c1, days, fires):
    order = fhir.medication_request(TABLET_10, dispenseRequest=fhir.supply(days))
    assert len(evaluate(c1, "order-sign", [fhir.patient()], [order])) == int(fires)


def test_seven_days_with_three_refills_counts_as_28_days(c1):
    order = fhir.medication_request(TABLET_10, dispenseRequest=fhir.supply(7, refills=3))
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    assert "28 days" in card.detail and "3 refills" in card.detail


def test_seven_days_without_refills_gets_no_card(c1):
    order = fhir.medication_request(TABLET_10, dispenseRequest=fhir.supply(7, refills=0))
    assert evaluate(c1, "order-sign", [fhir.patient()], [order]) == []


def test_ninety_tablets_at_one_three_times_a_day_counts_as_30_days(c1):
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest={"quantity": fhir.quantity(90, "tablet", "{tablet}")},
        dosageInstruction=[fhir.dosage(1, timing_code="TID")],
    )
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    assert "30 days" in card.detail and "dispense quantity 90" in card.detail


def test_forty_two_tablets_at_one_three_times_a_day_is_a_two_week_course(c1):
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest={"quantity": fhir.quantity(42, "tablet", "{tablet}")},
        dosageInstruction=[fhir.dosage(1, timing_code="TID")],
    )
    assert evaluate(c1, "order-sign", [fhir.patient()], [order]) == []


def one_year_validity() -> dict[str, str]:
    """The usual prescription validity: fillable from today for a year (366 days inclusive)."""
    return {"start": fhir.date_of(0), "end": fhir.date_of(-365)}


def test_ten_day_course_valid_for_a_year_gets_no_card(c1):
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest=fhir.supply(10, validityPeriod=one_year_validity()),
        dosageInstruction=[fhir.dosage(1, timing_code="TID")],
    )
    assert evaluate(c1, "order-sign", [fhir.patient()], [order]) == []


def test_validity_period_alone_is_not_a_duration(c1):
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest={"validityPeriod": one_year_validity()},
        dosageInstruction=[fhir.dosage(1, timing_code="TID")],
    )
    assert evaluate(c1, "order-sign", [fhir.patient()], [order]) == []


def test_active_short_course_valid_for_a_year_is_quiet_on_patient_view(c1):
    active = fhir.active_order(
        TABLET_10,
        id="m1",
        days_ago=3,
        dispenseRequest=fhir.supply(10, validityPeriod=one_year_validity()),
    )
    assert evaluate(c1, "patient-view", [fhir.patient(), active]) == []


def bounded_for_four_weeks() -> dict[str, Any]:
    bounded = fhir.dosage(1, timing_code="TID")
    bounded["timing"]["repeat"] = {
        "boundsDuration": {"value": 4, "unit": "weeks", "system": UCUM, "code": "wk"}
    }
    return bounded


@pytest.mark.parametrize(
    "dispense, dosage, days, basis",
    [
        (fhir.supply(30), fhir.dosage(1, timing_code="TID"), "30 days", "expected supply 30 days"),
        ({}, bounded_for_four_weeks(), "28 days", "dosage runs for 4 weeks = 28 days"),
        (
            {"quantity": fhir.quantity(90, "tablet", "{tablet}")},
            fhir.dosage(1, timing_code="TID"),
            "30 days",
            "dispense quantity 90",
        ),
    ],
    ids=["expected-supply", "dosage-bounds", "quantity-over-daily-dose"],
)
def test_treatment_duration_fires_and_the_one_year_validity_is_not_the_figure(
    c1, dispense, dosage, days, basis
):
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest={**dispense, "validityPeriod": one_year_validity()},
        dosageInstruction=[dosage],
    )
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    check_card(card, DURATION, "warning", "cyclobenzaprine", "21 days")
    assert f"intended duration {days}: {basis}" in card.detail
    assert "validity" not in card.detail and "366" not in card.detail
    assert "dispenseRequest" not in card.detail and "dosageInstruction" not in card.detail


def test_order_without_any_duration_and_no_earlier_use_gets_no_card(c1):
    order = fhir.medication_request(TABLET_10, dosageInstruction=[fhir.dosage()])
    assert evaluate(c1, "order-sign", [fhir.patient()], [order]) == []


@pytest.mark.parametrize(
    "medication",
    [
        TABLET_10,
        INGREDIENT,
        fhir.concept(ATC, "M03BX08"),
        FLEXERIL,
        fhir.concept(text="Amrix 15 mg"),
        fhir.concept(text="Fexmid 7.5 mg tablet"),
    ],
    ids=["product", "ingredient", "atc", "flexeril", "amrix", "fexmid"],
)
def test_cyclobenzaprine_is_recognised_by_any_code_or_brand_name(c1, medication):
    order = fhir.medication_request(medication, dispenseRequest=fhir.supply(30))
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    [coding] = medication.get("coding") or [{}]
    label = medication.get("text") or coding.get("display") or f"{coding['code']} ({ATC})"
    assert f"**{label}** (draft, ordered" in card.detail
    assert "by code" not in card.detail and "by the drug name" not in card.detail
    if coding.get("display"):  # a named order shows its name, never its code
        assert coding["code"] not in card.detail


def test_every_product_code_of_the_value_set_is_recognised(c1):
    codes = cyclobenzaprine_products()
    assert len(codes) >= 6
    for code in codes:
        order = fhir.medication_request(fhir.concept(RX, code), dispenseRequest=fhir.supply(30))
        assert len(evaluate(c1, "order-sign", [fhir.patient()], [order])) == 1, code


def test_medication_reference_to_contained_medication_is_recognised(c1):
    order = fhir.with_contained_medication(
        fhir.medication_request(
            TABLET_10, dispenseRequest=fhir.supply(30), dosageInstruction=[fhir.dosage()]
        )
    )
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    (action,) = actions_of(card)
    assert action.resource["contained"] == order["contained"]
    assert action.resource["medicationReference"] == {"reference": "#med"}
    fhir.validate(action.resource)


def test_other_muscle_relaxant_gets_no_card(c1):
    order = fhir.medication_request(METHOCARBAMOL, dispenseRequest=fhir.supply(30))
    assert evaluate(c1, "order-sign", [fhir.patient()], [order]) == []


def test_suggested_update_is_the_complete_draft_with_a_14_day_supply_and_no_refills(c1):
    validity = one_year_validity()
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest=fhir.supply(
            30,
            refills=2,
            quantity=fhir.quantity(90, "tablet", "{tablet}"),
            validityPeriod=validity,
            performer={"display": "Corner Pharmacy"},
        ),
        dosageInstruction=[fhir.dosage(1, timing_code="TID")],
        note=[{"text": "for acute low back spasm"}],
    )
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    (suggestion,) = card.suggestions
    assert suggestion.is_recommended is True and card.selection_behavior == "at-most-one"
    (action,) = suggestion.actions
    assert action.type == "update" and action.resource_id is None
    assert "quantity 42 tablet" in action.description
    updated = action.resource
    model = fhir.validate(updated)
    assert model.get_resource_type() == "MedicationRequest"
    for key in set(order) - {"dispenseRequest"}:
        assert updated[key] == order[key], key
    assert updated["dispenseRequest"] == {
        "expectedSupplyDuration": {"value": 14, "unit": "days", "system": UCUM, "code": "d"},
        "numberOfRepeatsAllowed": 0,
        "quantity": {"value": 42, "unit": "tablet", "system": UCUM, "code": "{tablet}"},
        "validityPeriod": validity,
        "performer": {"display": "Corner Pharmacy"},
    }
    assert order["dispenseRequest"]["numberOfRepeatsAllowed"] == 2  # the draft is not mutated
    assert order["dispenseRequest"]["quantity"]["value"] == 90


def test_suggested_quantity_is_in_the_unit_of_the_ordered_dose(c1):
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest=fhir.supply(30),
        dosageInstruction=[fhir.dosage(10, "mg", "mg", per_day=3)],
    )
    (action,) = actions_of(only_card(evaluate(c1, "order-sign", [fhir.patient()], [order])))
    assert action.resource["dispenseRequest"]["quantity"] == {
        "value": 420,
        "unit": "mg",
        "system": UCUM,
        "code": "mg",
    }


def test_suggested_quantity_is_rounded_up_to_whole_tablets(c1):
    every_nine_hours = fhir.dosage()  # 24/9 tablets a day: 37.3 for 14 days
    every_nine_hours["timing"]["repeat"] = {"frequency": 1, "period": 9, "periodUnit": "h"}
    order = fhir.medication_request(
        TABLET_10, dispenseRequest=fhir.supply(30), dosageInstruction=[every_nine_hours]
    )
    (action,) = actions_of(only_card(evaluate(c1, "order-sign", [fhir.patient()], [order])))
    assert action.resource["dispenseRequest"]["quantity"]["value"] == 38


def test_configured_supply_days_sets_the_suggested_supply_and_quantity(c1):
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest=fhir.supply(30),
        dosageInstruction=[fhir.dosage(1, timing_code="TID")],
    )
    cards = evaluate(c1, "order-sign", [fhir.patient()], [order], suggested_supply_days=10)
    (action,) = actions_of(only_card(cards))
    dispense = action.resource["dispenseRequest"]
    assert dispense["expectedSupplyDuration"]["value"] == 10 and dispense["quantity"]["value"] == 30


@pytest.mark.parametrize(
    "medication, dosage",
    [
        (TABLET_10, None),
        (INGREDIENT, fhir.dosage(1, timing_code="TID")),  # tablets of an unknown strength
        (TABLET_10, fhir.dosage(5, "mL", "mL")),  # a volume this rule cannot turn into doses
    ],
    ids=["no-dosage", "strength-unknown", "unit-not-a-dose"],
)
def test_long_order_without_a_daily_dose_keeps_its_card_but_offers_no_update(
    c1, medication, dosage
):
    order = fhir.medication_request(
        medication,
        dispenseRequest=fhir.supply(30),
        **({"dosageInstruction": [dosage]} if dosage else {}),
    )
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    check_card(card, DURATION, "warning", "cyclobenzaprine")
    assert card.suggestions == () and card.selection_behavior is None
    assert (
        "the daily dose could not be worked out from the order, so no shorter order is offered"
        in card.detail.lower()
    )


def test_suggested_update_keeps_the_start_of_dosage_bounds(c1):
    bounded = fhir.dosage()
    bounded["timing"]["repeat"]["boundsPeriod"] = {
        "start": fhir.date_of(0),
        "end": fhir.date_of(-40),
    }
    order = fhir.medication_request(TABLET_10, dosageInstruction=[bounded])
    (action,) = actions_of(only_card(evaluate(c1, "order-sign", [fhir.patient()], [order])))
    repeat = action.resource["dosageInstruction"][0]["timing"]["repeat"]
    assert repeat["boundsPeriod"] == {"start": fhir.date_of(0), "end": fhir.date_of(-13)}
    assert repeat["frequency"] == 3  # the rest of the timing is kept
    fhir.validate(action.resource)
    assert evaluate(c1, "order-sign", [fhir.patient()], [action.resource]) == []


def test_suggested_update_shortens_dosage_bounds_duration(c1):
    order = fhir.medication_request(TABLET_10, dosageInstruction=[bounded_for_four_weeks()])
    (action,) = actions_of(only_card(evaluate(c1, "order-sign", [fhir.patient()], [order])))
    repeat = action.resource["dosageInstruction"][0]["timing"]["repeat"]
    assert repeat["boundsDuration"] == {"value": 14, "unit": "days", "system": UCUM, "code": "d"}
    fhir.validate(action.resource)


def test_accepting_the_suggestion_gives_an_order_that_gets_no_card(c1):
    order = fhir.medication_request(
        TABLET_10,
        dispenseRequest=fhir.supply(
            30,
            refills=2,
            quantity=fhir.quantity(90, "tablet", "{tablet}"),
            validityPeriod=one_year_validity(),
        ),
        dosageInstruction=[fhir.dosage(1, timing_code="TID")],
    )
    (action,) = actions_of(only_card(evaluate(c1, "order-sign", [fhir.patient()], [order])))
    assert evaluate(c1, "order-sign", [fhir.patient()], [action.resource]) == []


def test_active_order_from_40_days_ago_plus_new_7_day_draft_is_continuous_use(c1):
    active = fhir.active_order(TABLET_10, id="m-old", days_ago=40)
    draft = fhir.medication_request(TABLET_10, dispenseRequest=fhir.supply(7))
    card = only_card(evaluate(c1, "order-sign", [fhir.patient(), active], [draft]))
    check_card(card, DURATION, "warning", "cyclobenzaprine")
    assert (
        f"continuous use: cyclobenzaprine hydrochloride 10 MG Oral Tablet active since "
        f"{fhir.date_of(40)}, 40 days ago"
    ) in card.detail
    assert "MedicationRequest/" not in card.detail
    assert "47 days" in card.detail  # the 40 days so far plus this 7-day order
    assert card.identity == "MedicationRequest/d1"


def test_recent_active_order_plus_short_draft_is_not_continuous_use(c1):
    active = fhir.active_order(TABLET_10, id="m-old", days_ago=10)
    draft = fhir.medication_request(TABLET_10, dispenseRequest=fhir.supply(7))
    assert evaluate(c1, "order-sign", [fhir.patient(), active], [draft]) == []


def test_active_order_of_18_days_plus_7_day_draft_is_cumulative_use_over_21_days(c1):
    active = fhir.active_order(TABLET_10, id="m-old", days_ago=18)
    draft = fhir.medication_request(TABLET_10, dispenseRequest=fhir.supply(7))
    card = only_card(evaluate(c1, "order-sign", [fhir.patient(), active], [draft]))
    assert "18 days ago" in card.detail and "25 days in all" in card.detail


def test_stopped_old_order_is_not_continuous_use(c1):
    stopped = fhir.medication_request(
        TABLET_10, id="m-old", status="stopped", authored=fhir.day(40)
    )
    draft = fhir.medication_request(TABLET_10, dispenseRequest=fhir.supply(7))
    assert evaluate(c1, "order-sign", [fhir.patient(), stopped], [draft]) == []


def test_long_supply_and_continuous_use_on_one_order_give_one_card(c1):
    active = fhir.active_order(TABLET_10, id="m-old", days_ago=40)
    draft = fhir.medication_request(TABLET_10, dispenseRequest=fhir.supply(30))
    card = only_card(evaluate(c1, "order-sign", [fhir.patient(), active], [draft]))
    assert "intended duration 30 days" in card.detail and "continuous use" in card.detail


def test_one_card_per_long_order(c1):
    drafts = [
        fhir.medication_request(TABLET_10, id="d1", dispenseRequest=fhir.supply(30)),
        fhir.medication_request(FLEXERIL, id="d2", dispenseRequest=fhir.supply(28)),
    ]
    cards = evaluate(c1, "order-sign", [fhir.patient()], drafts)
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]


def test_order_select_judges_only_the_selected_order(c1):
    drafts = [
        fhir.medication_request(TABLET_10, id="d1", dispenseRequest=fhir.supply(30)),
        fhir.medication_request(METHOCARBAMOL, id="d2"),
    ]
    assert (
        evaluate(c1, "order-select", [fhir.patient()], drafts, selections=["MedicationRequest/d2"])
        == []
    )
    assert (
        len(
            evaluate(
                c1, "order-select", [fhir.patient()], drafts, selections=["MedicationRequest/d1"]
            )
        )
        == 1
    )


def test_patient_view_flags_active_order_running_for_40_days_without_suggestion(c1):
    active = fhir.active_order(TABLET_10, id="m-old", days_ago=40)
    card = only_card(evaluate(c1, "patient-view", [fhir.patient(), active]))
    check_card(card, DURATION, "warning", "cyclobenzaprine")
    assert "40 days ago" in card.detail and card.suggestions == ()


def test_patient_view_is_quiet_for_a_recent_short_course(c1):
    active = fhir.active_order(TABLET_10, id="m1", days_ago=5, dispenseRequest=fhir.supply(10))
    assert evaluate(c1, "patient-view", [fhir.patient(), active]) == []


# Through the service ------------------------------------------------------------------------


def test_disabled_duration_rule_gives_no_duration_card(make_app):
    from cds_service.config import load_config

    app = make_app(load_config(None, overrides={"rules": {DURATION: {"enabled": False}}}))
    request = hook_request("order-sign", [fhir.patient()], [long_high_dose_draft()])
    body = app.test_client().post("/cds-services/legcramp-order-sign", json=request).get_json()
    assert DURATION not in cards_by_rule(body) and DOSE in cards_by_rule(body)


def test_configured_max_days_changes_the_duration_limit(make_app):
    from cds_service.config import load_config

    app = make_app(load_config(None, overrides={"rules": {DURATION: {"max_days": 35}}}))
    request = hook_request("order-sign", [fhir.patient()], [copy.deepcopy(long_high_dose_draft())])
    body = app.test_client().post("/cds-services/legcramp-order-sign", json=request).get_json()
    assert DURATION not in cards_by_rule(body)


def test_no_one_click_shorter_order_keeps_a_dose_above_the_labelled_maximum(c1):
    """10 mg four times a day for 30 days: the card stays, but accepting a 14-day version of
    a 40 mg/day order would sign a dose above the labelled 30 mg/day."""
    order = fhir.medication_request(
        fhir.concept(RX, "828348", "cyclobenzaprine hydrochloride 10 MG Oral Tablet"),
        id="d1")
    order["dosageInstruction"] = [{"timing": {"repeat": {"frequency": 4, "period": 1,
                                                           "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": fhir.quantity(
                                       10, "mg", "mg")}]}]
    order["dispenseRequest"] = {"expectedSupplyDuration": fhir.quantity(30, "days", "d")}
    card = only_card(evaluate(c1, "order-sign", [fhir.patient()], [order]))
    assert card.suggestions == ()
    assert "above 30 mg a day" in card.detail and "review the dose" in card.detail
