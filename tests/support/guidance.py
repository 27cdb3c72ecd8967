"""Value sets and charts for the condition-specific guidance: S1 esrd-cramps-gabapentin,
L1 cirrhosis-cramps-baclofen, P1 pad-claudication-exercise, V1 diabetes-spasm-b6.

The rules are built from their value sets (not through `catalog()`, which wires them in
separately). A value set shipped in `hooks/valuesets/` is used as shipped; one not there yet is
built from a small document of codes verified in the shared terminology reference, so the tests
run either way and check the shipped sets once they exist.
"""

from __future__ import annotations

from typing import Any

from cds_service.kit.cards import Card
from cds_service.kit.terminology import ValueSet
from cds_service.kit.units import UnitNormaliser
from hooks.rules.esrd_cramps_gabapentin import EsrdCrampsGabapentin
from hooks.valuesets import LabTest, documents, lab, library
from tests.support.cards import actions_of
from tests.support.fhir import ATC, ICD10CM, LOINC, RX, SNOMED, concept, condition, validate

SPASM = concept(ICD10CM, "M62.831", "Muscle spasm of calf")
BACLOFEN_10 = concept(RX, "1292", "baclofen", text="baclofen 10 MG Oral Tablet")

# Value sets the other helper is adding; the documents below hold only reference-verified codes.
FALLBACK: dict[str, dict[str, Any]] = {
    "esrd": {
        "id": "esrd",
        "codes": [
            {"system": SNOMED, "code": "46177005"},
            {"system": SNOMED, "code": "236435004"},
            {"system": SNOMED, "code": "433146000"},
            {"system": ICD10CM, "code": "N18.6"},
            {"system": ICD10CM, "code": "N18.5"},
        ],
        "text_terms": ["end stage renal disease", "end-stage renal disease"],
    },
    "dialysis": {
        "id": "dialysis",
        "codes": [
            {"system": SNOMED, "code": "428982002"},
            {"system": SNOMED, "code": "236435004"},
            {"system": ICD10CM, "code": "Z99.2"},
        ],
        "text_terms": ["dependence on renal dialysis", "hemodialysis dependence"],
    },
    "cirrhosis": {
        "id": "cirrhosis",
        "codes": [
            {"system": SNOMED, "code": "19943007"},
            {"system": SNOMED, "code": "420054005"},
            {"system": SNOMED, "code": "31712002"},
        ],
        "icd10cm_prefixes": ["K74.6", "K70.3"],
        "text_terms": ["cirrhosis of liver", "liver cirrhosis"],
    },
    "pad": {
        "id": "pad",
        "codes": [
            {"system": SNOMED, "code": "399957001"},
            {"system": SNOMED, "code": "400047006"},
            {"system": SNOMED, "code": "63491006"},
            {"system": SNOMED, "code": "51274000"},
            {"system": ICD10CM, "code": "I73.9"},
        ],
        "icd10cm_prefixes": ["I70.2"],
        "text_terms": ["peripheral artery disease", "peripheral arterial disease"],
    },
    "diabetes": {
        "id": "diabetes",
        "codes": [
            {"system": SNOMED, "code": "73211009"},
            {"system": SNOMED, "code": "44054006"},
            {"system": SNOMED, "code": "46635009"},
        ],
        "icd10cm_prefixes": ["E10", "E11", "E13"],
        "text_terms": ["diabetes mellitus"],
    },
    "baclofen": {
        "id": "baclofen",
        "codes": [{"system": RX, "code": "1292"}, {"system": ATC, "code": "M03BX01"}],
        "text_terms": ["baclofen", "lioresal", "ozobax", "lyvispah", "fleqsuvy"],
    },
    "alpha2delta-ligands": {
        "id": "alpha2delta-ligands",
        "codes": [
            {"system": RX, "code": "25480"},
            {"system": RX, "code": "310431"},
            {"system": RX, "code": "187832"},
            {"system": RX, "code": "483440"},
            {"system": RX, "code": "1101338"},
        ],
        "text_terms": [
            "gabapentin", "neurontin", "gralise", "gabapentin enacarbil", "horizant",
            "pregabalin", "lyrica",
        ],
    },
    "vitamin-b6": {
        "id": "vitamin-b6",
        "title": "Vitamin B6 (pyridoxal 5'-phosphate)",
        "codes": [
            {"system": LOINC, "code": "62236-5"},
            {"system": LOINC, "code": "30552-4"},
            {"system": LOINC, "code": "39786-9"},
        ],
        "canonical_unit": "nmol/L",
        "unit_conversions": [
            {"from": "nmol/L", "to": "nmol/L", "factor": 1.0},
            {"from": "ug/L", "to": "nmol/L", "factor": 4.046},
            {"from": "ng/mL", "to": "nmol/L", "factor": 4.046},
        ],
    },
}


def value_set(value_set_id: str) -> ValueSet:
    if value_set_id in library():
        return library()[value_set_id]
    return ValueSet.from_document(FALLBACK[value_set_id])


def lab_test(lab_id: str) -> LabTest:
    if lab_id in documents():
        return lab(lab_id)
    document = FALLBACK[lab_id]
    return LabTest(
        value_set=ValueSet.from_document(document),
        units=UnitNormaliser.from_document(document),
        loinc_codes=tuple(c["code"] for c in document["codes"] if c["system"] == LOINC),
        title=document["title"],
    )


def esrd_rule(dialysis: ValueSet | None = None) -> EsrdCrampsGabapentin:
    return EsrdCrampsGabapentin(
        esrd=value_set("esrd"),
        dialysis=dialysis or value_set("dialysis"),
        restless_legs=library()["restless-legs"],
        leg_cramps=library()["leg-cramps"],
        alpha2delta_ligands=value_set("alpha2delta-ligands"),
        rls_drugs=library()["rls-drugs"],
        cramp_drugs=library()["cramp-drugs"],
    )


def cond(code: dict[str, Any], id: str, **extra: Any) -> dict[str, Any]:
    return condition(code, id=id, **extra)


def check_guidance(card: Card, rule_id: str, *summary_words: str) -> None:
    """The card contract for an info guidance card whose suggestions are not lab orders."""
    assert card.indicator == "info"
    assert card.source.label and card.source.topic is not None
    assert card.source.topic.code == rule_id
    assert 0 < len(card.summary) < 140, card.summary
    for word in summary_words:
        assert word.lower() in card.summary.lower(), (word, card.summary)
    assert card.detail and "**Found:**" in card.detail and "**Why:**" in card.detail
    assert card.override_reasons and all(r.code and r.display for r in card.override_reasons)
    assert card.identity and card.repeat_quietly is True
    for action in actions_of(card):
        validate(action.resource)
