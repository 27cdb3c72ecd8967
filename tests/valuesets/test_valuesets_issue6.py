"""Value sets for the RLS, cramp-cause and condition rules (D1, A1, M1, S1, L1, P1, V1): what
each must and must not match, what was left out and why, and the builder features they use."""

from __future__ import annotations

import copy

import pytest

from cds_service.kit.terminology import ICD10CM
from cds_service.kit.units import UnitNormaliser
from hooks.valuesets.build import DERIVED
from tests.support.valuesets import (
    ATC,
    LOINC,
    RX,
    SCT,
    check_exit_code,
    document,
    matches,
    needs_reference,
    reference,
)

NEW_DERIVED = [
    "dopaminergic-drugs",
    "alpha2delta-ligands",
    "dopamine-blockers",
    "diuretics",
    "statins",
    "beta-blockers",
    "baclofen",
    "esrd",
    "dialysis",
    "cirrhosis",
    "pad",
    "diabetes",
    "vitamin-b6",
]








def by_code(value_set_id: str, system: str, code: str) -> bool:
    found = matches(value_set_id, (system, code, None))
    return found is not None and found.how == "code"


def by_text(value_set_id: str, text: str) -> bool:
    found = matches(value_set_id, text=text)
    return found is not None and found.how == "text"


def left_out(value_set_id: str) -> dict[str | None, str]:
    return {entry["code"]: entry["reason"] for entry in document(value_set_id)["left_out"]}




def test_the_new_value_sets_are_declared_and_shipped():
    assert set(NEW_DERIVED) <= set(DERIVED)
    for value_set_id in [*NEW_DERIVED, "parkinsons-disease"]:
        shipped = document(value_set_id)
        assert shipped["id"] == value_set_id
        assert shipped["provenance"] and shipped["purpose"]
    assert "parkinsons-disease" not in DERIVED  # curated by hand, never written by the builder


def test_no_new_value_set_carries_a_blank_note_or_term():
    for value_set_id in [*NEW_DERIVED, "parkinsons-disease"]:
        shipped = document(value_set_id)
        assert all(note.strip() for note in shipped["provenance"]["notes"]), value_set_id
        assert all(term.strip() for term in shipped["text_terms"]), value_set_id


# D1: dopaminergic drugs


def test_dopaminergic_drugs_match_levodopa_and_the_dopamine_agonists():
    for ingredient in ("6375", "746741", "72302", "722252"):
        assert by_code("dopaminergic-drugs", RX, ingredient), ingredient
    assert by_code("dopaminergic-drugs", RX, "314208")  # ropinirole 1 MG Oral Tablet
    assert by_code("dopaminergic-drugs", ATC, "N04BC05")
    for text in (
        "carbidopa/levodopa 25/100 Oral Tablet",
        "Carbidopa-Levodopa ER 50-200",
        "carbidopa 25 MG / levodopa 100 MG Oral Tablet",
        "Sinemet CR",
        "Mirapex 0.125 mg",
        "Neupro 1 mg/24 hr patch",
    ):
        assert by_text("dopaminergic-drugs", text), text


def test_carbidopa_alone_is_not_a_dopaminergic_drug():
    assert matches("dopaminergic-drugs", (RX, "2019", "carbidopa")) is None
    for text in ("carbidopa 25 MG Oral Tablet", "Lodosyn 25 mg"):
        assert matches("dopaminergic-drugs", text=text) is None, text
    assert "dopaminergic" in left_out("dopaminergic-drugs")["2019"]
    assert "carbidopa" not in document("dopaminergic-drugs")["text_terms"]


def test_dopaminergic_drugs_leave_the_alpha2delta_ligands_out():
    for ingredient in ("25480", "187832"):
        assert matches("dopaminergic-drugs", (RX, ingredient, None)) is None
    assert matches("dopaminergic-drugs", text="Horizant 600 MG") is None


def test_alpha2delta_ligands_match_gabapentin_enacarbil_by_its_products_and_names():
    for code in ("25480", "187832", "1101338", "1482820", "1806380", "1988974"):
        assert by_code("alpha2delta-ligands", RX, code), code
    for text in ("Horizant 600 MG Extended Release Tablet", "gabapentin enacarbil", "Lyrica"):
        assert by_text("alpha2delta-ligands", text), text
    unverified = document("alpha2delta-ligands")["left_out"]
    assert [entry["code"] for entry in unverified] == [None]
    assert "gabapentin enacarbil" in unverified[0]["display"]
    assert matches("alpha2delta-ligands", (RX, "6375", "levodopa")) is None


# A1: dopamine blockers


def test_dopamine_blockers_match_antipsychotics_and_metoclopramide():
    assert by_code("dopamine-blockers", RX, "5093")  # haloperidol
    assert by_code("dopamine-blockers", RX, "6915")  # metoclopramide
    assert by_code("dopamine-blockers", ATC, "A03FA01")
    assert by_code("dopamine-blockers", RX, "1719646")  # 1 ML haloperidol 5 MG/ML Injection
    for text in ("Haldol 5 mg", "haloperidol decanoate", "Reglan 10 MG Oral Tablet",
                 "metoclopramide 10 MG Oral Tablet", "Latuda 40 mg", "quetiapine 25 MG"):
        assert by_text("dopamine-blockers", text), text


def test_every_dopamine_blocking_antiemetic_is_a_member():
    """Safety-gates issue: A1 covers every antiemetic that blocks dopamine receptors, not
    metoclopramide alone."""
    for code, text in (
        ("8704", "prochlorperazine 10 MG Oral Tablet"),
        ("8745", "promethazine hydrochloride 25 MG Oral Tablet"),
        ("3648", "droperidol 2.5 MG/ML Injection"),
        ("38685", "trimethobenzamide 300 MG Oral Capsule"),
    ):
        assert matches("dopamine-blockers", (RX, code, text), text=text), code
    for text in ("prochlorperazine 10 mg", "promethazine 25 mg", "droperidol"):
        assert matches("dopamine-blockers", text=text), text
    assert matches("dopamine-blockers", text="ondansetron 4 mg") is None  # a 5-HT3 blocker


# M1: diuretics, statins, beta-blockers


def test_diuretics_include_spironolactone_which_loop_thiazide_diuretics_still_do_not():
    for code in ("9997", "198222", "198223"):
        assert by_code("diuretics", RX, code), code
        assert matches("loop-thiazide-diuretics", (RX, code, "spironolactone")) is None, code
    for text in ("Aldactone 25 mg", "CaroSpir 25 mg/5 mL"):
        assert by_text("diuretics", text), text
        assert matches("loop-thiazide-diuretics", text=text) is None, text


def test_diuretics_match_loop_thiazide_and_thiazide_like_diuretics():
    for code in ("4603", "1808", "38413", "5487", "2409", "310429"):
        assert by_code("diuretics", RX, code), code
    assert by_text("diuretics", "Chlorthalidone 25 MG Oral Tablet")
    assert matches("diuretics", (ATC, "G01AE10", None)) is None
    assert "G01AE10" in left_out("diuretics")
    assert matches("diuretics", (RX, "6918", "metoprolol")) is None


def test_statins_match_every_statin_and_ignore_other_magnesium_salts():
    for code in ("83367", "36567", "301542", "42463", "6472", "41127", "861634"):
        assert by_code("statins", RX, code), code
    assert by_code("statins", ATC, "C10AA01")
    assert by_text("statins", "pitavastatin magnesium 2 MG Oral Tablet")
    assert matches("statins", text="esomeprazole magnesium 40 MG") is None
    assert matches("statins", (RX, "4603", "furosemide")) is None


def test_beta_blockers_keep_ingredients_and_leave_the_ophthalmic_atc_codes_out():
    for code in ("6918", "1202", "20352", "8787", "10600", "2116", "1813", "10824", "49737"):
        assert by_code("beta-blockers", RX, code), code
    assert by_code("beta-blockers", RX, "866514")  # metoprolol tartrate 50 MG Oral Tablet
    assert by_code("beta-blockers", ATC, "C07AA06")  # systemic timolol
    for atc in ("S01ED01", "S01ED02"):
        assert matches("beta-blockers", (ATC, atc, None)) is None, atc
        assert "ophthalmolog" in left_out("beta-blockers")[atc]
    assert set(left_out("beta-blockers")) == {"S01ED01", "S01ED02"}
    shipped = document("beta-blockers")
    assert not [c for c in shipped["codes"] if "ophthalmic" in (c["display"] or "").lower()]
    assert any("dose form" in note for note in shipped["provenance"]["notes"])
    assert matches("beta-blockers", text="amlodipine 5 MG Oral Tablet") is None


def test_baclofen_matches_baclofen_only():
    assert by_code("baclofen", RX, "1292")
    assert by_code("baclofen", ATC, "M03BX01")
    for text in ("baclofen 10 MG Oral Tablet", "Ozobax 5 mg/5 mL", "Lioresal intrathecal"):
        assert by_text("baclofen", text), text
    for code, text in (("57258", "tizanidine"), ("3105", "dantrolene"), ("21949", "Flexeril")):
        assert matches("baclofen", (RX, code, text)) is None, code


# S1: ESRD and dialysis


def test_esrd_matches_esrd_and_ckd_stage_5():
    for code in ("N18.6", "N186", "N18.5"):
        assert by_code("esrd", ICD10CM, code), code
    for code in ("46177005", "433146000", "236435004", "236434000"):
        assert by_code("esrd", SCT, code), code
    assert by_text("esrd", "End-stage renal disease")
    for code in ("N18.4", "N18.30", "Z99.2"):
        assert matches("esrd", (ICD10CM, code, None)) is None, code


def test_dialysis_matches_current_dependence_but_not_a_history_of_dialysis():
    for code in ("Z99.2", "Z992"):
        assert by_code("dialysis", ICD10CM, code), code
    for code in ("428982002", "236435004"):
        assert by_code("dialysis", SCT, code), code
    assert by_text("dialysis", "Dependence on renal dialysis")
    assert matches("dialysis", (SCT, "161693006", "History of renal dialysis")) is None
    assert matches("dialysis", text="History of renal dialysis") is None
    assert "History of renal dialysis" in left_out("dialysis")["161693006"]
    for code in ("Z49.31", "N18.6"):
        assert matches("dialysis", (ICD10CM, code, None)) is None, code


# L1: cirrhosis


def test_cirrhosis_matches_the_cirrhosis_categories_and_codes():
    for code in ("K74.60", "K74.69", "K70.30", "K70.31", "K74.3", "K74.4", "K74.5", "K71.7",
                 "K7460"):
        assert by_code("cirrhosis", ICD10CM, code), code
    for code in ("19943007", "420054005", "31712002", "123717006"):
        assert by_code("cirrhosis", SCT, code), code
    assert by_text("cirrhosis", "Cirrhosis of liver")
    assert by_text("cirrhosis", "Primary biliary cirrhosis")


def test_cirrhosis_does_not_match_other_liver_disease():
    for code, display in (
        ("K76.0", "Fatty (change of) liver, not elsewhere classified"),
        ("K70.0", "Alcoholic fatty liver"),
        ("K73.9", "Chronic hepatitis, unspecified"),
        ("K76.6", "Portal hypertension"),
        ("K74.02", "Hepatic fibrosis, advanced fibrosis"),
        ("K75.0", "Abscess of liver"),
    ):
        assert matches("cirrhosis", (ICD10CM, code, display)) is None, code
    for code, display in (
        ("328383001", "Chronic liver disease"),
        ("128302006", "Chronic hepatitis C"),
        ("88518009", "Wilson's disease"),
    ):
        assert matches("cirrhosis", (SCT, code, display)) is None, code
    assert all(p in ("K74.6", "K70.3", "K74.3", "K74.4", "K74.5")
               for p in document("cirrhosis")["icd10cm_prefixes"])
    assert any("K70-K77" in note and "not used" in note
               for note in document("cirrhosis")["provenance"]["notes"])


@needs_reference
def test_every_reference_cirrhosis_code_is_either_kept_as_cirrhosis_or_left_out():
    concept = next(c for c in reference()["conditions"]
                   if c["concept_id"] == "cirrhosis_liver_disease")
    wanted = {(c["system"], c["code"]) for c in concept["codes"] + concept["value_set_members"]}
    shipped = document("cirrhosis")
    kept = {(c["system"], c["code"]) for c in shipped["codes"]}
    dropped = {(c["system"], c["code"]) for c in shipped["left_out"]}
    assert kept | dropped == wanted
    assert not kept & dropped
    for entry in shipped["codes"]:
        assert "cirrhosis" in entry["display"].lower() or entry["code"] == "31712002", entry


# P1: peripheral artery disease


def test_pad_matches_the_extremity_atherosclerosis_prefixes():
    for code in ("I73.9", "I70.209", "I70.213", "I70.25", "I70.399", "I70.429", "I70.519",
                 "I70.629", "I70.799", "I70.92", "I7092"):
        assert by_code("pad", ICD10CM, code), code
    for code in ("399957001", "63491006"):
        assert by_code("pad", SCT, code), code
    assert by_text("pad", "Peripheral arterial disease")
    assert by_text("pad", "Intermittent claudication of left leg")
    assert document("pad")["icd10cm_prefixes"] == [
        "I73.9", "I70.2", "I70.3", "I70.4", "I70.5", "I70.6", "I70.7", "I70.92",
    ]


def test_pad_does_not_match_other_atherosclerosis_or_neurogenic_claudication():
    for code in ("I70.0", "I70.1", "I70.8", "I70.90", "I70.91", "I73.0"):
        assert matches("pad", (ICD10CM, code, None)) is None, code
    assert matches(
        "pad", (ICD10CM, "M48.062", "Spinal stenosis, lumbar region with neurogenic claudication")
    ) is None


# V1: diabetes and vitamin B6


def test_diabetes_matches_e08_to_e13():
    for code in ("E11.9", "E119", "E10.9", "E13.9", "E08.9", "E09.9", "E11.65"):
        assert by_code("diabetes", ICD10CM, code), code
    for code in ("73211009", "44054006", "46635009"):
        assert by_code("diabetes", SCT, code), code
    assert by_text("diabetes", "Type 2 diabetes mellitus")
    assert "E12" not in document("diabetes")["icd10cm_prefixes"]


def test_diabetes_in_pregnancy_and_look_alikes_do_not_match():
    for code, display in (
        ("O24.4", "Gestational diabetes mellitus"),
        ("O24.410", "Gestational diabetes mellitus in pregnancy, diet controlled"),
        ("O24.419", None),
        ("O24.111", None),
        ("R73.03", "Prediabetes"),
        ("E23.2", "Diabetes insipidus"),
        ("Z83.3", "Family history of diabetes mellitus"),
        ("Z13.1", "Encounter for screening for diabetes mellitus"),
    ):
        assert matches("diabetes", (ICD10CM, code, display)) is None, code
    assert not any(p.startswith("O") for p in document("diabetes")["icd10cm_prefixes"])


def test_vitamin_b6_carries_its_loinc_codes_and_converts_to_nmol_per_litre():
    shipped = document("vitamin-b6")
    assert {c["code"] for c in shipped["codes"]} == {"62236-5", "39786-9", "30552-4"}
    for code in ("62236-5", "39786-9"):
        assert by_code("vitamin-b6", LOINC, code), code
    assert matches("vitamin-b6", (LOINC, "2132-9", "Cobalamin (Vitamin B12)")) is None
    assert shipped["text_terms"] == []
    assert matches("vitamin-b6", text="Vitamin B6 (pyridoxal phosphate)") is None
    units = UnitNormaliser.from_document(shipped)
    assert units.canonical_unit == "nmol/L"
    assert units.factor("nmol/L") == 1.0
    assert units.factor("ug/L") == pytest.approx(4.046)
    assert units.factor("ng/mL") == pytest.approx(4.046)
    assert units.normalise(10, "ng/mL") == pytest.approx(40.46)
    assert units.factor("mg/dL") is None
    by_unit = {entry["from"]: entry for entry in shipped["unit_conversions"]}
    assert by_unit["ng/mL"]["confidence"] == "from-memory-unverified"
    assert "'ng/mL' -> 'ug/L'" in by_unit["ng/mL"]["source"]
    assert "'ug/L' -> 'nmol/L'" in by_unit["ng/mL"]["source"]
    assert shipped["unit_conversions_left_out"] == []


# D1: Parkinson's disease (hand-curated)


def test_parkinsons_disease_matches_the_disease_by_name():
    for text in (
        "Parkinson's disease",
        "Parkinson\u2019s disease",
        "Parkinson disease",
        "Idiopathic parkinsonism",
        "Paralysis agitans",
    ):
        assert by_text("parkinsons-disease", text), text
    assert matches("parkinsons-disease", (SCT, "49049000", "Parkinson's disease (disorder)"))


def test_parkinsonism_from_other_causes_is_not_parkinsons_disease():
    for text in ("Drug-induced parkinsonism", "Parkinsonism", "Vascular parkinsonism",
                 "Secondary parkinsonism", "Restless legs syndrome"):
        assert matches("parkinsons-disease", text=text) is None, text


def test_parkinsons_ships_only_the_verified_snomed_code_and_leaves_g20_out():
    shipped = document("parkinsons-disease")
    assert [c["code"] for c in shipped["codes"]] == ["49049000"]
    assert "search tool" in shipped["codes"][0]["source"]
    assert shipped["icd10cm_prefixes"] == []
    assert matches("parkinsons-disease", (SCT, "49049000", None)) is not None
    assert set(left_out("parkinsons-disease")) == {"G20"}
    assert shipped["provenance"]["curated"].startswith("by hand")


# builder features used by these sets


@needs_reference
def test_a_left_out_medication_that_leaves_the_reference_fails_the_check(tmp_path, capsys):
    terminology = copy.deepcopy(reference())
    terminology["medications"] = [
        m for m in terminology["medications"] if m["concept_id"] != "carbidopa"
    ]
    assert check_exit_code(terminology, tmp_path) == 1
    assert "cannot build dopaminergic-drugs" in capsys.readouterr().err


@needs_reference
def test_a_removed_step_of_a_chained_conversion_fails_the_check(tmp_path, capsys):
    terminology = copy.deepcopy(reference())
    b6 = next(o for o in terminology["observations"] if o["concept_id"] == "vitamin_b6")
    b6["conversions"] = [c for c in b6["conversions"] if c["from"] != "ng/mL"]
    assert check_exit_code(terminology, tmp_path) == 1
    assert "cannot build vitamin-b6" in capsys.readouterr().err


@needs_reference
def test_the_history_of_dialysis_exclusion_is_checked_against_the_reference(tmp_path, capsys):
    terminology = copy.deepcopy(reference())
    dialysis = next(c for c in terminology["conditions"]
                    if c["concept_id"] == "dialysis_dependence")
    dialysis["codes"] = [c for c in dialysis["codes"] if c["code"] != "161693006"]
    assert check_exit_code(terminology, tmp_path) == 1
    assert "cannot build dialysis" in capsys.readouterr().err
