"""Every real order recognised: an order sent by an RxNorm code alone, at any level an EHR
sends (clinical or branded drug, component, dose form group, pack, ingredient), is judged as the
same order sent with its name; and what names no drug is never guessed at."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from cds_service.config import load_config
from cds_service.kit import RXNORM
from hooks import build_services
from hooks.valuesets import documents, library
from tests.conftest import FIXTURES, complete, make_caller
from tests.support.valuesets import concept
from tests.test_metrics import moved, scrape

GOLDEN = FIXTURES / "golden"
CASES = sorted(p.name.removesuffix(".request.json") for p in GOLDEN.glob("*.request.json"))
SERVICES = {service.hook: service for service in build_services()}
# The value sets the rules match orders against, and the RxNorm levels each holds.
MEDICATION_SETS = sorted({vs.id for s in SERVICES.values() for vs in s.value_sets()
                          if any(c.get("rule", "").startswith("an ingredient")
                                 for c in documents()[vs.id]["codes"])})
LEVELS = ("SCD", "SBD", "SCDC", "SBDC", "SCDF", "SBDF", "SCDG", "SBDG", "GPCK", "BPCK", "BN")
# A product's strength decides the dose rule; a dose form group or an ingredient has none.
DOSE_RULES = {"cyclobenzaprine-dose"}


def codes_of(value_set_id: str, kind: str) -> list[dict[str, Any]]:
    return [c for c in documents()[value_set_id]["codes"]
            if c["kind"] == kind and c["system"] == RXNORM]


def code_only(code: str) -> dict[str, Any]:
    return {"coding": [{"system": RXNORM, "code": code}]}


@pytest.mark.parametrize("value_set_id", MEDICATION_SETS)
def test_every_level_of_the_value_set_is_recognised_by_its_code_alone(value_set_id):
    value_set = library()[value_set_id]
    levels = [kind for kind in LEVELS if codes_of(value_set_id, kind)]
    assert {"SCD", "SCDC"} & set(levels), f"{value_set_id} holds no clinical drug or component"
    for kind in levels:
        for entry in codes_of(value_set_id, kind):
            match = value_set.match(concept((RXNORM, entry["code"], None)))
            assert match is not None and match.how == "code", (kind, entry["code"])
            assert match.name and re.search(r"[A-Za-z]", match.name)  # named for the card


@pytest.fixture
def call(make_app):
    config = load_config(None, overrides={"store": {"patient_hash_key": "golden-files-key"}})
    return make_caller(make_app(config).test_client())


def topics(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["source"]["topic"]["code"], c["indicator"]) for c in body["cards"]
            if c["source"]["topic"]["code"] not in DOSE_RULES}


def orders_in(request: dict[str, Any]) -> list[dict[str, Any]]:
    drafts = [e["resource"] for e in request["context"].get("draftOrders", {}).get("entry", [])]
    active = [e["resource"] for e in (request["prefetch"].get("activeMedications") or {})
              .get("entry", [])]
    return [o for o in drafts + active if "medicationCodeableConcept" in o]


def same_drug_codes(order: dict[str, Any]) -> list[tuple[str, str]]:
    """(level, code) of the order's drug at every level the value sets hold: codes whose
    RxNorm name begins with the same first word as the order's name."""
    concept = order["medicationCodeableConcept"]
    rx = [c["code"] for c in concept.get("coding", []) if c.get("system") == RXNORM]
    sets = [i for i in MEDICATION_SETS if rx and (RXNORM, rx[0]) in library()[i].codes]
    name = (concept.get("text") or concept["coding"][0].get("display") or "").lower()
    if not sets or not name:
        return []
    first = name.split()[0]
    found = [("ingredient", c["code"]) for c in documents()[sets[0]]["codes"]
             if c["kind"] == "ingredient" and (c.get("display") or "").lower() == first]
    for kind in LEVELS:
        found += [(kind, c["code"]) for c in codes_of(sets[0], kind)
                  if (c.get("name") or c["display"]).lower().startswith(first)][:1]
    return found


PAIRS = [(case, i, level, code)
         for case in CASES
         for i, order in enumerate(orders_in(json.loads(
             (GOLDEN / f"{case}.request.json").read_text(encoding="utf-8"))))
         for level, code in same_drug_codes(order)]


def test_the_golden_orders_are_tried_at_every_level():
    levels = {level for _, _, level, _ in PAIRS}
    assert {"ingredient", "SCD", "SBD", "SCDC", "SBDC", "SCDG"} <= levels, levels
    assert len({case for case, *_ in PAIRS}) >= 8


@pytest.mark.parametrize(("case", "index", "level", "code"), PAIRS,
                         ids=[f"{c}-{i}-{lv}" for c, i, lv, _ in PAIRS])
def test_an_order_sent_by_code_alone_gets_the_cards_of_the_named_order(call, case, index, level,
                                                                       code):
    request = complete(json.loads((GOLDEN / f"{case}.request.json").read_text(encoding="utf-8")))
    expected = json.loads((GOLDEN / f"{case}.response.json").read_text(encoding="utf-8"))
    order = orders_in(request)[index]
    order["medicationCodeableConcept"] = code_only(code)
    service = SERVICES[request["hook"]]
    response = call(service.id, request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert topics(response.get_json()) == topics(expected)
    for card in response.get_json()["cards"]:  # a code-only order is named, never by its code
        assert f"**{code} (" not in card.get("detail", "")


def test_a_code_only_product_is_named_by_its_rxnorm_name_in_the_card(call):
    request = complete(json.loads(
        (GOLDEN / "rls-pramipexole.order-sign.request.json").read_text(encoding="utf-8")))
    order = orders_in(request)[0]
    scd = next(c for c in codes_of("dopaminergic-drugs", "SCD")
               if c["display"].lower().startswith("pramipexole"))
    order["medicationCodeableConcept"] = code_only(scd["code"])
    body = call(SERVICES["order-sign"].id, request).get_json()
    assert any(scd["display"] in card["summary"] or scd["display"] in card.get("detail", "")
               for card in body["cards"]), body


@pytest.mark.parametrize("coding", [
    {"system": "http://example.org/local-formulary", "code": "997010"},  # unknown system
    {"system": RXNORM, "code": "  "},                                    # blank code
    {"system": RXNORM, "code": "997010; DROP"},                          # malformed code
    {"system": RXNORM, "code": "449918009"},                             # a SNOMED code
    {"system": "http://snomed.info/sct", "code": "997010"},              # RxNorm code, SNOMED
], ids=["unknown-system", "blank", "malformed", "wrong-system-code", "code-in-wrong-system"])
def test_a_coding_that_is_not_an_rxnorm_product_never_matches_and_never_fails(call, coding):
    request = complete(json.loads(
        (GOLDEN / "rls-pramipexole.order-sign.request.json").read_text(encoding="utf-8")))
    orders_in(request)[0]["medicationCodeableConcept"] = {"coding": [coding]}
    response = call(SERVICES["order-sign"].id, request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "rls-dopaminergic-augmentation" not in {t for t, _ in topics(response.get_json())}


def test_an_order_that_names_no_drug_is_counted_as_unidentified_not_guessed(make_app):
    client = make_app().test_client()
    request = complete(json.loads(
        (GOLDEN / "rls-pramipexole.order-sign.request.json").read_text(encoding="utf-8")))
    orders_in(request)[0]["medicationCodeableConcept"] = {"coding": [{"system": RXNORM}]}
    before = scrape(client)
    response = client.post(f"/cds-services/{SERVICES['order-sign'].id}", json=request)
    assert response.status_code == 200
    assert moved(before, scrape(client), "legcramp_cds_orders_unidentified_total",
                 service=SERVICES["order-sign"].id) == 1
    named = copy.deepcopy(request)
    orders_in(named)[0]["medicationCodeableConcept"] = {"text": "pramipexole 0.25 mg"}
    before = scrape(client)
    client.post(f"/cds-services/{SERVICES['order-sign'].id}", json=named)
    assert moved(before, scrape(client), "legcramp_cds_orders_unidentified_total") == 0


def baclofen_order(medication: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "baclofen-draft", "status": "draft",
            "intent": "order", "medicationCodeableConcept": medication,
            "subject": {"reference": "Patient/liver-008"}, "authoredOn": "2026-11-21"}


def cirrhosis_order_sign(medication: dict[str, Any]) -> dict[str, Any]:
    """The cirrhosis, PAD and diabetes chart of the golden patient-view case, now with a
    baclofen order being signed: L1, P1 and V1 run on order hooks while a cramp drug is
    ordered."""
    request = complete(json.loads((GOLDEN / "cirrhosis-pad-diabetes-cramps.patient-view"
                                   ".request.json").read_text(encoding="utf-8")))
    request["hook"] = "order-sign"
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                         "entry": [{"resource": baclofen_order(medication)}]}
    return request


BACLOFEN_LEVELS = [(kind, entry["code"]) for kind in LEVELS
                   for entry in codes_of("baclofen", kind)[:1]] + [("ingredient", "1292")]


@pytest.mark.parametrize(("level", "code"), BACLOFEN_LEVELS, ids=[k for k, _ in BACLOFEN_LEVELS])
def test_a_cramp_drug_ordered_by_code_alone_brings_the_condition_guidance(call, level, code):
    named = cirrhosis_order_sign({"coding": [{"system": RXNORM, "code": "1292",
                                              "display": "baclofen"}], "text": "baclofen"})
    expected = topics(call(SERVICES["order-sign"].id, named).get_json())
    assert {"cirrhosis-cramps-baclofen", "pad-claudication-exercise"} <= {
        rule for rule, _ in expected}  # (V1 is patient-view only)
    response = call(SERVICES["order-sign"].id, cirrhosis_order_sign(code_only(code)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert topics(response.get_json()) == expected
