"""leg-cramps holds cramp or spasm of the leg, calf, thigh or foot, nocturnal and sleep-related leg
cramps, and unspecified muscle cramp; never spasm of the back, neck, trunk, abdomen, bladder or
another site (clinical review, issue 15)."""

from __future__ import annotations

import pytest

from cds_service.kit.terminology import ICD10CM
from tests.support.valuesets import SCT, document, matches

LEG_CRAMPS = "leg-cramps"


@pytest.mark.parametrize(
    "coding",
    [
        (SCT, "203095000", "Spasm of back muscles"),
        (ICD10CM, "M62.830", "Muscle spasm of back"),
        (SCT, "95418008", "Muscle spasm of head and/or neck"),
        (ICD10CM, "M62.838", "Other muscle spasm"),
        (SCT, "45352006", "Spasm"),
        (SCT, "249297006", "Spasm of bladder"),
        (SCT, "221360009", "Spasticity"),
    ],
    ids=["back-sct", "back-icd", "neck-sct", "other-site-icd", "generic-spasm", "bladder",
         "spasticity"],
)
def test_spasm_of_another_site_does_not_match_by_code_or_display(coding):
    assert matches(LEG_CRAMPS, coding) is None
    assert matches(LEG_CRAMPS, (coding[0], coding[1], None)) is None
    assert matches(LEG_CRAMPS, text=coding[2]) is None


@pytest.mark.parametrize(
    "text",
    ["Muscle spasm of back", "Muscle spasms", "Muscle cramp of back", "Abdominal muscle cramps",
     "Neck muscle spasm", "Back spasm"],
)
def test_a_condition_named_for_another_site_does_not_match_by_text(text):
    assert matches(LEG_CRAMPS, text=text) is None


@pytest.mark.parametrize(
    "code",
    ["M62.83", "M62.830", "M62.838", "M62.839"],
)
def test_no_icd10cm_prefix_reaches_past_the_calf(code):
    assert matches(LEG_CRAMPS, (ICD10CM, code, None)) is None


@pytest.mark.parametrize(
    "coding",
    [
        (SCT, "55300003", "Cramp"),
        (SCT, "449918009", "Cramp in lower leg"),
        (SCT, "424647005", "Cramp in limb"),
        (SCT, "102549009", "Cramp in lower leg associated with rest"),
        (SCT, "90392009", "Nocturnal muscle spasm"),
        (ICD10CM, "R25.2", "Cramp and spasm"),
        (ICD10CM, "G47.62", "Sleep related leg cramps"),
        (ICD10CM, "M62.831", "Muscle spasm of calf"),
    ],
    ids=lambda c: c[1],
)
def test_leg_cramp_codes_match_by_code(coding):
    found = matches(LEG_CRAMPS, (coding[0], coding[1], None))
    assert found is not None and found.how == "code"


@pytest.mark.parametrize("code", ["R25.2", "R252", "G47.62", "G4762"])
def test_unspecified_cramp_and_sleep_related_leg_cramps_match_written_either_way(code):
    assert matches(LEG_CRAMPS, (ICD10CM, code, None)).how == "code"


@pytest.mark.parametrize(
    "text",
    ["nocturnal leg cramps", "Nocturnal leg cramp", "Sleep-related leg cramps", "Calf cramps",
     "Charley horse", "Thigh cramp", "Foot cramps", "Muscle cramps", "Leg spasms at night"],
)
def test_leg_cramps_match_by_text(text):
    found = matches(LEG_CRAMPS, text=text)
    assert found is not None and found.how == "text"


def test_the_purpose_states_the_scope_and_the_left_out_codes_say_why():
    shipped = document(LEG_CRAMPS)
    for words in ("leg, calf, thigh or foot", "unspecified muscle cramp", "Never", "back",
                  "neck", "bladder"):
        assert words in shipped["purpose"], words
    left_out = {(e["system"], e["code"]): e["reason"] for e in shipped["left_out"]}
    for key in [(SCT, "45352006"), (SCT, "203095000"), (ICD10CM, "M62.830"),
                (ICD10CM, "M62.838")]:
        assert "not a leg cramp" in left_out[key], key
    assert "muscle spasm" not in shipped["text_terms"]
    assert shipped["icd10cm_prefixes"] == ["R25.2", "G47.62", "M62.831"]
