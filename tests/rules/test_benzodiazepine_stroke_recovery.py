"""B1 benzodiazepine-stroke-recovery: benzodiazepines during recovery from a recent stroke."""

from __future__ import annotations

from typing import Any

import pytest

from hooks.valuesets import documents
from tests.support import fhir
from tests.support.cards import (
    actions_of,
    cards_by_rule,
    check_card,
    check_delete_suggestion,
    check_json_actions,
    only_card,
)
from tests.support.fhir import ATC, ICD10CM, RX, SNOMED, UCUM
from tests.support.rules import evaluate, hook_request, not_counting

RULE_ID = "benzodiazepine-stroke-recovery"
DIAZEPAM_10 = fhir.concept(RX, "197589", "diazepam 10 MG Oral Tablet")
ISCHEMIC = fhir.concept(SNOMED, "422504002", "Ischemic stroke")
INFARCT = fhir.concept(ICD10CM, "I63.9", "Cerebral infarction, unspecified")


def stroke(code: dict[str, Any] = ISCHEMIC, days_ago: float | None = 30, **extra: Any):
    return fhir.condition(
        code, id="stroke", onset=None if days_ago is None else fhir.day(days_ago), **extra
    )


def sign(b1: Any, chart: list[dict[str, Any]], *drafts: dict[str, Any]) -> list[Any]:
    return evaluate(
        b1,
        "order-sign",
        [fhir.patient(), *chart],
        list(drafts or [fhir.medication_request(DIAZEPAM_10)]),
    )


def test_diazepam_after_a_stroke_30_days_ago_gets_one_warning(b1):
    card = only_card(sign(b1, [stroke()]))
    check_card(card, RULE_ID, "warning", "diazepam", "stroke")
    assert f"**Ischemic stroke** (onset {fhir.date_of(30)})" in card.detail
    assert f"**diazepam 10 MG Oral Tablet** (draft, ordered {fhir.date_of(0)})" in card.detail
    assert "Condition/" not in card.detail and "MedicationRequest/" not in card.detail
    assert "197589" not in card.detail and "422504002" not in card.detail
    assert card.identity == "MedicationRequest/d1"


def test_card_suggests_deleting_the_draft_and_offers_the_four_override_reasons(b1):
    card = only_card(sign(b1, [stroke()]))
    check_delete_suggestion(card, "MedicationRequest/d1")
    assert card.selection_behavior == "at-most-one"
    assert {r.code for r in card.override_reasons} == {
        "seizure",
        "alcohol-withdrawal",
        "end-of-life-care",
        "procedural-sedation",
    }
    assert all(r.display for r in card.override_reasons)


@pytest.mark.parametrize(
    "days_ago, fires",
    [(1, True), (179, True), (180, True), (181, False), (400, False), (3650, False)],
)
def test_stroke_counts_only_within_the_180_day_recovery_window(b1, days_ago, fires):
    assert len(sign(b1, [stroke(INFARCT, days_ago)])) == int(fires)


def test_recovery_window_is_configurable(b1):
    chart = [fhir.patient(), stroke(days_ago=200)]
    drafts = [fhir.medication_request(DIAZEPAM_10)]
    assert evaluate(b1, "order-sign", chart, drafts) == []
    assert len(evaluate(b1, "order-sign", chart, drafts, recovery_window_days=365)) == 1


@pytest.mark.parametrize(
    "code",
    [
        fhir.concept(ICD10CM, "Z86.73", "Personal history of TIA and cerebral infarction"),
        fhir.concept(ICD10CM, "I69.351", "Hemiplegia following cerebral infarction"),
        fhir.concept(ICD10CM, "I69.30", "Unspecified sequelae of cerebral infarction"),
        fhir.concept(SNOMED, "275526006", "History of cerebrovascular accident"),
    ],
    ids=["Z86.73", "I69.351", "I69.30", "sct-history"],
)
@pytest.mark.parametrize("days_ago", [400, None], ids=["old", "no-onset"])
def test_history_of_stroke_codes_do_not_fire(b1, code, days_ago):
    assert sign(b1, [stroke(code, days_ago)]) == []


def test_active_stroke_with_unknown_onset_fires_and_says_so(b1):
    card = only_card(sign(b1, [stroke(INFARCT, None)]))
    assert "onset date not recorded" in card.detail
    assert "without a recorded onset" in card.detail


def test_stroke_with_unknown_onset_and_no_clinical_status_counts_as_active(b1):
    assert len(sign(b1, [stroke(INFARCT, None, clinical=None, verification=None)])) == 1


@not_counting("resolved", "inactive", "refuted", "entered-in-error")
@pytest.mark.parametrize("days_ago", [30, None], ids=["recent", "no-onset"])
def test_stroke_that_does_not_count_gives_no_card(b1, status, days_ago):
    assert sign(b1, [stroke(INFARCT, days_ago, **status)]) == []


def test_onset_period_start_is_the_onset(b1):
    recent = stroke(INFARCT, None, onsetPeriod={"start": fhir.day(20), "end": fhir.day(19)})
    card = only_card(sign(b1, [recent]))
    assert fhir.date_of(20) in card.detail
    old = stroke(INFARCT, None, onsetPeriod={"start": fhir.day(300)})
    assert sign(b1, [old]) == []


def test_recorded_date_is_the_fallback_onset(b1):
    assert len(sign(b1, [stroke(INFARCT, None, recordedDate=fhir.date_of(25))])) == 1
    assert sign(b1, [stroke(INFARCT, None, recordedDate=fhir.date_of(400))]) == []


def test_onset_age_far_in_the_past_is_not_recent(b1):
    onset_age = {"value": 60, "unit": "years", "system": UCUM, "code": "a"}
    assert sign(b1, [stroke(INFARCT, None, onsetAge=onset_age)]) == []


@pytest.mark.parametrize(
    "code",
    [
        fhir.concept(ICD10CM, "I61.9", "Nontraumatic intracerebral hemorrhage, unspecified"),
        fhir.concept(ICD10CM, "I60.9", "Nontraumatic subarachnoid hemorrhage, unspecified"),
        fhir.concept(SNOMED, "230690007", "Cerebrovascular accident"),
        fhir.concept(ICD10CM, "I63.512", "Cerebral infarction, left MCA"),
        fhir.concept(text="Haemorrhagic stroke"),
    ],
    ids=["ich", "sah", "cva", "i63-prefix", "text"],
)
def test_ischemic_and_hemorrhagic_strokes_count(b1, code):
    assert len(sign(b1, [stroke(code, 60)])) == 1


@pytest.mark.parametrize(
    "medication",
    [
        fhir.concept(RX, "3322", "diazepam"),
        fhir.concept(ATC, "N05BA01"),
        fhir.concept(text="Valium 5 mg"),
        fhir.concept(text="Klonopin 0.5 mg"),
        fhir.concept(text="Ativan 1 mg"),
        fhir.concept(RX, "197527", "clonazepam 0.5 MG Oral Tablet"),
    ],
    ids=["ingredient", "atc", "valium", "klonopin", "ativan", "clonazepam-scd"],
)
def test_benzodiazepines_are_recognised_by_code_and_by_brand_name(b1, medication):
    card = only_card(sign(b1, [stroke()], fhir.medication_request(medication)))
    [coding] = medication.get("coding") or [{}]
    label = medication.get("text") or coding.get("display") or f"{coding['code']} ({ATC})"
    assert f"**{label}** (draft, ordered" in card.detail
    assert "by code" not in card.detail and "by the drug name" not in card.detail
    if coding.get("display"):  # a named order shows its name, never its code
        assert coding["code"] not in card.detail


def test_brand_name_is_in_the_summary(b1):
    card = only_card(
        sign(b1, [stroke()], fhir.medication_request(fhir.concept(text="Valium 5 mg")))
    )
    assert "Valium" in card.summary


def test_every_rxnorm_product_of_the_value_set_is_recognised(b1):
    codes = [c["code"] for c in documents()["benzodiazepines"]["codes"] if c["system"] == RX]
    assert len(codes) > 100
    record_chart = [stroke()]
    missed = [
        code
        for code in codes
        if len(sign(b1, record_chart, fhir.medication_request(fhir.concept(RX, code)))) != 1
    ]
    assert missed == []


def test_contained_lorazepam_medication_is_recognised(b1):
    order = fhir.with_contained_medication(
        fhir.medication_request(fhir.concept(RX, "197901", "lorazepam 1 MG Oral Tablet"))
    )
    card = only_card(sign(b1, [stroke()], order))
    assert "lorazepam 1 MG Oral Tablet" in card.detail
    assert actions_of(card)[0].resource_id == "MedicationRequest/d1"


@pytest.mark.parametrize(
    "medication",
    [
        fhir.concept(RX, "1292", "baclofen"),
        fhir.concept(text="zolpidem 5 mg"),
        fhir.concept(RX, "828348", "cyclobenzaprine hydrochloride 10 MG Oral Tablet"),
    ],
    ids=["baclofen", "zolpidem", "cyclobenzaprine"],
)
def test_other_drugs_after_a_stroke_get_no_card(b1, medication):
    assert sign(b1, [stroke()], fhir.medication_request(medication)) == []


def test_benzodiazepine_without_any_stroke_gets_no_card(b1):
    other = fhir.condition(fhir.concept(SNOMED, "449918009", "Cramp in lower leg"))
    assert sign(b1, [other]) == []


def test_one_card_per_benzodiazepine_order_listing_every_recent_stroke(b1):
    chart = [
        stroke(),
        fhir.condition(
            fhir.concept(ICD10CM, "I61.9", "Intracerebral hemorrhage"), id="ich", onset=fhir.day(5)
        ),
    ]
    drafts = fhir.drafts(d1=DIAZEPAM_10, d2=fhir.concept(RX, "6470", "lorazepam"))
    cards = sign(b1, chart, *drafts)
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]
    for card in cards:
        assert f"**Ischemic stroke** (onset {fhir.date_of(30)})" in card.detail
        assert f"**Intracerebral hemorrhage** (onset {fhir.date_of(5)})" in card.detail
        assert "Condition/" not in card.detail
        assert [a.resource_id for a in actions_of(card)] == [card.identity]


def test_cancelled_draft_gets_no_card(b1):
    assert sign(b1, [stroke()], fhir.medication_request(DIAZEPAM_10, status="cancelled")) == []


def test_order_select_judges_only_the_selected_order(b1):
    drafts = fhir.drafts(d1=DIAZEPAM_10, d2=fhir.concept(RX, "1292", "baclofen"))
    chart = [fhir.patient(), stroke()]
    assert evaluate(b1, "order-select", chart, drafts, selections=["MedicationRequest/d2"]) == []
    card = only_card(
        evaluate(b1, "order-select", chart, drafts, selections=["MedicationRequest/d1"])
    )
    assert card.identity == "MedicationRequest/d1"


def test_patient_view_suggests_stopping_the_active_order_with_the_complete_resource(b1):
    active = fhir.active_order(
        DIAZEPAM_10, id="m1", days_ago=10, dosageInstruction=[{"text": "5 mg at night"}]
    )
    card = only_card(evaluate(b1, "patient-view", [fhir.patient(), stroke(), active]))
    check_card(card, RULE_ID, "warning", "diazepam")
    (action,) = actions_of(card)
    assert action.type == "update"
    assert action.resource["status"] == "stopped"
    assert {k: v for k, v in action.resource.items() if k != "status"} == {
        k: v for k, v in active.items() if k != "status"
    }
    fhir.validate(action.resource)


def test_patient_view_ignores_stopped_benzodiazepines(b1):
    stopped = fhir.medication_request(DIAZEPAM_10, id="m1", status="stopped", authored=fhir.day(10))
    assert evaluate(b1, "patient-view", [fhir.patient(), stroke(), stopped]) == []


# Through the service ------------------------------------------------------------------------


def test_order_sign_answers_a_warning_with_a_delete_action(call):
    request = hook_request(
        "order-sign",
        [fhir.patient(), stroke()],
        [fhir.medication_request(DIAZEPAM_10, id="benzo-1")],
    )
    response = call("legcramp-order-sign", request)
    (card,) = cards_by_rule(response.get_json())[RULE_ID]
    assert card["indicator"] == "warning" and len(card["summary"]) < 140
    assert card["selectionBehavior"] == "at-most-one"
    (action,) = card["suggestions"][0]["actions"]
    assert action == {
        "type": "delete",
        "description": action["description"],
        "resourceId": "MedicationRequest/benzo-1",
    }


def test_order_select_with_old_stroke_answers_no_b1_card(call):
    request = hook_request(
        "order-select",
        [fhir.patient(), stroke(days_ago=365)],
        [fhir.medication_request(DIAZEPAM_10, id="benzo-1")],
    )
    response = call("legcramp-order-select", request)
    assert RULE_ID not in cards_by_rule(response.get_json())


def test_patient_view_answers_a_stop_suggestion_that_is_valid_fhir(call):
    active = fhir.active_order(fhir.concept(text="Valium 5 mg"), id="m1", days_ago=3)
    response = call(
        "legcramp-patient-view",
        hook_request("patient-view", [fhir.patient(), stroke(days_ago=None), active]),
    )
    (card,) = cards_by_rule(response.get_json())[RULE_ID]
    check_json_actions(card)
    (action,) = card["suggestions"][0]["actions"]
    assert action["type"] == "update" and action["resource"]["status"] == "stopped"
