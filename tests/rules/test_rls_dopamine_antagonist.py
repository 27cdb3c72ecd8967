"""A1 rls-dopamine-antagonist: a dopamine-blocking drug for a patient with restless legs
syndrome, which it can make worse."""

from __future__ import annotations

import pytest

from hooks import data
from hooks.valuesets import documents
from tests.support import fhir
from tests.support.cards import check_card, only_card
from tests.support.fhir import RX
from tests.support.rls_drugs import HALOPERIDOL_20, ROPINIROLE_1, rls
from tests.support.rules import declared_defaults, evaluate, not_counting, sign

A1 = "rls-dopamine-antagonist"
METOCLOPRAMIDE = fhir.concept(RX, "6915", "metoclopramide")


def test_haloperidol_product_with_rls_gets_one_info_card(a1):
    card = only_card(sign(a1, [rls()], fhir.medication_request(HALOPERIDOL_20)))
    check_card(card, A1, "info", "haloperidol", "restless legs")
    assert f"**haloperidol 20 MG Oral Tablet** (draft, ordered {fhir.date_of(0)})" in card.detail
    assert f"- **Restless legs** (onset {fhir.date_of(400)})" in card.detail
    assert "MedicationRequest/" not in card.detail and "Condition/" not in card.detail
    assert "197754" not in card.detail
    assert "worse" in card.detail and "need" in card.detail
    assert card.suggestions == () and card.identity == "MedicationRequest/d1"


@pytest.mark.parametrize(
    "medication, name, label, code",
    [
        (METOCLOPRAMIDE, "metoclopramide", "metoclopramide", "6915"),
        (fhir.concept(text="quetiapine 25 mg tablet at night"),
         "quetiapine", "quetiapine 25 mg tablet at night", None),
        (fhir.concept(RX, "35636", "risperidone"), "risperidone", "risperidone", "35636"),
    ],
    ids=["metoclopramide-ingredient", "quetiapine-text", "risperidone-ingredient"],
)
def test_dopamine_blockers_are_recognised(a1, medication, name, label, code):
    card = only_card(sign(a1, [rls()], fhir.medication_request(medication)))
    assert name in card.summary.lower()
    assert f"**{label}** (draft, ordered {fhir.date_of(0)})" in card.detail
    assert "by code" not in card.detail and "by the drug name" not in card.detail
    if code is not None:
        assert code not in card.detail


def test_every_code_of_the_dopamine_blocker_value_set_fires(a1):
    codes = [(c["system"], c["code"]) for c in documents()["dopamine-blockers"]["codes"]]
    assert len(codes) > 100
    missed = [code for code in codes
              if len(sign(a1, [rls()], fhir.medication_request(fhir.concept(*code)))) != 1]
    assert missed == []


@pytest.mark.parametrize("name", ["ondansetron 4 mg", "domperidone"])
def test_a1_quiet_for_drugs_outside_the_value_set(a1, name):
    assert sign(a1, [rls()], fhir.medication_request(fhir.concept(text=name))) == []


def test_contained_haloperidol_is_recognised(a1):
    card = only_card(sign(a1, [rls()], fhir.with_contained_medication(
        fhir.medication_request(HALOPERIDOL_20))))
    assert "haloperidol 20 MG Oral Tablet" in card.summary


@not_counting("resolved", "remission", "refuted", "entered-in-error")
def test_a1_quiet_when_rls_does_not_count(a1, status):
    assert sign(a1, [rls(**status)], fhir.medication_request(HALOPERIDOL_20)) == []


def test_a1_quiet_without_rls_and_for_other_drugs(a1):
    assert sign(a1, [], fhir.medication_request(HALOPERIDOL_20)) == []
    assert sign(a1, [rls()],
                fhir.medication_request(fhir.concept(text="ondansetron 4 mg tablet"))) == []
    assert sign(a1, [rls()], fhir.medication_request(ROPINIROLE_1)) == []


def test_a1_one_card_per_order_and_order_select(a1):
    drafts = fhir.drafts(d1=HALOPERIDOL_20, d2=METOCLOPRAMIDE)
    cards = sign(a1, [rls()], *drafts)
    assert sorted(c.identity for c in cards) == ["MedicationRequest/d1", "MedicationRequest/d2"]
    chart = [fhir.patient(), rls()]
    card = only_card(
        evaluate(a1, "order-select", chart, drafts, selections=["MedicationRequest/d2"]))
    assert card.identity == "MedicationRequest/d2"


def test_a1_patient_view_uses_active_orders(a1):
    active = fhir.active_order(METOCLOPRAMIDE, id="m1", days_ago=14)
    stopped = fhir.medication_request(HALOPERIDOL_20, id="m2", status="stopped",
                                      authored=fhir.day(90))
    card = only_card(evaluate(a1, "patient-view", [fhir.patient(), rls(), active, stopped]))
    check_card(card, A1, "info", "metoclopramide")
    assert fhir.date_of(14) in card.detail


def test_a1_long_name_keeps_the_summary_under_140(a1):
    long_name = fhir.concept(text="haloperidol decanoate " + "long acting injection " * 8)
    card = only_card(sign(a1, [rls()], fhir.medication_request(long_name)))
    assert len(card.summary) < 140 and "restless legs" in card.summary


def test_a1_reads(a1):
    assert a1.reads("patient-view") == (data.ACTIVE_MEDICATIONS, data.CONDITIONS)
    assert a1.reads("order-sign") == (data.CONDITIONS,)
    assert declared_defaults(a1) == {} and a1.catalog_code == "A1" and a1.indicator == "info"


@pytest.mark.parametrize("name", ["prochlorperazine 10 mg", "promethazine 25 mg",
                                  "droperidol 2.5 mg/mL injection"])
def test_a1_fires_for_every_dopamine_blocking_antiemetic(a1, name):
    card = only_card(sign(a1, [rls()], fhir.medication_request(fhir.concept(text=name))))
    assert name.split()[0] in card.detail.lower()
