"""Clinician-facing text (issue 15): what a clinician reads on a card, its summary and detail,
names drugs and conditions and gives dates and values, never FHIR ids, code numbers or FHIR
element names. Checked on every golden request, through the service."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hooks.services import service_for_hook
from tests.conftest import FIXTURES, complete

GOLDEN = FIXTURES / "golden"
REQUESTS = sorted(GOLDEN.glob("*.request.json"))
SERVICE_FOR_HOOK = service_for_hook()  # hook -> service id, from hooks/services.py
# FHIR references and element names a developer would write, not a clinician.
DEVELOPER_WORDS = (
    "Condition/",
    "MedicationRequest/",
    "Observation/",
    "Patient/",
    "dispenseRequest",
    "dosageInstruction",
    "valueQuantity",
)
# A standalone run of five or more digits: an RxNorm or SNOMED code. Dates (2026-11-21) and
# values (0.55, 324 MG) have shorter runs.
CODE_NUMBER = re.compile(r"\b\d{5,}\b")


def case_name(path: Path) -> str:
    return path.name.removesuffix(".request.json")


def request_codes(node: Any) -> set[str]:
    """Every all-digit `code` of a Coding anywhere in the request (RxNorm, SNOMED, LOINC parts)."""
    found: set[str] = set()
    if isinstance(node, dict):
        code = node.get("code")
        if isinstance(code, str) and "system" in node and code.isdigit() and len(code) >= 5:
            found.add(code)
        for value in node.values():
            found |= request_codes(value)
    elif isinstance(node, list):
        for value in node:
            found |= request_codes(value)
    return found


def offences(text: str, codes: set[str]) -> list[str]:
    found = [word for word in DEVELOPER_WORDS if word in text]
    found += [f"code number {number}" for number in CODE_NUMBER.findall(text)]
    found += [
        f"request code {code}" for code in sorted(codes) if re.search(rf"\b{code}\b", text)
    ]
    return found


def test_the_offence_check_catches_ids_codes_and_element_names_but_not_dates_or_values():
    codes = {"828348"}
    assert offences("**baclofen** (draft, ordered 2026-11-21): 0.55 mmol/L, 324 MG", codes) == []
    assert offences("ordered (MedicationRequest/d1)", set()) == ["MedicationRequest/"]
    assert offences("identified by code 828348", codes) == [
        "code number 828348",
        "request code 828348",
    ]
    assert offences("expected supply (dispenseRequest.expectedSupplyDuration)", set()) == [
        "dispenseRequest"
    ]


def golden_cards(call: Any, path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    request = complete(json.loads(path.read_text(encoding="utf-8")))
    response = call(SERVICE_FOR_HOOK[request["hook"]], request)
    assert response.status_code == 200, response.get_data(as_text=True)
    return request, response.get_json()["cards"]


@pytest.mark.parametrize("path", REQUESTS, ids=case_name)
def test_golden_cards_show_no_fhir_ids_codes_or_element_names(call, path):
    request, cards = golden_cards(call, path)
    codes = request_codes(request)
    found = {
        f"{card['source']['topic']['code']} {part}": offence
        for card in cards
        for part in ("summary", "detail")
        if (offence := offences(card.get(part) or "", codes))
    }
    assert found == {}


def test_every_golden_request_is_checked_and_together_they_give_many_rules_cards(call):
    assert len(REQUESTS) >= 10
    assert {json.loads(p.read_text(encoding="utf-8"))["hook"] for p in REQUESTS} == set(
        SERVICE_FOR_HOOK
    )
    rules = [card["source"]["topic"]["code"] for p in REQUESTS for card in golden_cards(call, p)[1]]
    assert len(rules) >= 20 and len(set(rules)) >= 10  # the check above is not run on nothing


def test_an_order_coded_only_by_atc_is_named_as_a_clinician_would(call):
    """The value sets' ATC entries read 'ATC for pramipexole': the card names the drug."""
    request = json.loads((FIXTURES / "golden" / "rls-pramipexole.order-sign.request.json")
                         .read_text(encoding="utf-8"))
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"coding": [
        {"system": "http://www.whocc.no/atc", "code": "N04BC05"}]}
    response = call("legcramp-order-sign", request)
    assert response.status_code == 200, response.get_data(as_text=True)
    [card] = [c for c in response.get_json()["cards"]
              if c["source"]["topic"]["code"] == "rls-dopaminergic-augmentation"]
    assert "**pramipexole**" in card["detail"]
    assert "N04BC05" not in card["detail"] and "ATC for" not in card["detail"]
