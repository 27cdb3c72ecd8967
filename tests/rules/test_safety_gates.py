"""The patient-safety gates (hooks/rules/patient_safety.py, kidney.py, patient.py) as D1, S1,
L1 and Q1 apply them: pregnancy, kidney function, the breathing risk of gabapentinoids (FDA
2019), and age.

A gate only removes or qualifies a suggestion; it never makes a card fire. So each gated chart
here is paired with the nearest chart the gate must leave alone. Patients are 40 years old
unless a test says otherwise, so that the age part of the breathing-risk gate (65 or over)
stays out of the way: the shared `fhir.patient()` is 76.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.kit import Card
from cds_service.pipeline.record_builder import RecordBuilder
from hooks.rules.patient import age_years
from tests.conftest import AS_OF
from tests.support import fhir
from tests.support.cards import actions_of, check_card, check_delete_suggestion, only_card
from tests.support.concepts import CRAMP, GABAPENTIN, QUININE
from tests.support.fhir import ICD10CM, LOINC, PATIENT_ID, RX, SNOMED
from tests.support.guidance import check_guidance
from tests.support.rls_drugs import rls
from tests.support.rules import evaluate

D1 = "rls-dopaminergic-augmentation"
S1 = "esrd-cramps-gabapentin"
L1 = "cirrhosis-cramps-baclofen"
Q1 = "quinine-leg-cramps"

# Codes, each from the value set the gate reads (hooks/valuesets/*.json).
PRAMIPEXOLE = fhir.concept(RX, "746741", "pramipexole")
PREGNANCY = fhir.concept(SNOMED, "72892002", "Normal pregnancy")
PREGNANCY_ICD = fhir.concept(
    ICD10CM, "Z34.90",
    "Encounter for supervision of normal pregnancy, unspecified, unspecified trimester")
URINE_HCG = "2106-3"
POSITIVE = fhir.concept(SNOMED, "10828004", "Positive")
NEGATIVE = fhir.concept(SNOMED, "260385009", "Negative")
EGFR_MDRD = "33914-3"
CKD_3 = fhir.concept(SNOMED, "433144002", "Chronic kidney disease stage 3")
CKD_4 = fhir.concept(SNOMED, "431857002", "Chronic kidney disease stage 4")
ESRD = fhir.concept(SNOMED, "46177005", "End-stage renal disease")
ON_DIALYSIS = fhir.concept(
    SNOMED, "428982002", "Dependence on hemodialysis due to end stage renal disease")
# Dialysis without ESRD in its name (as for acute kidney injury on dialysis).
DIALYSIS_ICD = fhir.concept(ICD10CM, "Z99.2", "Dependence on renal dialysis")
COPD = fhir.concept(SNOMED, "13645005", "Chronic obstructive lung disease")
OXYCODONE_5 = fhir.concept(RX, "1049621", "oxycodone hydrochloride 5 MG Oral Tablet")
LORAZEPAM_1 = fhir.concept(RX, "197901", "lorazepam 1 MG Oral Tablet")
ZOLPIDEM_10 = fhir.concept(RX, "854873", "Zolpidem tartrate 10 MG Oral Tablet")
CIRRHOSIS = fhir.concept(SNOMED, "19943007", "Cirrhosis of liver")
BACLOFEN_10 = fhir.concept(RX, "197391", "Baclofen 10 MG Oral Tablet")

REPLACEMENTS = ["Replace with gabapentin", "Replace with pregabalin"]
KIDNEY_NOTE = "**Kidney function:** gabapentin and pregabalin are cleared by the kidneys"
BREATHING_NOTE = "**Breathing risk:** the FDA warns (2019)"
PREGNANCY_NOTE = "**Pregnancy:** no switch to gabapentin or pregabalin is offered"


# Charts ------------------------------------------------------------------------------------------


def person(age: int = 40, **extra: Any) -> dict[str, Any]:
    """The patient, `age` years old on AS_OF (born on 1 June; AS_OF is in November)."""
    return fhir.patient(birthDate=f"{AS_OF.year - age}-06-01", **extra)


def woman(age: int = 32) -> dict[str, Any]:
    return person(age, gender="female")


def pregnancy(onset_days: float | None = 60, **extra: Any) -> dict[str, Any]:
    """An active 'Normal pregnancy' condition with its onset `onset_days` ago (None: no onset)."""
    onset = None if onset_days is None else fhir.day(onset_days)
    return fhir.condition(PREGNANCY, id="preg", onset=onset, **extra)


def pregnancy_test(result: dict[str, Any], days_ago: float) -> dict[str, Any]:
    """A qualitative urine hCG result (SNOMED CT Positive / Negative) `days_ago` days ago."""
    return {
        "resourceType": "Observation",
        "id": f"hcg-{days_ago:g}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": URINE_HCG}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": fhir.day(days_ago),
        "valueCodeableConcept": result,
    }


egfr = fhir.lab_result(EGFR_MDRD, "mL/min/{1.73_m2}")


def beyond(comparator: str, value: float) -> dict[str, Any]:
    """An eGFR quantity reported with a comparator, such as '>60' or '<15'."""
    unit = "mL/min/{1.73_m2}"
    return fhir.quantity(value, unit, unit) | {"comparator": comparator}


def kidney(code: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A kidney condition (CKD stage, ESRD, dialysis) on the chart for two years."""
    return fhir.condition(code, id="kidney", onset=fhir.day(730), **extra)


def copd(**extra: Any) -> dict[str, Any]:
    return fhir.condition(COPD, id="copd", onset=fhir.day(730), **extra)


def active(medication: dict[str, Any], id: str, days_ago: float = 30) -> dict[str, Any]:
    return fhir.active_order(medication, id=id, days_ago=days_ago)


def on_sign(a_rule: Any, chart: list[dict[str, Any]], *drafts: dict[str, Any],
            who: dict[str, Any] | None = None, **settings: Any) -> list[Card]:
    """The cards on signing `drafts` for `who` (40 years old unless given) with `chart`."""
    return evaluate(a_rule, "order-sign", [who or person(), *chart], list(drafts), **settings)


def on_view(a_rule: Any, chart: list[dict[str, Any]], who: dict[str, Any] | None = None,
            **settings: Any) -> list[Card]:
    """The cards on opening the chart of `who` (40 years old unless given)."""
    return evaluate(a_rule, "patient-view", [who or person(), *chart], **settings)


def labels(card: Card) -> list[str]:
    return [s.label for s in card.suggestions]


def drafted(card: Card) -> list[dict[str, Any]]:
    """The MedicationRequests the card's suggestions would create."""
    return [a.resource for a in actions_of(card) if a.type == "create"]


# D1: pregnancy -----------------------------------------------------------------------------------


def pramipexole(**extra: Any) -> dict[str, Any]:
    return fhir.medication_request(PRAMIPEXOLE, id="d1", **extra)


def test_d1_pregnancy_condition_withholds_the_switch_and_says_why(d1):
    """In pregnancy, drug treatment of restless legs is the obstetric team's choice: no
    one-click gabapentin or pregabalin."""
    card = only_card(on_sign(d1, [rls(), pregnancy(60)], pramipexole(), who=woman()))
    check_card(card, D1, "warning", "pramipexole", "augmentation")
    assert card.suggestions == () and card.selection_behavior is None
    assert f"- pregnancy: **Normal pregnancy** (onset {fhir.date_of(60)})" in card.detail
    assert PREGNANCY_NOTE in card.detail
    assert "obstetric team or a specialist" in card.detail
    assert "replacing the order with gabapentin" not in card.detail


def test_d1_positive_pregnancy_test_withholds_the_switch(d1):
    """A positive hCG in the window is pregnancy, even before a condition is coded."""
    card = only_card(on_sign(d1, [rls(), pregnancy_test(POSITIVE, 14)], pramipexole(),
                             who=woman()))
    assert card.suggestions == ()
    assert f"- pregnancy: pregnancy test **Positive** on {fhir.date_of(14)}" in card.detail
    assert PREGNANCY_NOTE in card.detail


def test_d1_without_pregnancy_the_switch_is_offered(d1):
    """The counterpart of the pregnancy gate: same woman, no pregnancy evidence."""
    card = only_card(on_sign(d1, [rls()], pramipexole(), who=woman()))
    assert labels(card) == REPLACEMENTS
    assert "pregnancy" not in card.detail.lower()


@pytest.mark.parametrize(
    "chart, settings",
    [
        ([pregnancy(299)], {}),
        ([pregnancy(None)], {}),
        ([pregnancy(320)], {"pregnancy_window_days": 400}),
        ([fhir.condition(PREGNANCY_ICD, id="preg")], {}),
        ([pregnancy(60), pregnancy_test(NEGATIVE, 90)], {}),
        ([pregnancy_test(NEGATIVE, 60), pregnancy_test(POSITIVE, 5)], {}),
        ([pregnancy(60), pregnancy_test(NEGATIVE, 10)], {}),
    ],
    ids=["onset-inside-window", "no-onset-counts", "window-lengthened", "icd-10-cm-z34",
         "negative-test-before-onset", "positive-after-negative",
         "negative-test-after-onset-the-active-condition-holds"],
)
def test_d1_pregnancy_evidence_that_holds_withholds_the_switch(d1, chart, settings):
    """Onset within `pregnancy_window_days`, an unknown onset (caution), or a negative test
    older than the episode it would end: still pregnant."""
    card = only_card(on_sign(d1, [rls(), *chart], pramipexole(), who=woman(), **settings))
    assert card.suggestions == ()
    assert PREGNANCY_NOTE in card.detail


@pytest.mark.parametrize(
    "chart, settings",
    [
        ([pregnancy(60, clinical="resolved")], {}),
        ([pregnancy(60, verification="refuted")], {}),
        ([pregnancy(301)], {}),
        ([pregnancy(60)], {"pregnancy_window_days": 30}),
        ([pregnancy_test(POSITIVE, 320)], {}),
        ([pregnancy_test(POSITIVE, 40), pregnancy_test(NEGATIVE, 5)], {}),
    ],
    ids=["resolved", "refuted", "onset-older-than-window", "window-shortened",
         "positive-test-older-than-window", "negative-after-positive"],
)
def test_d1_pregnancy_evidence_that_no_longer_holds_gives_the_switch_back(d1, chart, settings):
    """A resolved or refuted pregnancy, an onset before the window, or a negative test after a
    positive one: the two replacement suggestions are back and no pregnancy note is shown."""
    card = only_card(on_sign(d1, [rls(), *chart], pramipexole(), who=woman(), **settings))
    assert labels(card) == REPLACEMENTS
    assert card.selection_behavior == "at-most-one"
    assert "**Pregnancy:**" not in card.detail and "- pregnancy:" not in card.detail


def test_d1_pregnancy_lists_every_gate_but_no_note_about_a_draft_it_does_not_make(d1):
    """Pregnant, eGFR 45 and an opioid: what was found is listed; the kidney-dosing and
    breathing notes belong to a switch the card does not offer."""
    chart = [rls(), pregnancy(60), egfr(45), active(OXYCODONE_5, "m-oxy")]
    card = only_card(on_sign(d1, chart, pramipexole(), who=woman()))
    assert "- pregnancy: **Normal pregnancy**" in card.detail
    assert "- kidney function: eGFR **45 mL/min/{1.73_m2}" in card.detail
    assert "- breathing risk with gabapentinoids: opioid active" in card.detail
    assert PREGNANCY_NOTE in card.detail
    assert KIDNEY_NOTE not in card.detail and BREATHING_NOTE not in card.detail


# D1: kidney function -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chart, settings",
    [
        ([egfr(45)], {}),
        ([egfr(45, unit="mL/min")], {}),
        ([egfr(59)], {}),
        ([egfr(45, days_ago=400)], {"egfr_lookback_days": 500}),
        ([egfr(75, days_ago=200), egfr(45, days_ago=10)], {}),
        ([egfr(75, unit="mg/dL")], {}),
        ([kidney(CKD_3)], {}),
        ([kidney(CKD_4)], {}),
        ([kidney(ESRD)], {}),
        ([kidney(ON_DIALYSIS)], {}),
        ([kidney(DIALYSIS_ICD)], {}),
    ],
    ids=["egfr-45", "egfr-45-plain-ml-min", "egfr-59", "lookback-lengthened",
         "newest-egfr-decides", "egfr-unit-unknown", "ckd-stage-3", "ckd-stage-4", "esrd",
         "dialysis", "dialysis-z99.2"],
)
def test_d1_reduced_kidney_function_keeps_the_switch_with_renal_dosing(d1, chart, settings):
    """Gabapentin and pregabalin are cleared by the kidneys: below eGFR 60 (or with CKD 3-5 or
    dialysis) the switch is still offered, but each draft says to dose from renal dosing."""
    card = only_card(on_sign(d1, [rls(), *chart], pramipexole(), **settings))
    assert labels(card) == REPLACEMENTS
    assert "- kidney function: " in card.detail
    assert KIDNEY_NOTE in card.detail
    resources = drafted(card)
    assert len(resources) == 2
    for resource in resources:
        fhir.validate(resource)
        assert "dosageInstruction" not in resource
        notes = [n["text"] for n in resource["note"]]
        assert "Reduced kidney function: choose the dose from the product's renal dosing." in notes


def test_d1_kidney_line_names_the_egfr_and_its_unit(d1):
    """The eGFR is shown as reported; a plain 'mL/min' eGFR is read as per 1.73 m2, and a
    value in a unit the service cannot read is said to be read as possibly reduced."""
    card = only_card(on_sign(d1, [rls(), egfr(45, unit="mL/min", days_ago=20)], pramipexole()))
    assert (f"eGFR **45 mL/min (= 45 mL/min/{{1.73_m2}}) on {fhir.date_of(20)}**"
            in card.detail)
    card = only_card(on_sign(d1, [rls(), egfr(75, unit="mg/dL")], pramipexole()))
    assert "eGFR **75 mg/dL" in card.detail and "read as possibly reduced)**" in card.detail


@pytest.mark.parametrize(
    "chart, settings",
    [
        ([egfr(75)], {}),
        ([egfr(60)], {}),
        ([egfr(45, days_ago=400)], {}),
        ([egfr(45)], {"egfr_moderate_below": 40}),
        ([egfr(45, days_ago=200), egfr(75, days_ago=10)], {}),
        ([kidney(CKD_3, clinical="resolved")], {}),
        ([kidney(ESRD, verification="entered-in-error")], {}),
    ],
    ids=["egfr-75", "egfr-60-is-not-below-60", "egfr-older-than-lookback",
         "threshold-lowered-to-40", "newest-egfr-decides", "ckd-resolved",
         "esrd-entered-in-error"],
)
def test_d1_kidney_function_not_reduced_leaves_the_switch_unqualified(d1, chart, settings):
    """eGFR 60 or more, an eGFR older than `egfr_lookback_days`, or a kidney condition that
    does not count: no kidney note, and the drafts carry only the replacement note."""
    card = only_card(on_sign(d1, [rls(), *chart], pramipexole(), **settings))
    assert labels(card) == REPLACEMENTS
    assert "kidney function" not in card.detail.lower()
    for resource in drafted(card):
        assert len(resource["note"]) == 1 and "renal dosing" not in resource["note"][0]["text"]


def test_d1_egfr_reported_as_above_60_is_not_reduced_but_above_45_may_be(d1):
    """Many labs report eGFR as '>60' or '>90': that is not reduced kidney function. '>45' may
    still be below 60, so the gate reads it as reduced (caution)."""
    card = only_card(on_sign(d1, [rls(), egfr(beyond(">", 60))], pramipexole()))
    assert labels(card) == REPLACEMENTS
    assert KIDNEY_NOTE not in card.detail and "kidney function" not in card.detail.lower()
    card = only_card(on_sign(d1, [rls(), egfr(beyond(">", 45))], pramipexole()))
    assert "- kidney function: eGFR **>45 mL/min/{1.73_m2}" in card.detail
    assert KIDNEY_NOTE in card.detail


# D1: breathing risk ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chart, drafts, age, settings, line",
    [
        ([active(OXYCODONE_5, "m-oxy")], [], 40, {},
         f"opioid active: **oxycodone hydrochloride 5 MG Oral Tablet** (since "
         f"{fhir.date_of(30)})"),
        ([], [fhir.medication_request(LORAZEPAM_1, id="d2")], 40, {},
         f"benzodiazepine being ordered: **lorazepam 1 MG Oral Tablet** (since "
         f"{fhir.date_of(0)})"),
        ([active(ZOLPIDEM_10, "m-zol")], [], 40, {},
         f"sedative active: **Zolpidem tartrate 10 MG Oral Tablet** (since {fhir.date_of(30)})"),
        ([copd()], [], 40, {},
         f"**Chronic obstructive lung disease** (onset {fhir.date_of(730)})"),
        ([], [], 65, {}, "age **65** (65 or over)"),
        ([], [], 64, {"older_adult_age": 60}, "age **64** (60 or over)"),
    ],
    ids=["active-opioid", "co-drafted-benzodiazepine", "active-zolpidem", "copd", "age-65",
         "age-threshold-lowered"],
)
def test_d1_breathing_risk_is_named_beside_the_switch(d1, chart, drafts, age, settings, line):
    """FDA 2019: gabapentinoids with opioids or other CNS depressants, in COPD, or in older
    adults can depress breathing. The switch stays; the card names the risk and what it found."""
    card = only_card(on_sign(d1, [rls(), *chart], pramipexole(), *drafts, who=person(age),
                             **settings))
    assert labels(card) == REPLACEMENTS
    assert f"- breathing risk with gabapentinoids: {line}" in card.detail
    assert BREATHING_NOTE in card.detail


@pytest.mark.parametrize(
    "chart, drafts, age, settings",
    [
        ([], [], 40, {}),
        ([], [], 64, {}),
        ([], [], 65, {"older_adult_age": 70}),
        ([fhir.medication_request(OXYCODONE_5, id="m-oxy", status="stopped",
                                  authored=fhir.day(90))], [], 40, {}),
        ([], [fhir.medication_request(LORAZEPAM_1, id="d2", status="cancelled")], 40, {}),
        ([copd(clinical="resolved")], [], 40, {}),
    ],
    ids=["age-40-nothing-else", "age-64", "age-threshold-raised", "opioid-stopped",
         "benzodiazepine-draft-cancelled", "copd-resolved"],
)
def test_d1_no_breathing_risk_gives_no_breathing_warning(d1, chart, drafts, age, settings):
    """Under the age threshold, with no depressant being taken or ordered and no COPD: no
    breathing paragraph."""
    card = only_card(on_sign(d1, [rls(), *chart], pramipexole(), *drafts, who=person(age),
                             **settings))
    assert labels(card) == REPLACEMENTS
    assert "breathing" not in card.detail.lower()


# D1: patient-view --------------------------------------------------------------------------------


def test_d1_patient_view_offers_no_switch_but_shows_the_gates(d1):
    """On chart open nothing is replaced, yet the reviewer still reads what the gates found."""
    chart = [rls(), active(PRAMIPEXOLE, "m1", 200), egfr(45), active(OXYCODONE_5, "m-oxy")]
    card = only_card(on_view(d1, chart))
    assert card.suggestions == () and card.selection_behavior is None
    assert "- kidney function: eGFR **45 mL/min/{1.73_m2}" in card.detail
    assert "- breathing risk with gabapentinoids: opioid active: **oxycodone" in card.detail
    assert KIDNEY_NOTE in card.detail and BREATHING_NOTE in card.detail


def test_d1_patient_view_shows_pregnancy(d1):
    card = only_card(on_view(d1, [rls(), active(PRAMIPEXOLE, "m1", 200), pregnancy(60)],
                             who=woman()))
    assert card.suggestions == ()
    assert "- pregnancy: **Normal pregnancy**" in card.detail
    assert PREGNANCY_NOTE in card.detail


def test_d1_patient_view_without_gates_shows_none(d1):
    card = only_card(on_view(d1, [rls(), active(PRAMIPEXOLE, "m1", 200)], who=woman()))
    assert card.suggestions == ()
    for words in ("pregnancy", "kidney function", "breathing"):
        assert words not in card.detail.lower()


def test_d1_patient_view_in_pregnancy_does_not_steer_to_a_gabapentinoid(d1):
    """The card's advice must not contradict its own pregnancy note: on chart open too, the
    review is with the obstetric team, not a move to gabapentin or pregabalin."""
    card = only_card(on_view(d1, [rls(), active(PRAMIPEXOLE, "m1", 200), pregnancy(60)],
                             who=woman()))
    consider = next(p for p in card.detail.split("\n\n") if p.startswith("**Consider:**"))
    assert "gabapentin" not in consider and "pregabalin" not in consider
    assert "obstetric team or a specialist" in consider


# S1: ESRD or dialysis with restless legs ---------------------------------------------------------


def dialysis_with_rls() -> list[dict[str, Any]]:
    return [kidney(ON_DIALYSIS), rls()]


@pytest.mark.parametrize("evidence", [pregnancy(60), pregnancy_test(POSITIVE, 14)],
                         ids=["pregnancy-condition", "positive-test"])
def test_s1_pregnancy_names_no_drug(s1, evidence):
    """On dialysis and pregnant, restless legs need a specialist's choice of drug: the card
    does not name renally dosed gabapentin."""
    card = only_card(on_view(s1, [*dialysis_with_rls(), evidence], who=woman()))
    check_guidance(card, S1, "pregnant", "specialist's choice")
    assert "No drug is suggested here." in card.detail
    assert "obstetric team or a specialist" in card.detail
    assert "gabapentin at a dose adjusted" not in card.detail
    assert "Pregnancy: " in card.detail


@pytest.mark.parametrize(
    "chart",
    [[], [pregnancy(60, clinical="resolved")]],
    ids=["no-pregnancy", "pregnancy-resolved"],
)
def test_s1_without_pregnancy_names_renally_dosed_gabapentin(s1, chart):
    """The usual card: gabapentin, at a dose adjusted to kidney function (AASM 2024)."""
    card = only_card(on_view(s1, [*dialysis_with_rls(), *chart], who=woman()))
    check_guidance(card, S1, "gabapentin, renally dosed")
    assert "gabapentin at a dose adjusted to kidney function" in card.detail
    assert "No drug is suggested" not in card.detail and "Pregnancy:" not in card.detail


@pytest.mark.parametrize(
    "chart, age, line",
    [
        ([active(OXYCODONE_5, "m-oxy")], 40,
         "Breathing risk: opioid active: **oxycodone hydrochloride 5 MG Oral Tablet**"),
        ([], 70, "Breathing risk: age **70** (65 or over)"),
        ([copd()], 40,
         "Breathing risk: **Chronic obstructive lung disease**"),
    ],
    ids=["active-opioid", "age-70", "copd"],
)
def test_s1_breathing_risk_beside_gabapentin(s1, chart, age, line):
    """Renally dosed gabapentin is named: so is its breathing risk (FDA 2019)."""
    card = only_card(on_view(s1, [*dialysis_with_rls(), *chart], who=person(age)))
    assert line in card.detail
    assert BREATHING_NOTE in card.detail


def test_s1_no_breathing_warning_at_40_without_depressants_or_copd(s1):
    card = only_card(on_view(s1, dialysis_with_rls()))
    assert "breathing" not in card.detail.lower()


def test_s1_pregnant_on_gabapentin_and_an_opioid_still_gets_the_breathing_warning(s1):
    """The gabapentin is already being taken: pregnancy does not remove its breathing risk."""
    chart = [*dialysis_with_rls(), pregnancy(60), active(GABAPENTIN, "m-gaba"),
             active(OXYCODONE_5, "m-oxy")]
    card = only_card(on_view(s1, chart, who=woman()))
    assert "gabapentin active" in card.summary
    assert "Pregnancy: review the gabapentinoid with the obstetric team" in card.detail
    assert "Breathing risk: opioid active: **oxycodone" in card.detail
    assert BREATHING_NOTE in card.detail


def test_s1_pregnant_without_a_gabapentinoid_gets_no_breathing_warning(s1):
    """No gabapentinoid named or taken: the breathing warning has nothing to go with."""
    chart = [*dialysis_with_rls(), pregnancy(60), active(OXYCODONE_5, "m-oxy")]
    card = only_card(on_view(s1, chart, who=woman()))
    assert "specialist's choice" in card.summary
    assert "breathing" not in card.detail.lower()


# L1: cirrhosis with leg cramps, baclofen and the kidney ------------------------------------------


def cirrhosis_with_cramps() -> list[dict[str, Any]]:
    return [fhir.condition(CIRRHOSIS, id="liver", onset=fhir.day(700)),
            fhir.condition(CRAMP, id="cramps")]


def baclofen(**extra: Any) -> dict[str, Any]:
    return fhir.medication_request(BACLOFEN_10, id="bac", **extra)


SEVERE = {
    "egfr-25": egfr(25),
    "egfr-below-15": egfr(beyond("<", 15)),
    "ckd-stage-4": kidney(CKD_4),
    "esrd": kidney(ESRD),
    "dialysis": kidney(ON_DIALYSIS),
    "dialysis-z99.2": kidney(DIALYSIS_ICD),
}


@pytest.mark.parametrize("finding", SEVERE.values(), ids=SEVERE.keys())
def test_l1_severely_reduced_kidney_function_drops_the_baclofen_titration(l1, finding):
    """eGFR below 30, CKD 4, ESRD or dialysis: baclofen accumulates (encephalopathy after small
    doses), so the card suggests no baclofen, at any age."""
    card = only_card(on_view(l1, [*cirrhosis_with_cramps(), finding], who=person(50)))
    check_guidance(card, L1, "reduced kidney function", "baclofen is not suggested")
    assert "10 mg/day" not in card.summary
    assert "Baclofen titration" not in card.detail
    assert "; kidney function: " in card.detail
    assert "**Why:** Baclofen is not suggested: it is cleared by the kidneys" in card.detail


@pytest.mark.parametrize("finding", SEVERE.values(), ids=SEVERE.keys())
def test_l1_baclofen_ordered_with_severe_kidney_disease_is_a_warning(l1, finding):
    """A baclofen order with severely reduced kidney function: risk of toxicity, a warning,
    and still no titration."""
    card = only_card(on_sign(l1, [*cirrhosis_with_cramps(), finding], baclofen(),
                             who=person(50)))
    assert card.indicator == "warning"
    assert "baclofen ordered with reduced kidney function" in card.summary
    assert "risk of baclofen toxicity" in card.summary
    assert "Baclofen titration" not in card.detail
    assert "Being ordered: **Baclofen 10 MG Oral Tablet**" in card.detail
    assert "Reviewing the baclofen with the kidney care team" in card.detail


def test_l1_active_baclofen_with_dialysis_is_a_warning_on_chart_open(l1):
    chart = [*cirrhosis_with_cramps(), kidney(ON_DIALYSIS), active(BACLOFEN_10, "m-bac", 60)]
    card = only_card(on_view(l1, chart, who=person(50)))
    assert card.indicator == "warning"
    assert "baclofen active with reduced kidney function: risk of baclofen toxicity" in (
        card.summary)
    assert "Already active: **Baclofen 10 MG Oral Tablet**" in card.detail


@pytest.mark.parametrize(
    "finding, age, settings",
    [
        (egfr(45), 50, {}),
        (egfr(30), 50, {}),
        (kidney(CKD_3), 50, {}),
        (egfr(45), 64, {}),
        (egfr(45), 65, {"older_adult_age": 70}),
        (egfr(25), 50, {"egfr_severe_below": 20}),
    ],
    ids=["egfr-45-age-50", "egfr-30-is-not-below-30", "ckd-stage-3-age-50", "egfr-45-age-64",
         "age-threshold-raised", "severe-threshold-lowered"],
)
def test_l1_moderately_reduced_kidney_function_under_65_starts_lower(l1, finding, age, settings):
    """eGFR 30-59 (or CKD 3) under 65: the usual card, with a lower start and slower steps."""
    chart = [*cirrhosis_with_cramps(), finding]
    card = only_card(on_view(l1, chart, who=person(age), **settings))
    check_guidance(card, L1, "check electrolytes", "baclofen 10 mg/day")
    assert "**Kidney function:** " in card.detail
    assert "so start lower and raise the dose more slowly" in card.detail
    card = only_card(on_sign(l1, chart, baclofen(), who=person(age), **settings))
    check_guidance(card, L1, "baclofen ordered", "start 10 mg/day")
    assert ("**Baclofen titration (weekly, for normal kidney function: start lower and go "
            "slower here):**") in card.detail
    assert "- week 1: 10 mg/day" in card.detail


@pytest.mark.parametrize(
    "finding, age, settings",
    [
        (egfr(45), 65, {}),
        (egfr(59), 80, {}),
        (kidney(CKD_3), 70, {}),
        (egfr(45), 64, {"older_adult_age": 60}),
    ],
    ids=["egfr-45-age-65", "egfr-59-age-80", "ckd-stage-3-age-70", "age-threshold-lowered"],
)
def test_l1_moderately_reduced_kidney_function_at_65_or_over_avoids_baclofen(
        l1, finding, age, settings):
    """AGS Beers 2023: avoid baclofen in older adults with eGFR below 60."""
    chart = [*cirrhosis_with_cramps(), finding]
    card = only_card(on_view(l1, chart, who=person(age), **settings))
    check_guidance(card, L1, "baclofen is not suggested")
    assert "AGS Beers Criteria (2023)" in card.detail
    assert "Baclofen titration" not in card.detail
    card = only_card(on_sign(l1, chart, baclofen(), who=person(age), **settings))
    assert card.indicator == "warning" and "risk of baclofen toxicity" in card.summary
    assert "Baclofen titration" not in card.detail


@pytest.mark.parametrize("finding", [egfr(75), egfr(60), egfr(25, days_ago=400)],
                         ids=["egfr-75", "egfr-60", "egfr-25-older-than-lookback"])
def test_l1_kidney_function_not_reduced_gives_the_usual_card(l1, finding):
    """eGFR 60 or more (here at 70, where Beers would otherwise apply): the usual titration,
    no kidney paragraph."""
    chart = [*cirrhosis_with_cramps(), finding]
    card = only_card(on_view(l1, chart, who=person(70)))
    check_guidance(card, L1, "check electrolytes", "baclofen 10 mg/day")
    assert "kidney function" not in card.detail.lower()
    card = only_card(on_sign(l1, chart, baclofen(), who=person(70)))
    assert card.indicator == "info"
    assert "**Baclofen titration (weekly):**" in card.detail


def test_l1_egfr_reported_as_above_60_keeps_baclofen_at_70(l1):
    """'>60' is not below 60: the Beers criteria do not apply and the usual card is shown."""
    chart = [*cirrhosis_with_cramps(), egfr(beyond(">", 60))]
    card = only_card(on_view(l1, chart, who=person(70)))
    check_guidance(card, L1, "baclofen 10 mg/day")
    assert "kidney function" not in card.detail.lower()


# Q1: quinine, and the baclofen it names instead --------------------------------------------------


def quinine_for_cramps(chart: list[dict[str, Any]], age: int, q1: Any) -> Card:
    cramps = fhir.condition(CRAMP, id="cramps", onset=fhir.day(120))
    card = only_card(on_sign(q1, [cramps, *chart], fhir.medication_request(QUININE),
                             who=person(age)))
    check_card(card, Q1, "critical", "quinine", "leg cramps")
    # The gate changes only the alternatives: removing the quinine draft stays recommended.
    check_delete_suggestion(card, "MedicationRequest/d1")
    return card


USUAL_BACLOFEN = "the guidance names baclofen (10 mg a day, raised by 10 mg a day each week"


@pytest.mark.parametrize("chart, age", [([], 50), ([egfr(75)], 70)],
                         ids=["no-kidney-data-age-50", "egfr-75-age-70"])
def test_q1_usual_alternatives_name_baclofen_titration(q1, chart, age):
    """Normal kidney function: baclofen 10 mg titrated weekly to 30 mg if cramps persist."""
    card = quinine_for_cramps(chart, age, q1)
    assert f"{USUAL_BACLOFEN} to at most 30 mg a day); calcium channel blockers" in card.detail
    assert "kidney function" not in card.detail.lower()
    assert "start lower" not in card.detail


@pytest.mark.parametrize(
    "finding", [kidney(ON_DIALYSIS), kidney(DIALYSIS_ICD), egfr(25), kidney(CKD_4)],
    ids=["dialysis", "dialysis-z99.2", "egfr-25", "ckd-stage-4"])
def test_q1_severe_kidney_disease_drops_baclofen_from_the_alternatives(q1, finding):
    card = quinine_for_cramps([finding], 50, q1)
    assert "If cramps persist despite this: Baclofen is not suggested: it is cleared" in (
        card.detail)
    assert USUAL_BACLOFEN not in card.detail
    assert "; kidney function: " in card.detail


def test_q1_egfr_45_at_50_keeps_baclofen_with_a_lower_start(q1):
    card = quinine_for_cramps([egfr(45)], 50, q1)
    assert USUAL_BACLOFEN in card.detail
    assert "so start lower and raise the dose more slowly" in card.detail
    assert "; kidney function: eGFR **45 mL/min/{1.73_m2}" in card.detail


@pytest.mark.parametrize("finding, age", [(egfr(25), 50), (egfr(45), 50), (egfr(45), 70)],
                         ids=["baclofen-avoided", "lower-start", "beers"])
def test_q1_other_options_read_as_a_sentence_on_the_kidney_paths(q1, finding, age):
    card = quinine_for_cramps([finding], age, q1)
    assert ("Calcium channel blockers may help some patients, and vitamin B12 has only limited "
            "evidence.") in card.detail


def test_q1_egfr_45_at_70_avoids_baclofen_by_beers(q1):
    card = quinine_for_cramps([egfr(45)], 70, q1)
    assert "AGS Beers Criteria (2023)" in card.detail
    assert USUAL_BACLOFEN not in card.detail


# patient.age_years ------------------------------------------------------------------------


def record_of(*resources: dict[str, Any]) -> Any:
    return RecordBuilder(PATIENT_ID, AS_OF).build(list(resources), [])


@pytest.mark.parametrize(
    "birth, now, years",
    [
        ("1961-11-21", datetime(2026, 11, 20, 23, 59, tzinfo=UTC), 64),
        ("1961-11-21", datetime(2026, 11, 21, 0, 0, tzinfo=UTC), 65),
        ("1961-11-21", datetime(2026, 11, 22, 12, 0, tzinfo=UTC), 65),
        ("1961-11-22", AS_OF, 64),
        ("2000-02-29", datetime(2027, 2, 28, 12, 0, tzinfo=UTC), 26),
        ("2000-02-29", datetime(2027, 3, 1, 12, 0, tzinfo=UTC), 27),
    ],
    ids=["day-before-birthday", "on-birthday", "day-after-birthday", "birthday-tomorrow",
         "leap-day-birth-on-28-feb", "leap-day-birth-on-1-mar"],
)
def test_age_turns_on_the_birthday(birth, now, years):
    """Whole years: the 65 threshold is crossed on the birthday, not a day earlier."""
    assert age_years(record_of(fhir.patient(birthDate=birth)), now) == years


def test_age_without_a_birth_date_is_unknown():
    no_birth = fhir.patient()
    del no_birth["birthDate"]
    assert age_years(record_of(no_birth), AS_OF) is None
    assert age_years(record_of(), AS_OF) is None


@pytest.mark.parametrize(
    "birth, years",
    [("1961", 65), ("1961-11", 65), ("1961-12", 64)],
    ids=["year-only", "year-month-this-month", "year-month-next-month"],
)
def test_partial_birth_date_reads_as_the_oldest_the_patient_can_be(birth, years):
    """FHIR allows '1961' or '1961-12': read as the first day of the period, so an age
    threshold errs toward caution (by less than a year)."""
    assert age_years(record_of(fhir.patient(birthDate=birth)), AS_OF) == years


def test_partial_birth_date_does_not_lose_the_quinine_card(q1):
    """A year-only birth date must not take the critical quinine card with it (a rule that
    raises loses all its cards), and it still reaches the Beers gate: born 1961 is 65."""
    chart = [fhir.patient(birthDate="1961"), fhir.condition(CRAMP, id="cramps"), egfr(45)]
    card = only_card(evaluate(q1, "order-sign", chart, [fhir.medication_request(QUININE)]))
    assert "AGS Beers Criteria (2023)" in card.detail


def test_d1_a_negative_test_after_an_active_pregnancy_is_shown_and_the_gate_holds(d1):
    """The record still says pregnant: no switch; the newer negative test is shown beside the
    condition so the prescriber can check whether the pregnancy is current."""
    chart = [rls(), pregnancy(60), pregnancy_test(NEGATIVE, 10)]
    card = only_card(on_sign(d1, chart, pramipexole(), who=woman()))
    assert card.suggestions == ()
    assert "(negative, after the pregnancy was recorded: check whether it is still current)" \
        in card.detail


def test_d1_restless_legs_in_pregnancy_sent_by_code_alone_withholds_the_switch(d1):
    """SNOMED 1052284009 'Restless leg syndrome in pregnancy' with no display or text: it is
    restless legs for D1 and pregnancy for the gate."""
    coded_only = fhir.condition({"coding": [{"system": SNOMED, "code": "1052284009"}]},
                                id="rls-preg")
    card = only_card(on_sign(d1, [coded_only], pramipexole(), who=woman()))
    assert card.suggestions == ()
    assert PREGNANCY_NOTE in card.detail


@pytest.mark.parametrize("text, positive", [
    ("Positive", True), ("+", True), ("POS", True), ("Detected", True), ("Present", True),
    ("Reactive", True), ("Negative", False), ("Not detected", False), ("neg", False),
    ("Absent", False), ("Non-reactive", False), ("Nonreactive", False), ("-", False),
])
def test_pregnancy_test_results_written_as_text_are_read(text, positive):
    """Labs write qualitative results many ways; each reads as what it says, never the other."""
    from fhir.resources.R4B.observation import Observation

    from hooks.rules.patient_safety import _test_result

    observation = Observation.model_validate({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2106-3"}]},
        "effectiveDateTime": "2026-11-01T09:00:00Z", "valueString": text})
    (result,) = _test_result(observation)
    assert result.positive is positive


def test_a_pregnancy_test_result_it_cannot_read_is_not_read():
    from fhir.resources.R4B.observation import Observation

    from hooks.rules.patient_safety import _test_result

    observation = Observation.model_validate({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2106-3"}]},
        "effectiveDateTime": "2026-11-01T09:00:00Z", "valueString": "see comment"})
    assert _test_result(observation) == []


def test_a_kidney_condition_with_a_partial_onset_keeps_the_quinine_card(q1):
    """CKD stage 4 recorded with onset '2019' (a year only, valid FHIR): the gate reads it and
    the card shows the year as recorded; the critical quinine card is never lost to a date."""
    ckd4 = fhir.condition(CKD_4, id="ckd4", onset="2019")
    card = quinine_for_cramps([ckd4], 50, q1)
    assert "(onset 2019)" in card.detail
    assert "Baclofen is not suggested" in card.detail
