"""The report's counts made by the database, on both back ends, against the hand-made store of
`governance_data` (every expected number is worked out there): cards per rule per week with
silent cards apart, decisions per week, override rates, flags, reasons, medians, accepted
suggestions, recorded calls per service, --since and --until, and the text, CSV and JSON
formats with their silent counts."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from cds_service.store.database import CardRecord, Store
from cds_service.store.report import (
    RuleWeek,
    ServiceCalls,
    build_governance,
    build_report,
    period_bound,
    week_of,
)
from tests.store.governance_data import (
    IRON,
    ORDER_SIGN,
    PATIENT_VIEW,
    QUININE,
    W1,
    W2,
    W3,
    fill,
)


@pytest.fixture
def data(store: Store) -> Store:
    return fill(store)


def weeks_of(data: Store, **period: Any) -> dict[tuple[str, date], RuleWeek]:
    governance = build_governance(data, period.get("since"), period.get("until"), 0.5, 3)
    return {(w.rule_id, w.week): w for w in governance.weeks}


def test_cards_per_rule_per_week_count_silent_cards_apart(data):
    weeks = weeks_of(data)
    assert {key: (w.shown, w.silent) for key, w in weeks.items()} == {
        # Card 8 (Sunday 23:59:59 UTC) and card 9 (Monday 00:30 at +01:00) are in W1; cards
        # 5 and 6 (Monday 00:00 UTC) in W2.
        (QUININE, W1): (5, 1),
        (QUININE, W2): (2, 1),
        (IRON, W2): (2, 0),
        (IRON, W3): (1, 1),
    }


def test_decisions_count_the_latest_on_each_card_in_the_week_it_was_made(data):
    weeks = weeks_of(data)
    assert {key: (w.accepted, w.overridden) for key, w in weeks.items()} == {
        (QUININE, W1): (1, 1),  # card 3's acceptance in W1 was superseded
        (QUININE, W2): (0, 3),
        (IRON, W2): (1, 0),
        (IRON, W3): (1, 1),  # card 12, shown in W2, decided in W3
    }
    assert weeks[QUININE, W1].override_rate == 0.5
    assert weeks[QUININE, W2].override_rate == 1.0
    assert weeks[IRON, W2].override_rate == 0.0


def test_rule_totals_rates_reasons_medians_and_suggestions(data):
    rules = {r.rule_id: r for r in build_governance(data, None, None, 0.5, 3).rules}
    assert set(rules) == {QUININE, IRON}
    quinine, iron = rules[QUININE], rules[IRON]
    assert (quinine.shown, quinine.silent, quinine.accepted, quinine.overridden) == (7, 2, 1, 4)
    assert quinine.override_rate == pytest.approx(0.8)
    assert quinine.top_override_reasons == [("Treating malaria", 3), ("not-indicated", 1)]
    assert quinine.median_seconds_to_feedback == 300
    assert (quinine.accepted_with_suggestions, quinine.suggestions_accepted) == (1, 2)
    assert (iron.shown, iron.silent, iron.accepted, iron.overridden) == (3, 1, 2, 1)
    assert iron.override_rate == pytest.approx(1 / 3)
    assert iron.accept_rate == pytest.approx(2 / 3)
    assert iron.top_override_reasons == [("comment only", 1)]
    assert iron.median_seconds_to_feedback == 1200
    assert (iron.accepted_with_suggestions, iron.suggestions_accepted) == (1, 1)


def test_recorded_calls_per_service_are_the_distinct_hook_instances_of_their_cards(data):
    services = build_governance(data, None, None, 0.5, 3).services
    assert services == [ServiceCalls(ORDER_SIGN, calls=5, shown=7, silent=2),
                        ServiceCalls(PATIENT_VIEW, calls=2, shown=3, silent=1)]
    assert services[0].shown_per_100_calls == 140
    assert services[0].silent_per_100_calls == 40
    assert services[1].shown_per_100_calls == 150


@pytest.mark.parametrize(
    ("flag_rate", "min_feedback", "flagged"),
    [
        (0.5, 3, {QUININE}),          # 80 % of 5; iron 33 %
        (0.5, 5, {QUININE}),          # exactly 5 decisions is enough
        (0.5, 6, set()),              # quinine has 5 decisions only
        (0.8, 1, set()),              # 80 % is not above 80 %
        (0.3, 3, {QUININE, IRON}),    # iron's 33 % is above 30 %
    ],
)
def test_a_rule_is_flagged_above_the_rate_once_it_has_enough_decisions(
        data, flag_rate, min_feedback, flagged):
    for rules in (build_governance(data, None, None, flag_rate, min_feedback).rules,
                  build_report(data, None, flag_rate, min_feedback)):
        assert {r.rule_id for r in rules if r.flagged} == flagged
        assert [r.flagged for r in rules] == sorted((r.flagged for r in rules), reverse=True)


def test_until_leaves_out_what_came_from_it_on(data):
    until = datetime(2026, 11, 16, tzinfo=UTC)  # Monday of W3
    weeks = weeks_of(data, until=until)
    assert set(weeks) == {(QUININE, W1), (QUININE, W2), (IRON, W2)}
    assert (weeks[IRON, W2].shown, weeks[IRON, W2].accepted) == (2, 1)
    rules = {r.rule_id: r for r in build_report(data, None, 0.5, 3, until=until)}
    assert (rules[IRON].shown, rules[IRON].silent, rules[IRON].accepted,
            rules[IRON].overridden) == (2, 0, 1, 0)
    assert rules[IRON].median_seconds_to_feedback == 600
    # An instant: a second before card 8 was shown leaves card 8 and all of W2 out, not card
    # 9 (shown at 23:30 UTC, written at +01:00).
    before_8 = datetime(2026, 11, 8, 23, 59, 58, tzinfo=UTC)
    assert {key: w.shown for key, w in weeks_of(data, until=before_8).items()} == {
        (QUININE, W1): 4}


def test_since_and_until_together(data):
    weeks = weeks_of(data, since=datetime(2026, 11, 9, tzinfo=UTC),
                     until=datetime(2026, 11, 16, tzinfo=UTC))
    assert {key: (w.shown, w.silent, w.accepted, w.overridden) for key, w in weeks.items()} == {
        (QUININE, W2): (2, 1, 0, 3),  # card 3's override in W2 counts; its acceptance is out
        (IRON, W2): (2, 0, 1, 0),
    }


def test_weeks_are_mondays_in_utc_on_both_back_ends(store):
    """The database's week buckets agree with Python's ISO weeks across year ends, a leap day
    and instants written with offsets."""
    instants = [
        datetime(2024, 12, 29, 23, 59, 59, tzinfo=UTC),  # Sunday: the week of 23 December
        datetime(2024, 12, 30, tzinfo=UTC),  # Monday: ISO week 1 of 2025
        datetime(2027, 1, 1, 12, tzinfo=UTC),  # Friday
        datetime(2028, 2, 29, 6, tzinfo=UTC),  # leap day, Tuesday
        datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(1999, 12, 31, 23, 0, tzinfo=UTC),
    ]
    for number, moment in enumerate(instants):
        store.record_cards(service_id=ORDER_SIGN, hook="order-sign", hook_instance=f"h{number}",
                           patient_id="p", cards=[CardRecord(f"card-{number}", f"rule-{number}",
                                                             "info")], shown_at=moment)
    weeks = {w.rule_id: w.week for w in build_governance(store, None, None, 0.5, 1).weeks}
    assert weeks == {f"rule-{n}": week_of(moment) for n, moment in enumerate(instants)}
    assert weeks["rule-0"] == date(2024, 12, 23) and weeks["rule-1"] == date(2024, 12, 30)
    assert weeks["rule-4"] == date(2026, 2, 23)  # Monday 00:30 at +02:00 is Sunday in UTC
    assert all(week.weekday() == 0 for week in weeks.values())


def test_period_bounds():
    assert period_bound("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert period_bound("2026-11-30", end=True) == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_bound("2026-11-30T10:00:00+02:00", end=True) == datetime(
        2026, 11, 30, 8, tzinfo=UTC)
    assert period_bound("2026-11-30T10:00:00Z") == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert period_bound("2026-11-30T10:00:00") == datetime(2026, 11, 30, 10, tzinfo=UTC)
    with pytest.raises(ValueError):
        period_bound("last tuesday")


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def report_cli(report_command):
    return report_command(min_feedback=3)


def test_report_json_counts_silent_cards_apart(data, report_cli):
    result = report_cli("--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["rule_id"]: r for r in json.loads(result.output)}
    assert {rule: (r["shown"], r["silent"], r["accepted"], r["overridden"], r["flagged"])
            for rule, r in rows.items()} == {QUININE: (7, 2, 1, 4, True),
                                             IRON: (3, 1, 2, 1, False)}


def test_report_csv_and_table_have_the_silent_counts(data, report_cli):
    rows = list(csv.reader(io.StringIO(report_cli("--format", "csv").output)))
    assert rows[0][-1] == "silent (would have fired)"
    assert {row[0]: (row[1], row[-1]) for row in rows[1:]} == {QUININE: ("7", "2"),
                                                               IRON: ("3", "1")}
    table = report_cli().output.splitlines()
    assert table[0].split()[:3] == ["rule", "shown", "silent"]
    assert table[1].split()[:5] == [QUININE, "7", "2", "1", "4"]
    assert table[2].split()[:5] == [IRON, "3", "1", "2", "1"]


def test_until_a_date_includes_that_whole_day(data, report_cli):
    # 15 November is W2's Sunday: W3 (card 13, 14 and the decisions of 17 November) is out.
    result = report_cli("--until", "2026-11-15", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["rule_id"]: r for r in json.loads(result.output)}
    assert (rows[IRON]["shown"], rows[IRON]["silent"], rows[IRON]["accepted"],
            rows[IRON]["overridden"]) == (2, 0, 1, 0)
    both = json.loads(report_cli("--since", "2026-11-09", "--until", "2026-11-15",
                                 "--format", "json").output)
    assert {r["rule_id"]: (r["shown"], r["silent"], r["overridden"]) for r in both} == {
        QUININE: (2, 1, 3), IRON: (2, 0, 0)}


@pytest.mark.parametrize(("args", "message"), [
    (("--until", "next week"), "--until is not an ISO 8601 date"),
    (("--since", "2026-11-10", "--until", "2026-11-09"), "--until must come after --since"),
])
def test_a_bad_period_fails_cleanly(store, report_cli, args, message):
    result = report_cli(*args)
    assert result.exit_code != 0
    assert message in result.output


def test_output_writes_the_report_to_a_file(data, report_cli, tmp_path):
    target = tmp_path / "report.csv"
    result = report_cli("--format", "csv", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == report_cli("--format", "csv").output
    assert QUININE in target.read_text(encoding="utf-8")


def test_of_two_decisions_at_the_same_instant_the_one_received_last_counts(store):
    from tests.store.governance_data import RECEIVED, accepted, overridden, show, utc

    show(store, ORDER_SIGN, "call-a", utc(3, 10), QUININE, [1, 2])
    same = utc(3, 11)
    store.record_feedback(ORDER_SIGN, [accepted(1, same)], RECEIVED)
    store.record_feedback(ORDER_SIGN, [overridden(1, same, "late", "Received last")], RECEIVED)
    store.record_feedback(ORDER_SIGN, [overridden(2, same, "early", "Received first")],
                          RECEIVED)
    store.record_feedback(ORDER_SIGN, [accepted(2, same)], RECEIVED)
    [rule] = build_report(store, None, 0.5, 1)
    assert (rule.accepted, rule.overridden) == (1, 1)
    assert rule.top_override_reasons == [("Received last", 1)]


def test_a_call_with_cards_of_several_rules_is_one_recorded_call(store):
    from tests.store.governance_data import show, utc

    show(store, ORDER_SIGN, "call-a", utc(3, 10), QUININE, [1, 2], silent=[3])
    show(store, ORDER_SIGN, "call-a", utc(3, 10), IRON, [4])
    show(store, ORDER_SIGN, "call-b", utc(3, 11), IRON, [5])
    assert build_governance(store, None, None, 0.5, 1).services == [
        ServiceCalls(ORDER_SIGN, calls=2, shown=4, silent=1)]
