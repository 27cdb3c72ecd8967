"""L1 cirrhosis-cramps-baclofen: leg cramps with cirrhosis; electrolytes, albumin, and baclofen
on a weekly schedule up to its maximum."""

from __future__ import annotations

import pytest

from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.concepts import ACETAMINOPHEN, CRAMP, GABAPENTIN, RLS
from tests.support.fhir import ICD10CM, RX, SNOMED
from tests.support.guidance import BACLOFEN_10, SPASM, check_guidance, cond
from tests.support.rules import either_not_counting, evaluate, one_not_counting, sign, view

L1 = "cirrhosis-cramps-baclofen"
CIRRHOSIS = fhir.concept(SNOMED, "19943007", "Cirrhosis of liver")


def test_cirrhosis_with_cramps_gets_electrolytes_baclofen_schedule_and_albumin(l1):
    card = only_card(view(l1, cond(CIRRHOSIS, "liver", onset=fhir.day(700)), cond(CRAMP, "cramps")))
    check_card(card, L1, "info", "cirrhosis", "leg cramps", "electrolytes", "baclofen")
    check_guidance(card, L1, "10 mg/day", "30 mg/day")
    assert f"**Cirrhosis of liver** (onset {fhir.date_of(700)})" in card.detail
    assert "**Cramp in lower leg** (onset" in card.detail
    assert "Condition/" not in card.detail and "19943007" not in card.detail
    assert "20-40 g/week" in card.detail and "Elfert 2016" in card.detail
    assert "electrolytes" in card.detail
    assert "titration" not in card.detail.lower()  # only when baclofen is being ordered
    assert card.identity == "cirrhosis-cramps:Condition/cramps,Condition/liver"


def test_liver_disease_not_named_cirrhosis_is_called_chronic_liver_disease(l1):
    liver = cond(fhir.concept(SNOMED, "31712002", "Primary biliary cholangitis"), "pbc")
    card = only_card(view(l1, liver, cond(CRAMP, "cramps")))
    assert card.summary.startswith("Chronic liver disease with leg cramps")


def test_chronic_liver_disease_without_cirrhosis_is_not_in_the_value_set(l1):
    liver = cond(fhir.concept(SNOMED, "328383001", "Chronic liver disease"), "cld")
    assert view(l1, liver, cond(CRAMP, "cramps")) == []


def test_icd_coded_cirrhosis_counts(l1):
    liver = cond(fhir.concept(ICD10CM, "K74.60", "Unspecified cirrhosis of liver"), "k74")
    assert len(view(l1, liver, cond(SPASM, "spasm"))) == 1


def test_l1_needs_both_liver_disease_and_cramps(l1):
    assert view(l1, cond(CIRRHOSIS, "liver")) == []
    assert view(l1, cond(CRAMP, "cramps")) == []
    assert view(l1, cond(CIRRHOSIS, "liver"), cond(RLS, "rls")) == []


def test_baclofen_being_ordered_shows_the_weekly_titration(l1):
    chart = [cond(CIRRHOSIS, "liver"), cond(CRAMP, "cramps")]
    draft = fhir.medication_request(
        BACLOFEN_10, id="bac", dosageInstruction=[fhir.dosage(per_day=1)]
    )
    card = only_card(sign(l1, chart, draft))
    check_guidance(card, L1, "baclofen ordered", "start 10 mg/day", "at most 30 mg/day")
    assert "- week 1: 10 mg/day" in card.detail
    assert "- week 2: 20 mg/day" in card.detail
    assert "- week 3 onward: 30 mg/day at most" in card.detail
    assert f"Being ordered: **baclofen 10 MG Oral Tablet** (draft, ordered {fhir.date_of(0)})" in (
        card.detail
    )
    assert "10 mg/day ordered" in card.detail
    assert "MedicationRequest/" not in card.detail
    assert "above" not in card.detail


@pytest.mark.parametrize(
    "per_day, strength, expected",
    [
        (3, "10", "30 mg/day ordered"),
        (3, "20", "above the 30 mg/day maximum"),
        (2, "10", "above the 10 mg/day starting dose"),
    ],
)
def test_ordered_baclofen_daily_dose_is_compared_with_the_schedule(l1, per_day, strength, expected):
    chart = [cond(CIRRHOSIS, "liver"), cond(CRAMP, "cramps")]
    drug = fhir.concept(RX, "1292", "baclofen", text=f"baclofen {strength} MG Oral Tablet")
    draft = fhir.medication_request(
        drug, id="bac", dosageInstruction=[fhir.dosage(per_day=per_day)]
    )
    card = only_card(sign(l1, chart, draft))
    assert expected in card.detail


def test_baclofen_order_without_a_readable_dose_still_shows_the_titration(l1):
    chart = [cond(CIRRHOSIS, "liver"), cond(CRAMP, "cramps")]
    card = only_card(
        sign(l1, chart, fhir.medication_request(fhir.concept(text="Lioresal"), id="b"))
    )
    assert "could not be computed" in card.detail and "week 1: 10 mg/day" in card.detail


def test_active_baclofen_is_named_on_patient_view(l1):
    active = fhir.medication_request(
        BACLOFEN_10, id="bac", status="active", authored=fhir.date_of(20)
    )
    card = only_card(view(l1, cond(CIRRHOSIS, "liver"), cond(CRAMP, "cramps"), active))
    assert (
        f"Already active: **baclofen 10 MG Oral Tablet** (active, authored {fhir.date_of(20)})"
        in card.detail
    )
    assert "MedicationRequest/" not in card.detail
    assert "ordered" not in card.summary


def test_baclofen_schedule_is_configurable(l1):
    chart = [cond(CIRRHOSIS, "liver"), cond(CRAMP, "cramps")]
    draft = fhir.medication_request(BACLOFEN_10, dosageInstruction=[fhir.dosage(per_day=3)])
    cards = evaluate(
        l1, "order-sign", [fhir.patient(), *chart], [draft],
        baclofen_start_mg_per_day=5.0, baclofen_weekly_step_mg_per_day=5.0,
        baclofen_max_mg_per_day=20.0,
    )
    card = only_card(cards)
    assert "- week 4 onward: 20 mg/day at most" in card.detail
    assert "above the 20 mg/day maximum" in card.detail


def test_l1_runs_on_order_hooks_only_while_a_cramp_treatment_is_ordered(l1):
    """At order entry only cards about the order in hand: an RLS drug is not a cramp
    treatment."""
    chart = [cond(CIRRHOSIS, "liver"), cond(CRAMP, "cramps")]
    assert sign(l1, chart, fhir.medication_request(ACETAMINOPHEN)) == []
    assert sign(l1, chart, fhir.medication_request(GABAPENTIN)) == []
    quinine = fhir.medication_request(fhir.concept(text="quinine sulfate 324 mg"))
    card = only_card(sign(l1, chart, quinine))
    assert "baclofen ordered" not in card.summary


@either_not_counting("liver", "cramps", "resolved", "remission", "refuted")
def test_l1_conditions_that_do_not_count_keep_it_quiet(l1, status, which):
    chart = one_not_counting(which, status, liver=(CIRRHOSIS, "liver"), cramps=(CRAMP, "cramps"))
    assert view(l1, *chart) == []
