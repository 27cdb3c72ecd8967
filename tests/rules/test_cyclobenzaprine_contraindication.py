"""C5 cyclobenzaprine-contraindication: cyclobenzaprine with an MAO inhibitor (taken now or in
the last 14 days: critical), or in the acute recovery phase after a myocardial infarction, an
arrhythmia or conduction disturbance, heart failure or hyperthyroidism (warning).

Codes and displays are those of the shipped value sets (mao-inhibitors, myocardial-infarction,
arrhythmia-conduction, heart-failure, hyperthyroidism)."""

from __future__ import annotations

from typing import Any

import pytest

from hooks import data
from hooks.rules.sources import CYCLOBENZAPRINE_LABEL
from tests.support import fhir
from tests.support.cards import (
    actions_of,
    cards_by_rule,
    check_card,
    check_delete_suggestion,
    only_card,
)
from tests.support.cyclobenzaprine import METHOCARBAMOL, TABLET_10
from tests.support.fhir import ICD10CM, RX, SNOMED
from tests.support.fhir_server import declared_prefetch
from tests.support.rules import declared_defaults, evaluate, hook_request, not_counting, rule, sign

C5 = "cyclobenzaprine-contraindication"

PHENELZINE = fhir.concept(RX, "312347", "Phenelzine 15 MG Oral Tablet")
NARDIL = fhir.concept(RX, "104836", "Phenelzine 15 MG Oral Tablet [Nardil]")
TRANYLCYPROMINE = fhir.concept(RX, "313447", "Tranylcypromine 10 MG Oral Tablet")
LINEZOLID = fhir.concept(RX, "311347", "linezolid 600 MG Oral Tablet")
SERTRALINE = fhir.concept(RX, "312941", "Sertraline 50 MG Oral Tablet")

ACUTE_MI = fhir.concept(SNOMED, "22298006", "Myocardial infarction")
NSTEMI = fhir.concept(SNOMED, "401314000", "Acute non-ST segment elevation myocardial infarction")
HISTORY_OF_MI = fhir.concept(SNOMED, "399211009", "History of myocardial infarction")
ATRIAL_FIBRILLATION = fhir.concept(SNOMED, "49436004", "Atrial fibrillation")
COMPLETE_AV_BLOCK = fhir.concept(ICD10CM, "I44.2", "Atrioventricular block, complete")
HEART_FAILURE = fhir.concept(SNOMED, "88805009", "Chronic congestive heart failure")
HYPERTHYROIDISM = fhir.concept(
    ICD10CM, "E05.90", "Thyrotoxicosis, unspecified without thyrotoxic crisis or storm"
)
HYPERTENSION = fhir.concept(SNOMED, "38341003", "Hypertensive disorder")


@pytest.fixture(scope="module")
def c5() -> Any:
    return rule(C5)


def cyclobenzaprine(id: str = "cbp-1") -> dict[str, Any]:
    return fhir.medication_request(TABLET_10, id=id)


def ended_mao(status: str, authored_days_ago: float, **extra: Any) -> dict[str, Any]:
    return fhir.medication_request(
        PHENELZINE, id="mao-1", status=status, authored=fhir.day(authored_days_ago), **extra
    )


def bounded(end_days_ago: float, start_days_ago: float = 60) -> list[dict[str, Any]]:
    """A dosage whose timing runs from `start_days_ago` to `end_days_ago` (its last day)."""
    instruction = fhir.dosage(1, per_day=2)
    instruction["timing"]["repeat"]["boundsPeriod"] = {
        "start": fhir.day(start_days_ago),
        "end": fhir.day(end_days_ago),
    }
    return [instruction]


def on_sign(c5: Any, chart: list[dict[str, Any]], *drafts: dict[str, Any], **settings: Any):
    drafts = drafts or (cyclobenzaprine(),)
    return evaluate(c5, "order-sign", [fhir.patient(), *chart], list(drafts), **settings)


# MAO inhibitors ----------------------------------------------------------------------------------


def test_active_mao_inhibitor_is_critical_with_a_delete_suggestion(c5):
    active = fhir.active_order(PHENELZINE, id="mao-1", days_ago=40)
    card = only_card(sign(c5, [active], cyclobenzaprine()))
    check_card(card, C5, "critical", "cyclobenzaprine", "contraindicated", "MAO inhibitor")
    check_delete_suggestion(card, "MedicationRequest/cbp-1")
    assert card.selection_behavior == "at-most-one"
    assert (card.source.label, card.source.url) == (
        CYCLOBENZAPRINE_LABEL.label,
        CYCLOBENZAPRINE_LABEL.url,
    )
    assert (
        f"- MAO inhibitor active: **Phenelzine 15 MG Oral Tablet** (active, authored "
        f"{fhir.date_of(40)})" in card.detail
    )
    assert "14 days" in card.detail
    assert card.identity == "MedicationRequest/cbp-1"
    assert card.repeat_quietly is False
    assert {r.code for r in card.override_reasons} == {
        "finding-not-current",
        "benefit-outweighs-risk",
        "specialist-directed",
    }


@pytest.mark.parametrize(
    "medication",
    [NARDIL, TRANYLCYPROMINE, LINEZOLID, fhir.concept(text="selegiline 5 mg capsule")],
    ids=["nardil", "tranylcypromine", "linezolid", "selegiline-text"],
)
def test_other_mao_inhibitors_are_critical(c5, medication):
    active = fhir.active_order(medication, id="mao-1", days_ago=10)
    assert only_card(on_sign(c5, [active])).indicator == "critical"


def test_mao_inhibitor_co_drafted_in_the_same_order_is_critical(c5):
    card = only_card(
        on_sign(c5, [], cyclobenzaprine(), fhir.medication_request(PHENELZINE, id="mao-draft"))
    )
    assert card.indicator == "critical"
    assert "- MAO inhibitor being ordered: **Phenelzine 15 MG Oral Tablet**" in card.detail
    check_delete_suggestion(card, "MedicationRequest/cbp-1")


def test_mao_inhibitor_drafted_beside_but_not_selected_still_counts_on_order_select(c5):
    drafts = [cyclobenzaprine(), fhir.medication_request(PHENELZINE, id="mao-draft")]
    card = only_card(
        evaluate(
            c5, "order-select", [fhir.patient()], drafts, selections=["MedicationRequest/cbp-1"]
        )
    )
    assert card.indicator == "critical" and card.identity == "MedicationRequest/cbp-1"


def test_stopped_mao_inhibitor_ended_10_days_ago_is_critical_and_names_the_last_day(c5):
    stopped = ended_mao("stopped", 60, dosageInstruction=bounded(end_days_ago=10))
    card = only_card(on_sign(c5, [stopped]))
    check_card(card, C5, "critical", "MAO inhibitor")
    assert f"last day {fhir.date_of(10)}" in card.detail
    assert "- MAO inhibitor stopped: **Phenelzine 15 MG Oral Tablet**" in card.detail
    assert "not recorded" not in card.detail


def test_stopped_mao_inhibitor_ended_20_days_ago_is_quiet(c5):
    stopped = ended_mao("stopped", 60, dosageInstruction=bounded(end_days_ago=20))
    assert on_sign(c5, [stopped]) == []


@pytest.mark.parametrize("end_days_ago, fires", [(13, True), (14, True), (15, False)])
def test_washout_is_fourteen_days_after_the_last_day(c5, end_days_ago, fires):
    stopped = ended_mao("stopped", 60, dosageInstruction=bounded(end_days_ago=end_days_ago))
    assert len(on_sign(c5, [stopped])) == int(fires)


def test_completed_mao_inhibitor_last_day_from_authored_date_plus_supply(c5):
    """Authored 30 days ago with a 20-day supply: the last day was 10 days ago."""
    completed = ended_mao("completed", 30, dispenseRequest=fhir.supply(20))
    card = only_card(on_sign(c5, [completed]))
    assert card.indicator == "critical"
    assert f"last day {fhir.date_of(10)}" in card.detail
    assert "- MAO inhibitor completed:" in card.detail


def test_completed_mao_inhibitor_whose_supply_ran_out_30_days_ago_is_quiet(c5):
    completed = ended_mao("completed", 40, dispenseRequest=fhir.supply(10))
    assert on_sign(c5, [completed]) == []


def test_stopped_mao_inhibitor_without_a_stop_date_is_a_warning_saying_so(c5):
    stopped = ended_mao("stopped", 30)
    card = only_card(on_sign(c5, [stopped]))
    check_card(card, C5, "warning", "MAO inhibitor")
    assert card.indicator == "warning"
    assert "stop date not recorded" in card.detail
    assert "stop date is not recorded" in card.detail
    assert "stop date unknown" in card.summary
    check_delete_suggestion(card, "MedicationRequest/cbp-1")


def test_stopped_mao_inhibitor_authored_200_days_ago_without_an_end_is_quiet(c5):
    assert on_sign(c5, [ended_mao("stopped", 200)]) == []


def test_unknown_end_look_back_is_a_setting(c5):
    stopped = ended_mao("stopped", 200)
    card = only_card(on_sign(c5, [stopped], mao_unknown_end_lookback_days=365))
    assert card.indicator == "warning" and "stop date not recorded" in card.detail


def test_mao_washout_days_is_a_setting(c5):
    stopped = ended_mao("stopped", 60, dosageInstruction=bounded(end_days_ago=20))
    assert on_sign(c5, [stopped]) == []
    card = only_card(on_sign(c5, [stopped], mao_washout_days=21))
    assert card.indicator == "critical"
    recent = ended_mao("stopped", 60, dosageInstruction=bounded(end_days_ago=10))
    assert on_sign(c5, [recent], mao_washout_days=7) == []


def test_known_and_unknown_mao_findings_make_a_critical_card(c5):
    chart = [
        fhir.active_order(TRANYLCYPROMINE, id="mao-active", days_ago=5),
        ended_mao("stopped", 30),
    ]
    card = only_card(on_sign(c5, chart))
    assert card.indicator == "critical"
    assert "stop date unknown" not in card.summary


def test_mao_inhibitor_on_hold_counts(c5):
    """An on-hold MAO inhibitor was taken until recently and is expected to resume."""
    on_hold = fhir.medication_request(
        PHENELZINE, id="mao-1", status="on-hold", authored=fhir.day(20)
    )
    card = only_card(on_sign(c5, [on_hold]))
    assert card.indicator == "critical"


def test_mao_inhibitor_without_cyclobenzaprine_is_quiet(c5):
    active = fhir.active_order(PHENELZINE, id="mao-1", days_ago=40)
    assert on_sign(c5, [active], fhir.medication_request(METHOCARBAMOL)) == []
    assert on_sign(c5, [active], fhir.medication_request(SERTRALINE)) == []


def test_cancelled_or_erroneous_mao_inhibitor_is_quiet(c5):
    for status in ("cancelled", "entered-in-error"):
        order = fhir.medication_request(PHENELZINE, id="mao-1", status=status, authored=fhir.day(5))
        assert on_sign(c5, [order]) == [], status


# Conditions ---------------------------------------------------------------------------------------


def test_acute_mi_30_days_ago_is_a_warning(c5):
    mi = fhir.condition(ACUTE_MI, id="mi", onset=fhir.day(30))
    card = only_card(on_sign(c5, [mi]))
    check_card(card, C5, "warning", "contraindicated", "myocardial infarction")
    assert (
        f"- recent myocardial infarction: **Myocardial infarction** (onset {fhir.date_of(30)})"
        in card.detail
    )
    assert "MAO" not in card.summary
    check_delete_suggestion(card, "MedicationRequest/cbp-1")


def test_mi_200_days_ago_is_quiet(c5):
    assert on_sign(c5, [fhir.condition(NSTEMI, id="mi", onset=fhir.day(200))]) == []


def test_mi_without_onset_counts_as_recent(c5):
    card = only_card(on_sign(c5, [fhir.condition(NSTEMI, id="mi", onset=None)]))
    assert "onset date not recorded" in card.detail


def test_recent_mi_days_is_a_setting(c5):
    mi = fhir.condition(ACUTE_MI, id="mi", onset=fhir.day(200))
    assert len(on_sign(c5, [mi], recent_mi_days=365)) == 1
    recent = fhir.condition(ACUTE_MI, id="mi", onset=fhir.day(30))
    assert on_sign(c5, [recent], recent_mi_days=14) == []


@pytest.mark.parametrize(
    "code",
    [HISTORY_OF_MI, fhir.concept(text="Old myocardial infarction")],
    ids=["history-of-mi-399211009", "old-mi-text"],
)
def test_history_of_mi_is_quiet(c5, code):
    assert on_sign(c5, [fhir.condition(code, id="h", onset=fhir.day(10))]) == []


@pytest.mark.parametrize(
    "code, what",
    [
        (ATRIAL_FIBRILLATION, "arrhythmia or conduction disturbance"),
        (COMPLETE_AV_BLOCK, "arrhythmia or conduction disturbance"),
        (HEART_FAILURE, "heart failure"),
        (fhir.concept(SNOMED, "84114007", "Heart failure"), "heart failure"),
        (HYPERTHYROIDISM, "hyperthyroidism"),
        (fhir.concept(text="Graves disease"), "hyperthyroidism"),
    ],
    ids=["af-49436004", "icd-I44.2", "chf-88805009", "hf-84114007", "icd-E05.90", "graves-text"],
)
def test_contraindicating_conditions_give_a_warning(c5, code, what):
    found = fhir.condition(code, id="c1", onset=fhir.day(3000))
    card = only_card(on_sign(c5, [found]))
    check_card(card, C5, "warning", "contraindicated", what)
    label = code["coding"][0]["display"] if "coding" in code else code["text"]
    assert f"- {what}: **{label}** (onset {fhir.date_of(3000)})" in card.detail


@not_counting("resolved", "inactive", "remission", "refuted", "entered-in-error")
def test_heart_failure_that_does_not_count_is_quiet(c5, status):
    assert on_sign(c5, [fhir.condition(HEART_FAILURE, id="hf", **status)]) == []


def test_unrelated_condition_is_quiet(c5):
    assert on_sign(c5, [fhir.condition(HYPERTENSION, id="htn")]) == []
    assert on_sign(c5, []) == []


def test_several_findings_on_one_card_each_with_its_onset(c5):
    chart = [
        fhir.active_order(PHENELZINE, id="mao-1", days_ago=40),
        fhir.condition(NSTEMI, id="mi", onset=fhir.day(20)),
        fhir.condition(ATRIAL_FIBRILLATION, id="af", onset=fhir.day(700)),
        fhir.condition(HEART_FAILURE, id="hf", onset=fhir.day(400)),
        fhir.condition(HYPERTHYROIDISM, id="thyro", onset=fhir.day(100)),
    ]
    card = only_card(on_sign(c5, chart))
    assert card.indicator == "critical"
    assert len(card.summary) < 140
    assert card.summary.startswith("Cyclobenzaprine is contraindicated: an MAO inhibitor")
    for line in [
        "- MAO inhibitor active: **Phenelzine 15 MG Oral Tablet**",
        "- recent myocardial infarction: **Acute non-ST segment elevation myocardial "
        f"infarction** (onset {fhir.date_of(20)})",
        f"- arrhythmia or conduction disturbance: **Atrial fibrillation** (onset "
        f"{fhir.date_of(700)})",
        f"- heart failure: **Chronic congestive heart failure** (onset {fhir.date_of(400)})",
        "- hyperthyroidism: **Thyrotoxicosis, unspecified without thyrotoxic crisis or storm** "
        f"(onset {fhir.date_of(100)})",
    ]:
        assert line in card.detail, line
    assert "Condition/" not in card.detail and "49436004" not in card.detail


def test_two_conditions_without_mao_stay_a_warning(c5):
    chart = [
        fhir.condition(ATRIAL_FIBRILLATION, id="af"),
        fhir.condition(HEART_FAILURE, id="hf"),
    ]
    card = only_card(on_sign(c5, chart))
    assert card.indicator == "warning"
    assert "arrhythmia or conduction disturbance" in card.summary
    assert "heart failure" in card.summary


def test_one_card_per_cyclobenzaprine_order(c5):
    chart = [fhir.condition(ATRIAL_FIBRILLATION, id="af")]
    cards = on_sign(
        c5,
        chart,
        cyclobenzaprine("a"),
        cyclobenzaprine("b"),
        fhir.medication_request(METHOCARBAMOL, id="c"),
    )
    assert sorted(c.identity for c in cards) == ["MedicationRequest/a", "MedicationRequest/b"]


# Patient-view ------------------------------------------------------------------------------------


def test_patient_view_active_cyclobenzaprine_with_af_suggests_stopping_it(c5):
    active = fhir.active_order(TABLET_10, id="m1", days_ago=7)
    chart = [fhir.patient(), active, fhir.condition(ATRIAL_FIBRILLATION, id="af")]
    card = only_card(evaluate(c5, "patient-view", chart))
    check_card(card, C5, "warning", "arrhythmia")
    assert card.repeat_quietly is True
    (action,) = actions_of(card)
    assert action.type == "update"
    assert action.resource["id"] == "m1" and action.resource["status"] == "stopped"
    assert action.resource["medicationCodeableConcept"] == TABLET_10


def test_patient_view_quiet_without_cyclobenzaprine_or_finding(c5):
    af = fhir.condition(ATRIAL_FIBRILLATION, id="af")
    assert evaluate(c5, "patient-view", [fhir.patient(), af]) == []
    active = fhir.active_order(TABLET_10, id="m1", days_ago=7)
    assert evaluate(c5, "patient-view", [fhir.patient(), active]) == []


# Wiring --------------------------------------------------------------------------------------


def test_reads_ended_medications_and_declares_its_windows(c5):
    assert data.MAO_INHIBITOR_HISTORY in c5.reads("order-sign")
    assert data.MAO_INHIBITOR_HISTORY in c5.reads("patient-view")
    assert data.ACTIVE_MEDICATIONS in c5.reads("order-sign")
    assert declared_defaults(c5) == {
        "mao_washout_days": 14,
        "mao_unknown_end_lookback_days": 90,
        "recent_mi_days": 90,
    }
    for service_id in ("legcramp-order-sign", "legcramp-patient-view"):
        assert "maoInhibitorHistory" in declared_prefetch(service_id), service_id


@pytest.mark.parametrize("end_days_ago, rules", [(10, [C5]), (20, [])])
def test_service_reads_a_stopped_mao_inhibitor_from_the_ended_medications_prefetch(
    make_app, end_days_ago, rules
):
    """Through the service: the stopped MAO inhibitor arrives under 'maoInhibitorHistory'."""
    stopped = ended_mao("stopped", 60, dosageInstruction=bounded(end_days_ago=end_days_ago))
    request = hook_request("order-sign", [fhir.patient(), stopped], [cyclobenzaprine()])
    assert [e["resource"]["id"] for e in request["prefetch"]["maoInhibitorHistory"]["entry"]] == [
        "mao-1"
    ]
    body = make_app().test_client().post("/cds-services/legcramp-order-sign", json=request)
    found = cards_by_rule(body.get_json()).get(C5, [])
    assert [c["indicator"] for c in found] == ["critical" for _ in rules]


# Dates as EHRs send them --------------------------------------------------------------------------


def test_an_mao_inhibitor_authored_on_a_date_only_is_judged(c5):
    """authoredOn '2026-10-23' (a date, the commonest form) with a 20-day supply: last day
    10 days ago, within the washout: critical, never an error that loses the card."""
    supply = {"expectedSupplyDuration": {"value": 20, "unit": "days",
                                         "system": "http://unitsofmeasure.org", "code": "d"}}
    stopped = fhir.medication_request(PHENELZINE, id="mao-1", status="stopped",
                                      authored=fhir.date_of(30), dispenseRequest=supply)
    card = only_card(on_sign(c5, [stopped]))
    assert card.indicator == "critical"


def test_an_mao_inhibitor_with_a_partial_authored_date_does_not_lose_the_heart_finding(c5):
    """authoredOn '2026-10' (a month only): its stop cannot be dated, so it is not counted, and
    the atrial fibrillation still gets its card."""
    stopped = fhir.medication_request(PHENELZINE, id="mao-1", status="stopped",
                                      authored=fhir.date_of(40)[:7])
    af = fhir.condition(ATRIAL_FIBRILLATION, id="af", onset=fhir.date_of(400)[:4])
    card = only_card(on_sign(c5, [stopped, af]))
    assert card.indicator == "warning"
    assert "**Atrial fibrillation** (onset " + fhir.date_of(400)[:4] + ")" in card.detail


def test_on_refill_an_mao_inhibitor_and_its_renewal_are_named_once(c5):
    """A refill queue with cyclobenzaprine and a phenelzine refill, beside the active phenelzine
    order it renews: the card names phenelzine once, as the refill requested."""
    active = fhir.active_order(PHENELZINE, id="mao-1", days_ago=40)
    renewal = fhir.medication_request(PHENELZINE, id="refill-mao")
    card = only_card(evaluate(c5, "medication-refill", [fhir.patient(), active],
                              [cyclobenzaprine(), renewal]))
    assert card.indicator == "critical"
    assert card.detail.count("Phenelzine 15 MG Oral Tablet") == 1
    assert "being ordered: **Phenelzine 15 MG Oral Tablet** (refill requested, " in card.detail
