"""Worker start-up cost: import, app creation (value sets compiled, rules declared) and the
first hook call, each in a fresh interpreter, with the process's peak memory.

    .venv/bin/python bench/startup.py [--runs 7] [--tree PATH]

`--tree` measures another checkout of the project (e.g. a `git worktree` of an older commit),
so a change's cost is read before and after on the same machine. Prints medians; asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
from cds_service.config import load_config
try:
    from cds_service.web.app import create_app
except ImportError:  # a checkout from before the layout
    from cds_service.app import create_app
imported = time.perf_counter()
config = load_config(None, overrides={"store": {"url": "sqlite://", "record_cards": False}})
app = create_app(config)
created = time.perf_counter()
request = json.loads(open(sys.argv[2]).read())
response = app.test_client().post("/cds-services/legcramp-order-sign", json=request)
assert response.status_code == 200, response.get_data(as_text=True)
answered = time.perf_counter()
print(json.dumps({"import_s": imported - started, "create_app_s": created - imported,
                  "first_call_s": answered - created, "total_s": answered - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(tree: Path, runs: int) -> dict[str, float]:
    request = ROOT / "fixtures" / "golden" / "rls-pramipexole.order-sign.request.json"
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PROBE, str(tree), str(request)],
                             check=True, capture_output=True, text=True, cwd="/").stdout
        samples.append(json.loads(out.strip().splitlines()[-1]))
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tree", type=Path, default=ROOT)
    args = parser.parse_args()
    figures = measure(args.tree.resolve(), args.runs)
    print(f"start-up of {args.tree} (medians of {args.runs} fresh interpreters)")
    for key, value in figures.items():
        unit = "MB" if key.endswith("_mb") else "ms"
        shown = value if unit == "MB" else value * 1000
        print(f"  {key.removesuffix('_s').removesuffix('_mb'):<14} {shown:8.1f} {unit}")


if __name__ == "__main__":
    main()
