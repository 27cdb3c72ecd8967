"""Scenario injection on copies of real Synthea bundles: coded resources for one rule are added to
a real patient's chart, evaluated as of the bundle's last date. The rule's card must appear, and
every card the unmodified bundle gave must still be there, unchanged.

Patients are picked deterministically: the n-th living patient (bundle files in name order) with
none of the conditions or active medications that would bring other rules in, so that the only
new cards are the scenario's. Every pick is checked against its own baseline run.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from cds_service.clock import FixedClock
from cds_service.config import Config, load_config
from cds_service.kit import CONDITION_CLINICAL as CLINICAL
from cds_service.kit import CONDITION_VERIFICATION as VERIFICATION
from cds_service.kit import LOINC, SNOMED, UCUM
from cds_service.kit import RXNORM as RX
from hooks.valuesets import lab, library
from tests.support import synthea
from tests.support.fhir_server import declared_prefetch
from tests.support.synthea import SYNTHEA_R4, Store

SERVICES = {"patient-view": "legcramp-patient-view", "order-sign": "legcramp-order-sign"}

# Conditions and active drugs that bring in rules other than the scenario's.
OTHER_RULE_CONDITIONS = (
    "stroke",
    "cns-spasticity-conditions",
    "diabetes",
    "pad",
    "cirrhosis",
    "esrd",
    "dialysis",
    "restless-legs",
    "leg-cramps",
    "parkinsons-disease",
    "malaria",
)
OTHER_RULE_DRUGS = (
    "diuretics",
    "loop-thiazide-diuretics",
    "statins",
    "beta-blockers",
    "benzodiazepines",
    "dopamine-blockers",
    "dopaminergic-drugs",
    "alpha2delta-ligands",
    "rls-drugs",
    "cramp-drugs",
)


def fhir_time(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds").replace("+00:00", "Z")


def codings(concept: Any) -> set[tuple[str, str]]:
    return {(c.get("system"), c.get("code")) for c in (concept or {}).get("coding") or []}


def in_value_set(concept: Any, value_set_id: str) -> bool:
    return bool(codings(concept) & library()[value_set_id].codes)


def eligible(store: Store, as_of: datetime) -> bool:
    """Alive; no condition and no active order that another rule reads; no electrolyte or iron
    result in the bundle's last year (they would join the scenario's lab picture)."""
    if store.patient.get("deceasedDateTime") or store.patient.get("deceasedBoolean"):
        return False
    for condition in store.of_type("Condition"):
        if any(in_value_set(condition.get("code"), vs) for vs in OTHER_RULE_CONDITIONS):
            return False
    for order in store.of_type("MedicationRequest"):
        if order.get("status") == "active" and any(
            in_value_set(order.get("medicationCodeableConcept"), vs) for vs in OTHER_RULE_DRUGS
        ):
            return False
    labs = {
        code
        for name in (
            "potassium",
            "magnesium",
            "calcium-total",
            "ferritin",
            "transferrin-saturation",
            "serum-iron",
            "tibc",
        )
        for code in lab(name).loinc_codes
    }
    cutoff = fhir_time(as_of - timedelta(days=365))
    for observation in store.of_type("Observation"):
        recent = (observation.get("effectiveDateTime") or "") >= cutoff[:10]
        if recent and {c for s, c in codings(observation.get("code")) if s == LOINC} & labs:
            return False
    return True


def pick(n: int) -> Store:
    """The n-th eligible patient of synthea-r4 (files in name order)."""
    found = [
        s
        for s in (synthea.load_store(p) for p in sorted(SYNTHEA_R4.glob("*.json")))
        if eligible(s, synthea.evaluation_date(s))
    ]
    assert len(found) > n, f"only {len(found)} eligible patients"
    return found[n]


# --- coded resources ----------------------------------------------------------------------


def condition(store: Store, rid: str, code: str, display: str, onset: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{store.patient_id}"},
        "onsetDateTime": fhir_time(onset),
        "recordedDate": fhir_time(onset),
    }


def lab_result(
    store: Store, rid: str, loinc: str, display: str, value: float, unit: str, when: datetime
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{store.patient_id}"},
        "effectiveDateTime": fhir_time(when),
        "issued": fhir_time(when),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def draft_order(
    store: Store,
    rid: str,
    rxnorm: str,
    display: str,
    as_of: datetime,
    supply_days: int = 30,
    per_day: int = 1,
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RX, "code": rxnorm, "display": display}],
            "text": display,
        },
        "subject": {"reference": f"Patient/{store.patient_id}"},
        "authoredOn": fhir_time(as_of),
        "dosageInstruction": [
            {
                "text": f"1 tablet {per_day} time(s) a day",
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": 1,
                            "unit": "tablet",
                            "system": UCUM,
                            "code": "{tbl}",
                        }
                    }
                ],
            }
        ],
        "dispenseRequest": {
            "expectedSupplyDuration": {
                "value": supply_days,
                "unit": "days",
                "system": UCUM,
                "code": "d",
            }
        },
    }


# --- running ------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    nth: int  # which eligible patient
    hook: str
    rules: dict[str, str]  # rule id -> indicator of the new card
    build: Callable[[Store, datetime], list[dict[str, Any]]]  # chart additions and drafts


def rls_iron(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    return [
        condition(store, "scn-rls", "32914008", "Restless legs", as_of - timedelta(days=400)),
        lab_result(
            store,
            "scn-ferritin",
            "2276-4",
            "Ferritin [Mass/volume] in Serum or Plasma",
            30,
            "ug/L",
            as_of - timedelta(days=30),
        ),
    ]


def quinine(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    return [
        draft_order(store, "scn-quinine", "997010", "quinine sulfate 324 MG Oral Capsule", as_of)
    ]


def cyclobenzaprine(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    return [
        draft_order(
            store,
            "scn-cyclobenzaprine",
            "828348",
            "cyclobenzaprine hydrochloride 10 MG Oral Tablet",
            as_of,
        )
    ]


def benzodiazepine(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    return [
        condition(
            store,
            "scn-stroke",
            "422504002",
            "Ischemic stroke (disorder)",
            as_of - timedelta(days=60),
        ),
        draft_order(
            store, "scn-lorazepam", "197900", "lorazepam 0.5 MG Oral Tablet", as_of, supply_days=10
        ),
    ]


def cramps_magnesium(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    return [
        condition(
            store, "scn-cramps", "449918009", "Cramp in lower leg", as_of - timedelta(days=10)
        ),
        lab_result(
            store,
            "scn-magnesium",
            "2601-3",
            "Magnesium [Moles/volume] in Serum or Plasma",
            0.55,
            "mmol/L",
            as_of - timedelta(days=20),
        ),
    ]


def quinine_beside_rls_and_low_ferritin(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    """At order entry only cards about the order in hand: the RLS iron cards must not ride
    along on a quinine order (the clinical review's finding)."""
    return rls_iron(store, as_of) + quinine(store, as_of)


def old_stroke_and_a_short_cyclobenzaprine_course(
        store: Store, as_of: datetime) -> list[dict[str, Any]]:
    """A stroke two years ago with no sequelae on record does not make a back spasm central:
    C2 stays quiet (it fired on strokes from 1965 on); 10 days is within C1's limit."""
    return [
        condition(store, "scn-old-stroke", "230690007", "Stroke", as_of - timedelta(days=730)),
        draft_order(store, "scn-cyclobenzaprine", "828348",
                    "cyclobenzaprine hydrochloride 10 MG Oral Tablet", as_of, supply_days=10),
    ]


def back_spasm_with_pad(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    """Back spasm is not a leg cramp: with PAD it gives no 'leg cramps' card (P1 fired on it
    when the leg-cramp value set held back spasm)."""
    return [
        condition(store, "scn-pad", "399957001", "Peripheral arterial occlusive disease",
                  as_of - timedelta(days=400)),
        condition(store, "scn-back-spasm", "203095000", "Spasm of back muscles",
                  as_of - timedelta(days=20)),
    ]


def ten_day_course_valid_for_a_year(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    """A prescription may be filled for a year; the course is 10 days: C1 stays quiet (it
    read the validity period as 366 days of treatment)."""
    order = draft_order(store, "scn-cyclobenzaprine", "828348",
                        "cyclobenzaprine hydrochloride 10 MG Oral Tablet", as_of, supply_days=10)
    order["dispenseRequest"]["validityPeriod"] = {
        "start": fhir_time(as_of), "end": fhir_time(as_of + timedelta(days=365))}
    return [order]


def cramps_with_low_total_calcium_and_low_albumin(
        store: Store, as_of: datetime) -> list[dict[str, Any]]:
    """Ca 7.9 mg/dL with albumin 2.4 g/dL corrects to about 9.2: no electrolyte card."""
    drawn = as_of - timedelta(days=5)
    return [
        condition(store, "scn-cramps", "449918009", "Cramp in lower leg",
                  as_of - timedelta(days=10)),
        lab_result(store, "scn-calcium", "17861-6", "Calcium [Mass/volume] in Serum or Plasma",
                   7.9, "mg/dL", drawn),
        lab_result(store, "scn-albumin", "1751-7", "Albumin [Mass/volume] in Serum or Plasma",
                   2.4, "g/dL", drawn),
    ]


def leg_cramps_with_esrd_off_dialysis(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    """Gabapentin is the guidance's option for restless legs in ESRD, not for cramps: S1 stays
    quiet for cramps with ESRD and no dialysis."""
    return [
        condition(store, "scn-esrd", "46177005", "End-stage renal disease",
                  as_of - timedelta(days=400)),
        condition(store, "scn-cramps", "449918009", "Cramp in lower leg",
                  as_of - timedelta(days=10)),
    ]


SCENARIOS = [
    Scenario(
        "rls-ferritin-30",
        0,
        "patient-view",
        {"rls-iron-low": "warning", "rls-iron-studies-due": "info"},
        rls_iron,
    ),
    Scenario("quinine-order", 1, "order-sign", {"quinine-leg-cramps": "critical"}, quinine),
    Scenario(
        "cyclobenzaprine-30-days",
        2,
        "order-sign",
        {"cyclobenzaprine-duration": "warning"},
        cyclobenzaprine,
    ),
    Scenario(
        "lorazepam-60-days-after-stroke",
        3,
        "order-sign",
        {"benzodiazepine-stroke-recovery": "warning"},
        benzodiazepine,
    ),
    Scenario(
        "cramps-magnesium-0.55",
        4,
        "patient-view",
        {"cramps-electrolytes-abnormal": "warning"},
        cramps_magnesium,
    ),
    Scenario(
        "quinine-order-beside-rls-and-ferritin-30",
        5,
        "order-sign",
        {"quinine-leg-cramps": "critical"},
        quinine_beside_rls_and_low_ferritin,
    ),
    Scenario("back-spasm-with-pad", 7, "patient-view", {}, back_spasm_with_pad),
    Scenario("cyclobenzaprine-10-days-valid-for-a-year", 8, "order-sign", {},
             ten_day_course_valid_for_a_year),
    Scenario("cramps-calcium-7.9-albumin-2.4", 9, "patient-view", {},
             cramps_with_low_total_calcium_and_low_albumin),
    Scenario("leg-cramps-esrd-off-dialysis", 10, "patient-view", {},
             leg_cramps_with_esrd_off_dialysis),
    Scenario(
        "old-stroke-cyclobenzaprine-10-days",
        6,
        "order-sign",
        {},
        old_stroke_and_a_short_cyclobenzaprine_course,
    ),
]


def scenario_config() -> Config:
    cfg = load_config(None)
    # baseline and scenario are two chart opens of one patient: neither may quiet the other
    return replace(
        cfg,
        cards=replace(cfg.cards, repeat_quiet_days=0),
        store=replace(cfg.store, record_cards=False),
    )


def served_on_its_date(make_app: Any, base: Any) -> tuple[datetime, Any]:
    """The chart's evaluation date, and a POST to a service whose clock stands on it."""
    as_of = synthea.evaluation_date(base)
    return as_of, make_app(scenario_config(), clock=FixedClock(as_of)).test_client().post


def run(post: Callable[..., Any], hook: str, store: Store, drafts: list[dict[str, Any]]) -> Any:
    service_id = SERVICES[hook]
    request = synthea.hook_request(
        hook,
        store,
        str(uuid.uuid4()),
        prefetch=synthea.prefetch_for(store, declared_prefetch(service_id)),
        draft=drafts[0] if drafts else None,
    )
    if hook == "order-sign":
        request["context"]["draftOrders"]["entry"] = [{"resource": d} for d in drafts]
    response = post(f"/cds-services/{service_id}", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_card_appears_on_the_real_patient(make_app, scenario: Scenario):
    base = pick(scenario.nth)
    as_of, post = served_on_its_date(make_app, base)

    added = scenario.build(base, as_of)
    chart = [r for r in added if r["resourceType"] != "MedicationRequest"]
    drafts = [r for r in added if r["resourceType"] == "MedicationRequest"]
    baseline_drafts = [synthea.draft_copy(synthea.most_recent_order(base), as_of)] if drafts else []
    for draft in drafts:
        vs = {"997010": "quinine", "828348": "cyclobenzaprine", "197900": "benzodiazepines"}[
            draft["medicationCodeableConcept"]["coding"][0]["code"]
        ]
        assert in_value_set(draft["medicationCodeableConcept"], vs), draft

    before = run(post, scenario.hook, base, baseline_drafts)
    assert not set(synthea.rule_ids(before)) & set(scenario.rules), (
        base.name,
        synthea.rule_ids(before),
    )

    changed = synthea.copy_store(base)
    for resource in chart:
        synthea.add_resource(changed, resource)
    after = run(post, scenario.hook, changed, baseline_drafts + drafts)

    old = Counter(map(synthea.card_key, before["cards"]))
    new = Counter(map(synthea.card_key, after["cards"]))
    assert not old - new, f"{base.name}: cards of the unmodified bundle changed: {old - new}"
    appeared = {key[0]: key[1] for key in new - old}
    assert appeared == scenario.rules, (base.name, appeared)
    for card in after["cards"]:
        if synthea.card_key(card)[0] in scenario.rules and drafts:
            targets = {
                a.get("resourceId")
                for s in card.get("suggestions") or []
                for a in s.get("actions") or []
                if a.get("resourceId")
            }
            assert not targets - {f"MedicationRequest/{d['id']}" for d in drafts}, card


# --- cyclobenzaprine in older adults and where its label says never; drugs that worsen RLS ------
#
# These patients are picked by what the scenario needs (an age, a heart condition), not from the
# eligible list above, and each test asserts every rule id the response carries: a card the
# scenario did not ask for fails it as surely as a missing one.

C4 = "cyclobenzaprine-older-adult"
C5 = "cyclobenzaprine-contraindication"
A2 = "rls-worsening-drugs"
# What brings in a cyclobenzaprine rule other than C4: C5's findings and C2's central spasticity.
CYCLOBENZAPRINE_FINDINGS = (
    "myocardial-infarction",
    "arrhythmia-conduction",
    "heart-failure",
    "hyperthyroidism",
    "cns-spasticity-conditions",
    "stroke",
)
AF_OR_HEART_FAILURE = {(SNOMED, "49436004"), (SNOMED, "88805009")}


def age_on(store: Store, as_of: datetime) -> int:
    """Whole years from the patient's birth date to `as_of`."""
    born = datetime.fromisoformat(store.patient["birthDate"]).date()
    today = as_of.date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def first_living(wanted: Callable[[Store, datetime], bool]) -> Store:
    """The first living patient of synthea-r4 (files in name order) for whom `wanted` holds, as
    of the bundle's last date."""
    for path in sorted(SYNTHEA_R4.glob("*.json")):
        store = synthea.load_store(path)
        dead = store.patient.get("deceasedDateTime") or store.patient.get("deceasedBoolean")
        if not dead and wanted(store, synthea.evaluation_date(store)):
            return store
    raise AssertionError("no such patient in synthea-r4")


def is_active(condition: dict[str, Any]) -> bool:
    status = {c.get("code") for c in (condition.get("clinicalStatus") or {}).get("coding") or []}
    return status == {"active"} and not condition.get("abatementDateTime")


def older_without_cyclobenzaprine_findings(store: Store, as_of: datetime) -> bool:
    return (
        age_on(store, as_of) >= 65
        and not any(
            in_value_set(c.get("code"), vs)
            for c in store.of_type("Condition")
            for vs in CYCLOBENZAPRINE_FINDINGS
        )
        and not any(
            o.get("status") == "active"
            and in_value_set(o.get("medicationCodeableConcept"), "mao-inhibitors")
            for o in store.of_type("MedicationRequest")
        )
    )


def with_active_af_or_heart_failure(store: Store, as_of: datetime) -> bool:
    return any(
        is_active(c) and codings(c.get("code")) & AF_OR_HEART_FAILURE
        for c in store.of_type("Condition")
    )


def cyclobenzaprine_10_days(store: Store, as_of: datetime) -> dict[str, Any]:
    """10 mg once a day for 10 days: within C1's duration and C3's dose."""
    order = draft_order(
        store,
        "scn-cyclobenzaprine",
        "828348",
        "cyclobenzaprine hydrochloride 10 MG Oral Tablet",
        as_of,
        supply_days=10,
    )
    assert in_value_set(order["medicationCodeableConcept"], "cyclobenzaprine")
    return order


def test_older_synthea_patient_given_cyclobenzaprine_gets_c4_and_not_at_50(make_app):
    base = first_living(older_without_cyclobenzaprine_findings)
    as_of, post = served_on_its_date(make_app, base)
    age = age_on(base, as_of)
    order = cyclobenzaprine_10_days(base, as_of)

    body = run(post, "order-sign", base, [order])
    assert synthea.rule_ids(body) == [C4], (base.name, synthea.rule_ids(body))
    (card,) = body["cards"]
    assert card["indicator"] == "warning"
    assert f"at age {age}" in card["summary"], card["summary"]
    assert card["source"]["label"].startswith("American Geriatrics Society 2023 Beers")

    younger = synthea.copy_store(base)
    born = as_of.date().replace(month=1, day=1, year=as_of.year - 50)
    younger.patient["birthDate"] = born.isoformat()
    assert age_on(younger, as_of) == 50
    body = run(post, "order-sign", younger, [order])
    assert synthea.rule_ids(body) == [], (base.name, synthea.rule_ids(body))


def test_synthea_patient_with_af_or_heart_failure_given_cyclobenzaprine_gets_c5(make_app):
    base = first_living(with_active_af_or_heart_failure)
    as_of, post = served_on_its_date(make_app, base)
    older = [C4] if age_on(base, as_of) >= 65 else []
    order = cyclobenzaprine_10_days(base, as_of)
    (finding,) = [
        c
        for c in base.of_type("Condition")
        if is_active(c) and codings(c.get("code")) & AF_OR_HEART_FAILURE
    ]
    display = finding["code"]["coding"][0]["display"]

    body = run(post, "order-sign", base, [order])
    assert synthea.rule_ids(body) == sorted([C5, *older]), (base.name, synthea.rule_ids(body))
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == C5]
    assert card["indicator"] == "warning"
    assert f"**{display}** (onset {finding['onsetDateTime'][:10]})" in card["detail"]
    (suggestion,) = card["suggestions"]
    assert [(a["type"], a["resourceId"]) for a in suggestion["actions"]] == [
        ("delete", "MedicationRequest/scn-cyclobenzaprine")
    ]

    resolved = synthea.copy_store(base)
    changed = resolved.get(f"Condition/{finding['id']}")
    changed["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "resolved"}]}
    changed["abatementDateTime"] = fhir_time(as_of - timedelta(days=30))
    body = run(post, "order-sign", resolved, [order])
    assert synthea.rule_ids(body) == older, (base.name, synthea.rule_ids(body))


def test_synthea_patient_with_restless_legs_given_sertraline_gets_a2_naming_bupropion(make_app):
    base = pick(2)
    as_of, post = served_on_its_date(make_app, base)
    sertraline = draft_order(
        base, "scn-sertraline", "312941", "Sertraline 50 MG Oral Tablet", as_of
    )
    assert in_value_set(sertraline["medicationCodeableConcept"], "serotonergic-antidepressants")

    body = run(post, "order-sign", base, [sertraline])
    assert synthea.rule_ids(body) == [], (base.name, synthea.rule_ids(body))

    changed = synthea.copy_store(base)
    synthea.add_resource(
        changed,
        condition(changed, "scn-rls", "32914008", "Restless legs", as_of - timedelta(days=400)),
    )
    body = run(post, "order-sign", changed, [sertraline])
    assert synthea.rule_ids(body) == [A2], (base.name, synthea.rule_ids(body))
    (card,) = body["cards"]
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Sertraline 50 MG Oral Tablet is a serotonergic")
    assert "bupropion" in card["detail"]
    assert card["source"]["label"].startswith("Bayard et al.")


# --- the safety gates on real charts --------------------------------------------------------
#
# Two Synthea patients whose own data trip a gate: one with a low eGFR (reported in 'mL/min', as
# Synthea writes it), COPD and age over 65; one with an active pregnancy. Restless legs and a
# pramipexole order are added, so D1 names the gabapentinoid switch and the gates qualify it.

D1 = "rls-dopaminergic-augmentation"
EGFR = "33914-3"


def named(prefix: str) -> Store:
    (path,) = sorted(SYNTHEA_R4.glob(f"{prefix}_*.json"))
    return synthea.load_store(path)


def with_rls_and_pramipexole(store: Store, as_of: datetime) -> tuple[Store, dict[str, Any]]:
    changed = synthea.copy_store(store)
    synthea.add_resource(
        changed,
        condition(changed, "scn-rls", "32914008", "Restless legs", as_of - timedelta(days=400)),
    )
    order = draft_order(changed, "scn-pramipexole", "746741", "pramipexole 0.125 mg tablet",
                        as_of)
    return changed, order


def test_low_egfr_copd_and_age_on_a_real_chart_qualify_the_gabapentinoid_switch(make_app):
    """Martina Murazik's own chart: eGFR 26.7 'mL/min' (LOINC 33914-3), chronic obstructive
    bronchitis, 67 years old. D1 still offers the switch, with the kidney-dosing note (and the
    drafts' renal-dosing note) and the FDA breathing warning naming what was found."""
    base = named("Martina_Murazik")
    as_of, post = served_on_its_date(make_app, base)
    changed, order = with_rls_and_pramipexole(base, as_of)

    body = run(post, "order-sign", changed, [order])
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == D1]
    assert "- kidney function: eGFR **26.7 mL/min" in card["detail"], card["detail"]
    assert "Chronic obstructive bronchitis" in card["detail"]
    assert "**Kidney function:**" in card["detail"] and "**Breathing risk:**" in card["detail"]
    assert len(card["suggestions"]) == 2
    for suggestion in card["suggestions"]:
        created = [a["resource"] for a in suggestion["actions"] if a["type"] == "create"]
        assert "dosageInstruction" not in created[0]
        assert any("renal dosing" in n["text"] for n in created[0]["note"])

    # The same chart without the eGFR results, the COPD and the years: no gate speaks.
    plain = synthea.copy_store(changed)
    for observation in plain.of_type("Observation"):
        if codings(observation.get("code")) & {(LOINC, EGFR)}:
            observation["status"] = "entered-in-error"
    for found in plain.of_type("Condition"):
        if in_value_set(found.get("code"), "copd"):
            found["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "resolved"}]}
    plain.patient["birthDate"] = as_of.date().replace(year=as_of.year - 50).isoformat()
    body = run(post, "order-sign", plain, [order])
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == D1]
    assert "**Kidney function:**" not in card["detail"]
    assert "**Breathing risk:**" not in card["detail"]
    assert len(card["suggestions"]) == 2


def test_an_active_pregnancy_on_a_real_chart_withholds_the_gabapentinoid_switch(make_app):
    """Alix Reilly's own chart: 'Normal pregnancy' (SNOMED 72892002) active since 2020-10-07.
    D1 offers no switch and says why; with the pregnancy resolved the switch is back."""
    base = named("Alix_Reilly")
    as_of, post = served_on_its_date(make_app, base)
    changed, order = with_rls_and_pramipexole(base, as_of)

    body = run(post, "order-sign", changed, [order])
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == D1]
    assert not card.get("suggestions")
    assert "- pregnancy: **Normal pregnancy** (onset 2020-10-07)" in card["detail"]
    assert "**Pregnancy:** no switch to gabapentin or pregabalin is offered" in card["detail"]

    delivered = synthea.copy_store(changed)
    for found in delivered.of_type("Condition"):
        if codings(found.get("code")) & {(SNOMED, "72892002")}:
            found["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "resolved"}]}
            found["abatementDateTime"] = fhir_time(as_of - timedelta(days=20))
    body = run(post, "order-sign", delivered, [order])
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == D1]
    assert [s["label"] for s in card["suggestions"]] == [
        "Replace with gabapentin", "Replace with pregabalin"]


def test_quinine_on_a_real_chart_with_egfr_below_30_drops_baclofen_from_the_alternatives(make_app):
    """Martina Murazik (eGFR 26.7 'mL/min' on her own chart) given quinine for leg cramps: Q1's
    alternatives leave baclofen out and say why; without the eGFR results and at 50 they name
    the usual baclofen schedule."""
    base = named("Martina_Murazik")
    as_of, post = served_on_its_date(make_app, base)
    changed = synthea.copy_store(base)
    synthea.add_resource(changed, condition(changed, "scn-cramps", "449918009",
                                            "Cramp in lower leg", as_of - timedelta(days=90)))
    quinine = draft_order(changed, "scn-quinine", "997010",
                          "quinine sulfate 324 MG Oral Capsule", as_of)

    body = run(post, "order-sign", changed, [quinine])
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == "quinine-leg-cramps"]
    assert card["indicator"] == "critical"
    assert "Baclofen is not suggested" in card["detail"]
    assert "eGFR **26.7 mL/min" in card["detail"]

    plain = synthea.copy_store(changed)
    for observation in plain.of_type("Observation"):
        if codings(observation.get("code")) & {(LOINC, EGFR)}:
            observation["status"] = "entered-in-error"
    plain.patient["birthDate"] = as_of.date().replace(year=as_of.year - 50).isoformat()
    body = run(post, "order-sign", plain, [quinine])
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == "quinine-leg-cramps"]
    assert "the guidance names baclofen (10 mg a day" in card["detail"]
    assert "Baclofen is not suggested" not in card["detail"]


def test_extended_release_cyclobenzaprine_twice_a_day_on_a_real_chart_gets_c3(make_app):
    """An eligible Synthea patient given 30 mg extended-release cyclobenzaprine twice a day for
    a week: C3 on the extended-release limits (and C4 when 65 or over); once a day is quiet."""
    base = pick(0)
    as_of, post = served_on_its_date(make_app, base)
    older = ["cyclobenzaprine-older-adult"] if age_on(base, as_of) >= 65 else []
    order = draft_order(base, "scn-amrix", "828353",
                        "24 HR cyclobenzaprine hydrochloride 30 MG Extended Release Oral Capsule",
                        as_of, supply_days=7)
    order["dosageInstruction"] = [{"text": "1 capsule twice a day", "timing": {"repeat": {
        "frequency": 2, "period": 1, "periodUnit": "d"}}, "doseAndRate": [{"doseQuantity": {
            "value": 1, "unit": "capsule", "system": UCUM, "code": "{capsule}"}}]}]
    body = run(post, "order-sign", base, [order])
    assert synthea.rule_ids(body) == sorted(["cyclobenzaprine-dose", *older]), (
        base.name, synthea.rule_ids(body))
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == "cyclobenzaprine-dose"]
    assert card["summary"].startswith("Extended-release cyclobenzaprine 60 mg/day in 2 doses")

    order["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 1
    body = run(post, "order-sign", base, [order])
    assert synthea.rule_ids(body) == older, (base.name, synthea.rule_ids(body))


def test_restless_legs_on_dialysis_with_low_iron_on_a_real_chart_gets_intravenous_iron(make_app):
    """An eligible Synthea patient with restless legs, ferritin 150 ng/mL and saturation 15%:
    on dialysis R2 advises intravenous iron with the kidney team and drafts no oral iron; the
    same chart without dialysis is above the adult bands (quiet)."""
    base = pick(1)
    as_of, post = served_on_its_date(make_app, base)
    chart = synthea.copy_store(base)
    drawn = as_of - timedelta(days=30)
    for resource in (
        condition(chart, "scn-rls", "32914008", "Restless legs", as_of - timedelta(days=400)),
        lab_result(chart, "scn-ferritin", "2276-4", "Ferritin [Mass/volume] in Serum or Plasma",
                   150, "ng/mL", drawn),
        lab_result(chart, "scn-tsat", "2502-3",
                   "Iron saturation [Mass Fraction] in Serum or Plasma", 15, "%", drawn),
    ):
        synthea.add_resource(chart, resource)
    on_dialysis = synthea.copy_store(chart)
    dialysis = condition(on_dialysis, "scn-hd", "36689008", "Renal dialysis", as_of)
    dialysis["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                    "code": "Z99.2", "display": "Dependence on renal dialysis"}],
                        "text": "Dependence on renal dialysis"}
    synthea.add_resource(on_dialysis, dialysis)

    body = run(post, "patient-view", on_dialysis, [])
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == "rls-iron-low"]
    assert card["indicator"] == "warning" and not card.get("suggestions")
    assert "intravenous iron with the kidney team" in card["summary"] + card["detail"]

    body = run(post, "patient-view", chart, [])
    assert "rls-iron-low" not in synthea.rule_ids(body), (base.name, synthea.rule_ids(body))
