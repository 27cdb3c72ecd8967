"""The clinical review page: for each rule, one example patient and the card it gets, shown
as an EHR would show it, so a clinical reviewer can sign the rules off without reading code.

Generated from the example hook requests (the golden files) by running them through the same
engine the service uses; the tests fail when the checked-in page is out of date.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cds_service.config import Config
from cds_service.kit.service_declaration import ServiceDeclaration
from cds_service.pipeline.engine import CdsEngine
from cds_service.tools.catalog import entries
from cds_service.tools.examples import complete_prefetch

BADGE = {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"}


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _render_card(card: dict[str, Any]) -> str:
    lines = [
        f"**[{BADGE[card['indicator']]}]** {card['summary']}",
        "",
        f"*{card['source']['label']}*",
        "",
        card.get("detail", ""),
    ]
    for suggestion in card.get("suggestions", []):
        actions = "; ".join(
            f"{a['type']} {a.get('resourceId') or a['resource']['resourceType']}"
            for a in suggestion.get("actions", []))
        star = " (recommended)" if suggestion.get("isRecommended") else ""
        lines += ["", f"[ {suggestion['label']} ]{star} — {actions}"]
    reasons = [r["display"] for r in card.get("overrideReasons", [])]
    if reasons:
        lines += ["", "Dismiss with a reason: " + " · ".join(reasons)]
    return _quote("\n".join(lines))


def _patient_line(request: dict[str, Any]) -> str:
    conditions = []
    prefetch = request.get("prefetch") or {}
    for entry in (prefetch.get("conditions") or {}).get("entry", []):
        code = entry["resource"].get("code", {})
        label = code.get("text") or next((c.get("display") for c in code.get("coding", [])), "")
        status = entry["resource"].get("clinicalStatus", {}).get("coding", [{}])[0].get("code")
        conditions.append(f"{label} ({status})" if status else label)
    medications = _order_texts(prefetch.get("activeMedications"))
    context = request["context"]
    parts = [f"conditions: {', '.join(conditions) or 'none'}",
             f"active medications: {', '.join(medications) or 'none'}"]
    drafts = _order_texts(context.get("draftOrders"))
    if drafts:
        parts.append(f"being ordered: {', '.join(drafts)}")
    refills = _order_texts(context.get("medications"))  # medication-refill
    if refills:
        parts.append(f"refill requested: {', '.join(refills)}")
    return "; ".join(parts)


def _order_texts(bundle: dict[str, Any] | None) -> list[str]:
    return [entry["resource"].get("medicationCodeableConcept", {}).get("text", "")
            for entry in (bundle or {}).get("entry", [])]


def changed_outcome(services: Sequence[ServiceDeclaration], engine: CdsEngine, examples: Path,
                    example: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An example (`base` request, `change`) evaluated by the service for the changed
    request's hook (a refill example changes the hook): the changed request and its cards."""
    by_hook = {service.hook: service for service in services}
    request = json.loads((examples / f"{example.base}.request.json").read_text(encoding="utf-8"))
    request = complete_prefetch(request, by_hook[request["hook"]].requirements)
    example.change(request)
    service = by_hook[request["hook"]]
    request = complete_prefetch(request, service.requirements)
    return request, engine.call(service.id, request)["cards"]


def quiet_outcome(services: Sequence[ServiceDeclaration], engine: CdsEngine, examples: Path,
                  example: Any) -> tuple[dict[str, Any], list[str]]:
    """A should-not-fire example evaluated: its changed request, and the rule ids that gave
    cards (its own must not be among them)."""
    request, cards = changed_outcome(services, engine, examples, example)
    return request, [card["source"]["topic"]["code"] for card in cards]


def render_review_page(services: Sequence[ServiceDeclaration], config: Config,
                       engine: CdsEngine, examples: Path,
                       quiet_examples: Sequence[Any] = (),
                       refill_examples: Sequence[Any] = ()) -> str:
    """Per rule, an example patient that gets its card, and (`quiet_examples`: objects with
    `rule_id`, `base`, `why` and `change`) the same kind of patient changed so that the rule
    must stay quiet, evaluated here: the page says what happened, never what should.
    `refill_examples` (the same members) send a firing example as a medication-refill request,
    and show the card the refill gets, so a reviewer reads it as a refill queue shows it."""
    by_hook = {service.hook: service for service in services}
    cases = []
    for path in sorted(examples.glob("*.request.json")):
        request = json.loads(path.read_text(encoding="utf-8"))
        service = by_hook[request["hook"]]
        response = engine.call(service.id, complete_prefetch(request, service.requirements))
        cases.append((path.name.removesuffix(".request.json"), request, response["cards"]))
    lines = [
        "# Clinical review: each rule, an example patient and the card it gets, and one "
        "that must not get it",
        "",
        "Generated by `legcramp-cds review-page` from the example requests in",
        f"`{examples.as_posix()}`, evaluated as of {config.evaluation.as_of}; do not edit by hand",
        "(the tests fail when it is out of date). Thresholds and sources: [rules.md](rules.md).",
    ]
    for rule in entries(services, config):
        lines += ["", f"## {rule['code']} `{rule['id']}`: {rule['title']}", ""]
        found = next(((name, request, card) for name, request, cards in cases
                      for card in cards if card["source"]["topic"]["code"] == rule["id"]), None)
        if found is None:
            lines.append("*No example patient gets this card yet.*")
            continue
        name, request, card = found
        lines += [
            f"Example `{name}` ({request['hook']}): {_patient_line(request)}.",
            "",
            _render_card(card),
        ]
        for example in (e for e in refill_examples if e.rule_id == rule["id"]):
            changed, refill_cards = changed_outcome(services, engine, examples, example)
            refill_card = next((c for c in refill_cards
                                if c["source"]["topic"]["code"] == rule["id"]), None)
            lines += [
                "",
                f"As a refill request: `{example.base}`, sent as {example.why} "
                f"({changed['hook']}; {_patient_line(changed)}):",
                "",
                _render_card(refill_card) if refill_card else
                "**the refill got no card from this rule: review the rule**",
            ]
        for example in (e for e in quiet_examples if e.rule_id == rule["id"]):
            changed, fired = quiet_outcome(services, engine, examples, example)
            outcome = ("**it gave this rule's card: review the rule**" if rule["id"] in fired
                       else "no card from this rule")
            lines += [
                "",
                f"Should not fire: `{example.base}`, changed so that {example.why} "
                f"({changed['hook']}; {_patient_line(changed)}): {outcome}.",
            ]
    return "\n".join(lines) + "\n"
