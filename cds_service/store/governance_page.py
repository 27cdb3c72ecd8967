"""The governance page (`legcramp-cds report --format html`): one self-contained HTML file for
a clinical governance meeting, its charts drawn as inline SVG (`svg_charts`), a table of the
same numbers under each chart.

Self-contained means it loads nothing: no script, no stylesheet, font or image of its own, and a
Content-Security-Policy that forbids fetching anything, so it can be mailed, archived and opened
offline, and no override text an EHR sent can make it call anywhere. Everything from the
database is escaped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from cds_service.store.report import Governance, RuleReport, RuleWeek
from cds_service.store.svg_charts import (
    DEFS,
    FLAG_MARK,
    Bar,
    BarGroup,
    Segment,
    WeeklyCounts,
    WeeklyRates,
    horizontal_bars,
    text,
    weekly_bars,
    weekly_rates,
)

STYLE = """
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1a202c;
  margin: 0 auto; max-width: 1000px; padding: 16px 20px 40px; line-height: 1.4; }
h1 { font-size: 1.5em; margin: 0 0 8px; } h2 { font-size: 1.2em; margin: 32px 0 6px;
  border-bottom: 1px solid #cbd5e0; padding-bottom: 4px; }
.period { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 0; }
.period dt { font-weight: bold; } .period dd { margin: 0; }
.explain { color: #4a5568; font-size: 0.92em; margin: 4px 0 8px; }
.flags { border: 2px solid #1a202c; padding: 8px 12px; margin: 14px 0; }
.flags ul { margin: 4px 0 0; padding-left: 20px; }
.flag { font-weight: bold; }
.legend { font-size: 0.88em; margin: 4px 0; }
.swatch { display: inline-block; width: 14px; height: 10px; border: 1px solid #2d3748;
  vertical-align: middle; margin: 0 4px 0 10px; }
.swatch.shown { background: #2b6cb0; } .swatch.silent { background: repeating-linear-gradient(
  45deg, #b7791f 0 2px, #fde9c8 2px 5px); } .swatch.accepted { background: #2f855a; }
.swatch.overridden { background: #c05621; } .swatch.reason { background: #6b46c1; }
.swatch.other { background: #a0aec0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 8px 0; }
th, td { border: 1px solid #cbd5e0; padding: 2px 6px; text-align: right; vertical-align: top; }
td, .date { white-space: nowrap; }
caption { text-align: left; }
th:first-child, td:first-child, td.text { text-align: left; }
thead th { background: #edf2f7; }
tr.flagged td:first-child { border-left: 5px solid #1a202c; font-weight: bold; }
td small { color: #4a5568; }
svg.chart { display: block; margin: 6px 0; font-size: 11px; }
svg.defs { position: absolute; }
.row-label { font-size: 11px; fill: #1a202c; } .row-label.flagged { font-weight: bold; }
.flag-text { font-size: 10px; font-weight: bold; fill: #1a202c; }
.flag-band { fill: #f7fafc; stroke: #1a202c; stroke-width: 1; }
.flag-rule { fill: #1a202c; }
.group-heading { font-size: 12px; font-weight: bold; fill: #1a202c; }
.row-note, .bar-note, .tick-label { font-size: 10px; fill: #4a5568; }
.axis, .tick, .baseline { stroke: #a0aec0; stroke-width: 1; }
.threshold { stroke: #1a202c; stroke-width: 1; stroke-dasharray: 4 3; }
.bar.shown { fill: #2b6cb0; } .bar.silent { fill: url(#hatch); stroke: #b7791f; stroke-width: .5; }
.bar.accepted { fill: #2f855a; } .bar.overridden { fill: #c05621; }
.bar.reason { fill: #6b46c1; } .bar.other { fill: #a0aec0; }
.rate-line { fill: none; stroke: #c05621; stroke-width: 1.5; }
.point { fill: #c05621; stroke: #7b341e; } .point.few { fill: #fff; }
.notes li { margin-bottom: 4px; }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'"


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * 1.5:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _rule_label(rule: RuleReport) -> str:
    return f"{text(rule.rule_id)} <span class=\"flag\">{FLAG_MARK}</span>" if rule.flagged \
        else text(rule.rule_id)


def _row_class(rule: RuleReport) -> str:
    return ' class="flagged"' if rule.flagged else ""


def _table(header: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]],
           caption: str) -> str:
    """A table; each row is (its tr attributes, its cells, already escaped)."""
    head = "".join(f'<th scope="col">{cell}</th>' for cell in header)
    body = "".join(f"<tr{attributes}>" + "".join(f"<td>{cell}</td>" for cell in cells)
                   + "</tr>" for attributes, cells in rows)
    return (f'<div class="scroll"><table><caption class="explain">{caption}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _date_head(week: date) -> str:
    return f'<span class="date">{week.isoformat()}</span>'


def _legend(*series: tuple[str, str]) -> str:
    return '<p class="legend">' + "".join(
        f'<span class="swatch {css}"></span>{words}' for css, words in series) + "</p>"


# --- sections -------------------------------------------------------------------------------


def _header(g: Governance) -> str:
    since = _instant(g.since) if g.since else "the first record kept"
    until = f"{_instant(g.until)} (not included)" if g.until else "the last record kept"
    flagged = [r for r in g.rules if r.flagged]
    if flagged:
        items = "".join(
            f"<li><span class=\"flag\">{FLAG_MARK}</span> <strong>{text(r.rule_id)}</strong>: "
            f"{_rate(r.override_rate)} overridden ({r.overridden} of {r.decisions} decisions)"
            "</li>" for r in flagged)
        flags = (f'<div class="flags" id="flagged"><strong>{len(flagged)} rule'
                 f'{"s" if len(flagged) != 1 else ""} flagged for review</strong> (overridden '
                 f"more than {g.flag_rate:.0%} of the time, with at least {g.min_feedback} "
                 f"decisions):<ul>{items}</ul></div>")
    else:
        flags = (f'<div class="flags" id="flagged"><strong>No rule is flagged</strong>: none was '
                 f"overridden more than {g.flag_rate:.0%} of the time with at least "
                 f"{g.min_feedback} decisions.</div>")
    shown = sum(r.shown for r in g.rules)
    silent = sum(r.silent for r in g.rules)
    decisions = sum(r.decisions for r in g.rules)
    return (
        "<header><h1>Clinical decision support: governance report</h1>"
        '<dl class="period">'
        f"<dt>From</dt><dd>{since}</dd><dt>Until</dt><dd>{until}</dd>"
        f"<dt>Generated</dt><dd>{_instant(g.generated_at)}</dd>"
        f"<dt>Flag</dt><dd>override rate above {g.flag_rate:.0%}, once a rule has at least "
        f"{g.min_feedback} decisions (<code>[report] override_rate_flag</code>, "
        "<code>min_feedback</code>)</dd>"
        f"<dt>In this period</dt><dd>{shown} cards shown, {silent} recorded silently (would "
        f"have fired), {decisions} decisions fed back</dd></dl>{flags}</header>"
    )


def _summary(g: Governance) -> str:
    rows = [(_row_class(r), [
        _rule_label(r), str(r.shown), str(r.silent), str(r.accepted), str(r.overridden),
        _rate(r.override_rate), _duration(r.median_seconds_to_feedback)]) for r in g.rules]
    return ('<section id="rules"><h2>Rules at a glance</h2>'
            + _table(["rule", "shown", "silent (would have fired)", "accepted", "overridden",
                      "override rate", "median time to decision"], rows,
                     "Flagged rules first. A decision is the latest feedback on a card.")
            + "</section>")


def _by_rule(weeks: Sequence[RuleWeek]) -> dict[str, dict[date, RuleWeek]]:
    table: dict[str, dict[date, RuleWeek]] = defaultdict(dict)
    for week in weeks:
        table[week.rule_id][week.week] = week
    return table


def _cards_per_week(g: Governance, axis: list[date]) -> str:
    weeks = _by_rule(g.weeks)
    rules = [r for r in g.rules if r.shown or r.silent]
    head = ('<section id="cards-per-week"><h2>Cards per rule per week</h2>'
            '<p class="explain">Cards by the week they were shown (a finding shown again '
            "counts once, in the week it was last shown). Each row has its own scale: its "
            "peak is written at its right.</p>")
    if not rules or not axis:
        return head + "<p>No cards were recorded in this period.</p></section>"
    chart = weekly_bars([WeeklyCounts(r.rule_id, r.flagged,
                                      {w: v.shown for w, v in weeks[r.rule_id].items()},
                                      {w: v.silent for w, v in weeks[r.rule_id].items()})
                         for r in rules], axis, "Cards per rule per week")

    def cell(rule_id: str, week: date) -> str:
        found = weeks[rule_id].get(week)
        if found is None or not (found.shown or found.silent):
            return "0"
        return f"{found.shown}" + (f"<br><small>+{found.silent} silent</small>"
                                   if found.silent else "")

    rows = [(_row_class(r), [_rule_label(r), *(cell(r.rule_id, w) for w in axis),
                             str(r.shown), str(r.silent)]) for r in rules]
    table = _table(["rule", *(_date_head(w) for w in axis), "shown", "silent"], rows,
                   "Cards shown per week (week starting Monday, UTC); silent cards apart.")
    return (head + _legend(("shown", "shown"), ("silent", "recorded silently (would have "
                                                          "fired)"))
            + chart + table + "</section>")


def _override_rate_per_week(g: Governance, axis: list[date]) -> str:
    weeks = _by_rule(g.weeks)
    rules = [r for r in g.rules if r.decisions]
    head = ('<section id="override-rate"><h2>Override rate per rule per week</h2>'
            '<p class="explain">Of the decisions made in a week (the latest feedback on each '
            "card, by when it was made), the share overridden. The dashed line is the flag, "
            f"{g.flag_rate:.0%}; a hollow point is a week with fewer than {g.min_feedback} "
            "decisions, too few to read much into.</p>")
    if not rules or not axis:
        return head + "<p>No feedback was received in this period.</p></section>"
    chart = weekly_rates(
        [WeeklyRates(r.rule_id, r.flagged,
                     {w: (v.overridden, v.accepted + v.overridden)
                      for w, v in weeks[r.rule_id].items()},
                     f"{_rate(r.override_rate)} of {r.decisions}") for r in rules],
        axis, "Override rate per rule per week", g.flag_rate, g.min_feedback)

    def cell(rule_id: str, week: date) -> str:
        found = weeks[rule_id].get(week)
        if found is None or found.override_rate is None:
            return ""
        return (f"{_rate(found.override_rate)}<br><small>{found.overridden}/"
                f"{found.accepted + found.overridden}</small>")

    rows = [(_row_class(r), [_rule_label(r), *(cell(r.rule_id, w) for w in axis),
                             f"{_rate(r.override_rate)}<br><small>{r.overridden}/"
                             f"{r.decisions}</small>"]) for r in rules]
    table = _table(["rule", *(_date_head(w) for w in axis), "period"], rows,
                   "Override rate per week: overridden / decisions.")
    return head + chart + table + "</section>"


def _override_reasons(g: Governance) -> str:
    rules = [r for r in g.rules if r.overridden]
    head = ('<section id="override-reasons"><h2>Top override reasons per rule</h2>'
            '<p class="explain">The reasons the EHR sent with overrides (its display, else its '
            'code; "comment only" when only a free-text comment came, which this page never '
            "shows). Reasons beyond the top ones are counted together.</p>")
    if not rules:
        return head + "<p>No card was overridden in this period.</p></section>"
    groups = []
    rows = []
    for r in rules:
        bars = [Bar(label, (Segment("reason", n, f"{r.rule_id}: {label}, {n} of "
                                                f"{r.overridden} overrides"),),
                    f"{n} ({n / r.overridden:.0%})") for label, n in r.top_override_reasons]
        other = r.overridden - sum(n for _, n in r.top_override_reasons)
        if other:
            bars.append(Bar("other reasons", (Segment("other", other, f"{r.rule_id}: other "
                                                      f"reasons, {other}"),),
                            f"{other} ({other / r.overridden:.0%})"))
        groups.append(BarGroup(f"{r.rule_id} ({r.overridden} overrides)", tuple(bars),
                               flagged=r.flagged))
        for bar in bars:
            rows.append((_row_class(r), [_rule_label(r), text(bar.label),
                                         _fmt_count(bar.segments[0].value), text(bar.note)]))
    chart = horizontal_bars(groups, "Top override reasons per rule")
    table = _table(["rule", "reason", "overrides", "share of the rule's overrides"], rows,
                   "Override reasons per rule.")
    return head + chart + table + "</section>"


def _fmt_count(value: float) -> str:
    return str(int(value))


def _accept_rates(g: Governance) -> str:
    rules = [r for r in g.rules if r.decisions]
    head = ('<section id="accept-rate"><h2>Accept rate and accepted suggestions</h2>'
            '<p class="explain">Of each rule\'s decisions, the share accepted, and how many '
            "acceptances named one of the card's suggestions. The store keeps which suggestion "
            "uuids were accepted but not what each suggestion was (suggestion uuids are made "
            "per card), so acceptance is counted per rule, not per suggestion.</p>")
    if not rules:
        return head + "<p>No feedback was received in this period.</p></section>"
    bars = tuple(
        Bar(r.rule_id, (
            Segment("accepted", r.accepted / r.decisions,
                    f"{r.rule_id}: {r.accepted} of {r.decisions} accepted"),
            Segment("overridden", r.overridden / r.decisions,
                    f"{r.rule_id}: {r.overridden} of {r.decisions} overridden"),
        ), f"{_rate(r.accept_rate)} of {r.decisions}", flagged=r.flagged) for r in rules)
    chart = horizontal_bars([BarGroup("", bars)], "Accept rate per rule", scale_max=1.0,
                            row_height=24)
    rows = [(_row_class(r), [_rule_label(r), str(r.decisions), str(r.accepted),
                             _rate(r.accept_rate), str(r.accepted_with_suggestions),
                             str(r.suggestions_accepted)]) for r in rules]
    table = _table(["rule", "decisions", "accepted", "accept rate",
                    "acceptances naming a suggestion", "suggestions accepted"], rows,
                   "Accepted decisions and the suggestions they named.")
    return (head + _legend(("accepted", "accepted"), ("overridden", "overridden")) + chart
            + table + "</section>")


def _per_100_calls(g: Governance) -> str:
    head = ('<section id="per-100-calls"><h2>Cards per 100 recorded hook calls, per '
            'service</h2><p class="explain"><strong>Recorded calls only.</strong> The store '
            "keeps cards, not calls: a hook call is known only by the hookInstance of a card "
            "it returned or held back silently. Calls that returned no card are not recorded "
            "anywhere in the store, so these are cards per 100 <em>calls that produced at "
            "least one card</em>, not per 100 of all calls (for all calls, the service's "
            "<code>legcramp_cds_http_request_duration_seconds_count{endpoint=\"service_call\"}"
            "</code> metric counts them). A finding shown again keeps only its latest call, so "
            "recorded calls are undercounted where findings repeat.</p>")
    if not g.services:
        return head + "<p>No cards were recorded in this period.</p></section>"
    bars = []
    for s in g.services:
        bars.append(Bar(f"{s.service_id}: shown", (Segment(
            "shown", round(s.shown_per_100_calls or 0, 1),
            f"{s.service_id}: {s.shown} cards shown in {s.calls} recorded calls"),),
            f"{s.shown_per_100_calls or 0:.1f} per 100"))
        bars.append(Bar(f"{s.service_id}: silent", (Segment(
            "silent", round(s.silent_per_100_calls or 0, 1),
            f"{s.service_id}: {s.silent} cards recorded silently in {s.calls} recorded calls"),),
            f"{s.silent_per_100_calls or 0:.1f} per 100"))
    chart = horizontal_bars([BarGroup("", tuple(bars))], "Cards per 100 recorded hook calls")
    rows = [("", [text(s.service_id), str(s.calls), str(s.shown), str(s.silent),
                  f"{s.shown_per_100_calls or 0:.1f}", f"{s.silent_per_100_calls or 0:.1f}"])
            for s in g.services]
    table = _table(["service", "recorded calls", "cards shown", "silent",
                    "shown per 100 recorded calls", "silent per 100 recorded calls"], rows,
                   "Recorded calls: distinct hookInstances with at least one card recorded.")
    return (head + _legend(("shown", "shown"), ("silent", "recorded silently")) + chart + table
            + "</section>")


def _silent_vs_shown(g: Governance) -> str:
    rules = [r for r in g.rules if r.shown or r.silent]
    head = ('<section id="silent-vs-shown"><h2>Silent and shown</h2><p class="explain">'
            "Cards recorded in a silent pilot (<code>[cards] silent</code>, or a rule's own "
            "<code>silent</code>) were never shown: they are what the rule would have fired, "
            "counted apart from the cards clinicians saw, and never in an override rate.</p>")
    if not rules:
        return head + "<p>No cards were recorded in this period.</p></section>"
    bars = tuple(Bar(r.rule_id, (
        Segment("shown", r.shown, f"{r.rule_id}: {r.shown} shown"),
        Segment("silent", r.silent, f"{r.rule_id}: {r.silent} recorded silently")),
        f"{r.shown} + {r.silent} silent", flagged=r.flagged) for r in rules)
    chart = horizontal_bars([BarGroup("", bars)], "Silent and shown cards per rule",
                            row_height=24)
    rows = [(_row_class(r), [_rule_label(r), str(r.shown), str(r.silent),
                             _rate(r.silent / (r.shown + r.silent))]) for r in rules]
    table = _table(["rule", "shown", "silent (would have fired)", "silent share"], rows,
                   "Cards shown and recorded silently per rule.")
    return (head + _legend(("shown", "shown"), ("silent", "recorded silently (would have "
                                                          "fired)"))
            + chart + table + "</section>")


def _notes() -> str:
    return (
        '<section id="notes" class="notes"><h2>What these numbers can and cannot say</h2><ul>'
        "<li>A card is recorded without the patient and without its text: rule, service, hook, "
        "hookInstance and time. A finding about the same patient shown again (guidance on a "
        "standing finding keeps one uuid) is one record, dated when it was last shown.</li>"
        "<li>A decision is the latest feedback item on a card; feedback in the period on a "
        "card shown earlier counts for that card's rule. Feedback on cards the store never "
        "recorded (kept before migration 0004) is listed as \"(unknown card)\".</li>"
        "<li>Hook calls that returned no card are not recorded: the cards per 100 calls are per "
        "100 recorded calls.</li>"
        "<li>Override reasons are the EHR's own text; free-text comments are never shown.</li>"
        "<li>Weeks run Monday to Sunday in UTC; a week at either end of the period may be "
        "partial.</li></ul></section>"
    )


def render_page(g: Governance) -> str:
    axis = g.week_axis()
    last_day = (g.until - timedelta(microseconds=1)) if g.until else None
    period = (f"{g.since:%Y-%m-%d}" if g.since else "start") + " to " + (
        f"{last_day:%Y-%m-%d}" if last_day else "now")
    nav = ('<nav><p class="explain">Sections: <a href="#rules">rules at a glance</a> · '
           '<a href="#cards-per-week">cards per week</a> · <a href="#override-rate">override '
           'rate</a> · <a href="#override-reasons">override reasons</a> · <a href="#accept-rate">'
           'accept rate</a> · <a href="#per-100-calls">cards per 100 calls</a> · '
           '<a href="#silent-vs-shown">silent and shown</a> · <a href="#notes">notes</a></p>'
           "</nav>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Governance report, {text(period)}</title><style>{STYLE}</style></head>"
        f"<body>{DEFS}{_header(g)}{nav}{_summary(g)}{_cards_per_week(g, axis)}"
        f"{_override_rate_per_week(g, axis)}{_override_reasons(g)}{_accept_rates(g)}"
        f"{_per_100_calls(g)}{_silent_vs_shown(g)}{_notes()}</body></html>\n"
    )
