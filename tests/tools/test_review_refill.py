"""The clinical review page shows how a refill request's card reads: each refill example is a
firing example sent as medication-refill, and gets its rule's card acting on the refill."""

from __future__ import annotations

import shutil

import pytest

from cds_service.config import load_config
from cds_service.tools.review import changed_outcome, render_review_page
from hooks import build_services
from hooks.review_examples import REFILL_EXAMPLES
from tests.conftest import ROOT

GOLDEN = ROOT / "fixtures" / "golden"


def test_at_least_the_quinine_refill_is_on_the_review_page():
    assert "quinine-leg-cramps" in {example.rule_id for example in REFILL_EXAMPLES}


@pytest.mark.parametrize("example", REFILL_EXAMPLES, ids=[e.rule_id for e in REFILL_EXAMPLES])
def test_the_refill_example_gets_its_rules_card_acting_on_the_refill_request(make_app, example):
    engine = make_app().extensions["legcramp_engine"]
    request, cards = changed_outcome(build_services(), engine, GOLDEN, example)
    assert request["hook"] == "medication-refill"
    assert "draftOrders" not in request["context"]
    refills = {f"MedicationRequest/{e['resource']['id']}"
               for e in request["context"]["medications"]["entry"]}
    [card] = [c for c in cards if c["source"]["topic"]["code"] == example.rule_id]
    targets = {a.get("resourceId") or f"{a['resource']['resourceType']}/{a['resource'].get('id')}"
               for s in card.get("suggestions", []) for a in s["actions"]
               if a["type"] in ("delete", "update")}
    assert targets and targets <= refills, (targets, refills)


def test_review_page_shows_the_refill_card_and_what_the_refill_asks_for(make_app, tmp_path):
    """Rendered from the one example patient the quinine refill is built on."""
    example = next(e for e in REFILL_EXAMPLES if e.rule_id == "quinine-leg-cramps")
    shutil.copy(GOLDEN / f"{example.base}.request.json", tmp_path)
    engine = make_app().extensions["legcramp_engine"]
    page = render_review_page(build_services(), load_config(None), engine, tmp_path,
                              refill_examples=[example])
    section = page.split("`quinine-leg-cramps`", 1)[1].split("\n## ", 1)[0]
    refill = section.split("As a refill request:", 1)[1]
    assert "(medication-refill; " in refill
    assert "refill requested: quinine sulfate 324 MG Oral Capsule" in refill
    assert "being ordered" not in refill
    assert "**[CRITICAL]**" in refill
    assert "delete MedicationRequest/draft-quinine" in refill
