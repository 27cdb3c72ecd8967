#!/usr/bin/env python3
"""Profile one hot request in-process (Flask test client, no gunicorn): bench/profile_request.py
[--observations N] [--hook order-sign] [--repeats R]. cProfile, top functions by cumulative and
own time. Uses a temporary SQLite store; authentication off, as bench/run."""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import records  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--observations", type=int, default=84)
    parser.add_argument("--hook", default="order-sign")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    from cds_service.config import load_config
    from cds_service.web.app import create_app
    from hooks import build_services

    work = Path(tempfile.mkdtemp(prefix="legcramp-profile-"))
    config_path = work / "c.toml"
    config_path.write_text(
        f"[auth]\nrequired = false\n[server]\nmax_body_bytes = {32 << 20}\n"
        f'[store]\nurl = "sqlite:///{work}/p.sqlite3"\n'
    )
    app = create_app(load_config(str(config_path)))
    service = next(s for s in build_services() if s.hook == args.hook)
    prefetch = records.record(args.observations)
    body = json.dumps(
        records.hook_request(args.hook, prefetch, [r.key for r in service.requirements])
    )
    client = app.test_client()
    url = f"/cds-services/{service.id}"
    for _ in range(3):
        assert client.post(url, data=body, content_type="application/json").status_code == 200
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.repeats):
        client.post(url, data=body, content_type="application/json")
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(
        f"{args.repeats} x {args.hook}, {records.count_resources(prefetch)} resources, "
        f"{len(body) // 1024} KiB: {total / args.repeats * 1000:.1f} ms per request (profiled)"
    )
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
