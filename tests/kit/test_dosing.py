"""Generic FHIR R4 dosing: order durations, daily doses in mg, product strengths."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.kit import GTS_ABBREVIATION as GTS
from cds_service.kit import UCUM
from cds_service.kit.dosing import (
    DailyDose,
    Strength,
    daily_dose,
    duration_estimates,
    intended_duration,
    strength_from_concept,
    strength_from_medication,
)
from cds_service.kit.parsing import parse_resource

PRODUCT = "cyclobenzaprine hydrochloride 10 MG Oral Tablet"


def order(**elements: Any) -> Any:
    """A parsed draft MedicationRequest carrying `elements`."""
    raw = {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": PRODUCT},
        **elements,
    }
    return parse_resource(raw)


def quantity(value: float, code: str | None = None, unit: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"value": value}
    if code is not None:
        found |= {"system": UCUM, "code": code}
    if unit is not None:
        found["unit"] = unit
    return found


def tablets(value: float) -> dict[str, Any]:
    return quantity(value, "{tablet}", "tablet")


def mg(value: float) -> dict[str, Any]:
    return quantity(value, "mg", "mg")


def every(frequency: int, period: float, unit: str, **repeat: Any) -> dict[str, Any]:
    return {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit, **repeat}}


def coded_timing(code: str, system: str = GTS) -> dict[str, Any]:
    return {"code": {"coding": [{"system": system, "code": code}]}}


def dosage(dose: dict[str, Any] | None = None, timing: dict[str, Any] | None = None, **more: Any):
    found: dict[str, Any] = dict(more)
    if dose is not None:
        found["doseAndRate"] = [{"doseQuantity": dose}]
    if timing is not None:
        found["timing"] = timing
    return found


def concept(text: str | None = None, display: str | None = None) -> Any:
    value: dict[str, Any] = {}
    if text is not None:
        value["text"] = text
    if display is not None:
        value["coding"] = [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "1",
                "display": display,
            }
        ]
    return order(medicationCodeableConcept=value).medicationCodeableConcept


TEN_MG = Strength(10.0, "10 mg per unit, from the product name")


# ------------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("value", "code", "days", "basis"),
    [
        (30, "d", 30.0, "expected supply 30 days"),
        (4, "wk", 28.0, "expected supply 4 wk = 28 days"),
        (2, "mo", 60.0, "expected supply 2 mo = 60 days"),
        (36, "h", 1.5, "expected supply 36 h = 1.5 days"),
    ],
)
def test_expected_supply_is_converted_to_days(value, code, days, basis):
    request = order(dispenseRequest={"expectedSupplyDuration": quantity(value, code)})
    [estimate] = duration_estimates(request)
    assert estimate.days == pytest.approx(days)
    assert estimate.basis == basis  # clinician words: no FHIR path


def test_expected_supply_is_multiplied_by_the_fills_and_says_so():
    request = order(
        dispenseRequest={
            "expectedSupplyDuration": quantity(30, "d", "days"),
            "numberOfRepeatsAllowed": 2,
        }
    )
    [estimate] = duration_estimates(request)
    assert estimate.days == 90
    assert "expected supply 30 days" in estimate.basis
    assert "3 fills (2 refills)" in estimate.basis


def test_zero_refills_is_one_fill():
    request = order(
        dispenseRequest={"expectedSupplyDuration": quantity(14, "d"), "numberOfRepeatsAllowed": 0}
    )
    [estimate] = duration_estimates(request)
    assert estimate.days == 14
    assert "1 fill (0 refills)" in estimate.basis


@pytest.mark.parametrize(("unit", "days"), [("days", 10.0), ("Weeks", 70.0), ("month", 300.0)])
def test_spelled_out_unit_is_read_when_there_is_no_code(unit, days):
    request = order(dispenseRequest={"expectedSupplyDuration": quantity(10, unit=unit)})
    assert [e.days for e in duration_estimates(request)] == [days]


@pytest.mark.parametrize(
    "duration",
    [
        quantity(30, "xyz", "days"),  # an unknown code wins over a readable text
        quantity(1, "a"),  # years are not read
        quantity(3, unit="fortnights"),
        {"value": 30, "system": "http://snomed.info/sct", "code": "d"},
    ],
)
def test_unknown_supply_unit_is_skipped(duration):
    request = order(dispenseRequest={"expectedSupplyDuration": duration})
    assert duration_estimates(request) == []
    assert intended_duration(request) is None


def test_validity_period_counts_both_ends():
    request = order(
        dispenseRequest={"validityPeriod": {"start": "2026-01-01", "end": "2026-01-30"}}
    )
    [estimate] = duration_estimates(request)
    assert estimate.days == 30
    assert estimate.basis == "validity period 2026-01-01 to 2026-01-30 = 30 days"
    assert "dispenseRequest" not in estimate.basis


def test_validity_period_with_times_counts_calendar_days():
    period = {"start": "2026-01-01T09:00:00Z", "end": "2026-01-07T17:00:00Z"}
    request = order(dispenseRequest={"validityPeriod": period})
    assert [e.days for e in duration_estimates(request)] == [7]


@pytest.mark.parametrize(
    "period",
    [
        {"start": "2026-01-01"},
        {"start": "2026-01", "end": "2026-03"},
        {"start": "2026-02-01", "end": "2026-01-01"},
    ],
)
def test_open_ended_partial_or_reversed_period_is_skipped(period):
    request = order(dispenseRequest={"validityPeriod": period})
    assert duration_estimates(request) == []


def test_bounds_duration_gives_an_estimate():
    timing = every(3, 1, "d", boundsDuration=quantity(2, "wk"))
    request = order(dosageInstruction=[dosage(timing=timing)])
    [estimate] = duration_estimates(request)
    assert estimate.days == 14
    assert estimate.basis == "dosage runs for 2 wk = 14 days"
    assert "dosageInstruction" not in estimate.basis


def test_bounds_period_gives_an_estimate():
    timing = every(3, 1, "d", boundsPeriod={"start": "2026-03-01", "end": "2026-03-10"})
    request = order(dosageInstruction=[dosage(timing=timing)])
    [estimate] = duration_estimates(request)
    assert estimate.days == 10
    assert estimate.basis == "dosage runs for 2026-03-01 to 2026-03-10 = 10 days"
    assert "boundsPeriod" not in estimate.basis


def test_bounds_of_a_later_dosage_instruction_say_which_instruction():
    timing = every(3, 1, "d", boundsDuration=quantity(4, "wk"))
    request = order(dosageInstruction=[dosage(timing=every(3, 1, "d")), dosage(timing=timing)])
    [estimate] = duration_estimates(request)
    assert estimate.days == 28
    assert estimate.basis == "dosage runs for 4 wk = 28 days (dosage instruction 2)"


def test_quantity_over_daily_tablets_is_multiplied_by_the_fills():
    request = order(
        dispenseRequest={"quantity": tablets(90), "numberOfRepeatsAllowed": 1},
        dosageInstruction=[dosage(tablets(1), coded_timing("TID"))],
    )
    [estimate] = duration_estimates(request)
    assert estimate.days == 60
    assert "dispense quantity 90 tablet at 3 tablet/day" in estimate.basis
    assert "2 fills (1 refill)" in estimate.basis


def test_quantity_over_a_split_regimen_uses_the_whole_daily_amount():
    request = order(
        dispenseRequest={"quantity": tablets(45)},
        dosageInstruction=[
            dosage(tablets(1), every(2, 1, "d")),
            dosage(tablets(1), coded_timing("BED")),
        ],
    )
    assert [e.days for e in duration_estimates(request)] == [15]


@pytest.mark.parametrize(
    "dispensed",
    [mg(300), quantity(30, unit="tablet"), quantity(30, "{capsule}", "capsule")],
)
def test_quantity_in_another_unit_than_the_dose_is_skipped(dispensed):
    request = order(
        dispenseRequest={"quantity": dispensed},
        dosageInstruction=[dosage(tablets(1), coded_timing("TID"))],
    )
    assert duration_estimates(request) == []


def test_quantity_without_a_computable_daily_amount_is_skipped():
    request = order(
        dispenseRequest={"quantity": tablets(30)},
        dosageInstruction=[dosage(tablets(1))],
    )
    assert duration_estimates(request) == []


def test_estimates_come_in_the_order_r4_carries_them():
    request = order(
        dispenseRequest={
            "expectedSupplyDuration": quantity(7, "d"),
            "validityPeriod": {"start": "2026-01-01", "end": "2026-01-10"},
            "quantity": tablets(30),
        },
        dosageInstruction=[dosage(tablets(1), every(1, 1, "d", boundsDuration=quantity(5, "d")))],
    )
    assert [e.days for e in duration_estimates(request)] == [7, 10, 5, 30]


def test_the_longest_estimate_is_the_intended_duration():
    request = order(
        dispenseRequest={
            "expectedSupplyDuration": quantity(14, "d"),
            "quantity": tablets(90),
        },
        dosageInstruction=[dosage(tablets(1), coded_timing("TID"))],
    )
    intended = intended_duration(request)
    assert intended is not None
    assert intended.days == 30
    assert intended.basis.startswith("dispense quantity 90 tablet at 3 tablet/day")
    assert "dispenseRequest" not in intended.basis


def test_a_tie_keeps_the_first_estimate():
    request = order(
        dispenseRequest={
            "expectedSupplyDuration": quantity(10, "d"),
            "validityPeriod": {"start": "2026-01-01", "end": "2026-01-10"},
        }
    )
    intended = intended_duration(request)
    assert intended is not None
    assert intended.basis == "expected supply 10 days"


def test_nothing_computable_gives_no_estimates_and_no_duration():
    request = order(
        dispenseRequest={"numberOfRepeatsAllowed": 3},
        dosageInstruction=[dosage(mg(10), coded_timing("TID"))],
    )
    assert duration_estimates(request) == []
    assert intended_duration(request) is None


# ----------------------------------------------------------------------------------- daily dose


def dose_of(*dosages: dict[str, Any], strength: Strength | None = None) -> DailyDose | None:
    return daily_dose(order(dosageInstruction=list(dosages)), strength)


def test_10_mg_three_times_a_day_by_frequency_and_period_is_30_mg():
    found = dose_of(dosage(mg(10), every(3, 1, "d")))
    assert found is not None
    assert (found.amount, found.unit) == (30, "mg")
    assert found.basis == "10 mg x 3/day (3 per 1 d) = 30 mg/day"


def test_timing_code_tid_is_three_administrations_a_day():
    found = dose_of(dosage(mg(10), coded_timing("TID")))
    assert found is not None
    assert found.amount == 30
    assert "(TID)" in found.basis


@pytest.mark.parametrize(
    ("code", "amount"), [("QD", 10), ("BID", 20), ("QID", 40), ("QOD", 5), ("Q6H", 40)]
)
def test_timing_codes_give_their_administrations_a_day(code, amount):
    found = dose_of(dosage(mg(10), coded_timing(code)))
    assert found is not None
    assert found.amount == pytest.approx(amount)


def test_timing_code_only_in_text_or_another_system_is_not_read():
    assert dose_of(dosage(mg(10), {"code": {"text": "TID"}})) is None
    assert dose_of(dosage(mg(10), coded_timing("TID", system="http://example.org/sig"))) is None


def test_once_every_8_hours_is_three_a_day():
    found = dose_of(dosage(mg(10), every(1, 8, "h")))
    assert found is not None
    assert found.amount == pytest.approx(30)
    assert "1 per 8 h" in found.basis


def test_structured_repeat_is_preferred_over_the_code():
    timing = {**every(2, 1, "d"), **coded_timing("TID")}
    found = dose_of(dosage(mg(10), timing))
    assert found is not None
    assert found.amount == 20


def test_two_tablets_tid_with_a_10_mg_strength_is_60_mg():
    strength = strength_from_concept(concept(PRODUCT))
    found = dose_of(dosage(tablets(2), coded_timing("TID")), strength=strength)
    assert found is not None
    assert found.amount == 60
    assert "x 10 mg" in found.basis
    assert PRODUCT in found.basis


def test_dose_range_uses_the_high_end_and_says_so():
    dose_range = {"doseAndRate": [{"doseRange": {"low": mg(5), "high": mg(10)}}]}
    found = dose_of(dosage(timing=every(3, 1, "d"), **dose_range))
    assert found is not None
    assert found.amount == 30
    assert "the top of the dose range" in found.basis


def test_two_dosage_instructions_are_summed():
    found = dose_of(
        dosage(mg(10), coded_timing("BID")),
        dosage(mg(20), coded_timing("BED")),
    )
    assert found is not None
    assert found.amount == 40
    assert found.basis.endswith("= 40 mg/day")


def test_sequential_dosage_instructions_count_the_highest_phase():
    found = dose_of(
        dosage(mg(5), coded_timing("TID"), sequence=1),
        dosage(mg(10), coded_timing("TID"), sequence=2),
    )
    assert found is not None
    assert found.amount == 30
    assert "then" in found.basis
    assert "the highest phase" in found.basis


def test_frequency_max_is_used():
    found = dose_of(dosage(mg(10), every(2, 1, "d", frequencyMax=4)))
    assert found is not None
    assert found.amount == 40
    assert "up to 4 per 1 d" in found.basis


def test_as_needed_with_a_schedule_counts_the_scheduled_maximum():
    found = dose_of(dosage(mg(10), every(1, 6, "h"), asNeededBoolean=True))
    assert found is not None
    assert found.amount == pytest.approx(40)
    assert found.basis.startswith("as needed")


def test_as_needed_with_only_max_dose_per_period_uses_it_as_the_daily_maximum():
    maximum = {"numerator": mg(15), "denominator": quantity(12, "h")}
    found = dose_of(dosage(asNeededBoolean=True, maxDosePerPeriod=maximum))
    assert found is not None
    assert found.amount == pytest.approx(30)
    assert "maximum 15 mg per 12 h" in found.basis
    assert found.basis.startswith("as needed")


def test_max_dose_per_period_in_tablets_uses_the_strength():
    maximum = {"numerator": tablets(3), "denominator": quantity(1, unit="day")}
    found = dose_of(dosage(asNeededBoolean=True, maxDosePerPeriod=maximum), strength=TEN_MG)
    assert found is not None
    assert found.amount == 30


@pytest.mark.parametrize(
    ("dose", "amount"),
    [
        (quantity(0.5, "g", "g"), 1500),
        (quantity(500, "ug", "ug"), 1.5),
        (quantity(2, unit="mcg"), 0.006),
    ],
)
def test_grams_and_micrograms_are_converted_to_mg(dose, amount):
    found = dose_of(dosage(dose, coded_timing("TID")))
    assert found is not None
    assert found.amount == pytest.approx(amount)
    assert found.unit == "mg"


def test_count_unit_without_a_strength_gives_none():
    assert dose_of(dosage(tablets(2), coded_timing("TID"))) is None


@pytest.mark.parametrize("dose", [quantity(5, "mL", "mL"), quantity(1, unit="puff")])
def test_dose_in_another_unit_gives_none_even_with_a_strength(dose):
    assert dose_of(dosage(dose, coded_timing("TID")), strength=TEN_MG) is None


def test_missing_timing_gives_none():
    assert dose_of(dosage(mg(10))) is None


def test_timing_without_a_period_unit_gives_none():
    assert dose_of(dosage(mg(10), {"repeat": {"frequency": 3, "period": 1}})) is None


def test_missing_dose_gives_none():
    assert dose_of(dosage(timing=coded_timing("TID"))) is None
    assert daily_dose(order()) is None


def test_one_unreadable_instruction_makes_the_total_none():
    assert dose_of(dosage(mg(10), coded_timing("TID")), dosage(mg(10))) is None


# ------------------------------------------------------------------------------------- strength


@pytest.mark.parametrize(
    ("name", "amount_mg"),
    [
        (PRODUCT, 10.0),
        ("5 MG", 5.0),
        ("cyclobenzaprine hydrochloride 7.5 MG Oral Tablet", 7.5),
        ("24 HR pregabalin 165 MG Extended Release Oral Tablet", 165.0),
        ("levothyroxine sodium 0.025 MG Oral Tablet", 0.025),
    ],
)
def test_strength_is_read_from_a_single_strength_name(name, amount_mg):
    strength = strength_from_concept(concept(name))
    assert strength is not None
    assert strength.amount_mg == pytest.approx(amount_mg)
    assert name in strength.basis


def test_mcg_strength_is_converted_to_mg():
    strength = strength_from_concept(concept("levothyroxine sodium 25 MCG Oral Tablet"))
    assert strength is not None
    assert strength.amount_mg == pytest.approx(0.025)
    assert "25 MCG" in strength.basis


def test_strength_is_read_from_a_coding_display_when_the_text_has_none():
    strength = strength_from_concept(concept("Flexeril", display=PRODUCT))
    assert strength is not None
    assert strength.amount_mg == 10


@pytest.mark.parametrize(
    "name",
    [
        "hydrochlorothiazide 25 MG / spironolactone 25 MG Oral Tablet",
        "furosemide 10 MG/ML Oral Solution",
        "nitroglycerin 0.4 MG/HR Transdermal System",
        "insulin glargine 100 UNT/ML Injectable Solution",
        "cyclobenzaprine",
    ],
)
def test_combination_concentration_or_unstated_strength_gives_none(name):
    assert strength_from_concept(concept(name)) is None


def medication(*ingredients: dict[str, Any]) -> Any:
    return parse_resource({"resourceType": "Medication", "ingredient": list(ingredients)})


def ingredient(numerator: dict[str, Any], denominator: dict[str, Any], **more: Any):
    return {
        "itemCodeableConcept": {"text": "an ingredient"},
        "strength": {"numerator": numerator, "denominator": denominator},
        **more,
    }


def test_strength_is_read_from_a_single_ingredient_medication():
    strength = strength_from_medication(medication(ingredient(mg(10), tablets(1))))
    assert strength is not None
    assert strength.amount_mg == 10
    assert "Medication ingredient strength" in strength.basis


def test_inactive_ingredients_do_not_make_a_combination():
    found = medication(
        ingredient(mg(10), tablets(1)),
        ingredient(mg(50), tablets(1), isActive=False),
    )
    strength = strength_from_medication(found)
    assert strength is not None
    assert strength.amount_mg == 10


@pytest.mark.parametrize(
    "found",
    [
        medication(ingredient(mg(25), tablets(1)), ingredient(mg(25), tablets(1))),
        medication(ingredient(mg(10), quantity(1, "mL", "mL"))),
        medication(ingredient(quantity(100, "[iU]", "IU"), tablets(1))),
        medication(),
    ],
)
def test_combination_liquid_or_non_mass_medication_gives_none(found):
    assert strength_from_medication(found) is None
