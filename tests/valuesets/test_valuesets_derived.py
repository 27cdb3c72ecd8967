"""Derived value sets: built from the shared reference without drift; what they must and must not
match (the reference's pitfalls); observation sets carry the right LOINC codes."""

from __future__ import annotations

import copy

import pytest

from cds_service.kit.terminology import ICD10CM
from cds_service.kit.units import UnitNormaliser
from hooks.valuesets import DIRECTORY
from hooks.valuesets.build import DERIVED, build_all, main, render
from tests.support.valuesets import (
    LOINC,
    RX,
    SCT,
    TERMINOLOGY,
    check_exit_code,
    document,
    matches,
    needs_reference,
    reference,
)

OBSERVATION_SETS = [i for i, d in DERIVED.items() if "observation" in d]










def codes(value_set_id: str, key: str = "codes") -> set[str]:
    return {entry["code"] for entry in document(value_set_id)[key]}




@needs_reference
def test_every_derived_value_set_is_built_from_the_reference_without_drift(capsys):
    assert main(["--terminology", str(TERMINOLOGY), "--check"]) == 0
    built, problems = build_all(reference())
    assert problems == {}
    assert set(built) == set(DERIVED)
    for value_set_id, built_document in built.items():
        shipped = (DIRECTORY / f"{value_set_id}.json").read_text(encoding="utf-8")
        assert shipped == render(built_document), value_set_id


@needs_reference
def test_a_new_icd10cm_rule_in_the_reference_fails_the_check_until_it_is_declared(
    tmp_path, capsys
):
    terminology = reference()
    stroke = next(c for c in terminology["conditions"] if c["concept_id"] == "stroke_ischemic")
    stroke["icd10cm_match_rules"].append("I64 (if present)")
    assert check_exit_code(terminology, tmp_path) == 1
    assert "cannot build stroke" in capsys.readouterr().err


@needs_reference
def test_a_removed_unit_conversion_fails_the_check(tmp_path, capsys):
    terminology = copy.deepcopy(reference())
    magnesium = next(o for o in terminology["observations"] if o["concept_id"] == "magnesium")
    magnesium["conversions"] = [c for c in magnesium["conversions"] if c["from"] != "mg/dL"]
    assert check_exit_code(terminology, tmp_path) == 1
    assert "cannot build magnesium" in capsys.readouterr().err


def test_loop_thiazide_diuretics_match_furosemide_hctz_and_chlorthalidone():
    assert matches("loop-thiazide-diuretics", (RX, "4603", None)).how == "code"
    for hctz_product in ("310798", "197770", "429503"):
        assert matches("loop-thiazide-diuretics", (RX, hctz_product, None)).how == "code"
    assert matches("loop-thiazide-diuretics", text="Chlorthalidone 25 MG Oral Tablet").how == "text"


def test_spironolactone_alone_is_not_a_loop_or_thiazide_diuretic():
    for code in ("9997", "198222", "198223", "313096"):
        assert matches("loop-thiazide-diuretics", (RX, code, "spironolactone")) is None, code
    for text in ("spironolactone 25 MG Oral Tablet", "Aldactone", "CaroSpir 25 mg/5 mL"):
        assert matches("loop-thiazide-diuretics", text=text) is None, text


def test_a_thiazide_and_spironolactone_combination_counts_as_a_thiazide():
    # 198224 = hydrochlorothiazide 25 MG / spironolactone 25 MG: it contains a K-wasting diuretic
    assert matches("loop-thiazide-diuretics", (RX, "198224", None)).how == "code"


def test_cramp_drugs_ignore_magnesium_salts_of_other_drugs():
    for text in (
        "esomeprazole magnesium 40 MG Delayed Release Oral Capsule",
        "pitavastatin magnesium 2 MG Oral Tablet",
        "Magnesium stearate",
    ):
        assert matches("cramp-drugs", (RX, "999999", text), text=text) is None, text
    assert "magnesium" not in document("cramp-drugs")["text_terms"]


def test_cramp_drugs_match_magnesium_oxide_baclofen_quinine_and_cyclobenzaprine():
    # The reference has no verified magnesium oxide product code: its ingredient code and its
    # product name must match instead.
    assert matches("cramp-drugs", (RX, "6582", "magnesium oxide")).how == "code"
    assert matches("cramp-drugs", (RX, "999999", "Magnesium Oxide 400 MG Oral Tablet")).how == (
        "text"
    )
    assert matches("cramp-drugs", (RX, "1292", None)).how == "code"
    assert matches("cramp-drugs", (RX, "997010", None)).how == "code"
    assert matches("cramp-drugs", (RX, "828348", None)).how == "code"
    assert matches("cramp-drugs", (RX, "9068", "quinidine sulfate")) is None


def test_rls_drugs_match_gabapentin_enacarbil_products_without_an_ingredient_code():
    for scd in ("1101338", "1482820"):
        assert matches("rls-drugs", (RX, scd, None)).how == "code"
    assert matches("rls-drugs", text="Horizant 600 MG").how == "text"
    left_out = document("rls-drugs")["left_out"]
    assert [e["code"] for e in left_out] == [None]
    assert "gabapentin enacarbil" in left_out[0]["display"]


def test_rls_drugs_match_dopaminergic_and_alpha2delta_ingredients():
    for ingredient in ("25480", "187832", "6375", "746741", "72302", "722252"):
        assert matches("rls-drugs", (RX, ingredient, None)).how == "code", ingredient
    assert matches("rls-drugs", (RX, "2019", "carbidopa")) is None


def test_benzodiazepines_match_diazepam_and_clonazepam():
    assert matches("benzodiazepines", (RX, "3322", None)).how == "code"
    assert matches("benzodiazepines", (RX, "197527", None)).how == "code"
    assert matches("benzodiazepines", text="Valium 5 mg").how == "text"
    assert matches("benzodiazepines", (RX, "21949", "cyclobenzaprine")) is None


def test_stroke_matches_current_ischemic_and_hemorrhagic_stroke_codes():
    for code in ("I63.9", "I639", "i63.9", "I61.0", "I60.7", "I63.512"):
        assert matches("stroke", (ICD10CM, code, None)), code
    assert matches("stroke", (SCT, "422504002", None)).how == "code"
    assert matches("stroke", (SCT, "274100004", None)).how == "code"


def test_history_of_stroke_codes_are_not_a_current_stroke():
    history = [
        (ICD10CM, "I69.30", "Unspecified sequelae of cerebral infarction"),
        (ICD10CM, "Z86.73", "Personal history of transient ischemic attack (TIA), and cerebral "
         "infarction without residual deficits"),
        (SCT, "275526006", "History of cerebrovascular accident"),
    ]
    for coding in history:
        assert matches("stroke", coding) is None, coding
        assert matches("history-of-stroke", coding).how == "code", coding
    assert matches("stroke", (ICD10CM, "I62.9", "Nontraumatic intracranial hemorrhage")) is None
    assert matches("history-of-stroke", (ICD10CM, "I63.9", None)) is None


def test_cns_spasticity_conditions_match_ms_including_fy2026_codes_cp_and_cord_injury():
    for code in ("G35", "G35.A", "G35.C1", "G80.1", "G80.9", "S14.109A", "S24.101A",
                 "S34.109D", "G82.21", "G82.54"):
        assert matches("cns-spasticity-conditions", (ICD10CM, code, None)), code
    assert matches("cns-spasticity-conditions", (SCT, "24700007", None)).how == "code"
    for code in ("G95.89", "I63.9", "S14.2XXA"):
        assert matches("cns-spasticity-conditions", (ICD10CM, code, None)) is None, code


def test_leg_cramps_match_cramp_and_spasm_codes_but_not_spasticity():
    for code in ("R25.2", "R252", "G47.62", "M62.831"):
        assert matches("leg-cramps", (ICD10CM, code, None)), code
    for code in ("M62.838", "M62.830"):  # other sites and the back: not leg cramps
        assert matches("leg-cramps", (ICD10CM, code, None)) is None, code
    assert matches("leg-cramps", (SCT, "449918009", None)).how == "code"
    assert matches("leg-cramps", text="Nocturnal leg cramps").how == "text"
    assert matches("leg-cramps", (SCT, "221360009", "Spasticity")) is None
    assert matches("spasticity", (SCT, "221360009", None)).how == "code"
    assert matches("spasticity", (SCT, "449918009", "Cramp in lower leg")) is None


def test_restless_legs_match_rls_but_not_periodic_limb_movement_disorder():
    for code in ("G25.81", "G2581"):
        assert matches("restless-legs", (ICD10CM, code, None)), code
    assert matches("restless-legs", (SCT, "32914008", None)).how == "code"
    assert matches("restless-legs", text="Willis-Ekbom disease").how == "text"
    assert matches("restless-legs", (ICD10CM, "G47.61", "Periodic limb movement disorder")) is None
    assert matches("restless-legs", (SCT, "418763003", "Periodic limb movement disorder")) is None


def test_observation_sets_carry_their_loinc_codes_and_not_the_excluded_ones():
    assert {"2276-4", "20567-4"} <= codes("ferritin")
    assert {"19123-9", "2601-3"} <= codes("magnesium")
    assert "2597-3" not in codes("magnesium")
    assert "2597-3" in codes("magnesium", "left_out")
    assert {"2823-3", "6298-4"} <= codes("potassium")
    assert not {"51618-7", "29349-8"} & codes("potassium")
    assert {"51618-7", "29349-8"} <= codes("potassium", "left_out")
    assert {"2502-3", "14801-5"} <= codes("transferrin-saturation")
    assert {"17861-6", "2000-8"} <= codes("calcium-total")
    assert matches("ferritin", (LOINC, "20567-4", None)).how == "code"


@pytest.mark.parametrize("value_set_id", OBSERVATION_SETS)
def test_observation_sets_give_a_usable_unit_table_in_ucum_codes(value_set_id):
    shipped = document(value_set_id)
    normaliser = UnitNormaliser.from_document(shipped)
    assert normaliser.canonical_unit == shipped["canonical_unit"]
    assert {c["system"] for c in shipped["codes"]} == {LOINC}
    for entry in shipped["unit_conversions"]:
        for unit in (entry["from"], entry["to"]):
            assert "µ" not in unit and "mEq" not in unit and " " not in unit, unit
        assert entry["confidence"] and entry["source"]


def test_ferritin_in_pmol_per_litre_is_converted_at_2_247_pmol_per_ng():
    ferritin = UnitNormaliser.from_document(document("ferritin"))
    assert "pmol/L" in ferritin.known_units
    assert ferritin.normalise(224.7, "pmol/L") == pytest.approx(100, rel=1e-3)
    assert document("ferritin")["unit_conversions_left_out"] == []


def test_condition_prefix_provenance_names_the_rule_each_prefix_came_from():
    notes = document("stroke")["provenance"]["notes"]
    assert any("prefix I63 from stroke_ischemic match rule 'I63" in note for note in notes)
    assert any("'optionally I62" in note and "not used" in note for note in notes)
    assert document("stroke")["icd10cm_prefixes"] == ["I63", "I61", "I60"]
