"""Value sets: built from the shared reference without drift, matched by code then whole word."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from cds_service.kit import RXNORM as RX
from cds_service.kit.terminology import ICD10CM, ValueSet
from hooks.valuesets import DIRECTORY, library
from hooks.valuesets.build import ProductSources, build, main, render
from tests.conftest import SHARED

TERMINOLOGY = SHARED / "reference" / "terminology.json"


def concept(*codings, text=None):
    return SimpleNamespace(
        coding=[SimpleNamespace(system=s, code=c, display=d) for s, c, d in codings], text=text
    )


@pytest.mark.skipif(not TERMINOLOGY.exists(), reason="shared reference not beside the project")
def test_derived_value_sets_match_the_reference(capsys):
    assert main(["--terminology", str(TERMINOLOGY), "--check"]) == 0
    built = build(json.loads(TERMINOLOGY.read_text(encoding="utf-8")))
    for value_set_id, document in built.items():
        assert (DIRECTORY / f"{value_set_id}.json").read_text(encoding="utf-8") == render(document)


@pytest.mark.skipif(not TERMINOLOGY.exists(), reason="shared reference not beside the project")
def test_drift_is_detected(tmp_path):
    terminology = json.loads(TERMINOLOGY.read_text(encoding="utf-8"))
    quinine = next(m for m in terminology["medications"] if m["concept_id"] == "quinine")
    quinine["text_match_terms"].append("quinine hydrochloride")
    changed = tmp_path / "terminology.json"
    changed.write_text(json.dumps(terminology), encoding="utf-8")
    assert main(["--terminology", str(changed), "--check"]) == 1


NO_PRODUCTS = ProductSources(sandbox={}, public={})


def test_unverified_codes_are_left_out_and_listed():
    document = {
        "meta": {"generated": "test"},
        "medications": [
            {
                "concept_id": "quinine",
                "text_match_terms": ["quinine"],
                "notes": [],
                "ingredient_codes": [
                    {"system": RX, "code": "9071", "confidence": "verified-in-source"}
                ],
                "product_codes": [
                    {"system": RX, "code": "123", "confidence": "from-memory-unverified"}
                ],
                "atc_codes": [],
            }
        ],
    }
    built = build(document, NO_PRODUCTS)["quinine"]  # the reference's codes alone
    assert [c["code"] for c in built["codes"]] == ["9071"]
    assert [c["code"] for c in built["left_out"]] == ["123"]


def test_every_shipped_value_set_states_its_provenance():
    for path in DIRECTORY.glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["provenance"], path.name
        assert document["codes"] or document.get("text_terms"), path.name


def test_quinine_matches_codes_and_names_but_not_quinidine():
    quinine = library()["quinine"]
    assert quinine.match(concept((RX, "997010", None))).how == "code"
    assert quinine.match(concept((RX, "9071", None))).how == "code"
    assert (
        quinine.match(concept((RX, "999999", "Quinine Sulfate 260 MG Oral Tablet"))).how == "text"
    )
    assert quinine.match(concept(text="QUALAQUIN 324mg")).how == "text"
    for text in ("quinidine sulfate", "Quinidine", "quininex", "hydroquinone"):
        assert quinine.match(concept(text=text)) is None, text
    assert quinine.match(concept((RX, "9068", "quinidine"))) is None


def test_malaria_matches_icd10_prefixes_dot_insensitive_and_snomed():
    malaria = library()["malaria"]
    for code in ("B50.9", "B509", "b54", "B53.0"):
        assert malaria.match(concept((ICD10CM, code, None))), code
    assert malaria.match(concept((ICD10CM, "B55.0", "Visceral leishmaniasis"))) is None
    assert malaria.match(concept(("http://snomed.info/sct", "61462000", None)))
    assert malaria.match(concept(("http://snomed.info/sct", "1234", "Plasmodium vivax infection")))


def test_text_terms_are_whole_words_with_flexible_spaces():
    value_set = ValueSet.from_document({"id": "t", "text_terms": ["quinine sulfate"]})
    assert value_set.matches_text("QUININE   SULFATE 324")
    assert not value_set.matches_text("quinine sulfated")


def test_only_the_first_thousand_characters_of_a_name_are_read():
    from cds_service.kit.terminology import MAX_NAME_CHARS

    quinine = library()["quinine"]
    assert quinine.match(concept(text="quinine sulfate 324 mg " + "x" * 5000)).how == "text"
    padded = "x " * (MAX_NAME_CHARS // 2) + "quinine"
    assert len(padded) > MAX_NAME_CHARS
    assert quinine.match(concept(text=padded)) is None  # past the cut: never scanned
