"""legcramp-cds benchmark: throughput, latency, scaling and memory of `legcramp-cds serve`.

Run through bench/run (see README "Benchmark"). Not part of pytest: it asserts nothing, it
prints figures beside their targets and writes bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import records  # noqa: E402
from fhir_stub import FhirStub  # noqa: E402

HOOKS = ("order-select", "order-sign", "patient-view")
SERVICE_IDS = {h: f"legcramp-{h}" for h in HOOKS}
SCENARIOS = {
    "full": "full prefetch (~100 resources)",
    "partial": "partial prefetch, rest from a 20 ms FHIR server",
    "long": "long history (3,000 Observations)",
}
FULL_OBS, LONG_OBS = 84, 3000  # 84 Observations + Conditions, MedicationRequests, Patient ~ 100
SCALING_SIZES = (10, 100, 1000, 10000)
FHIR_DELAY = 0.020
# A 10,000-Observation prefetch is ~10 MB of JSON, over the default 5 MB body limit.
BENCH_MAX_BODY = 32 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} (see its log)")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"server did not answer {url} within {timeout:.0f} s")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def vm_hwm_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(url: str, body_path: Path, connections: int, duration: int) -> dict:
    threads = 1 if connections == 1 else 2
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "post.lua"),
        url,
        "--",
        str(body_path),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    raw = json.loads(line[len("WRKJSON ") :])
    seconds = raw["duration_us"] / 1e6
    errors = raw["non2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "connections": connections,
        "requests": raw["requests"],
        "errors": errors,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def drain(url: str, body_path: Path, cap: float = 90.0) -> None:
    """Wait until the server has worked off what wrk left queued (wrk stops sending at the end
    of a run, the server does not stop working): two quick sequential probes in a row, each
    under a second."""
    data, end, quick = body_path.read_bytes(), time.monotonic() + cap, 0
    while time.monotonic() < end and quick < 2:
        t0 = time.perf_counter()
        with contextlib.suppress(requests.RequestException):
            requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=cap)
        quick = quick + 1 if time.perf_counter() - t0 < 1.0 else 0


def write_body(directory: Path, name: str, payload: dict) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(payload, separators=(",", ":")))
    return path


def check(session: requests.Session, url: str, body_path: Path) -> dict:
    response = session.post(
        url, data=body_path.read_bytes(), headers={"Content-Type": "application/json"}, timeout=60
    )
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def fmt_row(cells: list, widths: list[int]) -> str:
    return "  ".join(
        str(c).ljust(w) if i < 2 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=False))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="threads per worker (default 4, as the embedded defaults)",
    )
    parser.add_argument(
        "--worker-class",
        choices=("gevent", "gthread"),
        default="gevent",
        help="gunicorn worker class for the service and the floor (default gevent, as the "
        "embedded defaults)",
    )
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    parser.add_argument("--concurrency", default="1,8,32", help="wrk connections (default 1,8,32)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=15,
        help="sequential requests per size in the scaling table (default 15)",
    )
    parser.add_argument("--python", default=sys.executable, help=argparse.SUPPRESS)
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    bindir = Path(args.python).parent
    serve_cmd = (
        [str(bindir / "legcramp-cds")]
        if (bindir / "legcramp-cds").exists()
        else [args.python, "-m", "cds_service.cli"]
    )
    started = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="legcramp-bench-"))
    procs: list[subprocess.Popen] = []
    stub = None
    try:
        # --- the loopback FHIR server (partial prefetch) -----------------------------------
        full = records.record(FULL_OBS)
        from cds_service.pipeline.prefetch import fill_template
        from hooks import build_services

        services = {s.hook: s for s in build_services()}
        keys = {h: [r.key for r in services[h].requirements] for h in HOOKS}
        context = {"patientId": records.PATIENT_ID}
        all_reqs = {r.key: r for h in HOOKS for r in services[h].requirements}
        stub_table = {
            fill_template(r.template, context): full[k]
            for k, r in all_reqs.items()
        }
        stub = FhirStub("/fhir", stub_table, FHIR_DELAY).start()

        # --- the service, as the Dockerfile starts it ---------------------------------------
        port, floor_port = free_port(), free_port()
        config = work / "bench.toml"
        config.write_text(
            "[server]\n"
            f'host = "127.0.0.1"\nport = {port}\n'
            f"workers = {args.workers}\nthreads = {args.threads}\n"
            f'worker_class = "{args.worker_class}"\n'
            f"max_body_bytes = {BENCH_MAX_BODY}\n"
            "[auth]\nrequired = false\n"
            f'[store]\nurl = "sqlite:///{work}/bench.sqlite3"\n'
            "[fhir]\n"
            f'allowed_servers = ["http://127.0.0.1:{stub.port}/*"]\n'
        )
        log = open(work / "service.log", "w")  # noqa: SIM115 (open for the server's lifetime)
        service = subprocess.Popen(
            [*serve_cmd, "serve", "--config", str(config)],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(service)
        floor_log = open(work / "floor.log", "w")  # noqa: SIM115 (open for the server's lifetime)
        floor = subprocess.Popen(
            [
                args.python,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{floor_port}",
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--worker-class",
                args.worker_class,
                "--timeout",
                "30",
                "--chdir",
                str(HERE),
                "floor_app:app",
            ],
            stdout=floor_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(floor)
        base = f"http://127.0.0.1:{port}"
        floor_base = f"http://127.0.0.1:{floor_port}"
        wait_up(f"{base}/health", service)
        wait_up(f"{floor_base}/", floor)

        # --- request bodies --------------------------------------------------------------
        long = records.record(LONG_OBS)
        bodies: dict[tuple[str, str], Path] = {}
        sizes: dict[tuple[str, str], dict] = {}
        for hook in HOOKS:
            variants = {
                "full": records.hook_request(hook, full, keys[hook]),
                "partial": records.hook_request(hook, full, ["patient"], stub.base_url),
                "long": records.hook_request(hook, long, keys[hook]),
            }
            for scenario, payload in variants.items():
                path = write_body(work, f"{hook}-{scenario}", payload)
                bodies[(hook, scenario)] = path
                sizes[(hook, scenario)] = {
                    "bytes": path.stat().st_size,
                    "resources": records.count_resources(payload["prefetch"]),
                }
        session = requests.Session()
        print(
            f"legcramp-cds bench: {args.workers} {args.worker_class} workers"
            f"{f' x {args.threads} threads' if args.worker_class == 'gthread' else ''}, "
            f"{os.cpu_count()} CPUs, wrk {args.duration} s per run, loopback; work dir {work}"
        )
        for (hook, scenario), path in bodies.items():
            answer = check(session, f"{base}/cds-services/{SERVICE_IDS[hook]}", path)
            sizes[(hook, scenario)]["cards"] = len(answer.get("cards", []))
        stub_calls_before = stub.calls

        # --- throughput and latency ------------------------------------------------------
        results: list[dict] = []
        floor_runs: dict[tuple[str, int], dict] = {}
        for scenario in ("full", "long"):
            path = bodies[("order-sign", scenario)]
            for c in concurrency:
                floor_runs[(scenario, c)] = wrk(
                    f"{floor_base}/cds-services/x", path, c, args.duration
                )
                drain(f"{floor_base}/cds-services/x", path)
        for hook in HOOKS:
            for scenario in SCENARIOS:
                for c in concurrency:
                    run = wrk(
                        f"{base}/cds-services/{SERVICE_IDS[hook]}",
                        bodies[(hook, scenario)],
                        c,
                        args.duration,
                    )
                    # with the run's own body: a large one queues where the run's requests
                    # queued (small requests pass the large-request gate at once)
                    drain(f"{base}/cds-services/{SERVICE_IDS[hook]}", bodies[(hook, scenario)])
                    floor_run = floor_runs.get((scenario, c))
                    run.update(
                        hook=hook,
                        scenario=scenario,
                        **sizes[(hook, scenario)],
                        floor_rps=floor_run["rps"] if floor_run else None,
                        floor_fraction=run["rps"] / floor_run["rps"] if floor_run else None,
                    )
                    results.append(run)
                    print(
                        f"  {hook:12} {scenario:7} c={c:<3} {run['rps']:8.1f} req/s  "
                        f"p50 {run['p50_ms']:7.2f}  p99 {run['p99_ms']:8.2f} ms"
                        f"{'  ERRORS ' + str(run['errors']) if run['errors'] else ''}",
                        flush=True,
                    )

        # Peak so far: typical and long-history requests (up to 3,000 Observations, ~3 MB).
        rss_hooks = {pid: vm_hwm_mb(pid) for pid in children(service.pid)}

        # --- scaling: sequential service time against record size ------------------------
        scaling = []
        for n in SCALING_SIZES:
            prefetch = records.record(n)
            payload = records.hook_request("order-sign", prefetch, keys["order-sign"])
            data = json.dumps(payload, separators=(",", ":")).encode()
            url = f"{base}/cds-services/{SERVICE_IDS['order-sign']}"
            repeats = max(5, args.repeats if n < 10000 else args.repeats // 3)
            times = []
            for i in range(repeats + 2):
                t0 = time.perf_counter()
                response = session.post(
                    url, data=data, headers={"Content-Type": "application/json"}, timeout=120
                )
                elapsed = (time.perf_counter() - t0) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"scaling n={n}: {response.status_code} {response.text[:300]}")
                if i >= 2:  # two warm-up requests (one per worker)
                    times.append(elapsed)
            med = statistics.median(times)
            scaling.append(
                {
                    "observations": n,
                    "resources": records.count_resources(prefetch),
                    "bytes": len(data),
                    "median_ms": med,
                    "min_ms": min(times),
                    "max_ms": max(times),
                    "n": len(times),
                    "ms_per_1000_resources": med / records.count_resources(prefetch) * 1000,
                }
            )
        for a, b in itertools.pairwise(scaling):
            b["growth_exponent"] = math.log(b["median_ms"] / a["median_ms"]) / math.log(
                b["resources"] / a["resources"]
            )

        # --- memory ------------------------------------------------------------------------
        workers = children(service.pid)
        rss = {pid: vm_hwm_mb(pid) for pid in workers}
        floor_rss = {pid: vm_hwm_mb(pid) for pid in children(floor.pid)}
        stub_calls = stub.calls - stub_calls_before
    finally:
        for proc in reversed(procs):
            stop(proc)
        if stub is not None:
            stub.stop()

    # --- report -------------------------------------------------------------------------------
    print()
    print("Throughput and latency (wrk, POST, loopback; latency in ms)")
    widths = [12, 50, 5, 9, 8, 8, 8, 7, 6, 10]
    print(
        fmt_row(
            [
                "hook",
                "request",
                "conc",
                "req/s",
                "p50",
                "p95",
                "p99",
                "errors",
                "cards",
                "of floor",
            ],
            widths,
        )
    )
    for r in results:
        label = f"{SCENARIOS[r['scenario']]} [{r['resources']} res, {r['bytes'] // 1024} KiB]"
        print(
            fmt_row(
                [
                    r["hook"],
                    label,
                    r["connections"],
                    f"{r['rps']:.1f}",
                    f"{r['p50_ms']:.2f}",
                    f"{r['p95_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    r["errors"],
                    r["cards"],
                    f"{r['floor_fraction']:.0%}" if r["floor_fraction"] else "-",
                ],
                widths,
            )
        )
    print()
    print("Floor: bare Flask, gunicorn, same worker class/workers/threads, parses the body, "
          "no cards")
    for (scenario, c), f in floor_runs.items():
        print(
            f"  order-sign body {scenario:5} c={c:<3} {f['rps']:8.1f} req/s  p50 {f['p50_ms']:.2f}"
            f"  p99 {f['p99_ms']:.2f} ms"
        )
    print(
        f"  FHIR stub calls during the runs: {stub_calls} (partial prefetch), misses: "
        f"{len(stub.misses)}"
    )
    print()
    print("Scaling: order-sign, full prefetch, sequential requests (median)")
    print(
        f"  {'Observations':>12} {'resources':>9} {'body KiB':>9} {'median ms':>10} "
        f"{'ms/1000 res':>12} {'growth exp':>10}"
    )
    for s in scaling:
        g = f"{s['growth_exponent']:.2f}" if "growth_exponent" in s else "-"
        print(
            f"  {s['observations']:>12} {s['resources']:>9} {s['bytes'] // 1024:>9} "
            f"{s['median_ms']:>10.1f} {s['ms_per_1000_resources']:>12.2f} {g:>10}"
        )
    print()
    print(
        "Peak RSS (VmHWM) per worker, MB, after the hook runs (bodies up to ~3 MB): service "
        + ", ".join(f"{pid}: {v:.1f}" for pid, v in rss_hooks.items() if v)
    )
    print(
        "Peak RSS (VmHWM) per worker, MB, after the scaling runs (a ~10 MB body): service "
        + ", ".join(f"{pid}: {v:.1f}" for pid, v in rss.items() if v)
        + " | floor "
        + ", ".join(f"{pid}: {v:.1f}" for pid, v in floor_rss.items() if v)
    )

    def pick(hook: str, scenario: str, c: int) -> dict | None:
        return next(
            (
                r
                for r in results
                if r["hook"] == hook and r["scenario"] == scenario and r["connections"] == c
            ),
            None,
        )

    sign8 = pick("order-sign", "full", 8) or {}
    partial = [pick(h, "partial", 8) for h in HOOKS]
    big = next((s for s in scaling if s["observations"] == 10000), None)
    growth = [
        s["growth_exponent"]
        for s in scaling
        if "growth_exponent" in s and s["observations"] >= 1000
    ]
    worst_rss = max((v for v in rss.values() if v), default=None)
    worst_rss_hooks = max((v for v in rss_hooks.values() if v), default=None)
    targets = [
        (
            "order-sign full prefetch (~100 res) p50 at c=8",
            "< 3 ms",
            sign8.get("p50_ms"),
            lambda v: v < 3,
            "{:.2f} ms",
        ),
        (
            "order-sign full prefetch (~100 res) p99 at c=8",
            "< 15 ms",
            sign8.get("p99_ms"),
            lambda v: v < 15,
            "{:.2f} ms",
        ),
        (
            "order-sign full prefetch throughput / floor at c=8",
            ">= 60%",
            sign8.get("floor_fraction"),
            lambda v: v >= 0.6,
            "{:.0%}",
        ),
        (
            "10,000 Observations, sequential median",
            "< 150 ms",
            big and big["median_ms"],
            lambda v: v < 150,
            "{:.1f} ms",
        ),
        (
            "growth 1,000 -> 10,000 Observations (log-log slope)",
            "<= 1.10 (linear)",
            max(growth) if growth else None,
            lambda v: v <= 1.10,
            "{:.2f}",
        ),
        (
            "peak RSS per worker (VmHWM) after the hook runs (bodies up to ~3 MB)",
            "< 150 MB",
            worst_rss_hooks,
            lambda v: v < 150,
            "{:.1f} MB",
        ),
        (
            "peak RSS per worker (VmHWM) after all runs (incl. a ~10 MB body)",
            "< 150 MB",
            worst_rss,
            lambda v: v < 150,
            "{:.1f} MB",
        ),
        (
            "missing keys from a 20 ms FHIR server: worst p50 at c=8 over hooks",
            "< 60 ms",
            max((p["p50_ms"] for p in partial if p), default=None),
            lambda v: v < 60,
            "{:.2f} ms",
        ),
        (
            "missing keys from a 20 ms FHIR server: worst p50 at c=1 over hooks",
            "< 60 ms",
            max((p["p50_ms"] for h in HOOKS if (p := pick(h, "partial", 1))), default=None),
            lambda v: v < 60,
            "{:.2f} ms",
        ),
    ]
    print()
    print("Targets")
    verdicts = []
    for name, target, value, ok, form in targets:
        verdict = "n/a" if value is None else ("PASS" if ok(value) else "MISS")
        shown = "-" if value is None else form.format(value)
        verdicts.append({"target": name, "limit": target, "value": value, "verdict": verdict})
        print(f"  {verdict:4}  {name:68} {shown:>10}  (target {target})")

    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    out.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "commit": commit,
                "host": platform.node(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "settings": {
                    "workers": args.workers,
                    "threads": args.threads,
                    "worker_class": args.worker_class,
                    "duration_s": args.duration,
                    "concurrency": concurrency,
                    "fhir_delay_s": FHIR_DELAY,
                    "max_body_bytes": BENCH_MAX_BODY,
                },
                "runs": results,
                "floor": [{"scenario": s, **f} for (s, _), f in floor_runs.items()],
                "scaling": scaling,
                "rss_mb": {
                    "service_workers_after_hook_runs": list(rss_hooks.values()),
                    "service_workers": list(rss.values()),
                    "floor_workers": list(floor_rss.values()),
                },
                "targets": verdicts,
            },
            indent=2,
        )
    )
    print(f"\nResults: {out.relative_to(ROOT)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
