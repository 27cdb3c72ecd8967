"""The bench's report arithmetic: /proc stat parsing, CPU per request, ratios, the previous
run's figures (including a results JSON from before the CPU figures), the targets and the
layouts' parsing. Pure functions only: no server, no wrk."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BENCH_DIR = ROOT / "bench"
sys.path.insert(0, str(BENCH_DIR))


def _load(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# "bench" is also the directory's name (a namespace package from ROOT): load the file itself.
bench = _load("bench", BENCH_DIR / "bench.py")
layouts = _load("bench_layouts", BENCH_DIR / "layouts.py")

# A real line's shape: pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17) ...
STAT = ("4242 ({comm}) S 1 4242 4242 0 -1 4194560 900 0 0 0 {u} {s} {cu} {cs} 20 0 5 0 "
        "896776 3133440 360 18446744073709551615 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")


def test_proc_stat_fields_are_counted_after_the_command_name():
    line = STAT.format(comm="gunicorn: worker [x] (2)", u=1234, s=56, cu=7, cs=8)
    assert bench.parse_proc_stat(line) == (1234, 56, 7, 8)


def test_proc_stat_of_this_process_is_read():
    utime, stime, cutime, cstime = bench.parse_proc_stat(
        (Path("/proc") / str(os.getpid()) / "stat").read_text()
    )
    assert utime + stime > 0  # the interpreter has used CPU to get here
    assert min(cutime, cstime) >= 0


def test_cpu_ms_per_request_from_ticks():
    # 250 ticks at 100 Hz = 2.5 s over 500 requests
    assert bench.cpu_ms_per_request(1000, 1250, 500, clk_tck=100) == pytest.approx(5.0)
    assert bench.cpu_ms_per_request(0, 10, 4, clk_tck=1000) == pytest.approx(2.5)
    assert bench.cpu_ms_per_request(5, 5, 0, clk_tck=100) is None
    with pytest.raises(ValueError):
        bench.cpu_ms_per_request(10, 9, 3, clk_tck=100)


def test_ratio():
    assert bench.ratio(3.0, 12.0) == pytest.approx(0.25)
    assert bench.ratio(None, 2.0) is None
    assert bench.ratio(2.0, None) is None
    assert bench.ratio(2.0, 0) is None


def test_growth_exponent_is_the_log_log_slope():
    rows = [{"resources": 100, "ms": 2.0}, {"resources": 1000, "ms": 20.0},
            {"resources": 10000, "ms": 400.0}, {"resources": 100000, "ms": None}]
    bench.add_growth(rows, "ms", "g")
    assert "g" not in rows[0]
    assert rows[1]["g"] == pytest.approx(1.0)
    assert rows[2]["g"] == pytest.approx(1.30103, rel=1e-4)  # log10(20)
    assert "g" not in rows[3]


def _new_result(rps=300.0, p99=40.0, cpu=6.0, floor_cpu=1.5, big_cpu=120.0, floor_big=200.0):
    return {
        "started": "2026-12-03T10:00:00+00:00",
        "commit": "abcdef0123456789",
        "settings": {"workers": 2, "threads": 4, "worker_class": "gevent", "duration_s": 4},
        "runs": [
            {"hook": "order-sign", "scenario": "full", "connections": 1, "rps": 1.0,
             "p50_ms": 1.0, "p99_ms": 1.0, "cpu_ms_per_request": 99.0},
            {"hook": "order-sign", "scenario": "full", "connections": 8, "rps": rps,
             "p50_ms": 10.0, "p99_ms": p99, "cpu_ms_per_request": cpu},
            {"hook": "order-sign", "scenario": "partial", "connections": 8, "rps": 100.0,
             "p50_ms": 55.0, "p99_ms": 70.0, "cpu_ms_per_request": 4.0},
            {"hook": "patient-view", "scenario": "partial", "connections": 8, "rps": 90.0,
             "p50_ms": 61.0, "p99_ms": 80.0, "cpu_ms_per_request": 4.0},
        ],
        "floor": [
            {"scenario": "full", "connections": 8, "rps": 1000.0, "p99_ms": 10.0,
             "cpu_ms_per_request": floor_cpu},
        ],
        "scaling": [
            {"observations": 1000, "resources": 1000, "median_ms": 20.0},
            {"observations": 10000, "resources": 10000, "median_ms": 210.0,
             "cpu_ms_per_request": big_cpu, "growth_exponent": 1.02},
        ],
        "floor_scaling": [{"observations": 10000, "cpu_ms_per_request": floor_big}],
        "rss_mb": {"service_workers": [150.5, None, 171.25], "floor_workers": [60.0]},
    }


def _old_result():
    """The shape of bench/results/20261202T130017Z.json: no CPU, no floor scaling."""
    return {
        "started": "2026-12-02T13:00:17.535867+00:00",
        "commit": "7c9ab4750eaa1785a1b346442a18cff4dc5861f6",
        "settings": {"workers": 2, "threads": 4, "worker_class": "gevent", "duration_s": 4},
        "runs": [{"hook": "order-sign", "scenario": "full", "connections": 8, "rps": 545.8,
                  "p50_ms": 8.7, "p99_ms": 149.5, "floor_rps": 2252.0,
                  "floor_fraction": 0.2424}],
        "floor": [{"scenario": "full", "connections": 8, "rps": 2252.0, "p99_ms": 9.2}],
        "scaling": [{"observations": 10000, "resources": 10000, "median_ms": 180.0,
                     "growth_exponent": 1.05}],
        "rss_mb": {"service_workers": [147.6, 202.8], "floor_workers": [54.9, 54.7]},
        "targets": [],
    }


def test_key_figures_of_this_format():
    figs = bench.key_figures(_new_result())
    assert figs["rps"] == 300.0
    assert figs["rps_of_floor"] == pytest.approx(0.3)
    assert figs["p99_x_floor"] == pytest.approx(4.0)
    assert figs["cpu_x_floor"] == pytest.approx(4.0)
    assert figs["cpu_10k_ms"] == 120.0
    assert figs["cpu_10k_x_floor"] == pytest.approx(0.6)
    assert figs["rss_peak_mb"] == 171.25


def test_key_figures_of_the_old_format_lack_only_the_cpu():
    figs = bench.key_figures(_old_result())
    assert figs["rps"] == 545.8
    assert figs["rps_of_floor"] == pytest.approx(545.8 / 2252.0)
    assert figs["p99_x_floor"] == pytest.approx(149.5 / 9.2)
    assert figs["cpu_ms"] is None and figs["cpu_x_floor"] is None
    assert figs["cpu_10k_ms"] is None and figs["cpu_10k_x_floor"] is None
    assert figs["median_10k_ms"] == 180.0
    assert figs["rss_peak_mb"] == 202.8


def test_previous_result_is_the_newest_earlier_readable_one(tmp_path):
    (tmp_path / "20261201T090000Z.json").write_text(json.dumps(_old_result()))
    (tmp_path / "20261202T130017Z.json").write_text(json.dumps({**_old_result(), "commit": "b"}))
    (tmp_path / "20261202T140000Z.json").write_text("{not json")  # a run cut short
    (tmp_path / "layouts-20261203T000000Z.json").write_text("{}")  # not a bench result
    (tmp_path / "20261203T100000Z.json").write_text(json.dumps(_new_result()))  # today's
    found = bench.previous_result(tmp_path, before="20261203T100000Z.json")
    assert found is not None
    path, data = found
    assert path.name == "20261202T130017Z.json"
    assert data["commit"] == "b"
    assert bench.previous_result(tmp_path / "missing") is None
    assert bench.previous_result(tmp_path, before="20261201T090000Z.json") is None


def test_comparison_shows_a_dash_for_what_the_old_run_lacked():
    lines = bench.comparison_lines(_old_result(), _new_result())
    assert lines[0].startswith("Previous run (commit 7c9ab47, 2026-12-02 13:00 UTC, gevent:2")
    assert "today (commit abcdef0" in lines[0]
    cpu = next(ln for ln in lines if "c=8 CPU-ms/req" in ln)
    assert cpu.split()[-3:] == ["-", "->", "6.00"]
    rps = next(ln for ln in lines if "c=8 req/s" in ln)
    assert "545.8 -> 300.0" in rps and "(-45%)" in rps


def test_targets_pass_and_miss_on_their_limits():
    by_limit = {t.limit: t for t in bench.targets(_new_result())}
    assert len(by_limit) == 6
    assert by_limit[">= 0.33"].verdict == "MISS"  # 300 / 1000
    assert by_limit["<= 2.5x"].verdict == "MISS"  # 40 / 10
    assert by_limit["<= 0.8x"].verdict == "PASS"  # 120 / 200
    assert by_limit["<= 1.10 (linear)"].verdict == "PASS"
    assert by_limit["<= 170 MB"].verdict == "MISS"  # 171.25
    assert by_limit["< 60 ms"].value == 61.0 and by_limit["< 60 ms"].verdict == "MISS"
    good = {t.limit: t.verdict for t in bench.targets(_new_result(rps=400.0, p99=25.0))}
    assert good[">= 0.33"] == "PASS" and good["<= 2.5x"] == "PASS"
    old = {t.limit: t.verdict for t in bench.targets(_old_result())}
    assert old["<= 0.8x"] == "n/a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("gevent:3", ("gevent", 3, 4)), ("gthread:2x8", ("gthread", 2, 8)),
     ("gthread:4", ("gthread", 4, 4)), ("sync:4", ("sync", 4, 4))],
)
def test_layouts_are_parsed(text, expected):
    layout = layouts.parse_layout(text)
    assert (layout.worker_class, layout.workers, layout.threads) == expected
    assert str(layout) == (text if text != "gthread:4" else "gthread:4x4")


@pytest.mark.parametrize("text", ["gevent", "gevent:x", "gevent:2x4", "gthread:0x4", ":2"])
def test_bad_layouts_are_refused(text):
    with pytest.raises(ValueError):
        layouts.parse_layout(text)


def test_cpu_cell_marks_runs_the_in_flight_requests_could_overstate():
    assert bench.cpu_cell({"cpu_ms_per_request": 4.0, "cpu_inflight_bound": 8 / 1000}) == "4.00"
    assert bench.cpu_cell({"cpu_ms_per_request": 70.0, "cpu_inflight_bound": 8 / 40}) == "70.00*"
    assert bench.cpu_cell({"cpu_ms_per_request": None, "cpu_inflight_bound": None}) == "-"
