"""The governance report at scale: a store of a year of cards (1M by default) and feedback
(200k), then `legcramp-cds report` in the text (table) and HTML formats, each in fresh
interpreters, with its time (the median of --runs) and the process's peak memory.

    .venv/bin/python bench/report_scale.py [--cards 1000000] [--feedback 200000]
        [--postgres-url URL] [--runs 3] [--keep DIR]

The store is SQLite in a temporary directory (kept in DIR with --keep, with the reports),
its schema made by the service's own migrations, its rows written in bulk; with
--postgres-url (a server where that user may create databases, e.g. `scripts/postgres start`)
the same rows are also copied into a new database there, reported on, and dropped.

The rows are shaped like the service's: cards written in the order they were shown, with
uuids in no order, one to three per hook call, 19 rules of unequal frequency (two of them in a
silent pilot, and 3% of the others' cards silent), four services; feedback on 180k cards, a
tenth of them decided twice. The report counts in the database: its time grows with the rows,
its peak RSS should not. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 30, tzinfo=UTC)
WEEKS = 52
RULES = [  # (rule id, relative frequency, chance a decision is an override)
    ("quinine-leg-cramps", 30, 0.72), ("cyclobenzaprine-duration", 22, 0.35),
    ("cyclobenzaprine-cns-spasticity", 4, 0.5), ("cyclobenzaprine-dose", 6, 0.2),
    ("cyclobenzaprine-older-adult", 14, 0.55), ("cyclobenzaprine-contraindication", 3, 0.1),
    ("benzodiazepine-stroke-recovery", 5, 0.4), ("rls-dopaminergic-augmentation", 8, 0.3),
    ("rls-dopamine-antagonist", 4, 0.25), ("rls-worsening-drugs", 9, 0.6),
    ("rls-iron-studies-due", 12, 0.45), ("rls-iron-low", 6, 0.3),
    ("cramps-electrolytes-abnormal", 7, 0.2), ("diuretic-electrolytes-due", 10, 0.5),
    ("cramps-contributing-medications", 8, 0.65), ("esrd-cramps-gabapentin", 2, 0.3),
    ("cirrhosis-cramps-baclofen", 2, 0.3), ("pad-claudication-exercise", 5, 0.4),
    ("diabetes-spasm-b6", 3, 0.5),
]
SILENT_RULES = {"pad-claudication-exercise", "diabetes-spasm-b6"}  # in a silent pilot
SERVICES = [("legcramp-order-select", "order-select", 35), ("legcramp-order-sign",
            "order-sign", 30), ("legcramp-patient-view", "patient-view", 25),
            ("legcramp-medication-refill", "medication-refill", 10)]
REASONS = [("treating-malaria", "Treating malaria"), ("benefit-outweighs-risk",
           "Benefit outweighs risk"), ("patient-declined", "Patient declined alternative"),
           ("already-addressed", "Already addressed"), ("not-indicated", None),
           ("interaction-accepted", "Interaction accepted")]
CARD_COLUMNS = ("card_uuid", "rule_id", "service_id", "hook", "indicator", "hook_instance",
                "shown_at", "patient_hash", "issuer", "tenant", "silent")
FEEDBACK_COLUMNS = ("item_key", "service_id", "card_uuid", "known_card", "outcome",
                    "outcome_at", "accepted_suggestions", "override_system", "override_code",
                    "override_display", "user_comment", "received_at")
SYSTEM = "https://legcramp-cds.example.org/fhir/CodeSystem/override-reason"


def card_uuid(number: int) -> str:
    """Card `number`'s uuid: as the service's (uuid5) ones, in no order the rows are in."""
    return str(uuid.UUID(bytes=hashlib.md5(number.to_bytes(8, "big")).digest(), version=4))


class Data:
    """Rows made from one seed, in chunks; the few facts about each card that its feedback
    needs are kept in arrays (a few MB for a million cards)."""

    def __init__(self, cards: int, feedback: int, seed: int = 18):
        self.cards, self.feedback, self.seed = cards, feedback, seed
        self.rule = array("B")
        self.service = array("B")
        self.shown = array("d")  # seconds after the start
        self.silent = array("B")
        self.start = END - timedelta(weeks=WEEKS)

    def card_rows(self) -> Iterator[tuple[Any, ...]]:
        pick = random.Random(self.seed)
        rule_weights = [w for _, w, _ in RULES]
        service_weights = [w for _, _, w in SERVICES]
        span = WEEKS * 7 * 86400
        made = 0
        while made < self.cards:
            service = pick.choices(range(len(SERVICES)), service_weights)[0]
            call = str(uuid.UUID(int=pick.getrandbits(128)))
            at = (made + pick.random()) / self.cards * span  # written as shown: in time order
            for _ in range(min(pick.choice((1, 1, 1, 2, 2, 3)), self.cards - made)):
                rule = pick.choices(range(len(RULES)), rule_weights)[0]
                silent = RULES[rule][0] in SILENT_RULES or pick.random() < 0.03
                self.rule.append(rule)
                self.service.append(service)
                self.shown.append(at)
                self.silent.append(silent)
                yield (card_uuid(made), RULES[rule][0], SERVICES[service][0],
                       SERVICES[service][1], "warning", call,
                       self.start + timedelta(seconds=at), None, "", "", silent)
                made += 1

    def feedback_rows(self) -> Iterator[tuple[Any, ...]]:
        pick = random.Random(self.seed + 1)
        shown = [i for i in range(len(self.rule)) if not self.silent[i]]
        # About one card in ten decided twice (the latest decision counts).
        cards = pick.sample(shown, min(len(shown), int(self.feedback * 0.9)))
        cards += pick.choices(cards, k=self.feedback - len(cards))
        for number, card in enumerate(cards):
            overridden = pick.random() < RULES[self.rule[card]][2]
            at = self.start + timedelta(seconds=self.shown[card] + pick.expovariate(1 / 300))
            code, display = pick.choice(REASONS)
            roll = pick.random()
            yield (
                f"{number:064x}", SERVICES[self.service[card]][0], card_uuid(card),
                True, "overridden" if overridden else "accepted", at,
                None if overridden or roll < 0.3 else json.dumps(
                    [str(uuid.UUID(int=pick.getrandbits(128)))]),
                SYSTEM if overridden and roll >= 0.1 else None,
                code if overridden and roll >= 0.1 else None,
                display if overridden and roll >= 0.1 else None,
                "free text" if overridden and roll < 0.15 else None, at + timedelta(seconds=2))


def chunks(rows: Iterator[tuple[Any, ...]], size: int = 50_000) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sqlite_value(value: Any) -> Any:
    """As SQLAlchemy's SQLite DateTime keeps an instant: UTC text with microseconds."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def build_sqlite(path: Path, data: Data) -> str:
    from cds_service.store.database import Store

    url = f"sqlite:///{path}"
    Store(url).close()  # the schema, by the migrations
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    for table, columns, rows in (("card_shown", CARD_COLUMNS, data.card_rows()),
                                 ("feedback", FEEDBACK_COLUMNS, data.feedback_rows())):
        statement = (f"INSERT INTO {table} ({', '.join(columns)}) "
                     f"VALUES ({', '.join('?' * len(columns))})")
        for chunk in chunks(rows):
            connection.executemany(statement, [tuple(map(_sqlite_value, r)) for r in chunk])
        connection.commit()
    connection.execute("ANALYZE")
    connection.close()
    return url


def build_postgres(admin_url: str, data: Data) -> tuple[str, str]:
    """A new database on the server of `admin_url`, the same rows copied in."""
    import psycopg
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from cds_service.store.database import Store

    name = f"legcramp_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    Store(url).close()
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as connection:
        for table, columns, rows in (("card_shown", CARD_COLUMNS, data.card_rows()),
                                     ("feedback", FEEDBACK_COLUMNS, data.feedback_rows())):
            with connection.cursor().copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        connection.execute("ANALYZE")
    return url, name


def drop_postgres(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
from cds_service.cli import main
imported = time.perf_counter()
main(["report", "--config", sys.argv[2], "--format", sys.argv[3], "--output", sys.argv[4],
      "--since", "2025-12-01", "--until", "2026-11-30"], standalone_mode=False)
done = time.perf_counter()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent.
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"import_s": imported - started, "report_s": done - imported,
                  "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}))
"""


def measure(url: str, output_format: str, folder: Path, tag: str,
            runs: int) -> dict[str, float]:
    """The median of `runs` fresh interpreters (the peak RSS: the largest)."""
    config = folder / f"report-{tag}.toml"
    config.write_text(f'[store]\nurl = "{url}"\n\n[report]\noverride_rate_flag = 0.5\n'
                      "min_feedback = 10\n", encoding="utf-8")
    output = folder / f"report-{tag}.{'html' if output_format == 'html' else 'txt'}"
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(config),
                                 output_format, str(output)],
                                check=True, capture_output=True, text=True, cwd="/")
        figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
        figures["wall_s"] = time.perf_counter() - started
        samples.append(figures)
    median = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    median["peak_rss_mb"] = max(s["peak_rss_mb"] for s in samples)
    median["output_kb"] = output.stat().st_size / 1024
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--feedback", type=int, default=200_000)
    parser.add_argument("--postgres-url", default=None,
                        help="Also measure on this PostgreSQL server (a new database there).")
    parser.add_argument("--runs", type=int, default=3,
                        help="Reports per store and format (their median is printed).")
    parser.add_argument("--keep", type=Path, default=None,
                        help="Keep the SQLite store and the reports in this directory.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="legcramp-report-scale-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        data = Data(args.cards, args.feedback)
        started = time.perf_counter()
        url = build_sqlite(folder / "report.sqlite3", data)
        build = time.perf_counter() - started
        size_mb = (folder / "report.sqlite3").stat().st_size / 2**20
        print(f"{args.cards:,} cards and {args.feedback:,} feedback items over {WEEKS} weeks")
        print(f"sqlite: built in {build:.1f} s ({size_mb:.0f} MB file)")
        targets = [("sqlite", url)]
        pg_name = None
        if args.postgres_url:
            data = Data(args.cards, args.feedback)
            started = time.perf_counter()
            pg_url, pg_name = build_postgres(args.postgres_url, data)
            print(f"postgresql: built in {time.perf_counter() - started:.1f} s")
            targets.append(("postgresql", pg_url))
        try:
            print(f"{'store':<11} {'format':<6} {'report s':>8} {'import s':>8} {'wall s':>7} "
                  f"{'peak RSS MB':>11} {'output KB':>9}")
            for backend, target in targets:
                for output_format in ("table", "html"):
                    f = measure(target, output_format, folder, f"{backend}-{output_format}",
                                args.runs)
                    print(f"{backend:<11} {output_format:<6} {f['report_s']:>8.2f} "
                          f"{f['import_s']:>8.2f} {f['wall_s']:>7.2f} {f['peak_rss_mb']:>11.0f} "
                          f"{f['output_kb']:>9.0f}")
        finally:
            if pg_name and args.postgres_url:
                drop_postgres(args.postgres_url, pg_name)
        if args.keep:
            print(f"kept in {folder}")


if __name__ == "__main__":
    main()
