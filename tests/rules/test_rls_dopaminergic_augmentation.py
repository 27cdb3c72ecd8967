"""D1 rls-dopaminergic-augmentation: a dopaminergic drug for restless legs syndrome, where
guidance warns of augmentation on long-term use and prefers an alpha-2-delta ligand."""

from __future__ import annotations

from typing import Any

import pytest

from hooks import data
from hooks.valuesets import documents
from tests.conftest import AS_OF
from tests.support import fhir
from tests.support.cards import actions_of, check_card, only_card
from tests.support.fhir import ATC, ICD10CM, PATIENT_ID, RX, SNOMED
from tests.support.rls_drugs import ROPINIROLE_1, rls
from tests.support.rules import declared_defaults, evaluate, not_counting, sign

D1 = "rls-dopaminergic-augmentation"
PRAMIPEXOLE = fhir.concept(RX, "746741", "pramipexole")
RLS_CODE = fhir.concept(ICD10CM, "G25.81", "Restless legs syndrome")
PARKINSONS_CODE = fhir.concept(
    SNOMED, "49049000", "Parkinson's disease", text="Parkinson's disease"
)


def parkinsons(**extra: Any) -> dict[str, Any]:
    return fhir.condition(PARKINSONS_CODE, id="pd", onset=fhir.day(900), **extra)


# Firing ----------------------------------------------------------------------------------------


def test_ropinirole_product_with_active_rls_gets_one_warning(d1):
    card = only_card(sign(d1, [rls()], fhir.medication_request(ROPINIROLE_1)))
    check_card(card, D1, "warning", "ropinirole", "restless legs", "augmentation")
    assert f"**ropinirole 1 MG Oral Tablet** (draft, ordered {fhir.date_of(0)})" in card.detail
    assert f"- **Restless legs** (onset {fhir.date_of(400)})" in card.detail
    assert "MedicationRequest/" not in card.detail and "Condition/" not in card.detail
    assert "314208" not in card.detail
    assert "**Monitor:**" in card.detail and "earlier in the day" in card.detail
    assert "gabapentin" in card.detail and "pregabalin" in card.detail
    assert card.identity == "MedicationRequest/d1"
    assert {r.code for r in card.override_reasons} >= {
        "lowest-effective-dose-reviewed", "alpha2delta-tried-or-contraindicated",
        "specialist-directed",
    }


@pytest.mark.parametrize(
    "medication, label, code",
    [
        (PRAMIPEXOLE, "pramipexole", "746741"),
        (fhir.concept(RX, "6375", "levodopa"), "levodopa", "6375"),
        (fhir.concept(RX, "72302", "ropinirole"), "ropinirole", "72302"),
        # A code-only ATC order has no name: the label falls back to the code and its system.
        (fhir.concept(ATC, "N04BC05"), f"N04BC05 ({ATC})", None),
        (fhir.concept(text="pramipexole 0.125 mg tablet at night"),
         "pramipexole 0.125 mg tablet at night", None),
        (fhir.concept(text="Rotigotine 1 mg/24 hr transdermal patch"),
         "Rotigotine 1 mg/24 hr transdermal patch", None),
    ],
    ids=["pramipexole-in", "levodopa-in", "ropinirole-in", "atc", "text", "rotigotine-text"],
)
def test_dopaminergic_drugs_are_recognised_by_code_and_text(d1, medication, label, code):
    card = only_card(sign(d1, [rls()], fhir.medication_request(medication)))
    assert f"**{label}** (draft, ordered {fhir.date_of(0)})" in card.detail
    assert "by code" not in card.detail and "by the drug name" not in card.detail
    if code is not None:
        assert code not in card.detail


@pytest.mark.parametrize("value_set_id", ["dopaminergic-drugs"])
def test_every_code_of_the_dopaminergic_value_set_fires(d1, value_set_id):
    codes = [(c["system"], c["code"]) for c in documents()[value_set_id]["codes"]]
    assert len(codes) >= 8
    missed = [code for code in codes
              if len(sign(d1, [rls()], fhir.medication_request(fhir.concept(*code)))) != 1]
    assert missed == []


def test_contained_medication_is_recognised_and_the_draft_is_replaced(d1):
    order = fhir.with_contained_medication(fhir.medication_request(ROPINIROLE_1))
    card = only_card(sign(d1, [rls()], order))
    assert "ropinirole 1 MG Oral Tablet" in card.summary
    deletes = [a for a in actions_of(card) if a.type == "delete"]
    assert [a.resource_id for a in deletes] == ["MedicationRequest/d1"] * 2


def test_order_hooks_offer_gabapentin_or_pregabalin_as_replace_pairs(d1):
    draft = fhir.medication_request(ROPINIROLE_1, requester={"reference": "Practitioner/dr-1"})
    card = only_card(sign(d1, [rls()], draft))
    assert card.selection_behavior == "at-most-one"
    assert [s.label for s in card.suggestions] == [
        "Replace with gabapentin", "Replace with pregabalin"]
    for suggestion, code in zip(card.suggestions, ("25480", "187832"), strict=True):
        delete, create = suggestion.actions
        assert (delete.type, delete.resource_id, delete.resource) == (
            "delete", "MedicationRequest/d1", None)
        assert create.type == "create"
        resource = create.resource
        fhir.validate(resource)
        assert (resource["status"], resource["intent"]) == ("draft", "order")
        (coding,) = resource["medicationCodeableConcept"]["coding"]
        assert (coding["system"], coding["code"]) == (RX, code)
        assert "choose the product and dose" in resource["medicationCodeableConcept"]["text"]
        assert resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
        assert resource["authoredOn"].startswith(AS_OF.date().isoformat())
        assert resource["reasonReference"] == [{"reference": "Condition/rls"}]
        assert resource["requester"] == {"reference": "Practitioner/dr-1"}
        assert "MedicationRequest/d1" in resource["note"][0]["text"]
        assert "id" not in resource
    assert not any(s.is_recommended for s in card.suggestions)


def test_serialised_card_carries_both_suggestions(d1):
    card = only_card(sign(d1, [rls()], fhir.medication_request(ROPINIROLE_1))).with_uuids("seed")
    body = card.to_json()
    assert body["selectionBehavior"] == "at-most-one"
    assert [len(s["actions"]) for s in body["suggestions"]] == [2, 2]
    assert all(s["uuid"] for s in body["suggestions"])


def test_order_select_judges_only_the_selected_order(d1):
    drafts = fhir.drafts(d1=ROPINIROLE_1, d2=fhir.concept(RX, "25480", "gabapentin"))
    chart = [fhir.patient(), rls()]
    assert evaluate(d1, "order-select", chart, drafts, selections=["MedicationRequest/d2"]) == []
    card = only_card(
        evaluate(d1, "order-select", chart, drafts, selections=["MedicationRequest/d1"]))
    assert card.identity == "MedicationRequest/d1"


def test_one_card_per_dopaminergic_order(d1):
    cards = sign(d1, [rls()], fhir.medication_request(ROPINIROLE_1, id="d1"),
                 fhir.medication_request(PRAMIPEXOLE, id="d2"))
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]
    for card in cards:
        assert {a.resource_id for a in actions_of(card) if a.type == "delete"} == {card.identity}


def test_rls_without_clinical_status_counts(d1):
    chart = [fhir.condition(RLS_CODE, id="rls", clinical=None, verification=None)]
    assert len(sign(d1, chart, fhir.medication_request(ROPINIROLE_1))) == 1


def test_draft_without_an_id_gets_the_card_but_no_replace_suggestion(d1):
    draft = fhir.medication_request(ROPINIROLE_1)
    del draft["id"]
    card = only_card(sign(d1, [rls()], draft))
    assert card.suggestions == () and card.selection_behavior is None
    assert "ordering gabapentin or pregabalin instead" in card.detail


def test_no_replace_suggestion_when_an_alpha2delta_ligand_is_already_being_ordered(d1):
    gabapentin = fhir.medication_request(
        fhir.concept(RX, "310431", "gabapentin 300 MG Oral Capsule"), id="d2")
    card = only_card(sign(d1, [rls()], fhir.medication_request(ROPINIROLE_1), gabapentin))
    assert card.suggestions == ()
    assert "- also being ordered: **gabapentin 300 MG Oral Capsule**\n" in card.detail
    assert "MedicationRequest/" not in card.detail and "310431" not in card.detail
    assert "planned switch" in card.detail
    cancelled = dict(gabapentin, status="cancelled")
    card = only_card(sign(d1, [rls()], fhir.medication_request(ROPINIROLE_1), cancelled))
    assert len(card.suggestions) == 2


@pytest.mark.parametrize("hook", ["order-sign", "medication-refill"])
def test_no_replace_suggestion_beside_an_active_alpha2delta_ligand_on_order_hooks(d1, hook):
    """A patient already taking gabapentin gets no 'Replace with gabapentin' at signing or on a
    refill: it would double the drug."""
    chart = [fhir.patient(), rls(),
             fhir.active_order(fhir.concept(RX, "310431", "gabapentin 300 MG Oral Capsule"),
                               id="m-gaba", days_ago=60)]
    card = only_card(evaluate(d1, hook, chart, [fhir.medication_request(ROPINIROLE_1)]))
    assert card.suggestions == ()
    assert "- also active: **gabapentin 300 MG Oral Capsule**\n" in card.detail
    assert "is already active. If this is a planned switch" in card.detail


def test_patient_view_names_an_active_alpha2delta_ligand(d1):
    chart = [fhir.patient(), rls(),
             fhir.active_order(ROPINIROLE_1, id="m1", days_ago=200),
             fhir.active_order(fhir.concept(text="pregabalin 75 mg capsule"), id="m2", days_ago=10)]
    card = only_card(evaluate(d1, "patient-view", chart))
    assert "- also active: **pregabalin 75 mg capsule**\n" in card.detail
    assert "MedicationRequest/" not in card.detail


def test_long_medication_name_keeps_the_summary_under_140(d1):
    long_name = fhir.concept(text="ropinirole " + "extended release tablet " * 8)
    card = only_card(sign(d1, [rls()], fhir.medication_request(long_name)))
    assert len(card.summary) < 140 and "augmentation" in card.summary


# The order's reason and the Parkinson's exception ----------------------------------------------


def test_parkinsons_disease_keeps_the_rule_quiet_when_the_reason_is_not_rls(d1):
    assert sign(d1, [rls(), parkinsons()], fhir.medication_request(ROPINIROLE_1)) == []
    assert sign(d1, [parkinsons()],
                fhir.medication_request(fhir.concept(RX, "6375", "levodopa"))) == []


@pytest.mark.parametrize(
    "code",
    [
        fhir.concept(SNOMED, "49049000"),
        fhir.concept(ICD10CM, "G20.A1", "Parkinson's disease without dyskinesia, without mention "
                     "of fluctuations"),
        fhir.concept(text="Idiopathic Parkinson disease"),
    ],
    ids=["snomed-code-only", "icd10-by-display", "text"],
)
def test_parkinsons_disease_is_recognised_by_code_or_name(d1, code):
    pd = fhir.condition(code, id="pd")
    assert sign(d1, [rls(), pd], fhir.medication_request(ROPINIROLE_1)) == []


def test_drug_induced_parkinsonism_is_not_parkinsons_disease(d1):
    parkinsonism = fhir.condition(fhir.concept(text="Drug-induced parkinsonism"), id="dip")
    assert len(sign(d1, [rls(), parkinsonism], fhir.medication_request(ROPINIROLE_1))) == 1


@not_counting("resolved", "refuted")
def test_parkinsons_that_does_not_count_leaves_the_rule_firing(d1, status):
    assert len(sign(d1, [rls(), parkinsons(**status)], fhir.medication_request(ROPINIROLE_1))) == 1


def test_rls_reason_code_overrides_the_parkinsons_exception(d1):
    draft = fhir.medication_request(ROPINIROLE_1, reasonCode=[RLS_CODE])
    card = only_card(sign(d1, [rls(), parkinsons()], draft))
    assert "order reason: **Restless legs syndrome**" in card.detail


def test_rls_reason_reference_overrides_the_parkinsons_exception(d1):
    draft = fhir.medication_request(ROPINIROLE_1, reasonReference=[{"reference": "Condition/rls"}])
    card = only_card(sign(d1, [rls(), parkinsons()], draft))
    create = actions_of(card)[1]
    assert create.resource["reasonReference"] == [{"reference": "Condition/rls"}]


def test_rls_reason_alone_fires_without_an_rls_condition(d1):
    draft = fhir.medication_request(PRAMIPEXOLE, reasonCode=[RLS_CODE])
    card = only_card(sign(d1, [], draft))
    check_card(card, D1, "warning", "pramipexole", "restless legs")
    create = actions_of(card)[1]
    assert "reasonReference" not in create.resource
    assert create.resource["reasonCode"] == [RLS_CODE]
    fhir.validate(create.resource)


def test_reason_referencing_a_resolved_rls_condition_still_says_what_the_drug_is_for(d1):
    chart = [rls(clinical="resolved")]
    draft = fhir.medication_request(ROPINIROLE_1, reasonReference=[{"reference": "Condition/rls"}])
    card = only_card(sign(d1, chart, draft))
    assert "order reason" in card.detail


def test_reason_referencing_a_refuted_rls_condition_does_not_count(d1):
    chart = [rls(verification="refuted")]
    draft = fhir.medication_request(ROPINIROLE_1, reasonReference=[{"reference": "Condition/rls"}])
    assert sign(d1, chart, draft) == []


def test_reason_referencing_an_unknown_condition_is_not_an_rls_reason(d1):
    draft = fhir.medication_request(ROPINIROLE_1, reasonReference=[{"reference": "Condition/nope"}])
    assert sign(d1, [parkinsons()], draft) == []


def test_parkinsons_as_the_order_reason_keeps_the_rule_quiet(d1):
    draft = fhir.medication_request(fhir.concept(RX, "6375", "levodopa"),
                                    reasonCode=[PARKINSONS_CODE])
    assert sign(d1, [rls()], draft) == []


# Quiet -----------------------------------------------------------------------------------------


@not_counting("resolved", "inactive", "refuted", "entered-in-error")
def test_rls_that_does_not_count_gives_no_card(d1, status):
    assert sign(d1, [rls(**status)], fhir.medication_request(ROPINIROLE_1)) == []


def test_no_rls_gives_no_card(d1):
    cramps = fhir.condition(fhir.concept(SNOMED, "449918009", "Cramp in lower leg"), id="cramp")
    assert sign(d1, [cramps], fhir.medication_request(ROPINIROLE_1)) == []


@pytest.mark.parametrize(
    "medication",
    [fhir.concept(RX, "25480", "gabapentin"), fhir.concept(text="pregabalin 75 mg capsule"),
     fhir.concept(text="carbidopa 25 mg tablet"), fhir.concept(RX, "6915", "metoclopramide")],
    ids=["gabapentin", "pregabalin", "carbidopa-alone", "metoclopramide"],
)
def test_other_drugs_give_no_d1_card(d1, medication):
    assert sign(d1, [rls()], fhir.medication_request(medication)) == []


def test_cancelled_draft_gets_no_card(d1):
    assert sign(d1, [rls()], fhir.medication_request(ROPINIROLE_1, status="cancelled")) == []


# Patient-view ----------------------------------------------------------------------------------


def test_patient_view_reviews_active_orders_without_delete_or_stop(d1):
    active = fhir.active_order(ROPINIROLE_1, id="m1", days_ago=200)
    card = only_card(evaluate(d1, "patient-view", [fhir.patient(), rls(), active]))
    check_card(card, D1, "warning", "ropinirole", "restless legs")
    assert card.suggestions == () and card.selection_behavior is None
    assert f"**ropinirole 1 MG Oral Tablet** (active, authored {fhir.date_of(200)})" in card.detail
    assert "MedicationRequest/" not in card.detail
    assert "already active" in card.detail
    assert "suggestions" not in card.with_uuids("seed").to_json()


def test_patient_view_ignores_stopped_and_draft_orders(d1):
    stopped = fhir.medication_request(ROPINIROLE_1, id="m1", status="stopped",
                                      authored=fhir.day(200))
    draft = fhir.medication_request(PRAMIPEXOLE, id="m2", status="draft")
    assert evaluate(d1, "patient-view", [fhir.patient(), rls(), stopped, draft]) == []


def test_patient_view_keeps_the_parkinsons_exception(d1):
    active = fhir.active_order(ROPINIROLE_1, id="m1", days_ago=200)
    assert evaluate(d1, "patient-view", [fhir.patient(), rls(), parkinsons(), active]) == []


def test_d1_reads(d1):
    gates = (data.KIDNEY_FUNCTION, data.PREGNANCY_TESTS)
    assert d1.reads("patient-view") == (data.ACTIVE_MEDICATIONS, data.CONDITIONS, *gates)
    # Active opioids and other sedatives change the card on order hooks too.
    assert d1.reads("order-sign") == (data.CONDITIONS, data.ACTIVE_MEDICATIONS, *gates)
    assert d1.reads("order-select") == (data.CONDITIONS, data.ACTIVE_MEDICATIONS, *gates)
    assert declared_defaults(d1) == {
        "egfr_moderate_below": 60.0, "egfr_severe_below": 30.0, "egfr_lookback_days": 365,
        "pregnancy_window_days": 300, "older_adult_age": 65,
    }
    assert d1.catalog_code == "D1" and d1.indicator == "warning"


def test_a_dopaminergic_refill_offers_the_switch_declining_the_refill(d1):
    """On medication-refill the suggestions act on the refill request: decline it and start a
    draft of the first-line drug."""
    card = only_card(evaluate(d1, "medication-refill", [fhir.patient(), rls()],
                              [fhir.medication_request(ROPINIROLE_1, id="refill-1")]))
    assert len(card.suggestions) == 2
    for suggestion in card.suggestions:
        delete, create = suggestion.actions
        assert (delete.type, delete.resource_id) == ("delete", "MedicationRequest/refill-1")
        assert delete.description.startswith("Decline the ")
        assert create.type == "create" and "dosageInstruction" not in create.resource
    assert "(refill requested, " in card.detail
