"""GET /metrics: what moves the counters, that labels stay bounded, and workers summed by gunicorn.

In process the metrics live in prometheus_client's default registry, shared by every test of the
session, so each test compares a scrape after with a scrape before. The exposition is parsed with
prometheus_client's own parser, as Prometheus would read it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from cds_service.cli import main
from cds_service.config import FhirConfig, load_config
from cds_service.pipeline.fhir_client import FhirError, FhirSessionPool
from tests.conftest import assert_operation_outcome, load_fixture, load_request
from tests.support.auth import (
    BASE,
    NOW,
    SERVICE_PATH,
    auth_config,
    bearer,
    claims,
    ec_key,
    free_port,
    hand_made,
    issuer,
    serve,
    sign,
    stop,
    token,
    write_jwks,
)
from tests.support.fhir_server import answer_from, declared_prefetch, searchset

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "legcramp_cds_"
REQUESTS = "legcramp_cds_http_request_duration_seconds_count"
KEY = ec_key("metrics-1", slot=8)
OTHER_KEY = ec_key("metrics-1", slot=9)  # same kid, another key: a bad signature
ACCESS_TOKEN = f"access-{uuid.uuid4().hex}"
PATIENT = "cramps-001"
# Every label a legcramp_cds metric may have (`le` is the histogram bucket's).
LABEL_NAMES = {"method", "endpoint", "service", "status", "rule", "indicator", "key", "source",
               "kind", "outcome", "reason", "result", "le", "version", "python_version"}
SAFE_VALUE = re.compile(r"[a-z0-9_.+-]+|[A-Z]+|\+Inf", re.IGNORECASE)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# --- scraping --------------------------------------------------------------------------------


def scrape(client: Any) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == CONTENT_TYPE
    return parse(response.get_data(as_text=True))


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, pairs), value in samples.items()
               if sample == name and wanted <= set(pairs))


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def ours(samples: Samples) -> Samples:
    return {key: value for key, value in samples.items() if key[0].startswith(PREFIX)}


# --- the endpoint ----------------------------------------------------------------------------


def test_metrics_answer_in_the_prometheus_text_format_without_a_jwt(make_app, tmp_path):
    config = auth_config(tmp_path, [issuer(jwks_file=str(write_jwks(tmp_path / "k.json", KEY)))])
    client = make_app(config).test_client()
    assert client.get("/cds-services").status_code == 401  # the CDS endpoints do want one

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    assert response.headers["X-Request-ID"]
    families = {f.name for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"legcramp_cds_http_request_duration_seconds", "legcramp_cds_cards",
            "legcramp_cds_prefetch_keys", "legcramp_cds_fhir_request_duration_seconds",
            "legcramp_cds_fhir_failures", "legcramp_cds_auth_failures",
            "legcramp_cds_feedback_items", "legcramp_cds_feedback_stored"} <= families


def test_build_info_gives_the_package_and_python_versions(client):
    from cds_service.metrics import package_version

    builds = {pairs: value for (name, pairs), value in scrape(client).items()
              if name == "legcramp_cds_build_info"}
    assert builds == {(("python_version", platform.python_version()),
                       ("version", package_version())): 1.0}


def test_metrics_switched_off_answer_404(make_app):
    config = load_config(None, overrides={"server": {"metrics_enabled": False}})
    client = make_app(config).test_client()
    body = assert_operation_outcome(client.get("/metrics"), 404)
    assert body["issue"][0]["code"] == "not-found"
    assert client.get("/health").status_code == 200


def test_request_latency_is_observed_per_endpoint_service_and_status(client):
    before = scrape(client)
    client.get("/cds-services")
    client.get("/health")
    client.post("/cds-services/legcramp-order-sign", data="{", content_type="application/json")
    after = scrape(client)
    assert moved(before, after, REQUESTS, method="GET", endpoint="discovery",
                 service="discovery", status="200") == 1
    assert moved(before, after, REQUESTS, endpoint="health", service="health", status="200") == 1
    assert moved(before, after, REQUESTS, method="POST", endpoint="service_call",
                 service="legcramp-order-sign", status="400") == 1
    # the histogram has its buckets and sum
    assert total(after, "legcramp_cds_http_request_duration_seconds_bucket", endpoint="health",
                 le="+Inf") == total(after, REQUESTS, endpoint="health")


# --- cards and prefetch ----------------------------------------------------------------------


def test_a_service_call_with_cards_moves_cards_requests_and_supplied_prefetch(client, call):
    request = load_request("order-select-quinine-full-prefetch")
    before = scrape(client)
    response = call("legcramp-order-select", request)
    after = scrape(client)

    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards
    expected: dict[tuple[str, str], int] = {}
    for card in cards:
        rule = card["source"]["topic"]["code"]
        expected[rule, card["indicator"]] = expected.get((rule, card["indicator"]), 0) + 1
    assert ("quinine-leg-cramps", "critical") in expected
    for (rule, indicator), count in expected.items():
        assert moved(before, after, "legcramp_cds_cards_total", service="legcramp-order-select",
                     rule=rule, indicator=indicator) == count
    assert moved(before, after, "legcramp_cds_cards_total") == len(cards)

    assert moved(before, after, REQUESTS, method="POST", endpoint="service_call",
                 service="legcramp-order-select", status="200") == 1
    for key in declared_prefetch("legcramp-order-select"):
        source = "null" if request["prefetch"][key] is None else "supplied"
        assert moved(before, after, "legcramp_cds_prefetch_keys_total", key=key,
                     source=source) == 1, key
    assert moved(before, after, "legcramp_cds_prefetch_keys_total", source="fetched") == 0
    assert moved(before, after, "legcramp_cds_fhir_request_duration_seconds_count") == 0


def test_a_call_without_cards_moves_no_card_counter(client, call):
    before = scrape(client)
    response = call("legcramp-order-sign", load_request("order-sign-quinine-malaria"))
    after = scrape(client)
    assert response.get_json() == {"cards": []}
    assert moved(before, after, "legcramp_cds_cards_total") == 0
    assert moved(before, after, REQUESTS, service="legcramp-order-sign", status="200") == 1


# --- FHIR fetches from a loopback server -----------------------------------------------------


def serve_chart(server: HTTPServer) -> None:
    """/fhir answers reads and searches from cramps-001's chart; /broken/fhir answers 500."""
    chart = [entry["resource"] for entry in load_fixture(f"patients/{PATIENT}.json")["entry"]]
    server.expect_request(re.compile(r"^/fhir/")).respond_with_handler(answer_from(chart))
    server.expect_request(re.compile(r"^/broken/")).respond_with_data("down", status=500)


def with_server(request: dict[str, Any], base: str) -> dict[str, Any]:
    request["fhirServer"] = base
    request["fhirAuthorization"] = {
        "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "legcramp-cds"}
    return request


def test_prefetch_fetched_from_fhir_server_moves_fetch_counters(client, call, httpserver):
    serve_chart(httpserver)
    request = with_server(load_request("patient-view-no-prefetch"), httpserver.url_for("/fhir"))
    declared = declared_prefetch("legcramp-patient-view")
    reads = [key for key, template in declared.items() if "?" not in template]
    before = scrape(client)
    response = call("legcramp-patient-view", request)
    after = scrape(client)

    assert response.status_code == 200, response.get_data(as_text=True)
    for key in declared:
        assert moved(before, after, "legcramp_cds_prefetch_keys_total", key=key,
                     source="fetched") == 1, key
    assert moved(before, after, "legcramp_cds_fhir_request_duration_seconds_count",
                 kind="read", outcome="ok") == len(reads)
    assert moved(before, after, "legcramp_cds_fhir_request_duration_seconds_count",
                 kind="search", outcome="ok") == len(declared) - len(reads)
    assert moved(before, after, "legcramp_cds_fhir_failures_total") == 0
    assert len(httpserver.log) == len(declared)


def test_a_failing_fhir_server_moves_failures_and_missing_prefetch(client, call, httpserver):
    serve_chart(httpserver)
    request = with_server(load_request("order-sign-quinine-partial-prefetch"),
                          httpserver.url_for("/broken/fhir"))
    fetched = [key for key in declared_prefetch("legcramp-order-sign")
               if key not in request["prefetch"]]
    before = scrape(client)
    response = call("legcramp-order-sign", request)
    after = scrape(client)

    assert_operation_outcome(response, 412)
    for key in fetched:
        assert moved(before, after, "legcramp_cds_prefetch_keys_total", key=key,
                     source="missing") == 1, key
    assert moved(before, after, "legcramp_cds_prefetch_keys_total", key="patient",
                 source="supplied") == 1
    assert moved(before, after, "legcramp_cds_fhir_failures_total", kind="search",
                 reason="http_error") == len(fetched)
    assert moved(before, after, "legcramp_cds_fhir_request_duration_seconds_count",
                 kind="search", outcome="http_error") == len(fetched)
    assert moved(before, after, REQUESTS, service="legcramp-order-sign", status="412") == 1


def test_next_pages_and_reads_of_absent_resources_are_counted_by_kind(client, httpserver):
    first = {**searchset([]), "link": [
        {"relation": "next", "url": httpserver.url_for("/fhir/Condition/_page/2")}]}
    httpserver.expect_request("/fhir/Condition").respond_with_json(first)
    httpserver.expect_request("/fhir/Condition/_page/2").respond_with_json(searchset([]))
    httpserver.expect_request("/fhir/Medication/gone").respond_with_data("", status=410)
    httpserver.expect_request("/fhir/Medication/moved").respond_with_data(
        "", status=302, headers={"Location": "https://elsewhere.example/"})
    pool = FhirSessionPool(FhirConfig())
    server = pool.connect(httpserver.url_for("/fhir"), ACCESS_TOKEN)
    before = scrape(client)
    try:
        assert len(server.search("Condition")) == 2
        assert server.read("Medication/gone") is None
        with pytest.raises(FhirError):
            server.read("Medication/moved")
    finally:
        pool.close()
    after = scrape(client)
    counts = "legcramp_cds_fhir_request_duration_seconds_count"
    assert moved(before, after, counts, kind="search", outcome="ok") == 1
    assert moved(before, after, counts, kind="page", outcome="ok") == 1
    assert moved(before, after, counts, kind="read", outcome="not_found") == 1
    assert moved(before, after, counts, kind="read", outcome="redirect") == 1
    assert moved(before, after, "legcramp_cds_fhir_failures_total") == 1
    assert moved(before, after, "legcramp_cds_fhir_failures_total", kind="read",
                 reason="redirect") == 1


# --- JWT failures ----------------------------------------------------------------------------

AUD = f"{BASE}{SERVICE_PATH}"
AUTH_CASES: dict[str, Callable[[], dict[str, str]]] = {
    "missing_token": lambda: {},
    "malformed": lambda: bearer("not-a-jwt"),
    "expired": lambda: bearer(token(KEY, now=NOW - 4000)),
    "bad_signature": lambda: bearer(token(OTHER_KEY)),
    "unknown_kid": lambda: bearer(token(KEY.with_kid("no-such-kid"))),
    "aud": lambda: bearer(token(KEY, "/cds-services/legcramp-patient-view")),
    "iss": lambda: bearer(token(KEY, iss="https://evil.example")),
    "alg": lambda: bearer(hand_made({"alg": "none", "typ": "JWT", "kid": KEY.kid}, claims(AUD))),
    "missing_claim": lambda: bearer(sign(KEY, claims(AUD, drop=("jti",)))),
}


@pytest.fixture
def authenticated(make_app: Callable[..., Any], tmp_path: Path) -> Any:
    jwks = write_jwks(tmp_path / "jwks.json", KEY)
    return make_app(auth_config(tmp_path, [issuer(jwks_file=str(jwks))])).test_client()


@pytest.mark.parametrize("reason", sorted(AUTH_CASES))
def test_each_jwt_failure_moves_the_counter_with_its_reason(authenticated, reason):
    request = load_request("order-sign-quinine-malaria")
    before = scrape(authenticated)
    response = authenticated.post(SERVICE_PATH, json=request, headers=AUTH_CASES[reason]())
    after = scrape(authenticated)
    assert_operation_outcome(response, 401)
    assert moved(before, after, "legcramp_cds_auth_failures_total", reason=reason) == 1
    assert moved(before, after, "legcramp_cds_auth_failures_total") == 1
    assert moved(before, after, REQUESTS, service="legcramp-order-sign", status="401") == 1


def test_a_replayed_token_moves_the_replay_reason(authenticated):
    request = load_request("order-sign-quinine-malaria")
    jwt = token(KEY)
    before = scrape(authenticated)
    assert authenticated.post(SERVICE_PATH, json=request, headers=bearer(jwt)).status_code == 200
    assert authenticated.post(SERVICE_PATH, json=request, headers=bearer(jwt)).status_code == 401
    after = scrape(authenticated)
    assert moved(before, after, "legcramp_cds_auth_failures_total", reason="replay") == 1
    assert moved(before, after, "legcramp_cds_auth_failures_total") == 1


# --- feedback --------------------------------------------------------------------------------


def test_feedback_moves_outcome_and_stored_or_duplicate_counters(client, call):
    response = call("legcramp-order-select", load_request("order-select-quinine-full-prefetch"))
    card = response.get_json()["cards"][0]
    suggestion = card["suggestions"][0]["uuid"]
    batch = {"feedback": [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T12:01:00Z"},
        {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-21T12:02:00Z",
         "acceptedSuggestions": [{"id": suggestion}]},
    ]}
    path = "/cds-services/legcramp-order-select/feedback"
    before = scrape(client)
    assert client.post(path, json=batch).get_json()["stored"] == 2
    assert client.post(path, json=batch).get_json()["duplicates"] == 2
    after = scrape(client)

    items = "legcramp_cds_feedback_items_total"
    stored = "legcramp_cds_feedback_stored_total"
    service = "legcramp-order-select"
    assert moved(before, after, items, service=service, outcome="overridden") == 2
    assert moved(before, after, items, service=service, outcome="accepted") == 2
    assert moved(before, after, stored, service=service, result="stored") == 2
    assert moved(before, after, stored, service=service, result="duplicate") == 2
    assert moved(before, after, REQUESTS, endpoint="feedback", service=service,
                 status="200") == 2


def test_refused_feedback_moves_no_feedback_counter(client):
    before = scrape(client)
    client.post("/cds-services/legcramp-order-select/feedback", json={"feedback": []})
    after = scrape(client)
    assert moved(before, after, "legcramp_cds_feedback_items_total") == 0
    assert moved(before, after, "legcramp_cds_feedback_stored_total") == 0
    assert moved(before, after, REQUESTS, endpoint="feedback", status="400") == 1


# --- bounded labels --------------------------------------------------------------------------


def test_label_values_never_carry_patient_ids_tokens_hosts_or_paths(client, call, httpserver):
    serve_chart(httpserver)
    fhir = httpserver.url_for("/fhir")
    host_port = f"{httpserver.host}:{httpserver.port}"
    call("legcramp-patient-view", with_server(load_request("patient-view-no-prefetch"), fhir))
    call("legcramp-order-sign", with_server(load_request("order-sign-quinine-partial-prefetch"),
                                            httpserver.url_for("/broken/fhir")))
    hostile_id = f"{PATIENT}-{ACCESS_TOKEN}"
    client.post(f"/cds-services/{hostile_id}", json=load_request("patient-view-no-prefetch"))
    client.post(f"/cds-services/{hostile_id}/feedback", json={"feedback": []})
    client.get(f"/Patient/{PATIENT}?token={ACCESS_TOKEN}")
    client.open("/cds-services", method="PATCH")
    client.get("/cds-services", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
    response = client.get("/metrics")
    text = response.get_data(as_text=True)

    for secret in (PATIENT, ACCESS_TOKEN, hostile_id, "Hartley", host_port, "/fhir", "/Patient"):
        assert secret not in text, secret
    samples = ours(parse(text))
    assert samples
    for name, pairs in samples:
        labels = dict(pairs)
        assert set(labels) <= LABEL_NAMES, (name, labels)
        for label, value in labels.items():
            assert SAFE_VALUE.fullmatch(value), (name, label, value)
            assert "/" not in value and len(value) <= 64, (name, label, value)
    assert total(samples, REQUESTS, endpoint="service_call", service="unknown", status="404") >= 1
    assert total(samples, REQUESTS, endpoint="feedback", service="unknown", status="404") >= 1
    assert total(samples, REQUESTS, endpoint="unmatched", service="unmatched",
                 status="404") >= 1
    assert total(samples, REQUESTS, method="other", endpoint="unmatched", status="405") >= 1


# --- gunicorn: two workers, one total ----------------------------------------------------------


def store_toml(tmp_path: Path) -> str:
    return f"[store]\nurl = {json.dumps(f'sqlite:///{tmp_path}/s.sqlite3')}\n"


def worker_pids(metrics_dir: Path) -> set[int]:
    """Worker pids that have served a request: each writes its own histogram file."""
    return {int(match.group(1)) for path in metrics_dir.glob("histogram_*.db")
            if (match := re.fullmatch(r"histogram_(\d+)\.db", path.name))}


def discovery_count(base: str) -> float:
    response = requests.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    return total(parse(response.text), REQUESTS, endpoint="discovery", status="200")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale file from an earlier run")
    config = tmp_path / "serve.toml"
    config.write_text(f"""
[server]
workers = 2
threads = 2
metrics_dir = {json.dumps(str(metrics_dir))}

{store_toml(tmp_path)}""", encoding="utf-8")
    port = free_port()
    with serve(config, port, tmp_path / "serve.log") as served:
        yield served, metrics_dir


def test_live_serve_with_two_workers_sums_their_counters(two_workers):
    served, metrics_dir = two_workers
    assert not (metrics_dir / "counter_1.db").exists()  # emptied at start

    def discover(_: int) -> int:
        response = requests.get(f"{served.base}/cds-services", timeout=10,
                                headers={"Connection": "close"})
        return response.status_code

    sent = 0
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(40):  # until both workers have answered (usually the first round)
            statuses = list(pool.map(discover, range(30)))
            assert statuses == [200] * 30
            sent += len(statuses)
            if len(worker_pids(metrics_dir)) >= 2:
                break
    pids = worker_pids(metrics_dir)
    assert len(pids) == 2, f"one worker answered all {sent} requests"
    assert discovery_count(served.base) == sent

    # A worker that exits takes nothing with it: its files stay counted.
    os.kill(sorted(pids)[0], signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(sorted(pids)[0], 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the worker did not exit")
    assert discovery_count(served.base) == sent
    stop(served.process)
    assert served.process.returncode == 0
    assert "Traceback" not in served.output()


def test_live_serve_gives_one_build_info_over_all_its_workers(two_workers):
    from cds_service.metrics import package_version

    served, _ = two_workers
    for _ in range(10):  # both workers up and answering
        assert requests.get(f"{served.base}/cds-services", timeout=10,
                            headers={"Connection": "close"}).status_code == 200
    response = requests.get(f"{served.base}/metrics", timeout=10)
    builds = {pairs: value for (name, pairs), value in parse(response.text).items()
              if name == "legcramp_cds_build_info"}
    assert builds == {(("python_version", platform.python_version()),
                       ("version", package_version())): 1.0}


def test_live_serve_keeps_metrics_in_a_temporary_directory_removed_at_exit(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text(f"[server]\nworkers = 1\n\n{store_toml(tmp_path)}", encoding="utf-8")
    with serve(config, free_port(), tmp_path / "serve.log") as served:
        assert requests.get(f"{served.base}/cds-services", timeout=10).status_code == 200
        assert discovery_count(served.base) == 1
        stop(served.process)
        starting = next(json.loads(line) for line in served.output().splitlines()
                        if '"message": "starting"' in line)
    metrics_dir = Path(starting["metrics_dir"])
    assert metrics_dir.name.startswith("legcramp-cds-metrics-")
    assert not metrics_dir.exists()


def test_serve_refusing_its_configuration_leaves_no_metrics_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("LEGCRAMP_CDS_CONFIG", raising=False)
    config = tmp_path / "serve.toml"
    config.write_text('[rules."no-such-rule"]\nenabled = false\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(config)])
    assert result.exit_code != 0
    assert "no-such-rule" in result.output
    assert list(tmp_path.glob("legcramp-cds-metrics-*")) == []
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_live_serve_with_metrics_off_answers_404_and_sets_up_no_directory(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text(f"[server]\nworkers = 1\nmetrics_enabled = false\n\n{store_toml(tmp_path)}",
                      encoding="utf-8")
    with serve(config, free_port(), tmp_path / "serve.log") as served:
        response = requests.get(f"{served.base}/metrics", timeout=10)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("application/fhir+json")
        stop(served.process)
        starting = next(json.loads(line) for line in served.output().splitlines()
                        if '"message": "starting"' in line)
    assert starting["metrics_dir"] is None



def test_live_serve_can_keep_metrics_on_a_port_of_their_own(tmp_path):
    """With [server] metrics_port, /metrics is answered there (every worker's counts, no CORS)
    and no longer on the port the EHRs call."""
    metrics_port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text(f"[server]\nworkers = 2\nmetrics_port = {metrics_port}\n\n"
                      f"{store_toml(tmp_path)}", encoding="utf-8")
    with serve(config, free_port(), tmp_path / "serve.log") as served:
        for _ in range(6):
            assert requests.get(f"{served.base}/cds-services", timeout=10,
                                headers={"Connection": "close"}).status_code == 200
        on_service_port = requests.get(f"{served.base}/metrics", timeout=10,
                                       headers={"Origin": "https://evil.example"})
        assert on_service_port.status_code == 404
        apart = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10,
                             headers={"Origin": "https://evil.example"})
        assert apart.status_code == 200
        assert apart.headers["Content-Type"] == CONTENT_TYPE
        assert "Access-Control-Allow-Origin" not in apart.headers
        assert total(parse(apart.text), REQUESTS, endpoint="discovery", status="200") == 6
        assert requests.get(f"http://127.0.0.1:{metrics_port}/", timeout=10).status_code == 404
        stop(served.process)
    assert "Traceback" not in served.output()
