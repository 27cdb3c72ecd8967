"""P1 pad-claudication-exercise: leg cramping with peripheral artery disease; supervised
exercise therapy, drafted as a referral."""

from __future__ import annotations

import pytest

from tests.support import fhir
from tests.support.cards import actions_of, only_card
from tests.support.concepts import ACETAMINOPHEN, CRAMP, RLS
from tests.support.fhir import ICD10CM, SNOMED, UCUM
from tests.support.guidance import check_guidance, cond
from tests.support.rules import either_not_counting, one_not_counting, sign, view

P1 = "pad-claudication-exercise"
PAD = fhir.concept(SNOMED, "399957001", "Peripheral arterial occlusive disease")
CLAUDICATION = fhir.concept(SNOMED, "63491006", "Intermittent claudication")


def test_pad_with_leg_cramps_suggests_supervised_exercise_therapy(p1):
    card = only_card(view(p1, cond(PAD, "pad", onset=fhir.day(200)), cond(CRAMP, "cramps")))
    check_guidance(card, P1, "PAD", "supervised exercise", "class I", "level A")
    assert f"**Peripheral arterial occlusive disease** (onset {fhir.date_of(200)})" in card.detail
    assert f"with **Cramp in lower leg** (onset {fhir.date_of(30)})" in card.detail
    assert "Condition/" not in card.detail and "399957001" not in card.detail
    assert "3 sessions a week" in card.detail and "3 months" in card.detail
    (suggestion,) = card.suggestions
    assert suggestion.is_recommended is True
    (action,) = suggestion.actions
    assert action.type == "create"
    request = action.resource
    model = fhir.validate(request)
    assert model.get_resource_type() == "ServiceRequest"
    assert (request["status"], request["intent"]) == ("draft", "order")
    assert request["subject"] == {"reference": "Patient/pt-1"}
    assert request["reasonReference"] == [{"reference": "Condition/pad"}]
    assert request["code"]["text"] == (
        "Supervised exercise therapy for claudication (about 12 weeks, 3 sessions a week)"
    )
    assert request["code"]["coding"] == [
        {"system": SNOMED, "code": "229065009", "display": "Exercise therapy"}
    ]
    repeat = request["occurrenceTiming"]["repeat"]
    assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (3, 1, "wk")
    assert repeat["boundsDuration"] == {"value": 12, "unit": "weeks", "system": UCUM, "code": "wk"}


def test_pad_without_cramps_is_quiet(p1):
    assert view(p1, cond(PAD, "pad")) == []
    assert view(p1, cond(PAD, "pad"), cond(RLS, "rls")) == []


@pytest.mark.parametrize(
    "claudication",
    [
        CLAUDICATION,
        fhir.concept(ICD10CM, "I70.211", "Atherosclerosis of native arteries of extremities with "
                "intermittent claudication, right leg"),
    ],
    ids=["snomed", "icd-display"],
)
def test_a_recorded_claudication_is_the_leg_cramping(p1, claudication):
    card = only_card(view(p1, cond(claudication, "claud")))
    check_guidance(card, P1, "PAD")
    assert actions_of(card)[0].resource["reasonReference"] == [{"reference": "Condition/claud"}]


def test_referral_reason_is_the_arterial_disease_when_both_are_recorded(p1):
    card = only_card(view(p1, cond(CLAUDICATION, "claud"), cond(PAD, "pad")))
    assert actions_of(card)[0].resource["reasonReference"] == [{"reference": "Condition/pad"}]


def test_referral_without_a_condition_id_has_no_reason_reference(p1):
    pad = cond(PAD, "pad")
    del pad["id"]
    card = only_card(view(p1, pad, cond(CRAMP, "cramps")))
    request = actions_of(card)[0].resource
    assert "reasonReference" not in request
    fhir.validate(request)


@either_not_counting("pad", "cramps", "resolved", "inactive", "entered-in-error")
def test_p1_conditions_that_do_not_count_keep_it_quiet(p1, status, which):
    chart = one_not_counting(which, status, pad=(PAD, "pad"), cramps=(CRAMP, "cramps"))
    assert view(p1, *chart) == []


def test_p1_runs_on_order_hooks_only_while_an_rls_or_cramp_drug_is_ordered(p1):
    chart = [cond(PAD, "pad"), cond(CRAMP, "cramps")]
    assert sign(p1, chart, fhir.medication_request(ACETAMINOPHEN)) == []
    assert (
        len(sign(p1, chart, fhir.medication_request(fhir.concept(text="quinine sulfate 324 mg"))))
        == 1
    )
