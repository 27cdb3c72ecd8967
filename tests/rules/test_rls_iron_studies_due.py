"""R1 rls-iron-studies-due: ferritin and transferrin saturation due in restless legs syndrome."""

from __future__ import annotations

import pytest

from tests.support import fhir
from tests.support.cards import cards_by_rule, check_card, only_card, ordered_loinc
from tests.support.concepts import ACETAMINOPHEN, GABAPENTIN, RLS
from tests.support.fhir import ICD10CM, RX, SNOMED
from tests.support.iron import ferritin, rls, serum_iron, tibc, tsat
from tests.support.rules import evaluate, hook_request, not_counting, view

DUE = "rls-iron-studies-due"
NORMAL_IRON = (ferritin(150), tsat(30))


def test_rls_without_any_iron_studies_gets_one_info_card_ordering_both(r1):
    card = only_card(view(r1, rls()))
    check_card(card, DUE, "info", "restless legs", "ferritin", "transferrin saturation")
    assert f"**Found:** Restless legs (onset {fhir.date_of(30)})" in card.detail
    assert "Condition/" not in card.detail and "365 days" in card.detail
    assert ordered_loinc(card) == ["2276-4", "2502-3"]
    (suggestion,) = card.suggestions
    assert suggestion.is_recommended is True
    for action in suggestion.actions:
        assert action.type == "create"
        assert action.resource["reasonReference"] == [{"reference": "Condition/rls"}]


def test_each_suggested_lab_order_says_to_draw_in_the_morning_without_iron(r1):
    """AASM 2024: iron studies in the morning, no iron supplements or iron-containing foods
    for 24 hours before; the instruction travels with each drafted order."""
    (suggestion,) = only_card(view(r1, rls())).suggestions
    for action in suggestion.actions:
        instruction = action.resource["patientInstruction"]
        assert "morning" in instruction and "24 hours" in instruction
        assert action.resource["note"] == [{"text": instruction}]


def test_ferritin_present_but_saturation_missing_names_and_orders_saturation(r1):
    card = only_card(view(r1, rls(), ferritin(50)))
    assert "transferrin saturation" in card.summary and "ferritin" not in card.summary
    assert ordered_loinc(card) == ["2502-3"]


def test_saturation_present_but_ferritin_missing_names_and_orders_ferritin(r1):
    card = only_card(view(r1, rls(), tsat(25)))
    assert "ferritin" in card.summary and "saturation" not in card.summary
    assert ordered_loinc(card) == ["2276-4"]


def test_both_results_in_the_last_year_keep_r1_quiet(r1):
    assert view(r1, rls(), *NORMAL_IRON) == []


def test_saturation_computed_from_iron_and_tibc_of_the_same_draw_counts(r1):
    assert view(r1, rls(), ferritin(50), serum_iron(45), tibc(300)) == []


def test_iron_and_tibc_of_different_draws_do_not_make_a_saturation(r1):
    card = only_card(
        view(r1, rls(), ferritin(50), serum_iron(45, days_ago=10), tibc(300, days_ago=12))
    )
    assert ordered_loinc(card) == ["2502-3"]


@pytest.mark.parametrize("stale", ["ferritin", "saturation"])
def test_result_older_than_the_lookback_counts_as_missing(r1, stale):
    old, recent = (
        (ferritin(40, days_ago=400), tsat(30))
        if stale == "ferritin"
        else (tsat(10, days_ago=400), ferritin(150))
    )
    card = only_card(view(r1, rls(), old, recent))
    assert ordered_loinc(card) == (["2276-4"] if stale == "ferritin" else ["2502-3"])


def test_lookback_is_configurable(r1):
    chart = (rls(), ferritin(150, days_ago=200), tsat(30, days_ago=200))
    assert view(r1, *chart) == []
    assert len(view(r1, *chart, iron_lookback_days=180)) == 1


@pytest.mark.parametrize("status", ["registered", "cancelled", "entered-in-error"])
def test_result_that_is_not_final_does_not_count(r1, status):
    card = only_card(view(r1, rls(), ferritin(150, status=status), tsat(30)))
    assert ordered_loinc(card) == ["2276-4"]


def test_preliminary_result_counts(r1):
    assert view(r1, rls(), ferritin(150, status="preliminary"), tsat(30)) == []


@pytest.mark.parametrize("code", ["20567-4", "24373-3"])
def test_other_ferritin_loinc_codes_count(r1, code):
    assert view(r1, rls(), fhir.observation(code, 150, "ug/L"), tsat(30)) == []


@not_counting("resolved", "inactive", "refuted", "entered-in-error")
def test_rls_that_does_not_count_keeps_r1_quiet(r1, status):
    assert view(r1, rls(**status)) == []


@pytest.mark.parametrize(
    "condition_fields",
    [
        {"clinical": None, "verification": None},
        {"code": fhir.concept(ICD10CM, "G25.81", "RLS")},
        {"code": fhir.concept(text="Willis-Ekbom disease")},
    ],
    ids=["no-clinical-status", "icd10", "text"],
)
def test_rls_without_status_or_coded_otherwise_counts(r1, condition_fields):
    fields = {"code": RLS, **condition_fields}
    chart = fhir.condition(fields.pop("code"), id="rls", **fields)
    assert len(view(r1, chart)) == 1


def test_no_rls_no_card(r1):
    assert view(r1, fhir.condition(fhir.concept(SNOMED, "449918009", "Cramp in lower leg"))) == []


def test_r1_on_order_hooks_only_while_an_rls_drug_is_ordered(r1):
    """The clinical review: a quinine or cyclobenzaprine order got RLS iron cards. At order
    entry only cards about the order in hand."""
    chart = [fhir.patient(), rls()]
    assert evaluate(r1, "order-sign", chart, [fhir.medication_request(ACETAMINOPHEN)]) == []
    assert len(evaluate(r1, "order-sign", chart, [fhir.medication_request(GABAPENTIN)])) == 1
    for cramp_drug in (fhir.concept(RX, "1292", "baclofen"),
                       fhir.concept(text="quinine sulfate 324 mg"),
                       fhir.concept(text="cyclobenzaprine 10 mg")):
        assert evaluate(r1, "order-sign", chart, [fhir.medication_request(cramp_drug)]) == []
    by_brand = fhir.medication_request(fhir.concept(text="Requip 0.25 mg"))
    assert len(evaluate(r1, "order-sign", chart, [by_brand])) == 1
    contained = fhir.with_contained_medication(fhir.medication_request(GABAPENTIN))
    assert len(evaluate(r1, "order-sign", chart, [contained])) == 1


def test_r1_order_select_needs_the_rls_drug_among_the_selections(r1):
    chart = [fhir.patient(), rls()]
    drafts = fhir.drafts(gaba=GABAPENTIN, apap=ACETAMINOPHEN)
    assert evaluate(r1, "order-select", chart, drafts, selections=["MedicationRequest/apap"]) == []
    assert (
        len(evaluate(r1, "order-select", chart, drafts, selections=["MedicationRequest/gaba"])) == 1
    )


def test_r1_gives_one_card_per_request_whatever_the_number_of_orders(r1):
    drafts = fhir.drafts(a=GABAPENTIN, b=fhir.concept(RX, "72302", "ropinirole"))
    cards = evaluate(r1, "order-sign", [fhir.patient(), rls()], drafts)
    assert len(cards) == 1


# Through the service ------------------------------------------------------------------------


def test_order_sign_with_gabapentin_answers_one_r1_card_and_nothing_for_other_drugs(call):
    chart = [fhir.patient(), rls()]
    drafts = fhir.drafts(g1=GABAPENTIN, g2=GABAPENTIN)
    response = call("legcramp-order-sign", hook_request("order-sign", chart, drafts))
    assert len(cards_by_rule(response.get_json())[DUE]) == 1
    other = hook_request("order-sign", chart, [fhir.medication_request(ACETAMINOPHEN)])
    assert DUE not in cards_by_rule(call("legcramp-order-sign", other).get_json())


def test_r1_names_a_ferritin_it_cannot_compare_and_orders_only_what_is_missing(r1):
    from tests.support.iron import ferritin

    card = only_card(view(r1, rls(), ferritin(30, unit="mg/furlong")))
    assert "not compared" in card.detail and "mg/furlong" in card.detail
    assert "transferrin saturation" in card.summary  # still missing: ordered
    assert "morning" in card.detail and "24 hours" in card.detail
