"""`legcramp-cds report` on hand-made data, on both back ends: per rule shown, accepted,
overridden, override rate, top reasons, median time from card to feedback, the flag, --since,
and the table, CSV and JSON formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cds_service.store.database import CardRecord, Store
from cds_service.store.report import UNKNOWN_RULE, build_report

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
SINCE = "2026-11-05"
QUININE, IRON, CYCLO = "quinine-leg-cramps", "rls-iron-low", "cyclobenzaprine-duration"
SYSTEM = "https://legcramp-cds.example.org/fhir/CodeSystem/override-reason"
RECEIVED = datetime(2026, 11, 20, tzinfo=UTC)


def uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def at(moment: datetime, seconds: float = 0, offset_hours: int = 0) -> str:
    """An RFC 3339 timestamp `seconds` after `moment`, written with the given UTC offset."""
    local = moment + timedelta(seconds=seconds)
    return local.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def show(store: Store, rule: str, shown_at: datetime, *numbers: int) -> None:
    store.record_cards(service_id="legcramp-order-sign", hook="order-sign", hook_instance="h",
                       patient_id="p", cards=[CardRecord(uuid(n), rule, "warning")
                                              for n in numbers], shown_at=shown_at)


def override(n: int, when: str, code: str | None = None, display: str | None = None,
             comment: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"card": uuid(n), "outcome": "overridden", "outcomeTimestamp": when}
    reason: dict[str, Any] = {}
    if code:
        reason["reason"] = {"system": SYSTEM, "code": code, **({"display": display}
                                                                if display else {})}
    if comment:
        reason["userComment"] = comment
    if reason:
        item["overrideReason"] = reason
    return item


def accept(n: int, when: str) -> dict[str, Any]:
    return {"card": uuid(n), "outcome": "accepted", "outcomeTimestamp": when,
            "acceptedSuggestions": [{"id": uuid(900 + n)}]}


@pytest.fixture
def data(store: Store) -> Store:
    """Before 5 November (T0):
    quinine: 4 cards. 1: accepted after 10 s, then overridden after 60 s (the latest counts);
      2: overridden after 120 s; both "Treating malaria". 3: overridden after 300 s, comment only
      (its timestamp written at +01:00). 4: accepted after 30 s.
      -> shown 4, accepted 1, overridden 3, 75 %, median of 60/120/300/30 = 90 s.
    iron: 3 cards. 11 accepted after 600 s; 12 overridden after 1200 s (code, no display); 13 none.
      -> shown 3, accepted 1, overridden 1, 50 % (exactly at the default flag), median 900 s.
    cyclobenzaprine: 1 card, no feedback.
    A card nobody showed (99): overridden, no reason, kept as revisions before 0004 kept such
    feedback (since then it is counted and not stored, as card 98 shows).
    After 5 November (T1):
    quinine: card 5 overridden after 40 s ("Treating malaria"); card 6 accepted after 80 s.
    And card 4 (shown at T0) overridden at T1 + 100 s: feedback in the period on an older card.
    """
    show(store, QUININE, T0, 1, 2, 3, 4)
    show(store, IRON, T0, 11, 12, 13)
    show(store, CYCLO, T0, 21)
    show(store, QUININE, T1, 5, 6)
    items = [
        accept(1, at(T0, 10)),
        override(1, at(T0, 60), "treating-malaria", "Treating malaria"),
        override(2, at(T0, 120), "treating-malaria", "Treating malaria"),
        override(3, at(T0, 300, offset_hours=1), comment="patient insists"),
        accept(4, at(T0, 30)),
        accept(11, at(T0, 600)),
        override(12, at(T0, 1200), "not-indicated"),
    ]
    assert store.record_feedback("legcramp-order-sign", items, RECEIVED).stored == len(items)
    never_shown = store.record_feedback("legcramp-order-sign", [override(98, at(T0, 5))],
                                        RECEIVED)
    assert (never_shown.stored, never_shown.unknown_cards) == (0, 1)
    keep_as_before_0004(store, override(99, at(T0, 5)))
    later = [
        override(5, at(T1, 40), "treating-malaria", "Treating malaria"),
        accept(6, at(T1, 80)),
        override(4, at(T1, 100), "interaction-accepted", "Interaction accepted"),
    ]
    assert store.record_feedback("legcramp-order-sign", later, RECEIVED).stored == len(later)
    return store


def keep_as_before_0004(store: Store, item: dict[str, Any]) -> None:
    """A feedback row on a card never shown, as the store kept them before revision 0004."""
    from cds_service.store.database import _feedback_row
    from cds_service.store.schema import feedback

    with store._transaction() as connection:
        connection.execute(feedback.insert().values(
            _feedback_row("legcramp-order-sign", item, RECEIVED)))


def by_rule(reports: list[Any]) -> dict[str, Any]:
    return {r.rule_id: r for r in reports}


def test_per_rule_counts_rates_reasons_and_median_time_to_feedback(data):
    reports = by_rule(build_report(data, None, flag_rate=0.5, min_feedback=4))
    assert set(reports) == {QUININE, IRON, CYCLO, UNKNOWN_RULE}
    quinine = reports[QUININE]
    # Cards 1-6; the latest decision on card 4 is now the override at T1 + 100 s.
    assert (quinine.shown, quinine.accepted, quinine.overridden) == (6, 1, 5)
    assert quinine.override_rate == pytest.approx(5 / 6)
    assert quinine.top_override_reasons == [
        ("Treating malaria", 3), ("comment only", 1), ("Interaction accepted", 1)]
    delays = sorted([60, 120, 300, (T1 - T0).total_seconds() + 100, 40, 80])
    assert quinine.median_seconds_to_feedback == pytest.approx((delays[2] + delays[3]) / 2)
    iron = reports[IRON]
    assert (iron.shown, iron.accepted, iron.overridden) == (3, 1, 1)
    assert iron.override_rate == 0.5
    assert iron.top_override_reasons == [("not-indicated", 1)]
    assert iron.median_seconds_to_feedback == 900
    cyclo = reports[CYCLO]
    assert (cyclo.shown, cyclo.accepted, cyclo.overridden) == (1, 0, 0)
    assert cyclo.override_rate is None and cyclo.median_seconds_to_feedback is None
    assert cyclo.top_override_reasons == [] and not cyclo.flagged
    unknown = reports[UNKNOWN_RULE]
    assert (unknown.shown, unknown.accepted, unknown.overridden) == (0, 0, 1)
    assert unknown.top_override_reasons == [("no reason given", 1)]
    assert unknown.median_seconds_to_feedback is None


def test_the_median_counts_from_when_the_card_was_shown_as_an_instant(store):
    show(store, QUININE, T0, 1, 2)
    store.record_feedback("legcramp-order-sign", [override(1, at(T0, 60, offset_hours=-5)),
                                                  override(2, at(T0, 120, offset_hours=9))],
                          RECEIVED)
    [report] = build_report(store, None, 0.5, 1)
    assert report.median_seconds_to_feedback == 90


def test_the_latest_decision_on_a_card_is_the_one_that_counts(store):
    show(store, QUININE, T0, 1)
    # The override comes 30 s after the acceptance, though its wall-clock time (at -05:00) is
    # hours earlier.
    store.record_feedback("legcramp-order-sign",
                          [override(1, at(T0, 60, offset_hours=-5)), accept(1, at(T0, 30))],
                          RECEIVED)
    [report] = build_report(store, None, 0.5, 1)
    assert (report.accepted, report.overridden) == (0, 1)


@pytest.mark.parametrize(
    ("flag_rate", "min_feedback", "flagged"),
    [
        (0.5, 6, {QUININE}),                  # 5 of 6 overridden; iron at 50 % is not above
        (0.5, 7, set()),                      # quinine has only 6 decisions
        (0.5, 1, {QUININE, UNKNOWN_RULE}),    # one decision is enough; iron still at the flag
        (0.49, 2, {QUININE, IRON}),           # iron's 50 % is above 49 %
        (5 / 6, 1, {UNKNOWN_RULE}),           # quinine exactly at the flag: not above it
    ],
)
def test_a_rule_is_flagged_above_the_override_rate_with_enough_feedback(
        data, flag_rate, min_feedback, flagged):
    reports = build_report(data, None, flag_rate=flag_rate, min_feedback=min_feedback)
    assert {r.rule_id for r in reports if r.flagged} == flagged
    order = [r.rule_id for r in reports]
    assert order == sorted(flagged) + sorted(set(order) - flagged)  # flagged rules first


def test_since_counts_only_cards_and_feedback_from_that_date(data):
    since = datetime(2026, 11, 5, tzinfo=UTC)
    reports = by_rule(build_report(data, since, flag_rate=0.5, min_feedback=1))
    assert set(reports) == {QUININE}
    quinine = reports[QUININE]
    assert quinine.shown == 2  # cards 5 and 6
    # Cards 5 and 6, and the override on card 4 (shown before, decided in the period).
    assert (quinine.accepted, quinine.overridden) == (1, 2)
    assert quinine.top_override_reasons == [("Treating malaria", 1), ("Interaction accepted", 1)]
    assert quinine.median_seconds_to_feedback == 80
    assert quinine.flagged


def test_an_empty_store_gives_an_empty_report(store):
    assert build_report(store, None, 0.5, 10) == []


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def report_cli(report_command):
    return report_command(min_feedback=6)


def test_report_json(data, report_cli):
    result = report_cli("--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["rule_id"]: r for r in json.loads(result.output)}
    assert set(rows) == {QUININE, IRON, CYCLO, UNKNOWN_RULE}
    assert rows[QUININE] | {"override_rate": None} == {
        "rule_id": QUININE, "shown": 6, "accepted": 1, "overridden": 5, "override_rate": None,
        "top_override_reasons": [["Treating malaria", 3], ["comment only", 1],
                                 ["Interaction accepted", 1]],
        "median_seconds_to_feedback": rows[QUININE]["median_seconds_to_feedback"],
        "flagged": True, "silent": 0,
        # Card 6 was accepted naming one suggestion; card 1's acceptance was superseded.
        "accepted_with_suggestions": 1, "suggestions_accepted": 1,
    }
    assert rows[QUININE]["override_rate"] == pytest.approx(5 / 6)
    assert rows[IRON]["override_rate"] == 0.5 and rows[IRON]["flagged"] is False
    assert rows[IRON]["median_seconds_to_feedback"] == 900
    assert rows[CYCLO]["override_rate"] is None
    assert json.loads(result.output)[0]["rule_id"] == QUININE  # flagged first


def test_report_csv(data, report_cli):
    result = report_cli("--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["rule", "shown", "accepted", "overridden", "override rate",
                       "top override reasons", "median s to feedback", "flag (> 50%)",
                       "silent (would have fired)"]
    body = {row[0]: row for row in rows[1:]}
    assert body[QUININE][1:5] == ["6", "1", "5", "83%"]
    assert body[QUININE][5] == (
        "Treating malaria (3); comment only (1); Interaction accepted (1)")
    assert body[QUININE][7:] == ["FLAG", "0"]
    assert body[IRON] == [IRON, "3", "1", "1", "50%", "not-indicated (1)", "900", "", "0"]
    assert body[CYCLO] == [CYCLO, "1", "0", "0", "", "", "", "", "0"]
    assert body[UNKNOWN_RULE] == [UNKNOWN_RULE, "0", "0", "1", "100%", "no reason given (1)",
                                  "", "", "0"]


def test_report_table_is_the_default(data, report_cli):
    result = report_cli()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:6] == ["rule", "shown", "silent", "(would", "have", "fired)"]
    assert lines[0].split()[6:8] == ["accepted", "overridden"]
    assert lines[1].startswith(QUININE) and lines[1].rstrip().endswith("FLAG")
    iron = next(line for line in lines if line.startswith(IRON))
    assert iron.split()[1:6] == ["3", "0", "1", "1", "50%"] and "FLAG" not in iron
    assert len(lines) == 5
    assert report_cli("--format", "table").output == result.output


def test_report_since(data, report_cli):
    result = report_cli("--since", SINCE, "--format", "json")
    assert result.exit_code == 0, result.output
    [quinine] = json.loads(result.output)
    assert (quinine["rule_id"], quinine["shown"], quinine["accepted"], quinine["overridden"]) == (
        QUININE, 2, 1, 2)
    # An instant with an offset: 05:00:30 at -03:00 is 08:00:30 UTC, just after cards 5 and 6
    # were shown (08:00) and before all three decisions of that day.
    later = json.loads(report_cli("--since", "2026-11-10T05:00:30-03:00",
                                  "--format", "json").output)
    assert [(r["rule_id"], r["shown"], r["accepted"], r["overridden"]) for r in later] == [
        (QUININE, 0, 1, 2)]


def test_report_since_that_is_not_a_date_fails_cleanly(store, report_cli):
    result = report_cli("--since", "last tuesday")
    assert result.exit_code != 0
    assert "--since" in result.output


def test_report_on_an_empty_store_says_so(store, report_cli):
    result = report_cli()
    assert result.exit_code == 0, result.output
    assert "no cards shown and no feedback" in result.output
    assert json.loads(report_cli("--format", "json").output) == []
    assert report_cli("--format", "csv").output.count("\n") == 1


def test_csv_cells_that_start_like_a_formula_are_quoted_and_control_characters_stripped():
    from cds_service.store.report import RuleReport, render

    hostile = RuleReport(rule_id="quinine-leg-cramps")
    hostile.top_override_reasons = [("=HYPERLINK(\"http://x\")", 3), ("\x1b[31mred\x1b[0m", 2),
                                    ("@SUM(A1)", 1)]
    csv_text = render([hostile], "csv", 0.5)
    cells = next(csv.reader(io.StringIO(csv_text.splitlines()[1])))
    assert cells[5].startswith("'=HYPERLINK")
    assert "\x1b" not in csv_text
    for output_format in ("text", "json", "csv"):
        assert "\x1b" not in render([hostile], output_format, 0.5), output_format
    assert "red" in render([hostile], "text", 0.5)
