"""The report's queries: every count is made by the database (SQLAlchemy Core, GROUP BY and
window functions, the same statements on SQLite and PostgreSQL but for three small
dialect-specific expressions), and Python only ever receives one row per rule and week,
service or reason. A year of cards (1M) and its feedback (200k) cost the report a few seconds
and no memory to speak of (bench/report_scale.py).

All the queries of one report read one snapshot of the database (`ReportQueries.open`), so its
tables agree with each other while the service goes on writing.

Weeks run Monday to Sunday in UTC. Week n starts n weeks after Monday 29 December 1969: the
Unix epoch (day 0) was a Thursday, so day d falls in week (d + 3) // 7, an integer both back
ends group on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Float,
    Integer,
    Text,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from cds_service.store.schema import Instant, card_shown, feedback

UNKNOWN_RULE = "(unknown card)"
WEEK_ZERO = date(1969, 12, 29)
UNIX_EPOCH_JULIAN_DAY = 2440587.5


class CardCount(NamedTuple):
    rule_id: str
    week: date
    shown: int
    silent: int


class ServiceCount(NamedTuple):
    service_id: str
    calls: int  # recorded calls: distinct hookInstances of its cards
    shown: int
    silent: int


class Decisions(NamedTuple):
    counts: list[DecisionCount]
    reasons: dict[str, list[Any]]  # rule: its top override reasons, (text, times)
    medians: dict[str, float]  # rule: median seconds from card to decision


class DecisionCount(NamedTuple):
    rule_id: str
    week: date
    accepted: int
    overridden: int
    accepted_with_suggestions: int  # accepted decisions naming at least one suggestion
    suggestions_accepted: int  # the suggestions they named


def _week(number: Any) -> date:
    return WEEK_ZERO + timedelta(weeks=int(number))


def _week_number(column: Any, dialect: str) -> ColumnElement[int]:
    """The week (see the module) of an instant column, in UTC."""
    days: ColumnElement[int]
    if dialect == "postgresql":
        days = cast(func.floor(extract("epoch", column) / 86400), Integer)
    else:
        # SQLite keeps an instant as UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff': the Julian day of
        # its date is exact (a whole day and a half), and cheaper than strftime('%s').
        days = cast(func.julianday(func.substr(column, 1, 10)) - UNIX_EPOCH_JULIAN_DAY,
                    Integer)
    return (days + 3) // 7


def _seconds_between(start: Any, end: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return extract("epoch", end - start)
    # julianday carries about 40 µs of rounding at today's dates: kept to the millisecond.
    return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)


def _json_list_length(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.json_array_length(cast(column, JSON))
    return func.json_array_length(column)


def _given(column: Any) -> ColumnElement[Any]:
    return func.nullif(column, "")


class ReportQueries:
    """The queries of one report over [since, until), on one connection and snapshot."""

    def __init__(self, connection: Connection, since: datetime | None, until: datetime | None):
        self.connection = connection
        self.dialect = connection.dialect.name
        self.since, self.until = since, until

    @classmethod
    @contextlib.contextmanager
    def open(cls, engine: Engine, since: datetime | None,
             until: datetime | None) -> Iterator[ReportQueries]:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            else:  # the SQLite driver begins no transaction before a SELECT: one read transaction
                connection.exec_driver_sql("BEGIN")
            try:
                yield cls(connection, since, until)
            finally:
                connection.rollback()

    def _period(self, column: Any, *, scan: bool = False) -> list[ColumnElement[bool]]:
        if scan and self.dialect == "sqlite":
            # A report reads most of the cards kept, and SQLite (without statistics) would go
            # through the shown_at index and fetch every row by itself: 1M cards in 2.4 s,
            # against 1.3 s for a scan. A unary + is a no-op no index serves.
            column = UnaryExpression(column, operator=custom_op("+"), type_=Instant())
        conditions: list[ColumnElement[bool]] = []
        if self.since is not None:
            conditions.append(column >= self.since)
        if self.until is not None:
            conditions.append(column < self.until)
        return conditions

    # Cards --------------------------------------------------------------------------------
    def card_counts(self) -> list[CardCount]:
        """Cards per rule and week (when last shown): shown, and recorded silently."""
        week = _week_number(card_shown.c.shown_at, self.dialect).label("week")
        query = (
            select(card_shown.c.rule_id, week, func.count(),
                   func.sum(case((card_shown.c.silent, 1), else_=0)))
            .where(*self._period(card_shown.c.shown_at, scan=True))
            # The integer first: SQLite sorts on an integer key much faster (1M cards: 1.0 s
            # against 1.7 s grouped by rule first).
            .group_by(week, card_shown.c.rule_id)
        )
        return [CardCount(rule, _week(number), int(cards) - int(silent or 0), int(silent or 0))
                for rule, number, cards, silent in self.connection.execute(query)]

    def service_counts(self) -> list[ServiceCount]:
        """Per service, its cards and the hook calls the store knows of: the distinct
        hookInstances of its cards (a call that returned no card leaves no record)."""
        # Call by call first, then per service: on SQLite a third faster than
        # COUNT(DISTINCT hook_instance) per service (1M cards: 1.0 s against 1.5 s).
        calls = (
            select(card_shown.c.service_id, func.count().label("cards"),
                   func.sum(case((card_shown.c.silent, 1), else_=0)).label("silent"))
            .where(*self._period(card_shown.c.shown_at, scan=True))
            .group_by(card_shown.c.hook_instance, card_shown.c.service_id)
            .subquery("calls")
        )
        query = (select(calls.c.service_id, func.count(), func.sum(calls.c.cards),
                        func.sum(calls.c.silent))
                 .group_by(calls.c.service_id).order_by(calls.c.service_id))
        return [ServiceCount(service, int(count), int(cards) - int(silent or 0),
                             int(silent or 0))
                for service, count, cards, silent in self.connection.execute(query)]

    # Decisions ----------------------------------------------------------------------------
    def _decisions_query(self) -> Any:
        """The decision that counts on each card: of the feedback in the period, the latest
        item about it (of two at the same instant, the one received last), with the card's
        rule (whenever the card was shown: feedback in the period on an older card still
        belongs to its rule), the week it was made, the seconds since the card was (last)
        shown, the reason of an override, and the suggestions an acceptance named."""
        # NOT EXISTS a later one, not a window function: an index lookup per item (the
        # card_uuid index) on SQLite, an anti-join on PostgreSQL; on SQLite 0.4 s for 200k
        # items against 0.7 s for ROW_NUMBER, which sorts them all.
        later = feedback.alias("later")
        superseded = select(later.c.id).where(
            later.c.card_uuid == feedback.c.card_uuid, *self._period(later.c.outcome_at),
            or_(later.c.outcome_at > feedback.c.outcome_at,
                and_(later.c.outcome_at == feedback.c.outcome_at, later.c.id > feedback.c.id)),
        ).exists()
        latest = select(
            feedback.c.id, feedback.c.card_uuid, feedback.c.outcome, feedback.c.outcome_at,
            feedback.c.accepted_suggestions, feedback.c.override_display,
            feedback.c.override_code, feedback.c.user_comment,
        ).where(*self._period(feedback.c.outcome_at), ~superseded)
        if self.dialect == "sqlite":
            # Read in card_uuid order (SQLite walks its index, no sort), the lookups of the
            # join below walk the cards' index in order too: 1.0 s instead of 1.2 s.
            latest = latest.order_by(feedback.c.card_uuid)
        ranked = latest.subquery("latest")
        accepted = ranked.c.outcome == "accepted"
        reason = case(
            (accepted, None),
            else_=func.coalesce(
                _given(ranked.c.override_display), _given(ranked.c.override_code),
                case((_given(ranked.c.user_comment).is_not(None), literal("comment only")),
                     else_=literal("no reason given"))))
        suggestions = case(
            (and_(accepted, ranked.c.accepted_suggestions.is_not(None)),
             _json_list_length(ranked.c.accepted_suggestions, self.dialect)),
            else_=0)
        return (
            select(ranked.c.id.label("id"),
                   func.coalesce(card_shown.c.rule_id, UNKNOWN_RULE).label("rule_id"),
                   case((accepted, 1), else_=0).label("accepted"),
                   _week_number(ranked.c.outcome_at, self.dialect).label("week"),
                   _seconds_between(card_shown.c.shown_at, ranked.c.outcome_at,
                                    self.dialect).label("delay"),
                   reason.label("reason"), suggestions.label("suggestions"))
            .select_from(ranked.outerjoin(card_shown,
                                          card_shown.c.card_uuid == ranked.c.card_uuid))
        )

    def decisions(self, top_reasons: int) -> Decisions:
        """Everything the report counts of the decisions, in one statement: the decisions are
        made once (a materialized CTE) for the three counts, where three statements would
        rank and join the feedback three times (1M cards, 200k feedback items: PostgreSQL
        2.2 s against 3.0 s)."""
        decided = self._decisions_query().cte("decided").prefix_with("MATERIALIZED")
        nothing = cast(null(), Integer)
        counts = select(
            literal_column("'count'").label("kind"), decided.c.rule_id, decided.c.week,
            func.count().label("a"), func.sum(decided.c.accepted).label("b"),
            func.sum(case((decided.c.suggestions > 0, 1), else_=0)).label("c"),
            func.sum(decided.c.suggestions).label("d"),
            cast(null(), Text).label("reason"), cast(null(), Float).label("value"),
        ).group_by(decided.c.week, decided.c.rule_id)
        # Of reasons given equally often, the one received first comes first: the same
        # order on every back end, whatever its collation.
        counted = (
            select(decided.c.rule_id, decided.c.reason, func.count().label("times"),
                   func.min(decided.c.id).label("first"))
            .where(decided.c.reason.is_not(None))
            .group_by(decided.c.rule_id, decided.c.reason)
            .subquery("counted")
        )
        place = func.row_number().over(
            partition_by=counted.c.rule_id,
            order_by=(counted.c.times.desc(), counted.c.first)).label("place")
        ranked = select(counted.c.rule_id, counted.c.reason, counted.c.times, place).subquery()
        reasons = select(
            literal_column("'reason'"), ranked.c.rule_id, nothing, ranked.c.times,
            ranked.c.place, nothing, nothing, ranked.c.reason, cast(null(), Float),
        ).where(ranked.c.place <= top_reasons)
        # The median: the middle delay, or the mean of the two in the middle.
        ordered = select(
            decided.c.rule_id, decided.c.delay,
            func.row_number().over(partition_by=decided.c.rule_id,
                                   order_by=decided.c.delay).label("place"),
            func.count().over(partition_by=decided.c.rule_id).label("n"),
        ).where(decided.c.delay >= 0).subquery("ordered")
        medians = select(
            literal_column("'median'"), ordered.c.rule_id, nothing, nothing, nothing, nothing,
            nothing, cast(null(), Text), cast(func.avg(ordered.c.delay), Float),
        ).where(or_(ordered.c.place == (ordered.c.n + 1) // 2,
                    ordered.c.place == (ordered.c.n + 2) // 2)).group_by(ordered.c.rule_id)
        found = Decisions([], {}, {})
        rows = self.connection.execute(union_all(counts, reasons, medians)).all()
        for kind, rule, week, a, b, c, d, reason, value in rows:
            if kind == "count":
                found.counts.append(DecisionCount(rule, _week(week), int(b), int(a) - int(b),
                                                  int(c or 0), int(d or 0)))
            elif kind == "reason":
                found.reasons.setdefault(rule, []).append((int(b), reason, int(a)))
            else:
                found.medians[rule] = float(value)
        for rule, places in found.reasons.items():
            found.reasons[rule] = [(text, times) for _, text, times in sorted(places)]
        return found
