"""The feedback report for clinical governance: per rule, how often its cards were shown,
accepted and overridden, why they were overridden, and how long clinicians took to decide.

A rule whose override rate passes the configured threshold (with enough feedback to mean
something) is flagged: that is the rule to review, or to fix.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from statistics import median
from typing import Any

from cds_service.store.database import Store

UNKNOWN_RULE = "(unknown card)"


@dataclass
class RuleReport:
    rule_id: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    override_rate: float | None = None
    top_override_reasons: list[tuple[str, int]] = field(default_factory=list)
    median_seconds_to_feedback: float | None = None
    flagged: bool = False


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def build_report(store: Store, since: datetime | None, flag_rate: float,
                 min_feedback: int) -> list[RuleReport]:
    cards = store.cards_since(since)
    by_uuid = {card["card_uuid"]: card for card in cards}
    reports: dict[str, RuleReport] = {}
    for shown in cards:
        reports.setdefault(shown["rule_id"], RuleReport(shown["rule_id"])).shown += 1
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    delays: dict[str, list[float]] = defaultdict(list)
    # One decision per card: the latest feedback item about it counts (of two at the same
    # instant, the one received last, so that every back end gives the same answer).
    latest: dict[str, dict[str, Any]] = {}
    for item in store.feedback_for(since=since):
        current = latest.get(item["card_uuid"])
        if current is None or (_aware(item["outcome_at"]), item["id"]) > (
                _aware(current["outcome_at"]), current["id"]):
            latest[item["card_uuid"]] = item
    # Feedback in the period on a card shown before it still belongs to that card's rule.
    missing = set(latest) - set(by_uuid)
    earlier = ({card["card_uuid"]: card for card in store.cards_by_uuid(missing)}
               if since is not None and missing else {})
    for card_uuid, item in latest.items():
        card: dict[str, Any] | None = by_uuid.get(card_uuid) or earlier.get(card_uuid)
        rule_id = card["rule_id"] if card else UNKNOWN_RULE
        report = reports.setdefault(rule_id, RuleReport(rule_id))
        if item["outcome"] == "accepted":
            report.accepted += 1
        else:
            report.overridden += 1
            label = item["override_display"] or item["override_code"] or (
                "comment only" if item["user_comment"] else "no reason given")
            reasons[rule_id][label] += 1
        if card:
            delay = (_aware(item["outcome_at"]) - _aware(card["shown_at"])).total_seconds()
            if delay >= 0:
                delays[rule_id].append(delay)
    for rule_id, report in reports.items():
        decided = report.accepted + report.overridden
        if decided:
            report.override_rate = report.overridden / decided
            report.flagged = decided >= min_feedback and report.override_rate > flag_rate
        report.top_override_reasons = reasons[rule_id].most_common(3)
        if delays[rule_id]:
            report.median_seconds_to_feedback = median(delays[rule_id])
    return sorted(reports.values(), key=lambda r: (not r.flagged, r.rule_id))


# Control characters (a terminal's escape sequences among them) never reach an output.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean(text: str) -> str:
    """Text from feedback (override displays and codes are the EHR's) without control
    characters, in every format."""
    return _CONTROL.sub("", text)


def csv_safe(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a quote."""
    return f"'{cell}" if cell.startswith(_FORMULA_START) else cell


def render(reports: list[RuleReport], output_format: str, flag_rate: float) -> str:
    reports = [replace(r, rule_id=clean(r.rule_id), top_override_reasons=[
        (clean(label), n) for label, n in r.top_override_reasons]) for r in reports]
    if output_format == "json":
        return json.dumps([asdict(r) for r in reports], indent=2) + "\n"
    rows = [
        [r.rule_id, str(r.shown), str(r.accepted), str(r.overridden),
         "" if r.override_rate is None else f"{r.override_rate:.0%}",
         "; ".join(f"{label} ({n})" for label, n in r.top_override_reasons),
         "" if r.median_seconds_to_feedback is None else f"{r.median_seconds_to_feedback:.0f}",
         "FLAG" if r.flagged else ""]
        for r in reports
    ]
    header = ["rule", "shown", "accepted", "overridden", "override rate",
              "top override reasons", "median s to feedback", f"flag (> {flag_rate:.0%})"]
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows([[csv_safe(cell) for cell in row] for row in rows])
        return buffer.getvalue()
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in [header, *rows]]
    if not rows:
        lines.append("(no cards shown and no feedback in this period)")
    return "\n".join(lines) + "\n"
