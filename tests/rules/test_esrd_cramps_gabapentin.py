"""S1 esrd-cramps-gabapentin: restless legs with end-stage renal disease or on dialysis
(gabapentin, dosed to kidney function), and leg cramps on dialysis (the dialysis measures, no
drug switch: gabapentin is the guidance's option for restless legs, not for cramps)."""

from __future__ import annotations

import pytest

from cds_service.kit.terminology import ValueSet
from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.concepts import ACETAMINOPHEN, CRAMP, GABAPENTIN, RLS
from tests.support.fhir import ICD10CM, RX, SNOMED
from tests.support.guidance import BACLOFEN_10, FALLBACK, check_guidance, cond, esrd_rule
from tests.support.rules import either_not_counting, evaluate, one_not_counting, sign, view

S1 = "esrd-cramps-gabapentin"
ESRD = fhir.concept(SNOMED, "46177005", "End-stage renal disease")
ON_DIALYSIS = fhir.concept(
    SNOMED, "428982002", "Dependence on hemodialysis due to end stage renal disease"
)
HISTORY_OF_DIALYSIS = fhir.concept(SNOMED, "161693006", "History of renal dialysis")
PREGABALIN = fhir.concept(RX, "483440", "pregabalin 150 MG Oral Capsule")


def test_esrd_with_restless_legs_names_gabapentin_renally_dosed_and_cites_aasm(s1):
    card = only_card(view(s1, cond(ESRD, "esrd", onset=fhir.day(400)), cond(RLS, "rls")))
    check_card(card, S1, "info", "ESRD", "restless legs", "gabapentin", "renally")
    check_guidance(card, S1)
    assert fhir.date_of(400) in card.detail
    assert "kidney function" in card.detail and "AASM 2024" in card.detail
    assert "midodrine" not in card.detail  # not on dialysis, no cramps
    assert card.source.url == "https://pubmed.ncbi.nlm.nih.gov/39324694/"
    assert card.suggestions == ()
    assert card.identity == "esrd-cramps:Condition/esrd,Condition/rls"


def test_leg_cramps_with_esrd_not_on_dialysis_get_no_gabapentin_card(s1):
    """The clinical review's finding: S1 carried gabapentin, named for restless legs in ESRD,
    over to leg cramps. The guidance names no drug for cramps in ESRD: quiet."""
    assert view(s1, cond(ESRD, "esrd"), cond(CRAMP, "cramps")) == []
    assert sign(s1, [cond(ESRD, "esrd"), cond(CRAMP, "cramps")],
                fhir.medication_request(BACLOFEN_10)) == []


@pytest.mark.parametrize(
    "kidney",
    [
        ON_DIALYSIS,
        fhir.concept(ICD10CM, "Z99.2", "Dependence on renal dialysis"),
        fhir.concept(SNOMED, "236435004", "End stage renal failure on dialysis"),
    ],
    ids=["snomed-dependence", "icd-z99.2", "esrd-on-dialysis"],
)
def test_cramps_on_dialysis_get_the_dialysis_measures_and_no_drug_switch(s1, kidney):
    card = only_card(view(s1, cond(kidney, "dial"), cond(CRAMP, "cramps")))
    check_guidance(card, S1, "on dialysis", "leg cramps", "dialysis settings", "dry weight")
    for words in ("sodium profiling", "dialysate", "midodrine", "dry weight"):
        assert words in card.detail
    assert "gabapentin" not in card.detail.lower()
    assert card.source.url.startswith("https://kidneyfoundation.cachefly.net/")


def test_history_of_dialysis_is_not_dialysis(s1):
    assert view(s1, cond(HISTORY_OF_DIALYSIS, "hx"), cond(CRAMP, "cramps")) == []


def test_history_of_dialysis_stays_quiet_even_if_a_value_set_matched_it_by_name(s1):
    loose = dict(FALLBACK["dialysis"], text_terms=["dialysis", "renal dialysis"])
    a_rule = esrd_rule(dialysis=ValueSet.from_document(loose))
    assert a_rule.dialysis.match(fhir.validate(cond(HISTORY_OF_DIALYSIS, "hx")).code)
    assert view(a_rule, cond(HISTORY_OF_DIALYSIS, "hx"), cond(CRAMP, "cramps")) == []
    by_text = cond(fhir.concept(text="History of hemodialysis"), "hx2")
    assert view(a_rule, by_text, cond(CRAMP, "cramps")) == []


def test_history_of_dialysis_beside_real_esrd_still_fires_but_not_as_dialysis(s1):
    card = only_card(
        view(s1, cond(HISTORY_OF_DIALYSIS, "hx"), cond(ESRD, "esrd"), cond(RLS, "rls"),
             cond(CRAMP, "cramps"))
    )
    assert card.summary.startswith("ESRD") and "midodrine" not in card.detail
    assert "History of renal dialysis" not in card.detail
    assert f"**End-stage renal disease** (onset {fhir.date_of(30)})" in card.detail
    assert "leg cramps" not in card.summary  # cramps without dialysis are not S1's


def test_esrd_with_restless_legs_names_alpha2delta_ligands_but_no_dialysis_measures(s1):
    card = only_card(view(s1, cond(ON_DIALYSIS, "dial"), cond(RLS, "rls")))
    check_guidance(card, S1, "restless legs", "gabapentin")
    assert "alpha-2-delta" in card.detail
    assert f"with **Restless legs** (onset {fhir.date_of(30)})" in card.detail
    assert "Condition/" not in card.detail
    assert "midodrine" not in card.detail  # the dialysis measures are for cramps


@either_not_counting("kidney", "symptom", "resolved", "inactive", "refuted", "entered-in-error")
def test_s1_conditions_that_do_not_count_keep_it_quiet(s1, status, which):
    chart = one_not_counting(which, status, kidney=(ESRD, "esrd"), symptom=(RLS, "rls"))
    assert view(s1, *chart) == []


def test_s1_needs_both_a_kidney_condition_and_a_symptom(s1):
    assert view(s1, cond(ESRD, "esrd")) == []
    assert view(s1, cond(RLS, "rls")) == []
    assert (
        view(s1, cond(fhir.concept(ICD10CM, "N18.3", "CKD stage 3"), "ckd"), cond(RLS, "r")) == []
    )


def test_s1_icd_coded_esrd_and_unstated_status_count(s1):
    chart = (cond(fhir.concept(ICD10CM, "N18.6", "ESRD"), "esrd", clinical=None), cond(RLS, "r"))
    check_guidance(only_card(view(s1, *chart)), S1, "ESRD")


def test_gabapentin_being_ordered_says_the_dose_must_be_renally_adjusted(s1):
    chart = [cond(ESRD, "esrd"), cond(RLS, "rls")]
    card = only_card(sign(s1, chart, fhir.medication_request(GABAPENTIN, id="gaba")))
    check_guidance(card, S1, "gabapentin ordered", "adjusted to kidney function")
    assert (
        f"Being ordered: **gabapentin 300 MG Oral Capsule** (draft, ordered {fhir.date_of(0)})"
        in card.detail
    )
    assert "MedicationRequest/" not in card.detail and "310431" not in card.detail
    assert "dose-already-adjusted" in {r.code for r in card.override_reasons}
    assert card.identity.endswith("|MedicationRequest/gaba")


def test_active_pregabalin_on_patient_view_says_the_dose_must_be_renally_adjusted(s1):
    active = fhir.medication_request(
        PREGABALIN, id="pgb", status="active", authored=fhir.date_of(60)
    )
    card = only_card(view(s1, cond(ESRD, "esrd"), cond(RLS, "rls"), active))
    check_guidance(card, S1, "pregabalin active", "kidney function")
    assert (
        f"Active: **pregabalin 150 MG Oral Capsule** (active, authored {fhir.date_of(60)})"
        in card.detail
    )
    assert "MedicationRequest/" not in card.detail and "483440" not in card.detail


def test_active_gabapentin_is_named_when_a_cramp_treatment_is_ordered_on_dialysis(s1):
    active = fhir.medication_request(GABAPENTIN, id="gaba", status="active")
    chart = [cond(ON_DIALYSIS, "dial"), cond(CRAMP, "cramps"), active]
    card = only_card(sign(s1, chart, fhir.medication_request(BACLOFEN_10, id="bac")))
    assert "gabapentin active" in card.summary and "Active:" in card.detail


def test_s1_on_order_hooks_speaks_only_about_the_order_in_hand(s1):
    """Restless legs guidance with an RLS drug ordered; dialysis cramp guidance with a cramp
    treatment ordered; nothing with an unrelated order."""
    rls_chart = [cond(ESRD, "esrd"), cond(RLS, "rls")]
    assert sign(s1, rls_chart, fhir.medication_request(ACETAMINOPHEN)) == []
    assert sign(s1, rls_chart, fhir.medication_request(BACLOFEN_10)) == []  # not an RLS drug
    assert len(sign(s1, rls_chart, fhir.medication_request(
        fhir.concept(text="Horizant 600 mg")))) == 1
    contained = fhir.with_contained_medication(fhir.medication_request(PREGABALIN))
    assert len(sign(s1, rls_chart, contained)) == 1
    drafts = fhir.drafts(g=GABAPENTIN, a=ACETAMINOPHEN)
    full = [fhir.patient(), *rls_chart]
    assert evaluate(s1, "order-select", full, drafts, ["MedicationRequest/a"]) == []
    assert len(evaluate(s1, "order-select", full, drafts, ["MedicationRequest/g"])) == 1
    cramp_chart = [cond(ON_DIALYSIS, "dial"), cond(CRAMP, "cramps")]
    assert sign(s1, cramp_chart, fhir.medication_request(ACETAMINOPHEN)) == []
    assert len(sign(s1, cramp_chart, fhir.medication_request(BACLOFEN_10))) == 1
    both = [cond(ON_DIALYSIS, "dial"), cond(CRAMP, "cramps"), cond(RLS, "rls")]
    [card] = sign(s1, both, fhir.medication_request(BACLOFEN_10))
    assert "restless legs" not in card.summary  # a cramp treatment: the cramp part only


def test_s1_longest_summary_stays_under_140_characters(s1):
    chart = [cond(ON_DIALYSIS, "d"), cond(RLS, "r"), cond(CRAMP, "c")]
    ordered = fhir.medication_request(fhir.concept(text="gabapentin enacarbil 600 MG ER tablet"))
    card = only_card(view(s1, *chart))
    assert len(card.summary) < 140, card.summary
    assert "restless legs and leg cramps" in card.summary
    card = only_card(sign(s1, chart, ordered))  # an RLS drug: the restless legs part
    assert len(card.summary) < 140, card.summary
    assert "restless legs" in card.summary and "gabapentin enacarbil ordered" in card.summary


def test_s1_identity_is_stable_for_the_same_finding(s1):
    chart = (cond(ESRD, "esrd"), cond(RLS, "rls"))
    first, again = only_card(view(s1, *chart)), only_card(view(s1, *reversed(chart)))
    assert first.identity == again.identity
