"""Tests about several rules at once: the cards rules that look at the same chart or the same
order give together through the service, and what the condition-specific guidance rules declare
in common."""

from __future__ import annotations

import pytest

from cds_service.kit import SUPPORTED_HOOKS, ServiceDeclaration
from hooks import data
from hooks.rules.diabetes_spasm_b6 import VITAMIN_B6_KEY
from tests.support import cyclobenzaprine, electrolytes, fhir, iron, rls_drugs
from tests.support.cards import cards_by_rule, check_json_actions, only_card
from tests.support.fhir import LOINC
from tests.support.rls_drugs import HALOPERIDOL_20, ROPINIROLE_1
from tests.support.rules import declared_defaults, evaluate, hook_request, sign

E1 = "cramps-electrolytes-abnormal"
E2 = "diuretic-electrolytes-due"
R1 = "rls-iron-studies-due"
R2 = "rls-iron-low"
C1 = "cyclobenzaprine-duration"
C2 = "cyclobenzaprine-cns-spasticity"
C3 = "cyclobenzaprine-dose"


# Electrolytes: E1 and E2 ---------------------------------------------------------------------


def test_patient_view_answers_e1_and_e2_with_lab_orders_coded_in_loinc(call):
    chart = [
        fhir.patient(),
        electrolytes.cramps(),
        electrolytes.active(electrolytes.FUROSEMIDE),
        electrolytes.potassium(3.1),
    ]
    response = call("legcramp-patient-view", hook_request("patient-view", chart))
    by_rule = cards_by_rule(response.get_json())
    (low,) = by_rule[E1]
    (due,) = by_rule[E2]
    assert low["indicator"] == "warning" and due["indicator"] == "info"
    assert "3.1 mmol/L" in low["detail"] and fhir.date_of(10) in low["detail"]
    assert "magnesium" in due["summary"] and "potassium" not in due["summary"]
    for card in (low, due):
        check_json_actions(card)
        for suggestion in card["suggestions"]:
            for action in suggestion["actions"]:
                assert action["type"] == "create"
                assert action["resource"]["resourceType"] == "ServiceRequest"
                assert action["resource"]["code"]["coding"][0]["system"] == "http://loinc.org"


# Iron: R1 and R2 -----------------------------------------------------------------------------


def test_patient_view_answers_r1_and_r2_for_ferritin_low_and_saturation_missing(call):
    chart = [fhir.patient(), iron.rls(), iron.ferritin(40)]
    response = call("legcramp-patient-view", hook_request("patient-view", chart))
    by_rule = cards_by_rule(response.get_json())
    (due,) = by_rule[R1]
    (low,) = by_rule[R2]
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


# Cyclobenzaprine: C1, C2 and C3 on one order -------------------------------------------------


def test_order_select_answers_duration_dose_and_cns_cards_for_the_selected_order(call):
    other = fhir.medication_request(cyclobenzaprine.METHOCARBAMOL, id="other-1")
    request = hook_request(
        "order-select",
        [fhir.patient(), fhir.condition(cyclobenzaprine.MS, id="ms")],
        [cyclobenzaprine.long_high_dose_draft(), other],
        selections=["MedicationRequest/cbp-1"],
    )
    response = call("legcramp-order-select", request)
    assert response.status_code == 200
    by_rule = cards_by_rule(response.get_json())
    assert {C1, C2, C3} <= set(by_rule)
    assert all(len(by_rule[r]) == 1 for r in (C1, C2, C3))
    # A long course at a dose above the labelled maximum: C1 offers no shorter order at that
    # dose (C3 flags the dose), and says why.
    assert "suggestions" not in by_rule[C1][0]
    assert "review the dose first" in by_rule[C1][0]["detail"]
    for cards in by_rule.values():
        for card in cards:
            check_json_actions(card)
            assert all(r.get("display") for r in card.get("overrideReasons", []))

    request["context"]["selections"] = ["MedicationRequest/other-1"]
    quiet = cards_by_rule(call("legcramp-order-select", request).get_json())
    assert not {C1, C2, C3} & set(quiet)


def test_order_sign_reviews_a_contained_medication_draft(call):
    draft = fhir.with_contained_medication(cyclobenzaprine.long_high_dose_draft())
    response = call("legcramp-order-sign", hook_request("order-sign", [fhir.patient()], [draft]))
    by_rule = cards_by_rule(response.get_json())
    assert len(by_rule[C1]) == 1 and len(by_rule[C3]) == 1
    assert C2 not in by_rule
    assert "suggestions" not in by_rule[C1][0]  # above the labelled dose: no one-click order
    three_a_day = cyclobenzaprine.long_high_dose_draft()
    three_a_day["dosageInstruction"] = [fhir.dosage(10, "mg", "mg", per_day=3)]
    within_dose = fhir.with_contained_medication(three_a_day)
    response = call("legcramp-order-sign",
                    hook_request("order-sign", [fhir.patient()], [within_dose]))
    by_rule = cards_by_rule(response.get_json())
    resource = by_rule[C1][0]["suggestions"][0]["actions"][0]["resource"]
    assert resource["medicationReference"] == {"reference": "#med"}
    fhir.validate(resource)


def test_patient_view_flags_long_running_active_cyclobenzaprine(call):
    active = fhir.active_order(cyclobenzaprine.TABLET_10, id="m-old", days_ago=40)
    chart = [fhir.patient(), active, fhir.condition(cyclobenzaprine.MS, id="ms")]
    response = call("legcramp-patient-view", hook_request("patient-view", chart))
    by_rule = cards_by_rule(response.get_json())
    assert len(by_rule[C1]) == 1 and len(by_rule[C2]) == 1
    assert "suggestions" not in by_rule[C1][0]
    assert C3 not in by_rule


# RLS drugs: D1 and A1 ------------------------------------------------------------------------


def test_patient_view_cards_repeat_quietly_and_order_hook_cards_do_not(d1, a1):
    rop = fhir.active_order(ROPINIROLE_1, id="m1", days_ago=200)
    halo = fhir.active_order(HALOPERIDOL_20, id="m2", days_ago=20)
    for rule in (d1, a1):
        cards = evaluate(rule, "patient-view", [fhir.patient(), rls_drugs.rls(), rop, halo])
        assert only_card(cards).repeat_quietly is True
    on_sign = only_card(sign(d1, [rls_drugs.rls()], fhir.medication_request(ROPINIROLE_1)))
    assert on_sign.repeat_quietly is False
    on_sign = only_card(sign(a1, [rls_drugs.rls()], fhir.medication_request(HALOPERIDOL_20)))
    assert on_sign.repeat_quietly is False


# Condition-specific guidance: S1, L1, P1 and V1 ----------------------------------------------

KIDNEY_KEY = data.KIDNEY_FUNCTION.key
PREGNANCY_KEY = data.PREGNANCY_TESTS.key
# The kidney-function gate's thresholds (KDIGO G3 and G4) and look-back, on every gated rule.
KIDNEY_DEFAULTS = {"egfr_moderate_below": 60.0, "egfr_severe_below": 30.0,
                   "egfr_lookback_days": 365}


def test_each_rule_declares_its_catalog_metadata_and_defaults(s1, l1, p1, v1):
    expected = {
        "esrd-cramps-gabapentin": ("S1", {**KIDNEY_DEFAULTS, "pregnancy_window_days": 300,
                                          "older_adult_age": 65}),
        "cirrhosis-cramps-baclofen": (
            "L1",
            {
                **KIDNEY_DEFAULTS,
                "older_adult_age": 65,
                "baclofen_start_mg_per_day": 10.0,
                "baclofen_weekly_step_mg_per_day": 10.0,
                "baclofen_max_mg_per_day": 30.0,
            },
        ),
        "pad-claudication-exercise": ("P1", {}),
        "diabetes-spasm-b6": ("V1", {"persistent_days": 42, "b6_lookback_days": 365}),
    }
    for a_rule in (s1, l1, p1, v1):
        code, defaults = expected[a_rule.rule_id]
        assert (a_rule.catalog_code, a_rule.indicator) == (code, "info")
        assert declared_defaults(a_rule) == defaults
        assert a_rule.title and a_rule.sources and a_rule.applies


def test_reads_per_hook(s1, l1, p1, v1):
    for hook in SUPPORTED_HOOKS:
        assert [r.key for r in s1.reads(hook)] == [
            "conditions", "activeMedications", KIDNEY_KEY, PREGNANCY_KEY]
        assert [r.key for r in l1.reads(hook)] == ["conditions", "activeMedications", KIDNEY_KEY]
        assert [r.key for r in p1.reads(hook)] == ["conditions"]
        assert [r.key for r in v1.reads(hook)] == (
            ["conditions", VITAMIN_B6_KEY] if hook == "patient-view" else [])


@pytest.mark.parametrize("hook", SUPPORTED_HOOKS)
def test_the_four_rules_fit_in_a_service_beside_the_existing_keys(s1, l1, p1, v1, hook):
    service = ServiceDeclaration(
        id=f"test-{hook}", hook=hook, title="t", description="d", usage_requirements="",
        rules=(s1, l1, p1, v1), base_requirements=(data.PATIENT,),
    )
    prefetch = service.discovery_entry()["prefetch"]
    b6 = {VITAMIN_B6_KEY} if hook == "patient-view" else set()
    assert set(prefetch) == {"patient", "conditions", "activeMedications", KIDNEY_KEY,
                             PREGNANCY_KEY} | b6
    assert prefetch["conditions"] == data.CONDITIONS.template
