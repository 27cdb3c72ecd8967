"""Running a rule as the engine does, and hook requests for the tests that go through the service.

`rule` is the rule as the catalog wires it; `evaluate` gives it the RuleContext the engine would
(`view` and `sign` on a chart with its patient); `hook_request` is a complete CDS Hooks request
whose prefetch holds the chart under every key the services declare.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from cds_service.kit import Card, RuleContext, RuleSettings
from cds_service.pipeline.record_builder import RecordBuilder
from cds_service.pipeline.rule_settings import as_table, settings_for
from hooks.services import catalog, service_for_hook
from hooks.valuesets import documents, lab
from tests.conftest import AS_OF
from tests.support.fhir import PATIENT_ID, condition, patient

BASE = "https://legcramp-cds.example.org/fhir/CodeSystem"

SERVICE_FOR_HOOK = service_for_hook()  # hook -> service id, from hooks/services.py


def rule(rule_id: str) -> Any:
    """The rule as `catalog()` wires it to its value sets."""
    return next(r for r in catalog() if r.rule_id == rule_id)


# Evaluating a rule ------------------------------------------------------------------------------


def declared_defaults(a_rule: Any) -> dict[str, Any]:
    """The thresholds and windows the rule declares, with their defaults (`enabled` and
    `silent`, which every rule has, aside)."""
    return {k: v for k, v in as_table(a_rule.Settings()).items()
            if k not in ("enabled", "silent")}


def settings_of(a_rule: Any, **overrides: Any) -> RuleSettings:
    """The rule's settings with `overrides`, checked as the configuration loader checks them."""
    return settings_for(a_rule, overrides)


def context_for(
    a_rule: Any,
    hook: str,
    chart: Iterable[dict[str, Any]] = (),
    drafts: Sequence[dict[str, Any]] = (),
    selections: Sequence[str] | None = None,
    **overrides: Any,
) -> RuleContext:
    """The RuleContext the engine would give `a_rule`: selections on order-select (all drafts
    when not given), every open draft on order-sign, active medications on patient-view."""
    record = RecordBuilder(PATIENT_ID, AS_OF).build(list(chart), [(d, None) for d in drafts])
    others: tuple[Any, ...] = ()
    if hook == "patient-view":
        subjects = tuple(record.active_medications())
    elif hook == "order-select" and selections is not None:
        subjects = tuple(o for o in record.open_drafts() if o.reference in selections)
        others = tuple(o for o in record.open_drafts() if o.reference not in selections)
    else:
        subjects = tuple(record.open_drafts())
    return RuleContext(
        hook=hook,
        record=record,
        subject_orders=subjects,
        context_orders=others,
        now=AS_OF,
        settings=settings_of(a_rule, **overrides),
        code_system_base=BASE,
    )


def evaluate(
    a_rule: Any,
    hook: str,
    chart: Iterable[dict[str, Any]] = (),
    drafts: Sequence[dict[str, Any]] = (),
    selections: Sequence[str] | None = None,
    **overrides: Any,
) -> list[Card]:
    return a_rule.evaluate(context_for(a_rule, hook, chart, drafts, selections, **overrides))


def view(a_rule: Any, *chart: dict[str, Any], **settings: Any) -> list[Card]:
    """The cards on opening the chart: the patient and `chart`."""
    return evaluate(a_rule, "patient-view", [patient(), *chart], **settings)


def sign(a_rule: Any, chart: list[dict[str, Any]], *drafts: dict[str, Any]) -> list[Card]:
    """The cards on signing `drafts` for the patient with `chart`."""
    return evaluate(a_rule, "order-sign", [patient(), *chart], list(drafts))


NOT_COUNTING = {
    "resolved": {"clinical": "resolved"},
    "inactive": {"clinical": "inactive"},
    "remission": {"clinical": "remission"},
    "refuted": {"verification": "refuted"},
    "entered-in-error": {"verification": "entered-in-error"},
}


def not_counting(*statuses: str) -> pytest.MarkDecorator:
    """Parametrize `status` with Condition fields (for `condition(**status)`) that keep a
    condition from counting, each named by its status code."""
    return pytest.mark.parametrize("status", [NOT_COUNTING[s] for s in statuses], ids=statuses)



def either_not_counting(first: str, second: str, *statuses: str) -> Callable[[Any], Any]:
    """Parametrize `which` of two conditions (`first` or `second`) has a `status` that keeps it
    from counting (as `not_counting(*statuses)`)."""

    def parametrize(test: Any) -> Any:
        return not_counting(*statuses)(pytest.mark.parametrize("which", [first, second])(test))

    return parametrize


def one_not_counting(
    which: str, status: dict[str, Any], **conditions: tuple[dict[str, Any], str]
) -> list[dict[str, Any]]:
    """A Condition for each of `conditions` (name=(code, id)), `status` on the one named `which`."""
    return [
        condition(code, id=id, **(status if name == which else {}))
        for name, (code, id) in conditions.items()
    ]

# Hook requests for the HTTP tests ----------------------------------------------------------------


def _bundle(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"resource": copy.deepcopy(r)} for r in resources]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return bundle


def _loinc(resource: dict[str, Any]) -> set[str]:
    return {c.get("code") for c in resource.get("code", {}).get("coding", [])}


def hook_request(
    hook: str,
    chart: Sequence[dict[str, Any]] = (),
    drafts: Sequence[dict[str, Any]] = (),
    selections: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A complete CDS Hooks 2.0 request whose prefetch holds `chart` under every key our
    services declare (so nothing is fetched): the patient, conditions, active medications, and
    observations split into iron studies and electrolytes by LOINC code."""
    iron_codes = {
        code
        for name in ("ferritin", "transferrin-saturation", "serum-iron", "tibc")
        for code in lab(name).loinc_codes
    }
    of_type = [r for r in chart if r["resourceType"] == "Observation"]
    b6_codes = set(lab("vitamin-b6").loinc_codes)
    egfr_codes = set(lab("egfr").loinc_codes)
    pregnancy_codes = {c["code"] for c in documents()["pregnancy-test"]["codes"]}
    elsewhere = iron_codes | b6_codes | egfr_codes | pregnancy_codes
    prefetch = {
        "patient": patient(),
        "conditions": _bundle(r for r in chart if r["resourceType"] == "Condition"),
        "activeMedications": _bundle(
            r
            for r in chart
            if r["resourceType"] == "MedicationRequest" and r.get("status") == "active"
        ),
        "maoInhibitorHistory": _bundle(
            r
            for r in chart
            if r["resourceType"] == "MedicationRequest"
            and r.get("status") in ("completed", "stopped", "on-hold")
        ),
        "ironStudies": _bundle(r for r in of_type if _loinc(r) & iron_codes),
        "electrolytes": _bundle(r for r in of_type if not _loinc(r) & elsewhere),
        "vitaminB6": _bundle(r for r in of_type if _loinc(r) & b6_codes),
        "kidneyFunction": _bundle(r for r in of_type if _loinc(r) & egfr_codes),
        "pregnancyTests": _bundle(r for r in of_type if _loinc(r) & pregnancy_codes),
    }
    context: dict[str, Any] = {"userId": "Practitioner/dr-1", "patientId": PATIENT_ID}
    if hook != "patient-view":
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": copy.deepcopy(d)} for d in drafts],
        }
    if hook == "order-select":
        context["selections"] = list(
            selections
            if selections is not None
            else [f"MedicationRequest/{d['id']}" for d in drafts]
        )
    return {
        "hook": hook,
        "hookInstance": "0b9e4c1a-3f5d-4e2b-9a7c-1d2e3f4a5b6c",
        "context": context,
        "prefetch": prefetch,
    }
