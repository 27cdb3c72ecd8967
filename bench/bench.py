"""legcramp-cds benchmark: throughput, latency, CPU, scaling and memory of `legcramp-cds serve`,
each beside the floor (bench/floor_app.py: bare Flask that parses the body) served the same way.

Run through bench/run (see README "Benchmark"). Not part of pytest: it asserts nothing, it
prints figures beside their targets and the previous run's, and writes
bench/results/<timestamp>.json. bench/layouts.py imports its functions.

CPU-ms per request comes from the servers' own accounting: utime+stime (/proc/<pid>/stat, in
clock ticks) of the gunicorn master and its live workers, plus the master's cutime+cstime (the
workers it has reaped, so a worker replaced in a window still counts), sampled before a wrk
run and after the drain that follows it, divided by the requests handled in that window (wrk's
completed requests + the drain's). Approximation: the requests in flight when wrk stops (at
most one per connection) are worked by the server but counted by nobody, so the figure is
overstated by at most connections / requests (kept per run as `cpu_inflight_bound`; 32 of
2,000 requests: 1.6%). A clock tick is 10 ms per process per sample, so the sequential scaling
windows run for at least SCALING_MIN_SECONDS of requests.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

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
FLOOR_SCENARIOS = ("full", "long")  # the floor runs the order-sign bodies of these
FULL_OBS, LONG_OBS = 84, 3000  # 84 Observations + Conditions, MedicationRequests, Patient ~ 100
SCALING_SIZES = (10, 100, 1000, 10000)
# Sequential requests per size go on until this much wall time has passed (and --repeats have
# been made): ~1 s of CPU is ~100 clock ticks, against a tick's rounding per process.
SCALING_MIN_SECONDS = 1.0
FHIR_DELAY = 0.020
# A 10,000-Observation prefetch is ~10 MB of JSON, over the default 5 MB body limit.
BENCH_MAX_BODY = 32 * 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
RESULT_NAME = re.compile(r"^\d{8}T\d{6}Z\.json$")
INFLIGHT_FLAG = 0.05  # a run's CPU-ms/request is marked * when connections / requests is above
JSON_HEADERS = {"Content-Type": "application/json"}


# --- layouts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How gunicorn serves the service and the floor alike."""

    worker_class: str = "gevent"
    workers: int = 2
    threads: int = 4  # only gthread uses it

    def __str__(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread:{self.workers}x{self.threads}"
        return f"{self.worker_class}:{self.workers}"

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"{self.workers} {self.worker_class} workers{threads}"


# --- pure helpers (tests/test_bench_report.py) ---------------------------------------------------


def parse_proc_stat(text: str) -> tuple[int, int, int, int]:
    """(utime, stime, cutime, cstime), in clock ticks, of one /proc/<pid>/stat line. The command
    name (field 2) is in parentheses and may hold spaces and parentheses itself, so the fields
    are counted after the last ')': field 3 (state) is the first, utime..cstime are 14..17."""
    rest = text[text.rindex(")") + 1 :].split()
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return utime, stime, cutime, cstime


def cpu_ms_per_request(
    ticks_before: int, ticks_after: int, handled: int, clk_tck: int = CLK_TCK
) -> float | None:
    """CPU milliseconds per request of a window: None when no request was handled."""
    if ticks_after < ticks_before:
        raise ValueError(f"CPU ticks went backwards: {ticks_before} -> {ticks_after}")
    if handled <= 0:
        return None
    return (ticks_after - ticks_before) * 1000 / clk_tck / handled


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def add_growth(rows: list[dict], value_key: str, out_key: str) -> None:
    """The log-log slope of `value_key` against resources between each row and the one before."""
    for a, b in itertools.pairwise(rows):
        if a.get(value_key) and b.get(value_key) and b["resources"] != a["resources"]:
            b[out_key] = math.log(b[value_key] / a[value_key]) / math.log(
                b["resources"] / a["resources"]
            )


def show(value: float | None, form: str = "{:.1f}") -> str:
    return "-" if value is None else form.format(value)


def _find(items: Iterable[dict] | None, **match: Any) -> dict:
    return next(
        (r for r in items or () if all(r.get(k) == v for k, v in match.items())), {}
    )


def key_figures(result: dict) -> dict[str, float | None]:
    """The figures the comparison with the previous run shows, from a results JSON; an older
    JSON without CPU figures or a floor scaling table gives None for those."""
    run = _find(result.get("runs"), hook="order-sign", scenario="full", connections=8)
    floor = _find(result.get("floor"), scenario="full", connections=8)
    big = _find(result.get("scaling"), observations=10000)
    floor_big = _find(result.get("floor_scaling"), observations=10000)
    rss = (result.get("rss_mb") or {}).get("service_workers") or []
    return {
        "rps": run.get("rps"),
        "rps_of_floor": ratio(run.get("rps"), floor.get("rps")),
        "p99_ms": run.get("p99_ms"),
        "p99_x_floor": ratio(run.get("p99_ms"), floor.get("p99_ms")),
        "cpu_ms": run.get("cpu_ms_per_request"),
        "cpu_x_floor": ratio(run.get("cpu_ms_per_request"), floor.get("cpu_ms_per_request")),
        "cpu_10k_ms": big.get("cpu_ms_per_request"),
        "cpu_10k_x_floor": ratio(big.get("cpu_ms_per_request"),
                                 floor_big.get("cpu_ms_per_request")),
        "median_10k_ms": big.get("median_ms"),
        "rss_peak_mb": max((v for v in rss if v), default=None),
    }


KEY_FIGURES = (
    ("rps", "order-sign full c=8 req/s", "{:.1f}"),
    ("rps_of_floor", "  req/s / floor's", "{:.2f}"),
    ("p99_ms", "order-sign full c=8 p99 ms", "{:.1f}"),
    ("p99_x_floor", "  p99 / floor's", "{:.2f}"),
    ("cpu_ms", "order-sign full c=8 CPU-ms/req", "{:.2f}"),
    ("cpu_x_floor", "  CPU / floor's", "{:.2f}"),
    ("cpu_10k_ms", "10,000 Obs. CPU-ms/req", "{:.1f}"),
    ("cpu_10k_x_floor", "  CPU / floor's", "{:.2f}"),
    ("median_10k_ms", "10,000 Obs. median ms", "{:.1f}"),
    ("rss_peak_mb", "peak RSS per service worker MB", "{:.1f}"),
)


def previous_result(out_dir: Path, before: str | None = None) -> tuple[Path, dict] | None:
    """The newest readable results JSON in out_dir (named <timestamp>.json) whose name sorts
    before `before` (all of them when None); None when there is none."""
    if not out_dir.is_dir():
        return None
    names = sorted(
        p for p in out_dir.iterdir()
        if RESULT_NAME.match(p.name) and (before is None or p.name < before)
    )
    for path in reversed(names):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return path, data
    return None


def comparison_lines(previous: dict, today: dict) -> list[str]:
    """ "previous -> today" for the key figures of two results JSONs (either may be old)."""
    before, now = key_figures(previous), key_figures(today)

    def who(result: dict) -> str:
        commit = (result.get("commit") or "")[:7] or "?"
        started = (result.get("started") or "?")[:16].replace("T", " ")
        settings = result.get("settings") or {}
        layout = Layout(settings.get("worker_class", "?"), settings.get("workers", "?"),
                        settings.get("threads", "?"))
        return f"commit {commit}, {started} UTC, {layout}, wrk {settings.get('duration_s', '?')} s"

    lines = [f"Previous run ({who(previous)}) -> today ({who(today)})"]
    for key, label, form in KEY_FIGURES:
        a, b = before[key], now[key]
        change = f"  ({(b / a - 1):+.0%})" if a and b is not None else ""
        lines.append(f"  {label:32} {show(a, form):>9} -> {show(b, form):<9}{change}")
    return lines


@dataclass
class Target:
    name: str
    limit: str
    value: float | None
    ok: Callable[[float], bool] = field(repr=False)
    form: str = "{:.2f}"

    @property
    def verdict(self) -> str:
        return "n/a" if self.value is None else ("PASS" if self.ok(self.value) else "MISS")


def targets(result: dict) -> list[Target]:
    """The issue's targets, from a results JSON of this format."""
    figs = key_figures(result)
    runs = result.get("runs") or []
    partial = [
        r["p50_ms"] for r in runs if r.get("scenario") == "partial" and r.get("connections") == 8
    ]
    growth = _find(result.get("scaling"), observations=10000).get("growth_exponent")
    return [
        Target("order-sign full (~100 res) at c=8: throughput / floor's", ">= 0.33",
               figs["rps_of_floor"], lambda v: v >= 0.33),
        Target("order-sign full (~100 res) at c=8: p99 / floor's p99", "<= 2.5x",
               figs["p99_x_floor"], lambda v: v <= 2.5),
        Target("10,000 Observations: CPU-ms per request / floor's", "<= 0.8x",
               figs["cpu_10k_x_floor"], lambda v: v <= 0.8),
        Target("growth 1,000 -> 10,000 Observations (log-log slope, median)",
               "<= 1.10 (linear)", growth, lambda v: v <= 1.10),
        Target("peak RSS per service worker (VmHWM) after the 10,000-Obs. body", "<= 170 MB",
               figs["rss_peak_mb"], lambda v: v <= 170, "{:.1f} MB"),
        Target("missing keys from a 20 ms FHIR server: worst p50 at c=8 over hooks", "< 60 ms",
               max(partial, default=None), lambda v: v < 60, "{:.2f} ms"),
    ]


# --- processes -----------------------------------------------------------------------------------


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
    """The child processes of pid (of any of its threads)."""
    kids: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return kids
    for task in tasks:
        with contextlib.suppress(OSError):
            kids += [int(p) for p in (task / "children").read_text().split()]
    return kids


def tree_cpu_ticks(pid: int) -> int:
    """CPU of a gunicorn master and its workers so far, in clock ticks: utime+stime of the
    master and its live children, plus the master's cutime+cstime (children it has reaped)."""
    utime, stime, cutime, cstime = parse_proc_stat(Path(f"/proc/{pid}/stat").read_text())
    total = utime + stime + cutime + cstime
    for child in children(pid):
        try:
            u, s, _, _ = parse_proc_stat(Path(f"/proc/{child}/stat").read_text())
        except (OSError, ValueError):
            continue  # exited between the listing and the reading
        total += u + s
    return total


def vm_hwm_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def workers_hwm_mb(pid: int) -> dict[int, float | None]:
    return {child: vm_hwm_mb(child) for child in children(pid)}


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    base: str
    log: IO[str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, hook: str) -> str:
        if self.name == "floor":
            return f"{self.base}/cds-services/x"
        return f"{self.base}/cds-services/{SERVICE_IDS[hook]}"

    def stop(self) -> None:
        stop(self.proc)
        self.log.close()


def serve_command(python: str) -> list[str]:
    bindir = Path(python).parent
    if (bindir / "legcramp-cds").exists():
        return [str(bindir / "legcramp-cds")]
    return [python, "-m", "cds_service.cli"]


def start_service(python: str, work: Path, layout: Layout, stub: FhirStub) -> Server:
    """`legcramp-cds serve`, as the Dockerfile starts it, under `layout` (not waited for)."""
    port, tag = free_port(), str(layout).replace(":", "-")
    config = work / f"bench-{tag}.toml"
    config.write_text(
        "[server]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f"workers = {layout.workers}\nthreads = {layout.threads}\n"
        f'worker_class = "{layout.worker_class}"\n'
        f"max_body_bytes = {BENCH_MAX_BODY}\n"
        "[auth]\nrequired = false\n"
        f'[store]\nurl = "sqlite:///{work}/bench-{tag}.sqlite3"\n'
        "[fhir]\n"
        f'allowed_servers = ["http://127.0.0.1:{stub.port}/*"]\n'
    )
    log = open(work / f"service-{tag}.log", "w")  # noqa: SIM115 (open for the server's lifetime)
    proc = subprocess.Popen(
        [*serve_command(python), "serve", "--config", str(config)],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Server("service", proc, f"http://127.0.0.1:{port}", log)


# The service's gevent workers let every other waiting connection go first before each request
# (cds_service/cli.py `_take_turns`); without it, a keep-alive client whose next request is
# already in the socket is served again and again, and the floor's p99 at c=8 is 240-350 ms
# against 40-60 ms with it (p50 under 1 ms either way): a floor served unlike the service.
# Its three lines are written out, not imported from the CLI, so the floor loads nothing of the
# service (its memory is measured beside the service's).
FLOOR_GEVENT_CONFIG = """\
def pre_request(worker, req):
    import gevent

    gevent.sleep(0)
"""


def start_floor(python: str, work: Path, layout: Layout) -> Server:
    """bench/floor_app.py under gunicorn with the same layout, and under gevent the service's
    take-turns pre_request hook (not waited for)."""
    port, tag = free_port(), str(layout).replace(":", "-")
    extra: list[str] = []
    if layout.worker_class == "gevent":
        conf = work / "floor-gunicorn.conf.py"
        conf.write_text(FLOOR_GEVENT_CONFIG)
        extra = ["--config", str(conf)]
    log = open(work / f"floor-{tag}.log", "w")  # noqa: SIM115 (open for the server's lifetime)
    proc = subprocess.Popen(
        [
            python, "-m", "gunicorn",
            *extra,
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(layout.workers),
            "--threads", str(layout.threads),
            "--worker-class", layout.worker_class,
            "--timeout", "30",
            "--chdir", str(HERE),
            "floor_app:app",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Server("floor", proc, f"http://127.0.0.1:{port}", log)


def wait_servers(service: Server, floor: Server) -> None:
    wait_up(f"{service.base}/health", service.proc)
    wait_up(f"{floor.base}/", floor.proc)


# --- requests ------------------------------------------------------------------------------------


@dataclass
class Fixture:
    """The loopback FHIR server and the request bodies written to `work`."""

    stub: FhirStub
    keys: dict[str, list[str]]
    bodies: dict[tuple[str, str], Path]
    sizes: dict[tuple[str, str], dict]


def prepare(work: Path, hooks: Iterable[str] = HOOKS,
            scenarios: Iterable[str] = tuple(SCENARIOS)) -> Fixture:
    """Start the FHIR stub (answers every key of every hook after FHIR_DELAY) and write the
    bodies of `hooks` x `scenarios`."""
    from cds_service.pipeline.prefetch import fill_template
    from hooks import build_services

    full = records.record(FULL_OBS)
    services = {s.hook: s for s in build_services()}
    keys = {h: [r.key for r in services[h].requirements] for h in HOOKS}
    context = {"patientId": records.PATIENT_ID}
    all_reqs = {r.key: r for h in HOOKS for r in services[h].requirements}
    stub_table = {fill_template(r.template, context): full[k] for k, r in all_reqs.items()}
    stub = FhirStub("/fhir", stub_table, FHIR_DELAY).start()
    scenarios = tuple(scenarios)
    long = records.record(LONG_OBS) if "long" in scenarios else None
    bodies: dict[tuple[str, str], Path] = {}
    sizes: dict[tuple[str, str], dict] = {}
    for hook in hooks:
        for scenario in scenarios:
            if scenario == "full":
                payload = records.hook_request(hook, full, keys[hook])
            elif scenario == "partial":
                payload = records.hook_request(hook, full, ["patient"], stub.base_url)
            else:
                payload = records.hook_request(hook, long, keys[hook])
            path = write_body(work, f"{hook}-{scenario}", payload)
            bodies[(hook, scenario)] = path
            sizes[(hook, scenario)] = {
                "bytes": path.stat().st_size,
                "resources": records.count_resources(payload["prefetch"]),
            }
    return Fixture(stub, keys, bodies, sizes)


def write_body(directory: Path, name: str, payload: dict) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(payload, separators=(",", ":")))
    return path


def check(session: requests.Session, url: str, body_path: Path) -> dict:
    response = session.post(url, data=body_path.read_bytes(), headers=JSON_HEADERS, timeout=60)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:500]}")
    return response.json()


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


def drain(url: str, body_path: Path, cap: float = 90.0) -> int:
    """Wait until the server has worked off what wrk left queued (wrk stops sending at the end
    of a run, the server does not stop working): two quick sequential probes in a row, each
    under a second. Returns the number of probes the server answered."""
    data, end, quick, answered = body_path.read_bytes(), time.monotonic() + cap, 0, 0
    while time.monotonic() < end and quick < 2:
        t0 = time.perf_counter()
        with contextlib.suppress(requests.RequestException):
            requests.post(url, data=data, headers=JSON_HEADERS, timeout=cap)
            answered += 1
        quick = quick + 1 if time.perf_counter() - t0 < 1.0 else 0
    return answered


def measure(server: Server, url: str, body_path: Path, connections: int, duration: int) -> dict:
    """One wrk run and its drain, with the server's CPU over both."""
    before = tree_cpu_ticks(server.pid)
    run = wrk(url, body_path, connections, duration)
    # with the run's own body: a large one queues where the run's requests queued (small
    # requests pass the large-request gate at once)
    drained = drain(url, body_path)
    after = tree_cpu_ticks(server.pid)
    handled = run["requests"] + drained
    run.update(
        drain_requests=drained,
        cpu_ms=(after - before) * 1000 / CLK_TCK,
        cpu_ms_per_request=cpu_ms_per_request(before, after, handled),
        cpu_inflight_bound=ratio(connections, handled),
    )
    return run


def sequential(
    session: requests.Session,
    server: Server,
    url: str,
    data: bytes,
    repeats: int,
    warmup: int = 2,
    min_seconds: float = SCALING_MIN_SECONDS,
    cap: int = 5000,
) -> dict:
    """Sequential requests after `warmup` untimed ones: at least `repeats`, and more until
    `min_seconds` have passed; median etc. of their times, and the server's CPU over them."""

    def post() -> None:
        response = session.post(url, data=data, headers=JSON_HEADERS, timeout=120)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")

    for _ in range(warmup):
        post()
    times: list[float] = []
    before = tree_cpu_ticks(server.pid)
    start = time.perf_counter()
    while len(times) < repeats or (
        time.perf_counter() - start < min_seconds and len(times) < cap
    ):
        t0 = time.perf_counter()
        post()
        times.append((time.perf_counter() - t0) * 1000)
    after = tree_cpu_ticks(server.pid)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "n": len(times),
        "cpu_ms_per_request": cpu_ms_per_request(before, after, len(times)),
    }


def cpu_cell(run: dict) -> str:
    """A run's CPU-ms per request, with * when the uncounted in-flight requests could
    overstate it by more than INFLIGHT_FLAG."""
    flag = "*" if (run.get("cpu_inflight_bound") or 0) > INFLIGHT_FLAG else ""
    return show(run.get("cpu_ms_per_request"), "{:.2f}") + flag


def fmt_row(cells: list, widths: list[int], left: int = 2) -> str:
    return "  ".join(
        str(c).ljust(w) if i < left else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=False))
    )


# --- the bench -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
        help="sequential requests per size in the scaling table, at least (default 15; a third "
        f"at 10,000 Observations; more until {SCALING_MIN_SECONDS:.0f} s has passed)",
    )
    parser.add_argument("--python", default=sys.executable, help=argparse.SUPPRESS)
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    layout = Layout(args.worker_class, args.workers, args.threads)
    started = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="legcramp-bench-"))
    servers: list[Server] = []
    fixture = None
    try:
        fixture = prepare(work)
        stub, bodies, sizes = fixture.stub, fixture.bodies, fixture.sizes
        service = start_service(args.python, work, layout, stub)
        servers.append(service)
        floor = start_floor(args.python, work, layout)
        servers.append(floor)
        wait_servers(service, floor)
        session = requests.Session()
        print(
            f"legcramp-cds bench: {layout.describe()}, {os.cpu_count()} CPUs, wrk "
            f"{args.duration} s per run, loopback; work dir {work}"
        )
        for (hook, scenario), path in bodies.items():
            answer = check(session, service.url(hook), path)
            sizes[(hook, scenario)]["cards"] = len(answer.get("cards", []))
        stub_calls_before = stub.calls

        # --- throughput, latency and CPU ----------------------------------------------------
        results: list[dict] = []
        floor_runs: dict[tuple[str, int], dict] = {}
        for scenario in FLOOR_SCENARIOS:
            path = bodies[("order-sign", scenario)]
            for c in concurrency:
                f = floor_runs[(scenario, c)] = measure(
                    floor, floor.url("order-sign"), path, c, args.duration
                )
                print(
                    f"  {'floor':12} {scenario:7} c={c:<3} {f['rps']:8.1f} req/s  "
                    f"p50 {f['p50_ms']:7.2f}  p99 {f['p99_ms']:8.2f} ms  "
                    f"CPU {cpu_cell(f)} ms/req",
                    flush=True,
                )
        for hook in HOOKS:
            for scenario in SCENARIOS:
                for c in concurrency:
                    run = measure(
                        service, service.url(hook), bodies[(hook, scenario)], c, args.duration
                    )
                    f = floor_runs.get((scenario, c), {})
                    run.update(
                        hook=hook,
                        scenario=scenario,
                        **sizes[(hook, scenario)],
                        floor_rps=f.get("rps"),
                        floor_fraction=ratio(run["rps"], f.get("rps")),
                        floor_p99_ratio=ratio(run["p99_ms"], f.get("p99_ms")),
                        floor_cpu_ratio=ratio(
                            run["cpu_ms_per_request"], f.get("cpu_ms_per_request")
                        ),
                    )
                    results.append(run)
                    print(
                        f"  {hook:12} {scenario:7} c={c:<3} {run['rps']:8.1f} req/s  "
                        f"p50 {run['p50_ms']:7.2f}  p99 {run['p99_ms']:8.2f} ms  "
                        f"CPU {cpu_cell(run)} ms/req"
                        f"{'  ERRORS ' + str(run['errors']) if run['errors'] else ''}",
                        flush=True,
                    )

        # Peak so far: typical and long-history requests (up to 3,000 Observations, ~3 MB).
        rss_hooks = workers_hwm_mb(service.pid)

        # --- scaling: sequential service time and CPU against record size -------------------
        scaling, floor_scaling = [], []
        for n in SCALING_SIZES:
            prefetch = records.record(n)
            payload = records.hook_request("order-sign", prefetch, fixture.keys["order-sign"])
            data = json.dumps(payload, separators=(",", ":")).encode()
            repeats = max(5, args.repeats if n < 10000 else args.repeats // 3)
            shape = {
                "observations": n,
                "resources": records.count_resources(prefetch),
                "bytes": len(data),
            }
            for server, rows in ((service, scaling), (floor, floor_scaling)):
                row = {**shape, **sequential(session, server, server.url("order-sign"), data,
                                             repeats, warmup=layout.workers)}
                row["ms_per_1000_resources"] = row["median_ms"] / row["resources"] * 1000
                rows.append(row)
            scaling[-1]["floor_cpu_ratio"] = ratio(
                scaling[-1]["cpu_ms_per_request"], floor_scaling[-1]["cpu_ms_per_request"]
            )
            scaling[-1]["floor_median_ratio"] = ratio(
                scaling[-1]["median_ms"], floor_scaling[-1]["median_ms"]
            )
            print(
                f"  scaling {n:>6} Obs.: service {scaling[-1]['median_ms']:.1f} ms "
                f"(CPU {show(scaling[-1]['cpu_ms_per_request'])}), floor "
                f"{floor_scaling[-1]['median_ms']:.1f} ms "
                f"(CPU {show(floor_scaling[-1]['cpu_ms_per_request'])})",
                flush=True,
            )
        for rows in (scaling, floor_scaling):
            add_growth(rows, "median_ms", "growth_exponent")
            add_growth(rows, "cpu_ms_per_request", "cpu_growth_exponent")

        # --- memory, after the 10,000-Observation body --------------------------------------
        rss = workers_hwm_mb(service.pid)
        floor_rss = workers_hwm_mb(floor.pid)
        stub_calls = stub.calls - stub_calls_before
        stub_misses = len(stub.misses)
    finally:
        for server in reversed(servers):
            server.stop()
        if fixture is not None:
            fixture.stub.stop()

    out_dir = HERE / "results"
    out_name = f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    result = {
        "started": started.isoformat(),
        "commit": commit,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "clk_tck": CLK_TCK,
        "settings": {
            "workers": args.workers,
            "threads": args.threads,
            "worker_class": args.worker_class,
            "duration_s": args.duration,
            "concurrency": concurrency,
            "fhir_delay_s": FHIR_DELAY,
            "max_body_bytes": BENCH_MAX_BODY,
            "scaling_min_seconds": SCALING_MIN_SECONDS,
        },
        "runs": results,
        "floor": [{"scenario": s, **f} for (s, _), f in floor_runs.items()],
        "scaling": scaling,
        "floor_scaling": floor_scaling,
        "rss_mb": {
            "service_workers_after_hook_runs": list(rss_hooks.values()),
            "service_workers": list(rss.values()),
            "floor_workers": list(floor_rss.values()),
        },
        "stub": {"calls": stub_calls, "misses": stub_misses},
    }
    result["key_figures"] = key_figures(result)
    verdicts = targets(result)
    result["targets"] = [
        {"target": t.name, "limit": t.limit, "value": t.value, "verdict": t.verdict}
        for t in verdicts
    ]
    previous = previous_result(out_dir, before=out_name)
    if previous:
        result["previous"] = {"file": previous[0].name, "commit": previous[1].get("commit")}

    report(result, sizes, rss_hooks, verdicts, previous)

    out_dir.mkdir(exist_ok=True)
    out = out_dir / out_name
    out.write_text(json.dumps(result, indent=2))
    print(f"\nResults: {out.relative_to(ROOT)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    result: dict,
    sizes: dict[tuple[str, str], dict],
    rss_hooks: dict[int, float | None],
    verdicts: list[Target],
    previous: tuple[Path, dict] | None,
) -> None:
    results, floor_runs = result["runs"], result["floor"]
    print()
    print("Throughput, latency and CPU (wrk, POST, loopback; latency in ms; CPU-ms per request "
          "of the server's processes; x floor: the floor's run of the same scenario and "
          "concurrency, order-sign body)")
    widths = [12, 30, 4, 8, 7, 7, 8, 6, 5, 7, 7, 7, 7]
    print(fmt_row(["hook", "request", "conc", "req/s", "p50", "p95", "p99", "errors", "cards",
                   "CPU ms", "rps/fl", "p99/fl", "CPU/fl"], widths))
    for r in results:
        label = f"{r['scenario']} [{r['resources']} res, {r['bytes'] // 1024} KiB]"
        print(fmt_row([
            r["hook"], label, r["connections"], f"{r['rps']:.1f}", f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}", f"{r['p99_ms']:.2f}", r["errors"], r["cards"],
            cpu_cell(r), show(r["floor_fraction"], "{:.2f}"),
            show(r["floor_p99_ratio"], "{:.2f}"), show(r["floor_cpu_ratio"], "{:.2f}"),
        ], widths))
    print("  " + "; ".join(f"{k}: {v}" for k, v in SCENARIOS.items()))
    print()
    print("Floor: bare Flask, gunicorn, same worker class/workers/threads (and under gevent the "
          "service's take-turns hook), parses the body, no cards")
    for f in floor_runs:
        print(
            f"  order-sign body {f['scenario']:5} c={f['connections']:<3} {f['rps']:8.1f} req/s"
            f"  p50 {f['p50_ms']:.2f}  p99 {f['p99_ms']:.2f} ms"
            f"  CPU {cpu_cell(f)} ms/req"
        )
    print(
        f"  FHIR stub calls during the runs: {result['stub']['calls']} (partial prefetch), "
        f"misses: {result['stub']['misses']}"
    )
    print()
    print("order-sign against the floor, same body (service / floor)")
    for scenario in FLOOR_SCENARIOS:
        for r in results:
            if r["hook"] == "order-sign" and r["scenario"] == scenario:
                print(
                    f"  {scenario:5} c={r['connections']:<3} throughput "
                    f"{show(r['floor_fraction'], '{:.2f}'):>5}  p99 "
                    f"{show(r['floor_p99_ratio'], '{:.2f}'):>6}  CPU-ms/req "
                    f"{show(r['floor_cpu_ratio'], '{:.2f}'):>5}"
                )
    print(
        "  (CPU-ms/request counts wrk's and the drain's requests, not the <= 1 per connection "
        "in flight when wrk stops, which the server works too; * : overstated by up to more "
        f"than {INFLIGHT_FLAG:.0%}, i.e. connections / requests; longer --duration shrinks it)"
    )
    print()
    print("Scaling: order-sign, full prefetch, sequential requests (median ms; CPU-ms per "
          "request; growth: log-log slope against the size before)")
    widths = [7, 6, 6, 8, 7, 6, 6, 8, 7, 6, 6, 6, 9]
    print(fmt_row(["Obs.", "res", "KiB", "svc ms", "svc CPU", "grow", "gr CPU", "floor ms",
                   "fl CPU", "grow", "gr CPU", "CPU/fl", "n svc/fl"], widths, left=0))
    for s, f in zip(result["scaling"], result["floor_scaling"], strict=True):
        print(fmt_row([
            s["observations"], s["resources"], s["bytes"] // 1024, f"{s['median_ms']:.1f}",
            show(s["cpu_ms_per_request"], "{:.2f}"), show(s.get("growth_exponent"), "{:.2f}"),
            show(s.get("cpu_growth_exponent"), "{:.2f}"), f"{f['median_ms']:.1f}",
            show(f["cpu_ms_per_request"], "{:.2f}"), show(f.get("growth_exponent"), "{:.2f}"),
            show(f.get("cpu_growth_exponent"), "{:.2f}"), show(s["floor_cpu_ratio"], "{:.2f}"),
            f"{s['n']}/{f['n']}",
        ], widths, left=0))
    print()
    rss = result["rss_mb"]

    def mbs(values: Iterable[float | None]) -> str:
        return ", ".join(f"{v:.1f}" for v in values if v) or "-"

    print(f"Peak RSS (VmHWM) per worker, MB, after the hook runs (bodies up to ~3 MB): service "
          f"{mbs(rss_hooks.values())}")
    print(f"Peak RSS (VmHWM) per worker, MB, after the 10,000-Observation body (~10 MB): service "
          f"{mbs(rss['service_workers'])} | floor {mbs(rss['floor_workers'])}")
    print()
    print("Targets")
    for t in verdicts:
        print(f"  {t.verdict:4}  {t.name:66} {show(t.value, t.form):>10}  (target {t.limit})")
    print()
    if previous:
        for line in comparison_lines(previous[1], result):
            print(line)
        print(f"  (previous: bench/results/{previous[0].name})")
    else:
        print("Previous run: none in bench/results/")


if __name__ == "__main__":
    sys.exit(main())
