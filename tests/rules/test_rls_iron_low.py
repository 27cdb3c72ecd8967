"""R2 rls-iron-low: low ferritin or transferrin saturation in restless legs syndrome."""

from __future__ import annotations

import pytest

from tests.support import fhir
from tests.support.cards import actions_of, cards_by_rule, check_card, only_card
from tests.support.concepts import ACETAMINOPHEN, GABAPENTIN
from tests.support.fhir import ICD10CM, LOINC, RX, SNOMED, UCUM
from tests.support.iron import ferritin, rls, serum_iron, tibc, tsat
from tests.support.rules import evaluate, hook_request, not_counting, view

LOW = "rls-iron-low"


@pytest.mark.parametrize("value", [30, 75])
def test_ferritin_at_or_below_75_gets_the_oral_iron_warning(r2, value):
    card = only_card(view(r2, rls(), ferritin(value), tsat(30)))
    assert card.indicator == "warning" and card.suggestions


@pytest.mark.parametrize("value", [75.5, 76, 100])
def test_ferritin_above_75_and_at_most_100_gets_intravenous_iron_and_no_oral_draft(r2, value):
    """AASM 2024: between 75 and 100 ng/mL, intravenous iron only."""
    card = only_card(view(r2, rls(), ferritin(value), tsat(30)))
    assert card.indicator == "info"
    assert card.suggestions == ()
    assert "intravenous iron" in card.summary
    assert "oral iron is not suggested" in card.detail


@pytest.mark.parametrize("value", [100.5, 150])
def test_ferritin_above_100_with_normal_saturation_is_quiet(r2, value):
    assert view(r2, rls(), ferritin(value), tsat(30)) == []


def test_the_intravenous_band_is_a_setting(r2):
    assert view(r2, rls(), ferritin(110), tsat(30)) == []
    card = only_card(view(r2, rls(), ferritin(110), tsat(30), iv_ferritin_max_ng_ml=120.0))
    assert "at most 120 ng/mL" in card.summary


# Children: ferritin below 50 ng/mL (AASM 2024) ------------------------------------------------

CHILD = fhir.patient(birthDate="2014-06-01")


def child_view(r2, *chart, **settings):
    return evaluate(r2, "patient-view", [CHILD, *chart], **settings)


@pytest.mark.parametrize("value, fires", [(45, True), (49.9, True), (50, False), (70, False)])
def test_children_use_ferritin_below_50(r2, value, fires):
    cards = child_view(r2, rls(), ferritin(value), tsat(30))
    assert len(cards) == int(fires)
    if fires:
        assert "threshold for children" in cards[0].detail
        assert cards[0].suggestions  # oral iron draft, product and dose left to the prescriber


def test_a_child_is_not_given_the_adult_intravenous_band(r2):
    assert child_view(r2, rls(), ferritin(90), tsat(30)) == []


def test_the_child_age_limit_is_a_setting(r2):
    assert child_view(r2, rls(), ferritin(70), tsat(30)) == []
    assert len(child_view(r2, rls(), ferritin(70), tsat(30), child_age_below=10)) == 1


# ESRD or dialysis: ferritin below 200 and saturation below 20%, IV iron (AASM 2024) ----------

ESRD = fhir.condition(fhir.concept(SNOMED, "46177005", "End-stage renal disease"), id="esrd")
DIALYSIS = fhir.condition(
    fhir.concept(ICD10CM, "Z99.2", "Dependence on renal dialysis"), id="hd")


@pytest.mark.parametrize("kidney", [ESRD, DIALYSIS], ids=["esrd", "dialysis"])
def test_esrd_low_ferritin_and_saturation_gets_intravenous_iron_never_an_oral_draft(r2, kidney):
    card = only_card(view(r2, rls(), kidney, ferritin(150), tsat(15)))
    assert card.indicator == "warning"
    assert card.suggestions == ()
    assert "intravenous iron" in card.summary and "kidney" in card.summary
    assert "below 200 ng/mL" in card.detail and "below 20%" in card.detail


@pytest.mark.parametrize("ferritin_value, saturation", [(250, 15), (150, 25)],
                         ids=["ferritin-not-low", "saturation-not-low"])
def test_esrd_needs_both_low_ferritin_and_low_saturation(r2, ferritin_value, saturation):
    assert view(r2, rls(), ESRD, ferritin(ferritin_value), tsat(saturation)) == []


def test_esrd_without_a_saturation_is_quiet(r2):
    """Without a saturation the ESRD band cannot be judged (R1 asks for the missing test)."""
    assert view(r2, rls(), ESRD, ferritin(60)) == []


def test_esrd_at_an_adult_oral_threshold_gets_no_oral_draft(r2):
    """Ferritin 60 with saturation 15% would draft oral iron for an adult without ESRD."""
    assert only_card(view(r2, rls(), ferritin(60), tsat(15))).suggestions
    card = only_card(view(r2, rls(), ESRD, ferritin(60), tsat(15)))
    assert card.suggestions == ()


def test_a_resolved_esrd_condition_does_not_switch_the_band(r2):
    resolved = fhir.condition(fhir.concept(SNOMED, "46177005", "End-stage renal disease"),
                              id="esrd", clinical="resolved")
    card = only_card(view(r2, rls(), resolved, ferritin(60), tsat(15)))
    assert card.suggestions


@pytest.mark.parametrize("unit", ["ng/mL", "ug/L"])
def test_ferritin_in_ng_per_ml_and_ug_per_l_is_the_same_number(r2, unit):
    card = only_card(view(r2, rls(), ferritin(60, unit), tsat(30)))
    assert f"60 {unit}" in card.detail


def test_low_ferritin_card_shows_value_unit_and_date(r2):
    card = only_card(view(r2, rls(), ferritin(75), tsat(30)))
    check_card(card, LOW, "warning", "restless legs", "iron")
    assert "ferritin 75 ng/mL" in card.detail and fhir.date_of(10) in card.detail
    assert "**Found:** Restless legs with low iron stores" in card.detail
    assert "Condition/" not in card.detail
    assert {r.code for r in card.override_reasons} == {"iron-already-given", "iron-contraindicated"}


def test_low_iron_card_drafts_an_oral_iron_order_that_is_valid_fhir(r2):
    card = only_card(view(r2, rls(), ferritin(40), tsat(30)))
    (action,) = actions_of(card)
    assert action.type == "create"
    order = action.resource
    fhir.validate(order)
    assert (order["resourceType"], order["status"], order["intent"]) == (
        "MedicationRequest",
        "draft",
        "order",
    )
    assert "iron" in order["medicationCodeableConcept"]["text"]
    assert order["reasonReference"] == [{"reference": "Condition/rls"}]


@pytest.mark.parametrize(
    "value, unit, fires",
    [
        (18, "%", True),
        (19.9, "%", True),
        (20, "%", False),
        (0.18, "1", True),
        (0.20, "1", False),
        (0.25, "1", False),
        (0.15, "{ratio}", True),
    ],
)
def test_transferrin_saturation_below_20_percent_fires_in_percent_or_fraction(
    r2, value, unit, fires
):
    assert len(view(r2, rls(), ferritin(150), tsat(value, unit))) == int(fires)


def test_fraction_saturation_card_shows_it_as_a_percentage(r2):
    card = only_card(view(r2, rls(), ferritin(150), tsat(0.18, "1")))
    assert "0.18" in card.detail and "18 %" in card.detail and fhir.date_of(10) in card.detail


def test_saturation_computed_from_iron_and_tibc_of_one_draw_fires_at_15_percent(r2):
    card = only_card(view(r2, rls(), ferritin(150), serum_iron(45), tibc(300)))
    assert "15%" in card.detail
    assert "45 ug/dL" in card.detail and "300 ug/dL" in card.detail
    assert fhir.date_of(10) in card.detail


def test_computed_saturation_of_30_percent_is_quiet(r2):
    assert view(r2, rls(), ferritin(150), serum_iron(90), tibc(300)) == []


def test_iron_panel_components_of_one_observation_give_a_saturation(r2):
    panel = fhir.observation("50190-8", 0, None, 10, id="panel")
    del panel["valueQuantity"]
    panel["code"]["coding"][0]["display"] = "Iron and Iron binding capacity panel"
    panel["component"] = [
        {
            "code": {"coding": [{"system": LOINC, "code": "2498-4"}]},
            "valueQuantity": fhir.quantity(40, "ug/dL", "ug/dL"),
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "2500-7"}]},
            "valueQuantity": fhir.quantity(400, "ug/dL", "ug/dL"),
        },
    ]
    card = only_card(view(r2, rls(), ferritin(150), panel))
    assert "10%" in card.detail


def test_iron_in_umol_per_l_is_converted_before_computing_saturation(r2):
    # 8 umol/L = 44.7 ug/dL over TIBC 300 ug/dL = 15 %
    card = only_card(view(r2, rls(), ferritin(150), serum_iron(8, "umol/L"), tibc(300)))
    assert "15%" in card.detail


def test_reported_saturation_wins_over_a_computed_one(r2):
    assert view(r2, rls(), ferritin(150), tsat(30), serum_iron(45), tibc(300)) == []


@pytest.mark.parametrize(
    "value",
    [
        fhir.quantity(40),
        fhir.quantity(40, "ng/ml"),
        fhir.quantity(40, "µg/L"),
        fhir.quantity(40, "ng/mL", "ng/mL", system="http://example.org/units"),
    ],
    ids=["no-unit", "lowercase-label", "micro-sign-label", "foreign-system"],
)
def test_ferritin_with_a_missing_or_unrecognised_unit_is_never_compared(r2, value):
    assert view(r2, rls(), ferritin(value), tsat(30)) == []


def test_ferritin_unit_given_only_as_a_ucum_label_is_compared(r2):
    assert len(view(r2, rls(), ferritin(fhir.quantity(40, "ng/mL")), tsat(30))) == 1


def test_saturation_with_an_unrecognised_unit_is_never_compared(r2):
    assert view(r2, rls(), ferritin(150), tsat(fhir.quantity(0.1, "fraction"))) == []


def test_stale_low_ferritin_does_not_fire(r2):
    assert view(r2, rls(), ferritin(20, days_ago=400), tsat(30)) == []


def test_most_recent_ferritin_decides(r2):
    assert view(r2, rls(), ferritin(30, days_ago=100), ferritin(120, days_ago=5), tsat(30)) == []
    card = only_card(
        view(r2, rls(), ferritin(120, days_ago=100), ferritin(30, days_ago=5), tsat(30))
    )
    assert "ferritin 30 ng/mL" in card.detail and fhir.date_of(5) in card.detail


def test_issued_is_used_when_effective_time_is_missing(r2):
    result = ferritin(40)
    del result["effectiveDateTime"]
    result["issued"] = fhir.day(20)
    card = only_card(view(r2, rls(), result, tsat(30)))
    assert fhir.date_of(20) in card.detail


def test_ferritin_and_saturation_both_low_give_one_card_listing_both(r2):
    card = only_card(view(r2, rls(), ferritin(30), tsat(12)))
    assert "ferritin 30 ng/mL" in card.detail and "transferrin saturation 12 %" in card.detail


def test_thresholds_are_configurable(r2):
    chart = (rls(), ferritin(90), tsat(30))
    assert only_card(view(r2, *chart)).suggestions == ()  # the intravenous band
    assert only_card(view(r2, *chart, ferritin_max_ng_ml=100.0)).suggestions  # oral or IV


@not_counting("resolved", "refuted", "entered-in-error")
def test_low_iron_without_rls_that_counts_gives_no_card(r2, status):
    assert view(r2, rls(**status), ferritin(30), tsat(10)) == []


def test_low_iron_with_rls_without_clinical_status_fires(r2):
    assert len(view(r2, rls(clinical=None), ferritin(30))) == 1


def test_r2_on_order_hooks_only_while_an_rls_or_cramp_drug_is_ordered(r2):
    chart = [fhir.patient(), rls(), ferritin(30), tsat(30)]
    assert evaluate(r2, "order-sign", chart, [fhir.medication_request(ACETAMINOPHEN)]) == []
    drafts = fhir.drafts(a=GABAPENTIN, b=fhir.concept(text="pramipexole 0.125 mg"))
    assert len(evaluate(r2, "order-sign", chart, drafts)) == 1


@pytest.mark.parametrize(
    "draft",
    [
        fhir.medication_request(GABAPENTIN),
        fhir.medication_request(fhir.concept(RX, "187832", "pregabalin")),
        fhir.medication_request(fhir.concept(text="Horizant 600 mg")),
        fhir.with_contained_medication(fhir.medication_request(fhir.concept(RX, "314208"))),
    ],
    ids=["scd", "ingredient", "brand-text", "contained"],
)
def test_r2_recognises_the_rls_drug_however_it_is_coded(r2, draft):
    chart = [fhir.patient(), rls(), ferritin(30)]
    assert len(evaluate(r2, "order-select", chart, [draft])) == 1


def test_ferritin_reported_below_the_detection_limit_is_low(r2):
    below = {"value": 10, "comparator": "<", "unit": "ng/mL", "system": UCUM, "code": "ng/mL"}
    assert len(view(r2, rls(), ferritin(below), tsat(30))) == 1


# Through the service ------------------------------------------------------------------------


def test_order_select_answers_r2_only_when_the_rls_drug_is_selected(call):
    chart = [fhir.patient(), rls(), ferritin(30), tsat(30)]
    drafts = fhir.drafts(g1=GABAPENTIN, a1=ACETAMINOPHEN)
    request = hook_request("order-select", chart, drafts, selections=["MedicationRequest/a1"])
    assert LOW not in cards_by_rule(call("legcramp-order-select", request).get_json())
    request["context"]["selections"] = ["MedicationRequest/g1"]
    assert len(cards_by_rule(call("legcramp-order-select", request).get_json())[LOW]) == 1


# --- iron already prescribed ----------------------------------------------------------------


FERROUS_SULFATE = fhir.concept(RX, "24947", "ferrous sulfate")


def test_active_iron_gets_no_second_iron_draft_but_a_recheck_after_3_months(r2):
    """The clinical review: R2 drafted a second oral iron order while iron was active."""
    on_iron = fhir.medication_request(FERROUS_SULFATE, id="fe", status="active")
    card = only_card(view(r2, rls(), ferritin(30), on_iron))
    assert card.suggestions == ()
    assert "already prescribed" in card.summary and "3 months" in card.summary
    assert "ferrous sulfate" in card.detail


def test_on_oral_iron_in_the_intravenous_band_the_recheck_keeps_the_route_advice(r2):
    """Ferritin 90 on oral iron: an info card that still says the guidance's route is IV."""
    on_iron = fhir.medication_request(FERROUS_SULFATE, id="fe", status="active")
    card = only_card(view(r2, rls(), ferritin(90), tsat(30), on_iron))
    assert card.indicator == "info" and card.suggestions == ()
    assert "consider intravenous iron instead" in card.detail


def test_on_oral_iron_with_esrd_the_recheck_says_intravenous_iron_with_the_kidney_team(r2):
    on_iron = fhir.medication_request(FERROUS_SULFATE, id="fe", status="active")
    card = only_card(view(r2, rls(), ESRD, ferritin(150), tsat(15), on_iron))
    assert card.indicator == "warning" and card.suggestions == ()
    assert "intravenous iron with the kidney team" in card.detail


def test_on_oral_iron_in_the_oral_band_no_route_change_is_advised(r2):
    on_iron = fhir.medication_request(FERROUS_SULFATE, id="fe", status="active")
    card = only_card(view(r2, rls(), ferritin(30), on_iron))
    assert "consider intravenous iron" not in card.detail


def test_an_iron_order_in_hand_brings_r2_and_gets_no_second_iron_draft(r2):
    chart = [fhir.patient(), rls(), ferritin(30)]
    [card] = evaluate(r2, "order-sign", chart, [fhir.medication_request(FERROUS_SULFATE)])
    assert card.suggestions == () and "already prescribed" in card.summary


def test_without_iron_r2_still_drafts_the_oral_iron_order(r2):
    card = only_card(view(r2, rls(), ferritin(30)))
    assert card.suggestions and card.suggestions[0].actions[0].type == "create"


def test_ferritin_in_pmol_per_l_is_converted_and_compared(r2):
    """1 ng/mL = 2.247 pmol/L: 60 pmol/L is about 27 ng/mL, low."""
    card = only_card(view(r2, rls(), ferritin(60, unit="pmol/L")))
    assert "60 pmol/L" in card.detail and "26.7 ug/L" in card.detail


def test_a_ferritin_in_a_unit_not_recognised_is_named_not_compared_never_dropped(r2):
    card = only_card(view(r2, rls(), ferritin(30, unit="mg/furlong"), tsat(12)))
    assert "ferritin 30 mg/furlong" in card.detail and "not compared" in card.detail
