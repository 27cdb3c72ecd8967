"""R1 rls-iron-studies-due and R2 rls-iron-low: iron stores in restless legs syndrome."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fhir import (
    ICD10CM,
    LOINC,
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
    evaluate,
    hook_request,
    medication_request,
    observation,
    only_card,
    ordered_loinc_codes,
    patient,
    quantity,
    rule,
    validate_fhir,
    with_contained_medication,
)

DUE = "rls-iron-studies-due"
LOW = "rls-iron-low"
RLS = concept(SNOMED, "32914008", "Restless legs")
GABAPENTIN = concept(RX, "310431", "gabapentin 300 MG Oral Capsule")
ACETAMINOPHEN = concept(RX, "161", "acetaminophen")


@pytest.fixture(scope="module")
def r1() -> Any:
    return rule(DUE)


@pytest.fixture(scope="module")
def r2() -> Any:
    return rule(LOW)


def rls(**extra: Any) -> dict[str, Any]:
    return condition(RLS, id="rls", **extra)


def ferritin(value: Any, unit: str | None = "ng/mL", days_ago: float = 10, **extra: Any):
    return observation("2276-4", value, unit, days_ago, **extra)


def tsat(value: Any, unit: str | None = "%", days_ago: float = 10, **extra: Any):
    return observation("2502-3", value, unit, days_ago, **extra)


def serum_iron(value: float, unit: str = "ug/dL", days_ago: float = 10):
    return observation("2498-4", value, unit, days_ago)


def tibc(value: float, unit: str = "ug/dL", days_ago: float = 10):
    return observation("2500-7", value, unit, days_ago)


def view(a_rule: Any, *chart: dict[str, Any], **settings: Any) -> list[Any]:
    return evaluate(a_rule, "patient-view", [patient(), *chart], **settings)


NORMAL_IRON = (ferritin(150), tsat(30))


# R1 iron studies due -----------------------------------------------------------------------------


def test_rls_without_any_iron_studies_gets_one_info_card_ordering_both(r1):
    card = only_card(view(r1, rls()))
    check_card(card, DUE, "info", "restless legs", "ferritin", "transferrin saturation")
    assert "Condition/rls" in card.detail and "365 days" in card.detail
    assert ordered_loinc_codes(card) == ["2276-4", "2502-3"]
    (suggestion,) = card.suggestions
    assert suggestion.is_recommended is True
    for action in suggestion.actions:
        assert action.type == "create"
        assert action.resource["reasonReference"] == [{"reference": "Condition/rls"}]


def test_ferritin_present_but_saturation_missing_names_and_orders_saturation(r1):
    card = only_card(view(r1, rls(), ferritin(50)))
    assert "transferrin saturation" in card.summary and "ferritin" not in card.summary
    assert ordered_loinc_codes(card) == ["2502-3"]


def test_saturation_present_but_ferritin_missing_names_and_orders_ferritin(r1):
    card = only_card(view(r1, rls(), tsat(25)))
    assert "ferritin" in card.summary and "saturation" not in card.summary
    assert ordered_loinc_codes(card) == ["2276-4"]


def test_both_results_in_the_last_year_keep_r1_quiet(r1):
    assert view(r1, rls(), *NORMAL_IRON) == []


def test_saturation_computed_from_iron_and_tibc_of_the_same_draw_counts(r1):
    assert view(r1, rls(), ferritin(50), serum_iron(45), tibc(300)) == []


def test_iron_and_tibc_of_different_draws_do_not_make_a_saturation(r1):
    card = only_card(
        view(r1, rls(), ferritin(50), serum_iron(45, days_ago=10), tibc(300, days_ago=12))
    )
    assert ordered_loinc_codes(card) == ["2502-3"]


@pytest.mark.parametrize("stale", ["ferritin", "saturation"])
def test_result_older_than_the_lookback_counts_as_missing(r1, stale):
    old, recent = (
        (ferritin(40, days_ago=400), tsat(30))
        if stale == "ferritin"
        else (tsat(10, days_ago=400), ferritin(150))
    )
    card = only_card(view(r1, rls(), old, recent))
    assert ordered_loinc_codes(card) == (["2276-4"] if stale == "ferritin" else ["2502-3"])


def test_lookback_is_configurable(r1):
    chart = (rls(), ferritin(150, days_ago=200), tsat(30, days_ago=200))
    assert view(r1, *chart) == []
    assert len(view(r1, *chart, iron_lookback_days=180)) == 1


@pytest.mark.parametrize("status", ["registered", "cancelled", "entered-in-error"])
def test_result_that_is_not_final_does_not_count(r1, status):
    card = only_card(view(r1, rls(), ferritin(150, status=status), tsat(30)))
    assert ordered_loinc_codes(card) == ["2276-4"]


def test_preliminary_result_counts(r1):
    assert view(r1, rls(), ferritin(150, status="preliminary"), tsat(30)) == []


@pytest.mark.parametrize("code", ["20567-4", "24373-3"])
def test_other_ferritin_loinc_codes_count(r1, code):
    assert view(r1, rls(), observation(code, 150, "ug/L"), tsat(30)) == []


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
def test_rls_that_does_not_count_keeps_r1_quiet(r1, status):
    assert view(r1, rls(**status)) == []


@pytest.mark.parametrize(
    "condition_fields",
    [
        {"clinical": None, "verification": None},
        {"code": concept(ICD10CM, "G25.81", "RLS")},
        {"code": concept(text="Willis-Ekbom disease")},
    ],
    ids=["no-clinical-status", "icd10", "text"],
)
def test_rls_without_status_or_coded_otherwise_counts(r1, condition_fields):
    fields = {"code": RLS, **condition_fields}
    chart = condition(fields.pop("code"), id="rls", **fields)
    assert len(view(r1, chart)) == 1


def test_no_rls_no_card(r1):
    assert view(r1, condition(concept(SNOMED, "449918009", "Cramp in lower leg"))) == []


def test_r1_on_order_hooks_only_while_an_rls_or_cramp_drug_is_ordered(r1):
    chart = [patient(), rls()]
    assert evaluate(r1, "order-sign", chart, [medication_request(ACETAMINOPHEN)]) == []
    assert len(evaluate(r1, "order-sign", chart, [medication_request(GABAPENTIN)])) == 1
    cramp_drug = medication_request(concept(RX, "1292", "baclofen"))
    assert len(evaluate(r1, "order-sign", chart, [cramp_drug])) == 1
    by_brand = medication_request(concept(text="Requip 0.25 mg"))
    assert len(evaluate(r1, "order-sign", chart, [by_brand])) == 1
    contained = with_contained_medication(medication_request(GABAPENTIN))
    assert len(evaluate(r1, "order-sign", chart, [contained])) == 1


def test_r1_order_select_needs_the_rls_drug_among_the_selections(r1):
    chart = [patient(), rls()]
    drafts = [
        medication_request(GABAPENTIN, id="gaba"),
        medication_request(ACETAMINOPHEN, id="apap"),
    ]
    assert evaluate(r1, "order-select", chart, drafts, selections=["MedicationRequest/apap"]) == []
    assert (
        len(evaluate(r1, "order-select", chart, drafts, selections=["MedicationRequest/gaba"])) == 1
    )


def test_r1_gives_one_card_per_request_whatever_the_number_of_orders(r1):
    drafts = [
        medication_request(GABAPENTIN, id="a"),
        medication_request(concept(RX, "72302", "ropinirole"), id="b"),
    ]
    cards = evaluate(r1, "order-sign", [patient(), rls()], drafts)
    assert len(cards) == 1


# R2 iron low -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, fires", [(30, True), (75, True), (75.5, False), (76, False)])
def test_ferritin_at_or_below_75_fires(r2, value, fires):
    assert len(view(r2, rls(), ferritin(value), tsat(30))) == int(fires)


@pytest.mark.parametrize("unit", ["ng/mL", "ug/L"])
def test_ferritin_in_ng_per_ml_and_ug_per_l_is_the_same_number(r2, unit):
    card = only_card(view(r2, rls(), ferritin(60, unit), tsat(30)))
    assert f"60 {unit}" in card.detail


def test_low_ferritin_card_shows_value_unit_and_date(r2):
    card = only_card(view(r2, rls(), ferritin(75), tsat(30)))
    check_card(card, LOW, "warning", "restless legs", "iron")
    assert "ferritin 75 ng/mL" in card.detail and date_of(10) in card.detail
    assert "Condition/rls" in card.detail
    assert {r.code for r in card.override_reasons} == {"iron-already-given", "iron-contraindicated"}


def test_low_iron_card_drafts_an_oral_iron_order_that_is_valid_fhir(r2):
    card = only_card(view(r2, rls(), ferritin(40), tsat(30)))
    (action,) = actions_of(card)
    assert action.type == "create"
    order = action.resource
    validate_fhir(order)
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
    assert "0.18" in card.detail and "18 %" in card.detail and date_of(10) in card.detail


def test_saturation_computed_from_iron_and_tibc_of_one_draw_fires_at_15_percent(r2):
    card = only_card(view(r2, rls(), ferritin(150), serum_iron(45), tibc(300)))
    assert "15%" in card.detail
    assert "45 ug/dL" in card.detail and "300 ug/dL" in card.detail
    assert date_of(10) in card.detail


def test_computed_saturation_of_30_percent_is_quiet(r2):
    assert view(r2, rls(), ferritin(150), serum_iron(90), tibc(300)) == []


def test_iron_panel_components_of_one_observation_give_a_saturation(r2):
    panel = observation("50190-8", 0, None, 10, id="panel")
    del panel["valueQuantity"]
    panel["code"]["coding"][0]["display"] = "Iron and Iron binding capacity panel"
    panel["component"] = [
        {
            "code": {"coding": [{"system": LOINC, "code": "2498-4"}]},
            "valueQuantity": quantity(40, "ug/dL", "ug/dL"),
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "2500-7"}]},
            "valueQuantity": quantity(400, "ug/dL", "ug/dL"),
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
        quantity(40),
        quantity(40, "ng/ml"),
        quantity(40, "µg/L"),
        quantity(40, "pmol/L", "pmol/L"),
        quantity(40, "ng/mL", "ng/mL", system="http://example.org/units"),
    ],
    ids=["no-unit", "lowercase-label", "micro-sign-label", "pmol", "foreign-system"],
)
def test_ferritin_with_a_missing_or_unrecognised_unit_is_never_compared(r2, value):
    assert view(r2, rls(), ferritin(value), tsat(30)) == []


def test_ferritin_unit_given_only_as_a_ucum_label_is_compared(r2):
    assert len(view(r2, rls(), ferritin(quantity(40, "ng/mL")), tsat(30))) == 1


def test_saturation_with_an_unrecognised_unit_is_never_compared(r2):
    assert view(r2, rls(), ferritin(150), tsat(quantity(0.1, "fraction"))) == []


def test_stale_low_ferritin_does_not_fire(r2):
    assert view(r2, rls(), ferritin(20, days_ago=400), tsat(30)) == []


def test_most_recent_ferritin_decides(r2):
    assert view(r2, rls(), ferritin(30, days_ago=100), ferritin(120, days_ago=5), tsat(30)) == []
    card = only_card(
        view(r2, rls(), ferritin(120, days_ago=100), ferritin(30, days_ago=5), tsat(30))
    )
    assert "ferritin 30 ng/mL" in card.detail and date_of(5) in card.detail


def test_issued_is_used_when_effective_time_is_missing(r2):
    result = ferritin(40)
    del result["effectiveDateTime"]
    result["issued"] = day(20)
    card = only_card(view(r2, rls(), result, tsat(30)))
    assert date_of(20) in card.detail


def test_ferritin_and_saturation_both_low_give_one_card_listing_both(r2):
    card = only_card(view(r2, rls(), ferritin(30), tsat(12)))
    assert "ferritin 30 ng/mL" in card.detail and "transferrin saturation 12 %" in card.detail


def test_thresholds_are_configurable(r2):
    chart = (rls(), ferritin(90), tsat(30))
    assert view(r2, *chart) == []
    assert len(view(r2, *chart, ferritin_max_ng_ml=100.0)) == 1


@pytest.mark.parametrize(
    "status",
    [{"clinical": "resolved"}, {"verification": "refuted"}, {"verification": "entered-in-error"}],
    ids=lambda s: next(iter(s.values())),
)
def test_low_iron_without_rls_that_counts_gives_no_card(r2, status):
    assert view(r2, rls(**status), ferritin(30), tsat(10)) == []


def test_low_iron_with_rls_without_clinical_status_fires(r2):
    assert len(view(r2, rls(clinical=None), ferritin(30))) == 1


def test_r2_on_order_hooks_only_while_an_rls_or_cramp_drug_is_ordered(r2):
    chart = [patient(), rls(), ferritin(30), tsat(30)]
    assert evaluate(r2, "order-sign", chart, [medication_request(ACETAMINOPHEN)]) == []
    drafts = [
        medication_request(GABAPENTIN, id="a"),
        medication_request(concept(text="pramipexole 0.125 mg"), id="b"),
    ]
    assert len(evaluate(r2, "order-sign", chart, drafts)) == 1


@pytest.mark.parametrize(
    "draft",
    [
        medication_request(GABAPENTIN),
        medication_request(concept(RX, "187832", "pregabalin")),
        medication_request(concept(text="Horizant 600 mg")),
        with_contained_medication(medication_request(concept(RX, "314208"))),
    ],
    ids=["scd", "ingredient", "brand-text", "contained"],
)
def test_r2_recognises_the_rls_drug_however_it_is_coded(r2, draft):
    chart = [patient(), rls(), ferritin(30)]
    assert len(evaluate(r2, "order-select", chart, [draft])) == 1


def test_ferritin_reported_below_the_detection_limit_is_low(r2):
    below = {"value": 10, "comparator": "<", "unit": "ng/mL", "system": UCUM, "code": "ng/mL"}
    assert len(view(r2, rls(), ferritin(below), tsat(30))) == 1


# Through the service ------------------------------------------------------------------------


def test_patient_view_answers_r1_and_r2_for_ferritin_low_and_saturation_missing(call):
    chart = [patient(), rls(), ferritin(40)]
    response = call("legcramp-patient-view", hook_request("patient-view", chart))
    by_rule = cards_by_rule(response.get_json())
    (due,) = by_rule[DUE]
    (low,) = by_rule[LOW]
    assert due["indicator"] == "info" and low["indicator"] == "warning"
    (order,) = due["suggestions"][0]["actions"]
    assert order["resource"]["code"]["coding"][0] == {
        "system": LOINC,
        "code": "2502-3",
        "display": order["resource"]["code"]["coding"][0]["display"],
    }
    assert "40 ng/mL" in low["detail"]
    for card in (due, low):
        check_json_actions(card)


def test_order_sign_with_gabapentin_answers_one_r1_card_and_nothing_for_other_drugs(call):
    chart = [patient(), rls()]
    drafts = [medication_request(GABAPENTIN, id="g1"), medication_request(GABAPENTIN, id="g2")]
    response = call("legcramp-order-sign", hook_request("order-sign", chart, drafts))
    assert len(cards_by_rule(response.get_json())[DUE]) == 1
    other = hook_request("order-sign", chart, [medication_request(ACETAMINOPHEN)])
    assert DUE not in cards_by_rule(call("legcramp-order-sign", other).get_json())


def test_order_select_answers_r2_only_when_the_rls_drug_is_selected(call):
    chart = [patient(), rls(), ferritin(30), tsat(30)]
    drafts = [medication_request(GABAPENTIN, id="g1"), medication_request(ACETAMINOPHEN, id="a1")]
    request = hook_request("order-select", chart, drafts, selections=["MedicationRequest/a1"])
    assert LOW not in cards_by_rule(call("legcramp-order-select", request).get_json())
    request["context"]["selections"] = ["MedicationRequest/g1"]
    assert len(cards_by_rule(call("legcramp-order-select", request).get_json())[LOW]) == 1
