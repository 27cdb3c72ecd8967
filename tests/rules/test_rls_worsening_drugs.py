"""A2 rls-worsening-drugs: a sedating antihistamine or a serotonergic antidepressant for a patient
with restless legs, which it can make worse (AASM 2024); bupropion is the antidepressant that did
not worsen restless legs in a trial (Bayard 2011). Dopamine blockers, promethazine included, are
A1's (rls-dopamine-antagonist)."""

from __future__ import annotations

from typing import Any

import pytest

from hooks import data
from hooks.rules.sources import AASM_RLS_2024, BUPROPION_RLS_2011
from hooks.valuesets import documents
from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.fhir import RX
from tests.support.rls_drugs import rls
from tests.support.rules import declared_defaults, evaluate, not_counting, rule, sign, view

A2 = "rls-worsening-drugs"

DIPHENHYDRAMINE_25 = fhir.concept(RX, "1049909", "Diphenhydramine Hydrochloride 25 MG Oral Capsule")
HYDROXYZINE_25 = fhir.concept(RX, "995258", "Hydroxyzine Hydrochloride 25 MG Oral Tablet")
SERTRALINE_50 = fhir.concept(RX, "312941", "Sertraline 50 MG Oral Tablet")
AMITRIPTYLINE_25 = fhir.concept(RX, "856834", "Amitriptyline Hydrochloride 25 MG Oral Tablet")
MIRTAZAPINE_15 = fhir.concept(RX, "311725", "Mirtazapine 15 MG Oral Tablet")
DULOXETINE_30 = fhir.concept(RX, "596930", "duloxetine 30 MG Delayed Release Oral Capsule")
BUPROPION_100 = fhir.concept(RX, "993687", "Bupropion Hydrochloride 100 MG Oral Tablet")
LORATADINE_10 = fhir.concept(RX, "311372", "Loratadine 10 MG Oral Tablet")
CETIRIZINE_10 = fhir.concept(RX, "1014678", "cetirizine hydrochloride 10 MG Oral Tablet")
PROMETHAZINE_25 = fhir.concept(RX, "992447", "Promethazine Hydrochloride 25 MG Oral Tablet")
TOPICAL_DIPHENHYDRAMINE = fhir.concept(text="diphenhydramine hydrochloride 2% topical cream")


@pytest.fixture(scope="module")
def a2() -> Any:
    return rule(A2)


@pytest.fixture(scope="module")
def a1_wired() -> Any:
    return rule("rls-dopamine-antagonist")


def draft(medication: dict[str, Any], id: str = "d1") -> dict[str, Any]:
    return fhir.medication_request(medication, id=id)


# Sedating antihistamines -------------------------------------------------------------------------


def test_diphenhydramine_with_rls_gets_an_info_card_citing_aasm(a2):
    card = only_card(sign(a2, [rls()], draft(DIPHENHYDRAMINE_25)))
    check_card(card, A2, "info", "Diphenhydramine", "sedating antihistamine", "restless legs")
    assert card.summary.startswith(
        "Diphenhydramine Hydrochloride 25 MG Oral Capsule is a sedating antihistamine"
    )
    assert (card.source.label, card.source.url) == (AASM_RLS_2024.label, AASM_RLS_2024.url)
    assert (
        f"**Diphenhydramine Hydrochloride 25 MG Oral Capsule** (draft, ordered "
        f"{fhir.date_of(0)}), while the patient has restless legs" in card.detail
    )
    assert f"- **Restless legs** (onset {fhir.date_of(400)})" in card.detail
    assert "AASM 2024" in card.detail
    assert "bupropion" not in card.detail.lower()
    assert "MedicationRequest/" not in card.detail and "1049909" not in card.detail
    assert card.identity == "MedicationRequest/d1" and card.repeat_quietly is False
    assert card.suggestions == ()
    assert {r.code for r in card.override_reasons} == {
        "needed-reviewed",
        "no-suitable-alternative",
        "specialist-directed",
    }


@pytest.mark.parametrize(
    "medication, name",
    [
        (HYDROXYZINE_25, "Hydroxyzine"),
        (fhir.concept(RX, "3498", "diphenhydramine"), "diphenhydramine"),
        (fhir.concept(text="Benadryl 25 mg at night"), "Benadryl"),
        (fhir.concept(text="meclizine 25 mg tablet"), "meclizine"),
        (fhir.concept(text="chlorpheniramine 4 mg"), "chlorpheniramine"),
    ],
    ids=[
        "hydroxyzine-product",
        "diphenhydramine-ingredient",
        "benadryl-text",
        "meclizine-text",
        "chlorpheniramine-text",
    ],
)
def test_other_sedating_antihistamines_fire(a2, medication, name):
    card = only_card(sign(a2, [rls()], draft(medication)))
    assert name in card.summary
    assert "sedating antihistamine" in card.summary
    assert card.source.url == AASM_RLS_2024.url


@pytest.mark.parametrize(
    "medication",
    [LORATADINE_10, CETIRIZINE_10, fhir.concept(text="fexofenadine 180 mg tablet")],
    ids=["loratadine", "cetirizine", "fexofenadine-text"],
)
def test_non_sedating_antihistamines_are_quiet(a2, medication):
    assert sign(a2, [rls()], draft(medication)) == []


def test_topical_diphenhydramine_is_quiet(a2):
    """The value set holds no topical product and puts 'topical' names out of its scope (a
    skin cream does not act on restless legs); the oral product still fires."""
    document = documents()["sedating-antihistamines"]
    assert "topical" in document["out_of_scope_words"]
    assert not any("topical" in (c.get("display") or "").lower() for c in document["codes"])
    assert sign(a2, [rls()], draft(TOPICAL_DIPHENHYDRAMINE)) == []
    assert len(sign(a2, [rls()], draft(fhir.concept(text="diphenhydramine 25 mg capsule")))) == 1


def test_promethazine_is_left_to_a1(a2, a1_wired):
    """Promethazine blocks dopamine: A1 gives the card, A2 stays quiet (one card, not two)."""
    assert sign(a2, [rls()], draft(PROMETHAZINE_25)) == []
    assert sign(a2, [rls()], draft(fhir.concept(text="promethazine 25 mg tablet"))) == []
    card = only_card(sign(a1_wired, [rls()], draft(PROMETHAZINE_25)))
    assert card.source.topic.code == "rls-dopamine-antagonist"


# Serotonergic antidepressants -------------------------------------------------------------------


@pytest.mark.parametrize(
    "medication, name",
    [
        (SERTRALINE_50, "Sertraline 50 MG Oral Tablet"),
        (AMITRIPTYLINE_25, "Amitriptyline Hydrochloride 25 MG Oral Tablet"),
        (MIRTAZAPINE_15, "Mirtazapine 15 MG Oral Tablet"),
        (DULOXETINE_30, "duloxetine 30 MG Delayed Release Oral Capsule"),
    ],
    ids=["sertraline", "amitriptyline", "mirtazapine", "duloxetine"],
)
def test_serotonergic_antidepressant_names_bupropion_and_cites_bayard(a2, medication, name):
    card = only_card(sign(a2, [rls()], draft(medication)))
    check_card(card, A2, "info", "serotonergic antidepressant", "restless legs")
    assert (
        card.summary == f"{name} is a serotonergic antidepressant and may worsen the "
        "patient's restless legs"
    )
    assert (card.source.label, card.source.url) == (
        BUPROPION_RLS_2011.label,
        BUPROPION_RLS_2011.url,
    )
    assert "Bayard" in card.source.label and "2011" in card.source.label
    assert "bupropion" in card.detail and "Bayard 2011" in card.detail
    assert "**Consider:** if an antidepressant is needed, whether bupropion" in card.detail
    assert "do not stop an antidepressant abruptly" in card.detail
    assert f"**{name}** (draft, ordered {fhir.date_of(0)})" in card.detail


@pytest.mark.parametrize(
    "medication",
    [
        BUPROPION_100,
        fhir.concept(RX, "42347", "bupropion"),
        fhir.concept(text="Wellbutrin XL 150 mg"),
    ],
    ids=["bupropion-product", "bupropion-ingredient", "wellbutrin-text"],
)
def test_bupropion_is_quiet(a2, medication):
    assert sign(a2, [rls()], draft(medication)) == []


# Restless legs ---------------------------------------------------------------------------------


def test_quiet_without_restless_legs(a2):
    for medication in (DIPHENHYDRAMINE_25, SERTRALINE_50):
        assert sign(a2, [], draft(medication)) == []
    other = fhir.condition(fhir.concept(fhir.SNOMED, "38341003", "Hypertensive disorder"))
    assert sign(a2, [other], draft(SERTRALINE_50)) == []


@not_counting("resolved", "inactive", "remission", "refuted", "entered-in-error")
def test_quiet_when_restless_legs_does_not_count(a2, status):
    assert sign(a2, [rls(**status)], draft(SERTRALINE_50)) == []
    assert sign(a2, [rls(**status)], draft(DIPHENHYDRAMINE_25)) == []


@pytest.mark.parametrize(
    "code",
    [
        fhir.concept(fhir.ICD10CM, "G25.81", "Restless legs syndrome"),
        fhir.concept(fhir.SNOMED, "1052284009", "Restless leg syndrome in pregnancy (disorder)"),
        fhir.concept(text="Willis-Ekbom disease"),
    ],
    ids=["icd-G25.81", "rls-in-pregnancy", "willis-ekbom-text"],
)
def test_restless_legs_by_other_codes(a2, code):
    found = fhir.condition(code, id="rls-2", onset=fhir.day(100))
    card = only_card(sign(a2, [found], draft(SERTRALINE_50)))
    label = code["coding"][0]["display"] if "coding" in code else code["text"]
    assert f"- **{label}** (onset {fhir.date_of(100)})" in card.detail


def test_periodic_limb_movement_disorder_is_not_restless_legs(a2):
    plmd = fhir.condition(
        fhir.concept(fhir.SNOMED, "418763003", "Periodic limb movement disorder"), id="plmd"
    )
    assert sign(a2, [plmd], draft(SERTRALINE_50)) == []


# Hooks ------------------------------------------------------------------------------------------


def test_one_card_per_order_each_with_its_own_reason(a2):
    drafts = fhir.drafts(d1=SERTRALINE_50, d2=HYDROXYZINE_25, d3=BUPROPION_100)
    cards = {c.identity: c for c in sign(a2, [rls()], *drafts)}
    assert sorted(cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]
    assert cards["MedicationRequest/d1"].source.url == BUPROPION_RLS_2011.url
    assert cards["MedicationRequest/d2"].source.url == AASM_RLS_2024.url


def test_order_select_cards_only_the_selected_order(a2):
    drafts = fhir.drafts(d1=SERTRALINE_50, d2=HYDROXYZINE_25)
    card = only_card(
        evaluate(
            a2, "order-select", [fhir.patient(), rls()], drafts, selections=["MedicationRequest/d2"]
        )
    )
    assert card.identity == "MedicationRequest/d2"


def test_patient_view_active_sertraline_repeats_quietly(a2):
    active = fhir.active_order(SERTRALINE_50, id="m1", days_ago=21)
    card = only_card(view(a2, rls(), active))
    check_card(card, A2, "info", "Sertraline", "serotonergic antidepressant")
    assert card.repeat_quietly is True
    assert card.identity == "MedicationRequest/m1"
    assert f"**Sertraline 50 MG Oral Tablet** (active, authored {fhir.date_of(21)})" in (
        card.detail
    )
    assert "bupropion" in card.detail


def test_patient_view_ignores_stopped_orders(a2):
    stopped = fhir.medication_request(
        SERTRALINE_50, id="m1", status="stopped", authored=fhir.day(90)
    )
    assert view(a2, rls(), stopped) == []


def test_reads_and_catalog_entry(a2):
    assert a2.reads("patient-view") == (data.ACTIVE_MEDICATIONS, data.CONDITIONS)
    assert a2.reads("order-sign") == (data.CONDITIONS,)
    assert declared_defaults(a2) == {}
    assert a2.catalog_code == "A2" and a2.indicator == "info"
    assert set(a2.references) == {AASM_RLS_2024, BUPROPION_RLS_2011}
