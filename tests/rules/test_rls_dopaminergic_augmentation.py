"""D1 rls-dopaminergic-augmentation and A1 rls-dopamine-antagonist: drugs that RLS guidance warns
about (dopaminergic drugs for long-term use; dopamine-blocking drugs)."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.kit.terminology import ValueSet
from hooks import data
from hooks.rules.rls_dopamine_antagonist import RlsDopamineAntagonist
from hooks.rules.rls_dopaminergic_augmentation import RlsDopaminergicAugmentation
from hooks.valuesets import documents, library
from tests.conftest import AS_OF
from tests.support.fhir import (
    ATC,
    ICD10CM,
    PATIENT_ID,
    RX,
    SNOMED,
    actions_of,
    check_card,
    concept,
    condition,
    date_of,
    day,
    declared_defaults,
    evaluate,
    medication_request,
    only_card,
    patient,
    validate_fhir,
    with_contained_medication,
)

D1 = "rls-dopaminergic-augmentation"
A1 = "rls-dopamine-antagonist"


def value_set(value_set_id: str) -> ValueSet:
    return library()[value_set_id]


@pytest.fixture(scope="module")
def d1() -> RlsDopaminergicAugmentation:
    return RlsDopaminergicAugmentation(
        dopaminergic=value_set("dopaminergic-drugs"),
        restless_legs=value_set("restless-legs"),
        parkinsons=value_set("parkinsons-disease"),
        alpha2delta=value_set("alpha2delta-ligands"),
    )


@pytest.fixture(scope="module")
def a1() -> RlsDopamineAntagonist:
    return RlsDopamineAntagonist(
        dopamine_blockers=value_set("dopamine-blockers"), restless_legs=value_set("restless-legs")
    )


ROPINIROLE_1 = concept(RX, "314208", "ropinirole 1 MG Oral Tablet")
PRAMIPEXOLE = concept(RX, "746741", "pramipexole")
RLS_CODE = concept(ICD10CM, "G25.81", "Restless legs syndrome")
PARKINSONS_CODE = concept(SNOMED, "49049000", "Parkinson's disease", text="Parkinson's disease")
HALOPERIDOL_20 = concept(RX, "197754", "haloperidol 20 MG Oral Tablet")
METOCLOPRAMIDE = concept(RX, "6915", "metoclopramide")


def rls(**extra: Any) -> dict[str, Any]:
    return condition(concept(SNOMED, "32914008", "Restless legs"), id="rls", onset=day(400),
                     **extra)


def parkinsons(**extra: Any) -> dict[str, Any]:
    return condition(PARKINSONS_CODE, id="pd", onset=day(900), **extra)


def sign(rule: Any, chart: list[dict[str, Any]], *drafts: dict[str, Any]) -> list[Any]:
    return evaluate(rule, "order-sign", [patient(), *chart], list(drafts))


# D1: firing --------------------------------------------------------------------------------


def test_ropinirole_product_with_active_rls_gets_one_warning(d1):
    card = only_card(sign(d1, [rls()], medication_request(ROPINIROLE_1)))
    check_card(card, D1, "warning", "ropinirole", "restless legs", "augmentation")
    assert "MedicationRequest/d1" in card.detail and "by code 314208" in card.detail
    assert "Condition/rls" in card.detail and date_of(400) in card.detail
    assert "**Monitor:**" in card.detail and "earlier in the day" in card.detail
    assert "gabapentin" in card.detail and "pregabalin" in card.detail
    assert card.identity == "MedicationRequest/d1"
    assert {r.code for r in card.override_reasons} >= {
        "lowest-effective-dose-reviewed", "alpha2delta-tried-or-contraindicated",
        "specialist-directed",
    }


@pytest.mark.parametrize(
    "medication, how",
    [
        (PRAMIPEXOLE, "by code 746741"),
        (concept(RX, "6375", "levodopa"), "by code 6375"),
        (concept(RX, "72302", "ropinirole"), "by code 72302"),
        (concept(ATC, "N04BC05"), "by code N04BC05"),
        (concept(text="pramipexole 0.125 mg tablet at night"), "by its name"),
        (concept(text="Rotigotine 1 mg/24 hr transdermal patch"), "by its name"),
    ],
    ids=["pramipexole-in", "levodopa-in", "ropinirole-in", "atc", "text", "rotigotine-text"],
)
def test_dopaminergic_drugs_are_recognised_by_code_and_text(d1, medication, how):
    card = only_card(sign(d1, [rls()], medication_request(medication)))
    assert how in card.detail


@pytest.mark.parametrize("value_set_id", ["dopaminergic-drugs"])
def test_every_code_of_the_dopaminergic_value_set_fires(d1, value_set_id):
    codes = [(c["system"], c["code"]) for c in documents()[value_set_id]["codes"]]
    assert len(codes) >= 8
    missed = [code for code in codes
              if len(sign(d1, [rls()], medication_request(concept(*code)))) != 1]
    assert missed == []


def test_contained_medication_is_recognised_and_the_draft_is_replaced(d1):
    order = with_contained_medication(medication_request(ROPINIROLE_1))
    card = only_card(sign(d1, [rls()], order))
    assert "ropinirole 1 MG Oral Tablet" in card.summary
    deletes = [a for a in actions_of(card) if a.type == "delete"]
    assert [a.resource_id for a in deletes] == ["MedicationRequest/d1"] * 2


def test_order_hooks_offer_gabapentin_or_pregabalin_as_replace_pairs(d1):
    draft = medication_request(ROPINIROLE_1, requester={"reference": "Practitioner/dr-1"})
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
        validate_fhir(resource)
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
    card = only_card(sign(d1, [rls()], medication_request(ROPINIROLE_1))).with_uuids("seed")
    body = card.to_json()
    assert body["selectionBehavior"] == "at-most-one"
    assert [len(s["actions"]) for s in body["suggestions"]] == [2, 2]
    assert all(s["uuid"] for s in body["suggestions"])


def test_order_select_judges_only_the_selected_order(d1):
    drafts = [
        medication_request(ROPINIROLE_1, id="d1"),
        medication_request(concept(RX, "25480", "gabapentin"), id="d2"),
    ]
    chart = [patient(), rls()]
    assert evaluate(d1, "order-select", chart, drafts, selections=["MedicationRequest/d2"]) == []
    card = only_card(
        evaluate(d1, "order-select", chart, drafts, selections=["MedicationRequest/d1"]))
    assert card.identity == "MedicationRequest/d1"


def test_one_card_per_dopaminergic_order(d1):
    cards = sign(d1, [rls()], medication_request(ROPINIROLE_1, id="d1"),
                 medication_request(PRAMIPEXOLE, id="d2"))
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]
    for card in cards:
        assert {a.resource_id for a in actions_of(card) if a.type == "delete"} == {card.identity}


def test_rls_without_clinical_status_counts(d1):
    chart = [condition(RLS_CODE, id="rls", clinical=None, verification=None)]
    assert len(sign(d1, chart, medication_request(ROPINIROLE_1))) == 1


def test_draft_without_an_id_gets_the_card_but_no_replace_suggestion(d1):
    draft = medication_request(ROPINIROLE_1)
    del draft["id"]
    card = only_card(sign(d1, [rls()], draft))
    assert card.suggestions == () and card.selection_behavior is None
    assert "ordering gabapentin or pregabalin instead" in card.detail


def test_no_replace_suggestion_when_an_alpha2delta_ligand_is_already_being_ordered(d1):
    gabapentin = medication_request(concept(RX, "310431", "gabapentin 300 MG Oral Capsule"),
                                    id="d2")
    card = only_card(sign(d1, [rls()], medication_request(ROPINIROLE_1), gabapentin))
    assert card.suggestions == ()
    assert "also being ordered: **gabapentin 300 MG Oral Capsule** (MedicationRequest/d2)" in (
        card.detail)
    assert "planned switch" in card.detail
    cancelled = dict(gabapentin, status="cancelled")
    card = only_card(sign(d1, [rls()], medication_request(ROPINIROLE_1), cancelled))
    assert len(card.suggestions) == 2


def test_patient_view_names_an_active_alpha2delta_ligand(d1):
    chart = [patient(), rls(),
             medication_request(ROPINIROLE_1, id="m1", status="active", authored=day(200)),
             medication_request(concept(text="pregabalin 75 mg capsule"), id="m2",
                                status="active", authored=day(10))]
    card = only_card(evaluate(d1, "patient-view", chart))
    assert "also active: **pregabalin 75 mg capsule** (MedicationRequest/m2)" in card.detail


def test_long_medication_name_keeps_the_summary_under_140(d1):
    long_name = concept(text="ropinirole " + "extended release tablet " * 8)
    card = only_card(sign(d1, [rls()], medication_request(long_name)))
    assert len(card.summary) < 140 and "augmentation" in card.summary


# D1: the order's reason and the Parkinson's exception ----------------------------------------


def test_parkinsons_disease_keeps_the_rule_quiet_when_the_reason_is_not_rls(d1):
    assert sign(d1, [rls(), parkinsons()], medication_request(ROPINIROLE_1)) == []
    assert sign(d1, [parkinsons()], medication_request(concept(RX, "6375", "levodopa"))) == []


@pytest.mark.parametrize(
    "code",
    [
        concept(SNOMED, "49049000"),
        concept(ICD10CM, "G20.A1", "Parkinson's disease without dyskinesia, without mention of "
                "fluctuations"),
        concept(text="Idiopathic Parkinson disease"),
    ],
    ids=["snomed-code-only", "icd10-by-display", "text"],
)
def test_parkinsons_disease_is_recognised_by_code_or_name(d1, code):
    pd = condition(code, id="pd")
    assert sign(d1, [rls(), pd], medication_request(ROPINIROLE_1)) == []


def test_drug_induced_parkinsonism_is_not_parkinsons_disease(d1):
    parkinsonism = condition(concept(text="Drug-induced parkinsonism"), id="dip")
    assert len(sign(d1, [rls(), parkinsonism], medication_request(ROPINIROLE_1))) == 1


@pytest.mark.parametrize("status", [{"clinical": "resolved"}, {"verification": "refuted"}],
                         ids=["resolved", "refuted"])
def test_parkinsons_that_does_not_count_leaves_the_rule_firing(d1, status):
    assert len(sign(d1, [rls(), parkinsons(**status)], medication_request(ROPINIROLE_1))) == 1


def test_rls_reason_code_overrides_the_parkinsons_exception(d1):
    draft = medication_request(ROPINIROLE_1, reasonCode=[RLS_CODE])
    card = only_card(sign(d1, [rls(), parkinsons()], draft))
    assert "order reason: **Restless legs syndrome**" in card.detail


def test_rls_reason_reference_overrides_the_parkinsons_exception(d1):
    draft = medication_request(ROPINIROLE_1, reasonReference=[{"reference": "Condition/rls"}])
    card = only_card(sign(d1, [rls(), parkinsons()], draft))
    create = actions_of(card)[1]
    assert create.resource["reasonReference"] == [{"reference": "Condition/rls"}]


def test_rls_reason_alone_fires_without_an_rls_condition(d1):
    draft = medication_request(PRAMIPEXOLE, reasonCode=[RLS_CODE])
    card = only_card(sign(d1, [], draft))
    check_card(card, D1, "warning", "pramipexole", "restless legs")
    create = actions_of(card)[1]
    assert "reasonReference" not in create.resource
    assert create.resource["reasonCode"] == [RLS_CODE]
    validate_fhir(create.resource)


def test_reason_referencing_a_resolved_rls_condition_still_says_what_the_drug_is_for(d1):
    chart = [rls(clinical="resolved")]
    draft = medication_request(ROPINIROLE_1, reasonReference=[{"reference": "Condition/rls"}])
    card = only_card(sign(d1, chart, draft))
    assert "order reason" in card.detail


def test_reason_referencing_a_refuted_rls_condition_does_not_count(d1):
    chart = [rls(verification="refuted")]
    draft = medication_request(ROPINIROLE_1, reasonReference=[{"reference": "Condition/rls"}])
    assert sign(d1, chart, draft) == []


def test_reason_referencing_an_unknown_condition_is_not_an_rls_reason(d1):
    draft = medication_request(ROPINIROLE_1, reasonReference=[{"reference": "Condition/nope"}])
    assert sign(d1, [parkinsons()], draft) == []


def test_parkinsons_as_the_order_reason_keeps_the_rule_quiet(d1):
    draft = medication_request(concept(RX, "6375", "levodopa"), reasonCode=[PARKINSONS_CODE])
    assert sign(d1, [rls()], draft) == []


# D1: quiet ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [{"clinical": "resolved"}, {"clinical": "inactive"}, {"verification": "refuted"},
     {"verification": "entered-in-error"}],
    ids=lambda s: next(iter(s.values())),
)
def test_rls_that_does_not_count_gives_no_card(d1, status):
    assert sign(d1, [rls(**status)], medication_request(ROPINIROLE_1)) == []


def test_no_rls_gives_no_card(d1):
    cramps = condition(concept(SNOMED, "449918009", "Cramp in lower leg"), id="cramp")
    assert sign(d1, [cramps], medication_request(ROPINIROLE_1)) == []


@pytest.mark.parametrize(
    "medication",
    [concept(RX, "25480", "gabapentin"), concept(text="pregabalin 75 mg capsule"),
     concept(text="carbidopa 25 mg tablet"), concept(RX, "6915", "metoclopramide")],
    ids=["gabapentin", "pregabalin", "carbidopa-alone", "metoclopramide"],
)
def test_other_drugs_give_no_d1_card(d1, medication):
    assert sign(d1, [rls()], medication_request(medication)) == []


def test_cancelled_draft_gets_no_card(d1):
    assert sign(d1, [rls()], medication_request(ROPINIROLE_1, status="cancelled")) == []


# D1: patient-view -------------------------------------------------------------------------


def test_patient_view_reviews_active_orders_without_delete_or_stop(d1):
    active = medication_request(ROPINIROLE_1, id="m1", status="active", authored=day(200))
    card = only_card(evaluate(d1, "patient-view", [patient(), rls(), active]))
    check_card(card, D1, "warning", "ropinirole", "restless legs")
    assert card.suggestions == () and card.selection_behavior is None
    assert "MedicationRequest/m1" in card.detail and date_of(200) in card.detail
    assert "already active" in card.detail
    assert "suggestions" not in card.with_uuids("seed").to_json()


def test_patient_view_ignores_stopped_and_draft_orders(d1):
    stopped = medication_request(ROPINIROLE_1, id="m1", status="stopped", authored=day(200))
    draft = medication_request(PRAMIPEXOLE, id="m2", status="draft")
    assert evaluate(d1, "patient-view", [patient(), rls(), stopped, draft]) == []


def test_patient_view_keeps_the_parkinsons_exception(d1):
    active = medication_request(ROPINIROLE_1, id="m1", status="active", authored=day(200))
    assert evaluate(d1, "patient-view", [patient(), rls(), parkinsons(), active]) == []


def test_d1_reads(d1):
    assert d1.reads("patient-view") == (data.ACTIVE_MEDICATIONS, data.CONDITIONS)
    assert d1.reads("order-sign") == (data.CONDITIONS,)
    assert d1.reads("order-select") == (data.CONDITIONS,)
    assert declared_defaults(d1) == {} and d1.catalog_code == "D1" and d1.indicator == "warning"


# A1 ------------------------------------------------------------------------------------------


def test_haloperidol_product_with_rls_gets_one_info_card(a1):
    card = only_card(sign(a1, [rls()], medication_request(HALOPERIDOL_20)))
    check_card(card, A1, "info", "haloperidol", "restless legs")
    assert "MedicationRequest/d1" in card.detail and "by code 197754" in card.detail
    assert "Condition/rls" in card.detail and date_of(400) in card.detail
    assert "worse" in card.detail and "need" in card.detail
    assert card.suggestions == () and card.identity == "MedicationRequest/d1"


@pytest.mark.parametrize(
    "medication, words",
    [
        (METOCLOPRAMIDE, ("metoclopramide", "by code 6915")),
        (concept(text="quetiapine 25 mg tablet at night"), ("quetiapine", "by its name")),
        (concept(RX, "35636", "risperidone"), ("risperidone", "by code 35636")),
    ],
    ids=["metoclopramide-ingredient", "quetiapine-text", "risperidone-ingredient"],
)
def test_dopamine_blockers_are_recognised(a1, medication, words):
    card = only_card(sign(a1, [rls()], medication_request(medication)))
    name, how = words
    assert name in card.summary.lower() and how in card.detail


def test_every_code_of_the_dopamine_blocker_value_set_fires(a1):
    codes = [(c["system"], c["code"]) for c in documents()["dopamine-blockers"]["codes"]]
    assert len(codes) > 100
    missed = [code for code in codes
              if len(sign(a1, [rls()], medication_request(concept(*code)))) != 1]
    assert missed == []


@pytest.mark.parametrize("name", ["prochlorperazine 10 mg", "ondansetron 4 mg", "domperidone"])
def test_a1_quiet_for_drugs_outside_the_value_set(a1, name):
    assert sign(a1, [rls()], medication_request(concept(text=name))) == []


def test_contained_haloperidol_is_recognised(a1):
    card = only_card(sign(a1, [rls()], with_contained_medication(
        medication_request(HALOPERIDOL_20))))
    assert "haloperidol 20 MG Oral Tablet" in card.summary


@pytest.mark.parametrize(
    "status",
    [{"clinical": "resolved"}, {"clinical": "remission"}, {"verification": "refuted"},
     {"verification": "entered-in-error"}],
    ids=lambda s: next(iter(s.values())),
)
def test_a1_quiet_when_rls_does_not_count(a1, status):
    assert sign(a1, [rls(**status)], medication_request(HALOPERIDOL_20)) == []


def test_a1_quiet_without_rls_and_for_other_drugs(a1):
    assert sign(a1, [], medication_request(HALOPERIDOL_20)) == []
    assert sign(a1, [rls()], medication_request(concept(text="ondansetron 4 mg tablet"))) == []
    assert sign(a1, [rls()], medication_request(ROPINIROLE_1)) == []


def test_a1_one_card_per_order_and_order_select(a1):
    drafts = [medication_request(HALOPERIDOL_20, id="d1"),
              medication_request(METOCLOPRAMIDE, id="d2")]
    cards = sign(a1, [rls()], *drafts)
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]
    chart = [patient(), rls()]
    card = only_card(
        evaluate(a1, "order-select", chart, drafts, selections=["MedicationRequest/d2"]))
    assert card.identity == "MedicationRequest/d2"


def test_a1_patient_view_uses_active_orders(a1):
    active = medication_request(METOCLOPRAMIDE, id="m1", status="active", authored=day(14))
    stopped = medication_request(HALOPERIDOL_20, id="m2", status="stopped", authored=day(90))
    card = only_card(evaluate(a1, "patient-view", [patient(), rls(), active, stopped]))
    check_card(card, A1, "info", "metoclopramide")
    assert date_of(14) in card.detail


def test_a1_long_name_keeps_the_summary_under_140(a1):
    long_name = concept(text="haloperidol decanoate " + "long acting injection " * 8)
    card = only_card(sign(a1, [rls()], medication_request(long_name)))
    assert len(card.summary) < 140 and "restless legs" in card.summary


def test_a1_reads(a1):
    assert a1.reads("patient-view") == (data.ACTIVE_MEDICATIONS, data.CONDITIONS)
    assert a1.reads("order-sign") == (data.CONDITIONS,)
    assert declared_defaults(a1) == {} and a1.catalog_code == "A1" and a1.indicator == "info"


def test_patient_view_cards_repeat_quietly_and_order_hook_cards_do_not(d1, a1):
    rop = medication_request(ROPINIROLE_1, id="m1", status="active", authored=day(200))
    halo = medication_request(HALOPERIDOL_20, id="m2", status="active", authored=day(20))
    for rule in (d1, a1):
        assert only_card(evaluate(rule, "patient-view", [patient(), rls(), rop, halo])) \
            .repeat_quietly is True
    assert only_card(sign(d1, [rls()], medication_request(ROPINIROLE_1))).repeat_quietly is False
    assert only_card(sign(a1, [rls()], medication_request(HALOPERIDOL_20))).repeat_quietly is False
