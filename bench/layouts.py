"""The service and the floor under several gunicorn layouts, one table.

    .venv/bin/python bench/layouts.py --layouts gevent:2,gevent:3,gthread:2x4,gthread:4x2
        [--duration 4]

A layout is `worker_class:workers`, with `xTHREADS` for gthread (default 4 threads). For each
layout the service and the floor (bench/floor_app.py) are started under it, then: the typical
order-sign ("full" prefetch, ~100 resources) at 8 connections on both, and the partial-prefetch
order-sign (only the patient key in the prefetch, the rest from a loopback FHIR server that
answers after 20 ms) at 8 and 32 connections on the service: req/s, p50, p99 and CPU-ms per
request (bench/bench.py's accounting, see its docstring). `sync` layouts are skipped: the
service's server.worker_class accepts gevent or gthread only (cds_service/config.py).
Prints figures; asserts nothing; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import requests

import bench

SERVICE_CLASSES = ("gevent", "gthread")  # cds_service/config.py WORKER_CLASSES
RUNS = (("full", 8), ("partial", 8), ("partial", 32))


def parse_layout(text: str, threads: int = 4) -> bench.Layout:
    """`gevent:3`, `gthread:2x4` (2 workers of 4 threads), `gthread:2` (default threads),
    `sync:4`."""
    worker_class, sep, rest = text.strip().partition(":")
    if not sep or not worker_class:
        raise ValueError(f"layout {text!r}: expected worker_class:workers[xthreads]")
    workers, _, thread_text = rest.partition("x")
    if thread_text and worker_class != "gthread":
        raise ValueError(f"layout {text!r}: threads are for gthread only")
    try:
        layout = bench.Layout(worker_class, int(workers), int(thread_text or threads))
    except ValueError:
        raise ValueError(f"layout {text!r}: workers and threads must be numbers") from None
    if layout.workers < 1 or layout.threads < 1:
        raise ValueError(f"layout {text!r}: workers and threads must be at least 1")
    return layout


def run_layout(python: str, work: Path, fixture: bench.Fixture, layout: bench.Layout,
               duration: int) -> list[dict]:
    service = bench.start_service(python, work, layout, fixture.stub)
    floor = bench.start_floor(python, work, layout)
    rows = []
    try:
        bench.wait_servers(service, floor)
        session = requests.Session()
        for scenario in ("full", "partial"):
            bench.check(
                session, service.url("order-sign"), fixture.bodies[("order-sign", scenario)]
            )
        floor_full = bench.measure(
            floor, floor.url("order-sign"), fixture.bodies[("order-sign", "full")], 8, duration
        )
        for scenario, c in RUNS:
            run = bench.measure(
                service, service.url("order-sign"), fixture.bodies[("order-sign", scenario)], c,
                duration,
            )
            run.update(layout=str(layout), scenario=scenario)
            if scenario == "full":
                run.update(
                    floor_rps=floor_full["rps"],
                    floor_p99_ms=floor_full["p99_ms"],
                    floor_cpu_ms_per_request=floor_full["cpu_ms_per_request"],
                    floor_fraction=bench.ratio(run["rps"], floor_full["rps"]),
                )
            rows.append(run)
            print(
                f"  {layout!s:12} {scenario:7} c={c:<3} {run['rps']:8.1f} req/s  "
                f"p50 {run['p50_ms']:7.2f}  p99 {run['p99_ms']:8.2f} ms  CPU "
                f"{bench.cpu_cell(run)} ms/req"
                + (f"  (floor {floor_full['rps']:.1f} req/s)" if scenario == "full" else ""),
                flush=True,
            )
    finally:
        service.stop()
        floor.stop()
    return rows


def table(rows: list[dict]) -> list[str]:
    widths = [12, 8, 4, 8, 7, 8, 7, 9, 7, 7]
    lines = [bench.fmt_row(["layout", "request", "conc", "req/s", "p50", "p99", "CPU ms",
                            "floor r/s", "fl CPU", "of floor"], widths)]
    for r in rows:
        lines.append(bench.fmt_row([
            r["layout"], r["scenario"], r["connections"], f"{r['rps']:.1f}",
            f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
            bench.cpu_cell(r),
            bench.show(r.get("floor_rps")),
            bench.show(r.get("floor_cpu_ms_per_request"), "{:.2f}"),
            bench.show(r.get("floor_fraction"), "{:.2f}"),
        ], widths))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layouts", default="gevent:2,gevent:3,gevent:4,gthread:2x4,gthread:4x2",
                        help="comma-separated worker_class:workers[xthreads]")
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    parser.add_argument("--python", default=sys.executable, help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        layouts = [parse_layout(t) for t in args.layouts.split(",") if t.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    skipped = [lay for lay in layouts if lay.worker_class not in SERVICE_CLASSES]
    layouts = [lay for lay in layouts if lay.worker_class in SERVICE_CLASSES]
    for lay in skipped:
        print(f"skipped {lay}: the service's server.worker_class accepts "
              f"{' or '.join(SERVICE_CLASSES)} only (cds_service/config.py)")
    if not layouts:
        return 1
    if not shutil.which("wrk"):
        raise SystemExit("layouts: needs wrk (bench/run installs it)")
    work = Path(tempfile.mkdtemp(prefix="legcramp-layouts-"))
    print(f"legcramp-cds layouts: {os.cpu_count()} CPUs, wrk {args.duration} s per run, "
          f"loopback; work dir {work}")
    fixture = bench.prepare(work, hooks=("order-sign",), scenarios=("full", "partial"))
    rows: list[dict] = []
    try:
        for layout in layouts:
            rows += run_layout(args.python, work, fixture, layout, args.duration)
    finally:
        fixture.stub.stop()
    print()
    print("order-sign at c=8 (full prefetch, ~100 res) and partial prefetch (rest from a 20 ms "
          "FHIR server) at c=8 and 32; latency in ms; CPU-ms per request of the server's "
          "processes; floor: bare Flask, same layout, same full body")
    for line in table(rows):
        print(line)
    for lay in skipped:
        print(f"  {lay}: skipped (the service does not accept worker_class {lay.worker_class!r})")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
