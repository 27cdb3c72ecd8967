"""C4 cyclobenzaprine-older-adult: cyclobenzaprine for a patient aged 65 or over (AGS Beers
Criteria 2023: avoid skeletal muscle relaxants in older adults).

Every test is evaluated as of AS_OF (2026-11-21); the default chart patient (born 1950-05-01) is
76. Another age is given by a Patient of its own at the head of the chart (the request's first
Patient wins when two share an id).
"""

from __future__ import annotations

from typing import Any

import pytest

from hooks.rules.sources import BEERS_2023
from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.cyclobenzaprine import FLEXERIL, INGREDIENT, METHOCARBAMOL, TABLET_10
from tests.support.fhir import RX
from tests.support.rules import declared_defaults, evaluate, rule, sign, view

C4 = "cyclobenzaprine-older-adult"
ER_15 = fhir.concept(
    RX, "828358", "24 HR cyclobenzaprine hydrochloride 15 MG Extended Release Oral Capsule"
)
ER_30 = fhir.concept(
    RX, "828353", "24 HR cyclobenzaprine hydrochloride 30 MG Extended Release Oral Capsule"
)
ER_SENTENCE = "The extended-release product is not recommended in the elderly"


@pytest.fixture(scope="module")
def c4() -> Any:
    return rule(C4)


def aged(birth_date: str | None) -> dict[str, Any]:
    """The chart's patient with `birth_date` (None: no birth date at all)."""
    found = fhir.patient()
    if birth_date is None:
        del found["birthDate"]
    else:
        found["birthDate"] = birth_date
    return found


def on_sign(c4: Any, birth_date: str | None, *drafts: dict[str, Any], **settings: Any) -> list:
    return evaluate(c4, "order-sign", [aged(birth_date)], list(drafts), **settings)


def draft(medication: dict[str, Any] = TABLET_10, id: str = "d1") -> dict[str, Any]:
    return fhir.medication_request(medication, id=id)


# Fires ------------------------------------------------------------------------------------------


def test_cyclobenzaprine_at_76_gets_a_beers_warning(c4):
    card = only_card(sign(c4, [], draft()))
    check_card(card, C4, "warning", "cyclobenzaprine", "76", "Beers")
    assert card.summary.startswith("Cyclobenzaprine at age 76")
    assert (card.source.label, card.source.url) == (BEERS_2023.label, BEERS_2023.url)
    assert "2023" in card.source.label and "Beers" in card.source.label
    assert {r.code for r in card.override_reasons} == {
        "benefit-outweighs-risk",
        "short-course-under-review",
    }
    assert (
        f"**cyclobenzaprine hydrochloride 10 MG Oral Tablet** (draft, ordered {fhir.date_of(0)}), "
        "for a patient aged **76**" in card.detail
    )
    assert "5 mg" in card.detail and "falls" in card.detail
    assert "MedicationRequest/" not in card.detail and "828348" not in card.detail
    assert card.identity == "MedicationRequest/d1"
    assert card.repeat_quietly is False
    assert card.suggestions == ()


@pytest.mark.parametrize(
    "birth_date, age",
    [("1961-11-21", 65), ("1941-01-01", 85), ("1920-11-20", 106)],
    ids=["65th-birthday-today", "85", "106"],
)
def test_fires_from_the_65th_birthday_and_names_the_age(c4, birth_date, age):
    card = only_card(on_sign(c4, birth_date, draft()))
    assert f"at age {age}" in card.summary
    assert f"aged **{age}**" in card.detail


@pytest.mark.parametrize(
    "birth_date",
    ["1961-11-22", "1962-01-01", "1990-06-15", "2010-11-21"],
    ids=["65th-birthday-tomorrow", "64", "36", "16"],
)
def test_quiet_under_65(c4, birth_date):
    assert on_sign(c4, birth_date, draft()) == []


def test_the_day_before_the_65th_birthday_is_quiet_and_the_birthday_fires(c4):
    """Born 1961-11-22: 64 on AS_OF (2026-11-21). Born 1961-11-21: 65 today."""
    assert on_sign(c4, "1961-11-22", draft()) == []
    assert len(on_sign(c4, "1961-11-21", draft())) == 1


def test_quiet_without_a_birth_date(c4):
    """Age unknown: the rule does not guess."""
    assert on_sign(c4, None, draft()) == []


@pytest.mark.parametrize(
    "medication",
    [
        INGREDIENT,
        FLEXERIL,
        fhir.concept(RX, "828320", "cyclobenzaprine hydrochloride 5 MG Oral Tablet"),
        ER_15,
    ],
    ids=["ingredient", "flexeril-text", "5mg-tablet", "er-15"],
)
def test_any_cyclobenzaprine_product_fires(c4, medication):
    card = only_card(sign(c4, [], draft(medication)))
    assert card.indicator == "warning" and "76" in card.summary


@pytest.mark.parametrize(
    "medication",
    [ER_30, ER_15, fhir.concept(text="Amrix 15 mg capsule once daily"), fhir.concept(RX, "828353")],
    ids=["er-30", "er-15", "amrix-text", "er-code-only"],
)
def test_extended_release_product_adds_the_not_recommended_in_the_elderly_advice(c4, medication):
    card = only_card(sign(c4, [], draft(medication)))
    assert ER_SENTENCE in card.detail


@pytest.mark.parametrize(
    "medication", [TABLET_10, INGREDIENT, FLEXERIL], ids=["10mg-tablet", "ingredient", "flexeril"]
)
def test_immediate_release_has_no_extended_release_advice(c4, medication):
    card = only_card(sign(c4, [], draft(medication)))
    assert ER_SENTENCE not in card.detail
    assert "extended-release" not in card.detail.lower()


def test_order_select_fires_on_the_selected_order_only(c4):
    drafts = fhir.drafts(d1=TABLET_10, d2=ER_30)
    chart = [fhir.patient()]
    card = only_card(
        evaluate(c4, "order-select", chart, drafts, selections=["MedicationRequest/d2"])
    )
    assert card.identity == "MedicationRequest/d2"
    assert card.repeat_quietly is False
    assert ER_SENTENCE in card.detail


def test_one_card_per_cyclobenzaprine_order(c4):
    drafts = fhir.drafts(d1=TABLET_10, d2=METHOCARBAMOL, d3=FLEXERIL)
    cards = evaluate(c4, "order-sign", [fhir.patient()], drafts)
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d3"]


# Patient-view -------------------------------------------------------------------------------


def test_patient_view_fires_on_active_cyclobenzaprine_and_repeats_quietly(c4):
    active = fhir.active_order(TABLET_10, id="m1", days_ago=5)
    card = only_card(view(c4, active))
    check_card(card, C4, "warning", "76")
    assert card.identity == "MedicationRequest/m1"
    assert card.repeat_quietly is True
    assert f"(active, authored {fhir.date_of(5)})" in card.detail


def test_patient_view_ignores_ended_cyclobenzaprine(c4):
    stopped = fhir.medication_request(TABLET_10, id="m1", status="stopped", authored=fhir.day(60))
    completed = fhir.medication_request(
        TABLET_10, id="m2", status="completed", authored=fhir.day(90)
    )
    assert view(c4, stopped, completed) == []


def test_patient_view_quiet_under_65(c4):
    active = fhir.active_order(TABLET_10, id="m1", days_ago=5)
    assert evaluate(c4, "patient-view", [aged("1970-03-03"), active]) == []


# Settings --------------------------------------------------------------------------------------


def test_older_adult_age_is_a_setting(c4):
    assert declared_defaults(c4) == {"older_adult_age": 65}
    # 66 is under a threshold of 70 ...
    assert on_sign(c4, "1960-06-01", draft(), older_adult_age=70) == []
    assert len(on_sign(c4, "1960-06-01", draft())) == 1
    # ... and 62 is over a threshold of 60.
    assert on_sign(c4, "1964-06-01", draft()) == []
    card = only_card(on_sign(c4, "1964-06-01", draft(), older_adult_age=60))
    assert "at age 62" in card.summary


# Other drugs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "medication",
    [
        METHOCARBAMOL,
        fhir.concept(RX, "1292", "baclofen"),
        fhir.concept(RX, "856834", "Amitriptyline Hydrochloride 25 MG Oral Tablet"),
        fhir.concept(text="acetaminophen 500 mg tablet"),
    ],
    ids=["methocarbamol", "baclofen", "amitriptyline", "acetaminophen"],
)
def test_other_drugs_are_quiet_at_any_age(c4, medication):
    assert on_sign(c4, "1930-01-01", draft(medication)) == []


def test_catalog_entry(c4):
    assert c4.catalog_code == "C4" and c4.indicator == "warning"
    assert BEERS_2023 in c4.references
