"""The governance page (`legcramp-cds report --format html`) on the hand-made store of
`governance_data`: one self-contained file (nothing fetched), the period header, flagged rules
marked in words, the numbers in every chart's marks and in the table under it, EHR text
escaped, and the page as headless Chromium draws it (a screenshot is kept)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape as html_unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.store.database import Store
from cds_service.store.governance_page import render_page
from cds_service.store.report import build_governance
from tests.store.governance_data import IRON, ORDER_SIGN, PATIENT_VIEW, QUININE, fill

SINCE, UNTIL = "2026-11-02", "2026-11-22"  # W1 to W3, both whole
WEEKS = ["2026-11-02", "2026-11-09", "2026-11-16"]


class Page(HTMLParser):
    """What a test reads of the page: per section, its tables (rows of cell texts) and its
    chart marks (tag, attributes, title)."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.marks: dict[str, list[dict[str, str]]] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._section = ""
        self._cell: list[str] | None = None
        self._mark: dict[str, str] | None = None
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag == "section":
            self._section = attributes.get("id", "")
        elif tag == "table":
            self.tables.setdefault(self._section, []).append([])
        elif tag == "tr":
            self.tables[self._section][-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")
        elif tag in ("rect", "circle", "path") and "data-row" in attributes:
            self._mark = dict(attributes, tag=tag, title="")
            self.marks.setdefault(self._section, []).append(self._mark)
        elif tag == "title" and self._mark is not None:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._section][-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "title":
            self._in_title = False
        elif tag in ("rect", "circle", "path"):
            self._mark = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title and self._mark is not None:
            self._mark["title"] += data

    def table(self, section: str) -> dict[str, list[str]]:
        """The section's (first) table, by the text of each row's first cell."""
        [header, *rows] = self.tables[section][0]
        return {"": header[1:], **{row[0]: row[1:] for row in rows}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path}/store.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def page_file(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The page, written by the command."""
    fill(store)
    monkeypatch.delenv("LEGCRAMP_CDS_CONFIG", raising=False)
    config = tmp_path / "report.toml"
    config.write_text(f'[store]\nurl = "{store.engine.url}"\n\n'
                      "[report]\noverride_rate_flag = 0.5\nmin_feedback = 3\n", encoding="utf-8")
    target = tmp_path / "governance.html"
    result = CliRunner().invoke(main, ["report", "--config", str(config), "--format", "html",
                                       "--since", SINCE, "--until", UNTIL,
                                       "--output", str(target)])
    assert result.exit_code == 0, result.output
    return target


@pytest.fixture
def page(page_file: Path) -> Page:
    return Page(page_file.read_text(encoding="utf-8"))


def test_the_page_is_one_file_that_fetches_nothing(page_file, page):
    html = page_file.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not [tag for tag, _ in page.tags if tag in ("script", "link", "img", "iframe",
                                                       "object", "embed", "font")]
    for tag, attributes in page.tags:
        for name in ("src", "href"):
            assert attributes.get(name, "#").startswith("#"), (tag, attributes)
    assert not re.search(r"@import|@font-face", html)
    assert set(re.findall(r"url\(([^)]*)\)", html)) == {"#hatch"}  # the pattern defined inline
    csp = next(a["content"] for tag, a in page.tags if tag == "meta"
               and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src" not in csp


def test_the_header_gives_the_period_and_when_it_was_made(store):
    fill(store)
    made = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    html = render_page(build_governance(
        store, datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), 0.5, 3,
        generated_at=made))
    header = html[html.index("<header>"):html.index("</header>")]
    assert "<dt>From</dt><dd>2026-11-02 00:00 UTC</dd>" in header
    assert "<dt>Until</dt><dd>2026-11-23 00:00 UTC (not included)</dd>" in header
    assert "<dt>Generated</dt><dd>2026-11-23 07:30 UTC</dd>" in header
    assert "10 cards shown, 3 recorded silently" in header
    assert "<title>Governance report, 2026-11-02 to 2026-11-22</title>" in html


def test_flagged_rules_stand_out_in_words_not_colour_alone(page_file, page):
    html = page_file.read_text(encoding="utf-8")
    flags = html[html.index('id="flagged"'):html.index("</header>")]
    assert "1 rule flagged for review" in flags
    assert f"⚑ FLAGGED</span> <strong>{QUININE}</strong>: 80% overridden (4 of 5 decisions)" \
        in flags
    assert IRON not in flags
    summary = page.table("rules")
    assert summary[f"{QUININE} ⚑ FLAGGED"][:5] == ["7", "2", "1", "4", "80%"]
    assert summary[IRON][:5] == ["3", "1", "2", "1", "33%"]
    # In every chart, the flagged rule's row carries the words and a heavy rule.
    for section in ("cards-per-week", "override-rate"):
        part = html[html.index(f'<section id="{section}"'):]
        part = part[:part.index("</section>")]
        assert part.count('class="flag-rule"') == 1
        assert part.count("⚑ FLAGGED</text>") == 1
    assert page.tables["override-rate"][0][1][0] == f"{QUININE} ⚑ FLAGGED"


def test_cards_per_week_chart_and_table_hold_the_numbers(page):
    bars = {(m["data-row"], m["data-week"], m["data-series"]): m
            for m in page.marks["cards-per-week"]}
    assert {key: int(m["data-value"]) for key, m in bars.items()} == {
        (QUININE, WEEKS[0], "shown"): 5, (QUININE, WEEKS[0], "silent"): 1,
        (QUININE, WEEKS[1], "shown"): 2, (QUININE, WEEKS[1], "silent"): 1,
        (IRON, WEEKS[1], "shown"): 2,
        (IRON, WEEKS[2], "shown"): 1, (IRON, WEEKS[2], "silent"): 1,
    }
    assert bars[QUININE, WEEKS[0], "shown"]["title"] == f"{QUININE}, week of {WEEKS[0]}: 5 shown"
    # Bars are drawn to scale within a row: 5 shown is 5/6 of W1's stacked 6.
    heights = {key: float(m["height"]) for key, m in bars.items()}
    assert heights[QUININE, WEEKS[0], "shown"] == pytest.approx(
        5 * heights[QUININE, WEEKS[0], "silent"], abs=0.05)  # drawn to 1/100 px
    table = page.table("cards-per-week")
    assert table[""] == [*WEEKS, "shown", "silent"]
    assert table[f"{QUININE} ⚑ FLAGGED"] == ["5 +1 silent", "2 +1 silent", "0", "7", "2"]
    assert table[IRON] == ["0", "2", "1 +1 silent", "3", "1"]


def test_override_rate_chart_and_table_hold_the_weekly_rates(page):
    points = {(m["data-row"], m["data-week"]): m for m in page.marks["override-rate"]
              if m["tag"] == "circle"}
    assert {key: (float(m["data-value"]), int(m["data-events"]), int(m["data-total"]))
            for key, m in points.items()} == {
        (QUININE, WEEKS[0]): (0.5, 1, 2), (QUININE, WEEKS[1]): (1.0, 3, 3),
        (IRON, WEEKS[1]): (0.0, 0, 1), (IRON, WEEKS[2]): (0.5, 1, 2)}
    assert points[QUININE, WEEKS[1]]["title"].endswith("100% overridden (3 of 3 decisions)")
    # Fewer decisions than min_feedback (3) in a week: drawn hollow.
    assert {key for key, m in points.items() if "few" in m["class"]} == {
        (QUININE, WEEKS[0]), (IRON, WEEKS[1]), (IRON, WEEKS[2])}
    lines = [m for m in page.marks["override-rate"] if m["tag"] == "path"]
    assert {m["data-row"] for m in lines} == {QUININE, IRON}
    table = page.table("override-rate")
    assert table[f"{QUININE} ⚑ FLAGGED"] == ["50% 1/2", "100% 3/3", "", "80% 4/5"]
    assert table[IRON] == ["", "0% 0/1", "50% 1/2", "33% 1/3"]


def test_reasons_accept_rates_calls_and_silent_cards_hold_the_numbers(page):
    reasons = {(m["data-row"], m["data-series"]): int(m["data-value"])
               for m in page.marks["override-reasons"]}
    assert reasons == {("Treating malaria", "reason"): 3, ("not-indicated", "reason"): 1,
                       ("comment only", "reason"): 1}
    assert page.tables["override-reasons"][0][1:] == [
        [f"{QUININE} ⚑ FLAGGED", "Treating malaria", "3", "3 (75%)"],
        [f"{QUININE} ⚑ FLAGGED", "not-indicated", "1", "1 (25%)"],
        [IRON, "comment only", "1", "1 (100%)"]]

    accepted = {(m["data-row"], m["data-series"]): float(m["data-value"])
                for m in page.marks["accept-rate"]}
    assert accepted == pytest.approx({(QUININE, "accepted"): 0.2, (QUININE, "overridden"): 0.8,
                                      (IRON, "accepted"): 2 / 3, (IRON, "overridden"): 1 / 3})
    table = page.table("accept-rate")
    assert table[f"{QUININE} ⚑ FLAGGED"] == ["5", "1", "20%", "1", "2"]
    assert table[IRON] == ["3", "2", "67%", "1", "1"]

    calls = {m["data-row"]: float(m["data-value"]) for m in page.marks["per-100-calls"]}
    assert calls == {f"{ORDER_SIGN}: shown": 140.0, f"{ORDER_SIGN}: silent": 40.0,
                     f"{PATIENT_VIEW}: shown": 150.0, f"{PATIENT_VIEW}: silent": 50.0}
    assert page.table("per-100-calls")[ORDER_SIGN] == ["5", "7", "2", "140.0", "40.0"]
    assert page.table("per-100-calls")[PATIENT_VIEW] == ["2", "3", "1", "150.0", "50.0"]

    silent = {(m["data-row"], m["data-series"]): int(m["data-value"])
              for m in page.marks["silent-vs-shown"]}
    assert silent == {(QUININE, "shown"): 7, (QUININE, "silent"): 2, (IRON, "shown"): 3,
                      (IRON, "silent"): 1}
    assert page.table("silent-vs-shown")[IRON] == ["3", "1", "25%"]


def test_the_page_says_hook_calls_without_cards_are_not_recorded(page_file):
    html = page_file.read_text(encoding="utf-8")
    section = html[html.index('<section id="per-100-calls"'):]
    section = section[:section.index("</section>")]
    assert "Calls that returned no card are not recorded" in section
    assert "per 100 recorded hook calls" in section


def test_text_from_the_ehr_is_escaped(store):
    fill(store, malaria='<script>alert(1)</script><img src=x onerror="alert(2)">')
    html = render_page(build_governance(store, None, None, 0.5, 3))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" \
        in html
    assert not [tag for tag, _ in Page(html).tags if tag in ("script", "img")]


def test_an_empty_store_gives_a_page_that_says_so(store):
    html = render_page(build_governance(store, None, None, 0.5, 3))
    page = Page(html)
    assert "No rule is flagged" in html
    assert "No cards were recorded in this period." in html
    assert "No feedback was received in this period." in html
    assert page.marks == {}
    assert "<dt>From</dt><dd>the first record kept</dd>" in html


# --- drawn by Chromium --------------------------------------------------------------------------

# Injected into a copy of the page (the page itself allows no script): what Chromium laid out.
PROBE = """<script>
const marks = [...document.querySelectorAll("svg.chart [data-row]")];
const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
const charts = [...document.querySelectorAll("svg.chart")].map(s => {
  const r = s.getBoundingClientRect(); return [r.width, r.height]; });
const out = document.createElement("pre");
out.id = "probe-" + "result";
out.textContent = JSON.stringify({
  marks: marks.length, drawn: drawn.length, charts: charts,
  rects: document.querySelectorAll("svg.chart rect.bar").length,
  resources: performance.getEntriesByType("resource").length,
  hatch: getComputedStyle(document.querySelector("rect.bar.silent")).fill,
});
document.body.appendChild(out);
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":  # .ci/run installs it: missing there is a failure
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)",
                        pytrace=False)
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); "
                    ".ci/run installs it")
    return found


def run_chromium(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage", *args],
        capture_output=True, text=True, timeout=120, check=False)


def test_chromium_draws_the_charts(page_file, page, tmp_path):
    binary = chromium()
    screenshot = tmp_path / "governance.png"
    shot = run_chromium(binary, f"--screenshot={screenshot}", "--window-size=1200,3000",
                        page_file.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    print(f"\ngovernance page screenshot: {screenshot}")
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 3000)
    assert len(data) > 60_000, "a page of charts and tables does not compress this small"

    probe_file = tmp_path / "probe.html"
    html = page_file.read_text(encoding="utf-8")
    probe_file.write_text(html.replace("default-src 'none';", "default-src 'none'; "
                                       "script-src 'unsafe-inline';")
                          .replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dumped = run_chromium(binary, "--dump-dom", "--window-size=1200,3000", probe_file.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dumped.stdout, re.S)
    assert found, dumped.stdout[-2000:]
    probe: dict[str, Any] = json.loads(html_unescape(found.group(1)))
    marks = sum(len(m) for m in page.marks.values())
    assert probe["marks"] == marks == 28  # 7 + 4 + 2 lines + 3 + 4 + 4 + 4
    assert probe["drawn"] == marks, "every mark is laid out with a size"
    assert probe["rects"] > 0
    assert len(probe["charts"]) == 6
    assert all(w > 500 and h > 40 for w, h in probe["charts"])
    assert probe["resources"] == 0, "the page fetched something"
    assert probe["hatch"].startswith("url(")
