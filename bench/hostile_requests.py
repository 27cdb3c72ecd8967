"""What hostile requests and FHIR answers cost one worker: CPU, FHIR calls and peak memory.

    .venv/bin/python bench/hostile_requests.py [--tree PATH] [--only NAME]

Each scenario runs in a fresh interpreter (the app in-process, as a worker holds it, with a
temporary SQLite store) against loopback FHIR servers this script starts:
- `long-text`: an order-sign whose draft names its medication by 1 MB of free text
  (CPU seconds per request, median of 3);
- `many-references`: an order-sign with 10,000 drafts, each naming a different Medication by
  reference, on a server that answers every read 404 (FHIR calls made, wall time);
- `many-pages`: a Condition search answered in pages of 9 MB each, 70 pages offered (bytes the
  service took before it stopped, the answer's status, the process's peak RSS).
Prints one JSON line per scenario; asserts nothing. `--tree` runs another checkout (a
`git worktree` of an older commit) for a before/after on one machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, resource, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
sys.path.insert(0, sys.argv[1])
scenario, request_path, workdir = sys.argv[2], sys.argv[3], sys.argv[4]
from cds_service.config import load_config
from cds_service.web.app import create_app

calls = {"n": 0, "bytes": 0}
PAGE = 9 * 1024 * 1024
PAGES = 70

class Fhir(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        calls["n"] += 1
        path, _, query = self.path.partition("?")
        if scenario == "many-pages" and path.endswith("/Condition") or "page=" in query:
            page = int(query.split("page=")[1]) if "page=" in query else 0
            filler = "x" * (PAGE - 400)
            body = {"resourceType": "Bundle", "type": "searchset",
                    "entry": [{"resource": {"resourceType": "Condition", "id": f"c{page}",
                                            "note": [{"text": filler}]}}]}
            if page + 1 < PAGES:
                body["link"] = [{"relation": "next",
                                 "url": f"http://127.0.0.1:{port}/fhir/Condition?page={page+1}"}]
            status, data = 200, json.dumps(body).encode()
        elif "/Medication" in path:
            status, data = 404, b'{"resourceType":"OperationOutcome","issue":[]}'
        elif "/Patient/" in path:
            status, data = 200, json.dumps({"resourceType": "Patient", "id": "p"}).encode()
        else:
            status, data = 200, b'{"resourceType":"Bundle","type":"searchset","entry":[]}'
        calls["bytes"] += len(data)
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass
    def log_message(self, *a):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Fhir)
port = server.server_port
threading.Thread(target=server.serve_forever, daemon=True).start()
config = load_config(None, overrides={"store": {"url": f"sqlite:///{workdir}/s.db"},
                                      "server": {"max_bundle_entries": 20000}})
client = create_app(config).test_client()
request = json.load(open(request_path))
request["fhirServer"] = f"http://127.0.0.1:{port}/fhir"
draft = request["context"]["draftOrders"]["entry"][0]["resource"]
if scenario == "long-text":
    draft.pop("medicationReference", None)
    draft["medicationCodeableConcept"] = {"text": "quinine sulfate " + "a " * 500000}
elif scenario == "many-references":
    entries = request["context"]["draftOrders"]["entry"]
    for i in range(10000):
        copy = json.loads(json.dumps(draft))
        copy["id"] = f"d{i}"
        copy.pop("medicationCodeableConcept", None)
        copy["medicationReference"] = {"reference": f"Medication/m{i}"}
        entries.append({"resource": copy})
elif scenario == "many-pages":
    request.get("prefetch", {}).pop("conditions", None)
runs = 3 if scenario == "long-text" else 1
cpu, wall, status = [], [], None
for _ in range(runs):
    c0, w0 = time.process_time(), time.perf_counter()
    response = client.post("/cds-services/legcramp-order-sign", json=request)
    cpu.append(time.process_time() - c0)
    wall.append(time.perf_counter() - w0)
    status = response.status_code
cpu.sort(); wall.sort()
print(json.dumps({"scenario": scenario, "status": status,
                  "cpu_s": round(cpu[len(cpu) // 2], 3), "wall_s": round(wall[len(wall) // 2], 3),
                  "fhir_calls": calls["n"], "fhir_bytes_sent_mb": round(calls["bytes"] / 2**20, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""

SCENARIOS = ("long-text", "many-references", "many-pages")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--only", choices=SCENARIOS)
    args = parser.parse_args()
    request = ROOT / "fixtures" / "golden" / "rls-pramipexole.order-sign.request.json"
    for scenario in [args.only] if args.only else SCENARIOS:
        workdir = tempfile.mkdtemp(prefix="legcramp-bench-hostile-")
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(args.tree.resolve()), scenario, str(request),
             workdir], capture_output=True, text=True, cwd="/", timeout=1800)
        lines = out.stdout.strip().splitlines()
        print(lines[-1] if lines else json.dumps({"scenario": scenario,
                                                   "error": out.stderr[-500:]}))


if __name__ == "__main__":
    main()
