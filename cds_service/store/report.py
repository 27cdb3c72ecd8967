"""The feedback report for clinical governance: per rule, how often its cards were shown (and
recorded silently in a pilot), accepted and overridden, why they were overridden, and how long
clinicians took to decide; week by week and per service for the governance page
(`governance_page`). The database does the counting (`report_sql`).

A rule whose override rate passes the configured threshold (with enough feedback to mean
something) is flagged: that is the rule to review, or to fix.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from cds_service.store.database import Store
from cds_service.store.report_sql import UNKNOWN_RULE, Decisions, ReportQueries

__all__ = ["UNKNOWN_RULE", "Governance", "RuleReport", "RuleWeek", "ServiceCalls",
           "build_governance", "build_report", "clean", "csv_safe", "period_bound", "render",
           "week_of"]
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    # Recorded in a silent pilot and never shown: cards that "would have fired".
    silent: int = 0
    # Accepted decisions that named at least one of the card's suggestions, and how many
    # suggestions they named in all (the store keeps suggestion uuids, not what they were).
    accepted_with_suggestions: int = 0
    suggestions_accepted: int = 0

    @property
    def decisions(self) -> int:
        return self.accepted + self.overridden

    @property
    def accept_rate(self) -> float | None:
        return self.accepted / self.decisions if self.decisions else None


@dataclass(frozen=True)
class RuleWeek:
    """One rule's week (Monday, UTC): cards by when they were (last) shown, decisions by when
    they were made."""

    rule_id: str
    week: date
    shown: int = 0
    silent: int = 0
    accepted: int = 0
    overridden: int = 0

    @property
    def override_rate(self) -> float | None:
        decided = self.accepted + self.overridden
        return self.overridden / decided if decided else None


@dataclass(frozen=True)
class ServiceCalls:
    """A service's recorded hook calls: the distinct hookInstances of its recorded cards. A call
    that returned no card (and held none back silently) is not recorded anywhere in the store."""

    service_id: str
    calls: int
    shown: int
    silent: int

    @property
    def shown_per_100_calls(self) -> float | None:
        return 100 * self.shown / self.calls if self.calls else None

    @property
    def silent_per_100_calls(self) -> float | None:
        return 100 * self.silent / self.calls if self.calls else None


@dataclass(frozen=True)
class Governance:
    """What the governance page shows, for one period."""

    since: datetime | None
    until: datetime | None  # not included
    generated_at: datetime
    flag_rate: float
    min_feedback: int
    rules: list[RuleReport]
    weeks: list[RuleWeek]
    services: list[ServiceCalls]

    def week_axis(self, max_weeks: int = 260) -> list[date]:
        """Every week of the period, or of the data when the period is open (or too long to
        draw week by week)."""
        seen = sorted({w.week for w in self.weeks})
        first = week_of(self.since) if self.since else (seen[0] if seen else None)
        last = week_of(self.until - timedelta(microseconds=1)) if self.until else (
            seen[-1] if seen else None)
        if first is None or last is None:
            return []
        if (last - first).days // 7 >= max_weeks and seen:
            first, last = seen[0], seen[-1]
        return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


def week_of(moment: datetime) -> date:
    """The Monday (UTC) of the week holding `moment`, as the database buckets it."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def period_bound(text: str, *, end: bool = False) -> datetime:
    """A --since or --until value: an ISO 8601 instant (UTC when it names no offset), or a
    date. A date starts at its midnight UTC; as an end (not included) it is the next midnight,
    so that `--until 2026-11-30` includes the whole of 30 November."""
    text = text.strip()
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if end and _DATE_ONLY.match(text):
        parsed += timedelta(days=1)
    return parsed.astimezone(UTC)


# --- the report ----------------------------------------------------------------------------


def _rules(weeks: list[RuleWeek], reasons: dict[str, list[tuple[str, int]]],
           medians: dict[str, float], suggestions: dict[str, tuple[int, int]],
           flag_rate: float, min_feedback: int) -> list[RuleReport]:
    reports: dict[str, RuleReport] = {}
    for week in weeks:
        report = reports.setdefault(week.rule_id, RuleReport(week.rule_id))
        report.shown += week.shown
        report.silent += week.silent
        report.accepted += week.accepted
        report.overridden += week.overridden
    for rule_id, report in reports.items():
        if report.decisions:
            report.override_rate = report.overridden / report.decisions
            report.flagged = (report.decisions >= min_feedback
                              and report.override_rate > flag_rate)
        report.top_override_reasons = reasons.get(rule_id, [])
        report.median_seconds_to_feedback = medians.get(rule_id)
        report.accepted_with_suggestions, report.suggestions_accepted = suggestions.get(
            rule_id, (0, 0))
    return sorted(reports.values(), key=lambda r: (not r.flagged, r.rule_id))


def _rule_weeks(queries: ReportQueries,
                decisions: Decisions) -> tuple[list[RuleWeek], dict[str, tuple[int, int]]]:
    """Per rule and week, cards and decisions together; and per rule, the acceptances naming
    suggestions and the suggestions named."""
    merged: dict[tuple[str, date], RuleWeek] = {}
    for card in queries.card_counts():
        merged[card.rule_id, card.week] = RuleWeek(card.rule_id, card.week, shown=card.shown,
                                                   silent=card.silent)
    suggestions: dict[str, tuple[int, int]] = {}
    for decision in decisions.counts:
        before = merged.get((decision.rule_id, decision.week),
                            RuleWeek(decision.rule_id, decision.week))
        merged[decision.rule_id, decision.week] = replace(
            before, accepted=decision.accepted, overridden=decision.overridden)
        named, count = suggestions.get(decision.rule_id, (0, 0))
        suggestions[decision.rule_id] = (named + decision.accepted_with_suggestions,
                                         count + decision.suggestions_accepted)
    return sorted(merged.values(), key=lambda w: (w.rule_id, w.week)), suggestions


def build_governance(store: Store, since: datetime | None, until: datetime | None,
                     flag_rate: float, min_feedback: int, *, top_reasons: int = 5,
                     generated_at: datetime | None = None) -> Governance:
    """What the governance page shows: the report, week by week, and per service."""
    with ReportQueries.open(store.engine, since, until) as queries:
        decisions = queries.decisions(top_reasons)
        weeks, suggestions = _rule_weeks(queries, decisions)
        services = [ServiceCalls(*counts) for counts in queries.service_counts()]
    return Governance(
        since=since, until=until, generated_at=generated_at or datetime.now(UTC),
        flag_rate=flag_rate, min_feedback=min_feedback,
        rules=_rules(weeks, decisions.reasons, decisions.medians, suggestions, flag_rate,
                     min_feedback),
        weeks=weeks, services=services)


def build_report(store: Store, since: datetime | None, flag_rate: float,
                 min_feedback: int, until: datetime | None = None,
                 top_reasons: int = 3) -> list[RuleReport]:
    """Per rule, flagged rules first: cards shown and silent in [since, until), the decisions
    made in it (one per card: the latest), their reasons and the time they took."""
    with ReportQueries.open(store.engine, since, until) as queries:
        decisions = queries.decisions(top_reasons)
        weeks, suggestions = _rule_weeks(queries, decisions)
    return _rules(weeks, decisions.reasons, decisions.medians, suggestions, flag_rate,
                  min_feedback)


# --- text, CSV and JSON ----------------------------------------------------------------------

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
    # The silent column comes last, so that CSV read by column number keeps its meaning.
    rows = [
        [r.rule_id, str(r.shown), str(r.accepted), str(r.overridden),
         "" if r.override_rate is None else f"{r.override_rate:.0%}",
         "; ".join(f"{label} ({n})" for label, n in r.top_override_reasons),
         "" if r.median_seconds_to_feedback is None else f"{r.median_seconds_to_feedback:.0f}",
         "FLAG" if r.flagged else "", str(r.silent)]
        for r in reports
    ]
    header = ["rule", "shown", "accepted", "overridden", "override rate",
              "top override reasons", "median s to feedback", f"flag (> {flag_rate:.0%})",
              "silent (would have fired)"]
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows([[csv_safe(cell) for cell in row] for row in rows])
        return buffer.getvalue()
    # On screen, the silent count stands beside the cards shown.
    header, *rows = [[*row[:2], row[-1], *row[2:-1]] for row in [header, *rows]]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in [header, *rows]]
    if not rows:
        lines.append("(no cards shown and no feedback in this period)")
    return "\n".join(lines) + "\n"
