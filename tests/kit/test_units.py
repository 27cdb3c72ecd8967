"""UCUM codes of FHIR quantities, and conversion into a value set's canonical unit."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from cds_service.kit.units import UCUM, UnitNormaliser, ucum_code
from hooks.valuesets import DIRECTORY


def quantity(value: Any = None, unit: str | None = None, system: str | None = None,
             code: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(value=value, unit=unit, system=system, code=code)


def shipped(value_set_id: str) -> UnitNormaliser:
    return UnitNormaliser.load(DIRECTORY / f"{value_set_id}.json")


def test_ucum_code_is_the_code_when_the_system_is_ucum_or_absent():
    assert ucum_code(quantity(1.7, "mg/dL", UCUM, "mg/dL")) == "mg/dL"
    assert ucum_code(quantity(1.7, None, None, "mg/dL")) == "mg/dL"
    assert ucum_code({"value": 1.7, "system": UCUM, "code": " meq/L "}) == "meq/L"


def test_ucum_code_ignores_a_code_from_another_system():
    assert ucum_code(quantity(1.7, "mg/dL", "http://lab.example/units", "MGDL"), {"mg/dL"}) is None


def test_ucum_code_takes_the_unit_label_only_when_it_is_a_known_ucum_code():
    assert ucum_code(quantity(1.4, "meq/L"), {"meq/L", "mmol/L"}) == "meq/L"
    assert ucum_code(quantity(1.4, "mEq/L"), {"meq/L", "mmol/L"}) is None
    assert ucum_code(quantity(40, "µg/L"), {"ug/L"}) is None
    assert ucum_code(quantity(1.4, "meq/L")) is None
    assert ucum_code(quantity(1.4, "mmol/L", UCUM, "  "), {"mmol/L"}) == "mmol/L"


def test_ucum_code_of_a_missing_quantity_or_unit_is_none():
    assert ucum_code(None) is None
    assert ucum_code(quantity(1.4), {"mmol/L"}) is None


def test_magnesium_in_mg_per_dl_and_meq_per_l_is_converted_to_mmol_per_l():
    magnesium = shipped("magnesium")
    assert magnesium.canonical_unit == "mmol/L"
    assert magnesium.normalise(1.7, "mg/dL") == pytest.approx(0.699, abs=0.001)
    assert magnesium.normalise(1.4, "meq/L") == pytest.approx(0.7)
    assert magnesium.normalise(Decimal("0.80"), "mmol/L") == pytest.approx(0.8)


def test_magnesium_with_a_human_label_mEq_per_l_is_not_converted():
    magnesium = shipped("magnesium")
    label_only = quantity(1.4, "mEq/L")
    assert ucum_code(label_only, magnesium.known_units) is None
    assert magnesium.normalise_quantity(label_only) is None
    assert magnesium.normalise(1.4, "mEq/L") is None
    assert magnesium.normalise_quantity(quantity(1.4, "mEq/L", UCUM, "meq/L")) == pytest.approx(0.7)


def test_ferritin_in_ng_per_ml_equals_ug_per_l_and_pmol_per_l_is_converted():
    ferritin = shipped("ferritin")
    assert ferritin.canonical_unit == "ug/L"
    assert ferritin.normalise(40, "ng/mL") == 40
    assert ferritin.normalise(40, "ug/L") == 40
    assert ferritin.normalise(89.88, "pmol/L") == pytest.approx(40, rel=1e-3)  # / 2.247


def test_transferrin_saturation_as_a_fraction_becomes_percent():
    saturation = shipped("transferrin-saturation")
    assert saturation.normalise(0.18, "1") == pytest.approx(18)
    assert saturation.normalise(0.18, "{ratio}") == pytest.approx(18)
    assert saturation.normalise(18, "%") == 18


def test_total_calcium_in_mg_per_dl_is_converted_to_mmol_per_l():
    calcium = shipped("calcium-total")
    assert calcium.normalise(8.0, "mg/dL") == pytest.approx(1.996)
    assert calcium.normalise(4.2, "meq/L") == pytest.approx(2.1)


def test_potassium_and_iron_units_convert():
    assert shipped("potassium").normalise(3.2, "meq/L") == pytest.approx(3.2)
    assert shipped("serum-iron").normalise(10.0, "umol/L") == pytest.approx(55.83)


def test_a_missing_or_unknown_unit_or_value_gives_none():
    magnesium = shipped("magnesium")
    assert magnesium.normalise(1.7, None) is None
    assert magnesium.normalise(1.7, "MG/DL") is None
    assert magnesium.normalise(None, "mg/dL") is None
    assert magnesium.normalise(float("nan"), "mg/dL") is None
    assert magnesium.normalise_quantity(quantity(1.7)) is None
    assert magnesium.normalise_quantity(None) is None


def test_the_normaliser_holds_no_units_of_its_own():
    document = {
        "id": "made-up",
        "canonical_unit": "g/L",
        "unit_conversions": [
            {"from": "g/L", "to": "g/L", "factor": 1.0},
            {"from": "g/dL", "to": "g/L", "factor": 10},
        ],
    }
    normaliser = UnitNormaliser.from_document(document)
    assert normaliser.known_units == frozenset({"g/L", "g/dL"})
    assert normaliser.normalise(4.0, "g/dL") == pytest.approx(40)
    assert normaliser.normalise(1.7, "mg/dL") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        normaliser.canonical_unit = "mg/L"  # type: ignore[misc]


@pytest.mark.parametrize(
    "change",
    [
        {"canonical_unit": None},
        {"unit_conversions": [{"from": "g/dL", "to": "g/L", "factor": 10}]},
        {"unit_conversions": [{"from": "g/L", "to": "g/L", "factor": 1.0},
                              {"from": "g/dL", "to": "mg/L", "factor": 10}]},
        {"unit_conversions": [{"from": "g/L", "to": "g/L", "factor": 1.0},
                              {"from": "g/L", "to": "g/L", "factor": 1.0}]},
        {"unit_conversions": [{"from": "g/L", "to": "g/L", "factor": 1.0},
                              {"from": "g/dL", "to": "g/L", "factor": "10"}]},
        {"unit_conversions": [{"from": "g/L", "to": "g/L", "factor": 1.0},
                              {"from": "g/dL", "to": "g/L", "factor": 0}]},
    ],
    ids=["no-canonical", "no-identity", "wrong-target", "duplicate", "text-factor", "zero"],
)
def test_a_malformed_unit_table_is_refused(change):
    document = {
        "id": "made-up",
        "canonical_unit": "g/L",
        "unit_conversions": [{"from": "g/L", "to": "g/L", "factor": 1.0}],
        **change,
    }
    with pytest.raises(ValueError):
        UnitNormaliser.from_document(document)


def test_every_shipped_observation_document_loads_as_a_normaliser():
    for path in sorted(DIRECTORY.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if "unit_conversions" in document:
            assert UnitNormaliser.from_document(document).known_units, path.name
