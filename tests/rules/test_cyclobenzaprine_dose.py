"""C3 cyclobenzaprine-dose: immediate-release cyclobenzaprine above 30 mg a day."""

from __future__ import annotations

import pytest

from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.cyclobenzaprine import FLEXERIL, INGREDIENT, TABLET_10
from tests.support.fhir import RX
from tests.support.rules import evaluate

DOSE = "cyclobenzaprine-dose"
TABLET_5 = fhir.concept(RX, "828320", "cyclobenzaprine hydrochloride 5 MG Oral Tablet")
TABLET_7_5 = fhir.concept(RX, "828299", "cyclobenzaprine hydrochloride 7.5 MG Oral Tablet")
ER_30 = fhir.concept(
    RX, "828353", "24 HR cyclobenzaprine hydrochloride 30 MG Extended Release Oral Capsule"
)


def test_ten_mg_three_times_a_day_is_within_the_label(c3):
    order = fhir.medication_request(
        TABLET_10, dosageInstruction=[fhir.dosage(1, timing_code="TID")]
    )
    assert evaluate(c3, "order-sign", [fhir.patient()], [order]) == []


def test_ten_mg_four_times_a_day_gets_a_dose_warning(c3):
    order = fhir.medication_request(
        TABLET_10, dosageInstruction=[fhir.dosage(10, "mg", "mg", per_day=4)]
    )
    card = only_card(evaluate(c3, "order-sign", [fhir.patient()], [order]))
    check_card(card, DOSE, "warning", "cyclobenzaprine", "40 mg/day", "30 mg/day")
    assert "40 mg a day" in card.detail
    found = f"**{TABLET_10['coding'][0]['display']}** (draft, ordered {fhir.date_of(0)})"
    assert found in card.detail
    assert "MedicationRequest/" not in card.detail and "828348" not in card.detail
    assert {r.code for r in card.override_reasons} == {"specialist-directed", "dose-verified"}


def test_two_tablets_of_a_10_mg_product_three_times_a_day_is_60_mg(c3):
    order = fhir.medication_request(
        TABLET_10, dosageInstruction=[fhir.dosage(2, timing_code="TID")]
    )
    card = only_card(evaluate(c3, "order-sign", [fhir.patient()], [order]))
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
    order = fhir.medication_request(
        medication, dosageInstruction=[fhir.dosage(tablets, per_day=per_day)]
    )
    assert len(evaluate(c3, "order-sign", [fhir.patient()], [order])) == int(fires)


def test_brand_name_with_strength_in_text_gets_a_dose_warning(c3):
    order = fhir.medication_request(FLEXERIL, dosageInstruction=[fhir.dosage(2, timing_code="TID")])
    card = only_card(evaluate(c3, "order-sign", [fhir.patient()], [order]))
    assert "Flexeril 10 mg" in card.detail and "60 mg/day" in card.summary


def test_contained_medication_product_gets_a_dose_warning(c3):
    order = fhir.with_contained_medication(
        fhir.medication_request(TABLET_10, dosageInstruction=[fhir.dosage(2, timing_code="TID")])
    )
    assert len(evaluate(c3, "order-sign", [fhir.patient()], [order])) == 1


def test_as_needed_up_to_four_times_a_day_counts_the_most_allowed(c3):
    instruction = fhir.dosage(1, per_day=1, asNeededBoolean=True)
    instruction["timing"]["repeat"]["frequencyMax"] = 4
    order = fhir.medication_request(TABLET_10, dosageInstruction=[instruction])
    card = only_card(evaluate(c3, "order-sign", [fhir.patient()], [order]))
    assert "40 mg/day" in card.summary


ER_15 = fhir.concept(
    RX, "828358", "24 HR cyclobenzaprine hydrochloride 15 MG Extended Release Oral Capsule")


@pytest.mark.parametrize(
    "medication",
    [ER_30, fhir.concept(text="Amrix 15 mg capsule"), ER_15],
    ids=["er-scd-30", "amrix-text", "er-scd-15"],
)
def test_extended_release_twice_a_day_is_flagged_as_more_than_once_daily(c3, medication):
    """Amrix label: once daily. Two capsules twice a day is a dosing error at any strength."""
    order = fhir.medication_request(
        medication, dosageInstruction=[fhir.dosage(1, "capsule", "{capsule}", per_day=2)]
    )
    card = only_card(evaluate(c3, "order-sign", [fhir.patient()], [order]))
    assert "once a day" in card.summary
    assert "2 doses a day" in card.detail
    assert "Amrix" in card.source.label


def test_extended_release_above_its_labelled_maximum_is_flagged(c3):
    order = fhir.medication_request(
        ER_30, dosageInstruction=[fhir.dosage(2, "capsule", "{capsule}", per_day=1)]
    )
    card = only_card(evaluate(c3, "order-sign", [fhir.patient()], [order]))
    assert card.summary == ("Extended-release cyclobenzaprine 60 mg/day exceeds the labelled "
                            "maximum of 30 mg/day")


@pytest.mark.parametrize(
    "medication,capsules",
    [(ER_15, 1), (ER_15, 2), (ER_30, 1)],
    ids=["15-once", "two-15s-once", "30-once"],
)
def test_extended_release_once_daily_within_the_label_is_quiet(c3, medication, capsules):
    """15 mg once daily, up to 30 mg once daily (one 30 mg or two 15 mg capsules)."""
    order = fhir.medication_request(
        medication, dosageInstruction=[fhir.dosage(capsules, "capsule", "{capsule}", per_day=1)]
    )
    assert evaluate(c3, "order-sign", [fhir.patient()], [order]) == []


def test_extended_release_at_an_immediate_release_total_is_not_judged_as_immediate_release(c3):
    """15 mg ER once daily is far under 30 mg/day; three 10 mg IR tablets would also be 30:
    the extended-release limits apply, and an IR-only rule never counts this order."""
    order = fhir.medication_request(
        ER_15, dosageInstruction=[fhir.dosage(15, "mg", "mg", per_day=1)]
    )
    assert evaluate(c3, "order-sign", [fhir.patient()], [order]) == []


def test_extended_release_limits_are_settings(c3):
    order = fhir.medication_request(
        ER_30, dosageInstruction=[fhir.dosage(1, "capsule", "{capsule}", per_day=1)]
    )
    cards = evaluate(c3, "order-sign", [fhir.patient()], [order],
                     max_daily_mg_extended_release=15.0)
    assert "exceeds the labelled maximum of 15 mg/day" in only_card(cards).summary


@pytest.mark.parametrize(
    "instruction",
    [
        {"text": "take as directed"},
        fhir.dosage(2, timing_code=None, per_day=3, timing={"code": {"text": "TID"}}),
        fhir.dosage(2, unit="puff", code="{puff}", timing_code="TID"),
    ],
    ids=["text-only", "timing-text-only", "unknown-dose-unit"],
)
def test_dose_that_cannot_be_computed_gets_no_card(c3, instruction):
    order = fhir.medication_request(TABLET_10, dosageInstruction=[instruction])
    assert evaluate(c3, "order-sign", [fhir.patient()], [order]) == []


def test_tablet_count_of_ingredient_only_order_is_not_computable(c3):
    order = fhir.medication_request(
        INGREDIENT, dosageInstruction=[fhir.dosage(4, timing_code="QID")]
    )
    assert evaluate(c3, "order-sign", [fhir.patient()], [order]) == []


def test_contained_medication_ingredient_strength_gives_the_daily_dose(c3):
    order = fhir.with_contained_medication(
        fhir.medication_request(INGREDIENT, dosageInstruction=[fhir.dosage(2, timing_code="TID")]),
        ingredient=[
            {
                "itemCodeableConcept": INGREDIENT,
                "isActive": True,
                "strength": {
                    "numerator": fhir.quantity(10, "mg", "mg"),
                    "denominator": fhir.quantity(1, "tablet", "{tablet}"),
                },
            }
        ],
    )
    card = only_card(evaluate(c3, "order-sign", [fhir.patient()], [order]))
    assert "60 mg/day" in card.summary


def test_extended_release_product_coded_without_display_is_judged_as_extended_release(c3):
    """Known by its product code alone: 30 mg twice a day is flagged on the ER limits, and the
    card names the product's extended release."""
    order = fhir.medication_request(
        fhir.concept(RX, "828353"), dosageInstruction=[fhir.dosage(30, "mg", "mg", per_day=2)]
    )
    card = only_card(evaluate(c3, "order-sign", [fhir.patient()], [order]))
    assert card.summary.startswith("Extended-release cyclobenzaprine 60 mg/day")
    assert "(extended release)" in card.detail


def test_one_dose_card_per_order(c3):
    drafts = [
        fhir.medication_request(TABLET_10, id="d1", dosageInstruction=[fhir.dosage(2, per_day=3)]),
        fhir.medication_request(TABLET_10, id="d2", dosageInstruction=[fhir.dosage(1, per_day=3)]),
        fhir.medication_request(FLEXERIL, id="d3", dosageInstruction=[fhir.dosage(1, per_day=4)]),
    ]
    cards = evaluate(c3, "order-sign", [fhir.patient()], drafts)
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d3"]


def test_patient_view_flags_active_high_dose_order(c3):
    active = fhir.active_order(
        TABLET_10, id="m1", days_ago=3, dosageInstruction=[fhir.dosage(10, "mg", "mg", per_day=4)]
    )
    card = only_card(evaluate(c3, "patient-view", [fhir.patient(), active]))
    assert card.identity == "MedicationRequest/m1"
