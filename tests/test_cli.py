"""`legcramp-cds evaluate` in process (CliRunner) and `legcramp-cds serve` as a real process."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from cds_service.cli import close_worker_engine, main
from cds_service.pipeline import contracts
from cds_service.store.database import Store
from tests.conftest import FIXTURES, ROOT, load_request
from tests.support.live_server import console_script, free_port, serve, stop

QUININE_FULL = FIXTURES / "requests" / "order-select-quinine-full-prefetch.json"
QUININE_MALARIA_SIGN = FIXTURES / "requests" / "order-sign-quinine-malaria.json"
QUININE_SUMMARY_START = "Quinine is not recommended for leg cramps"
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


@pytest.fixture(autouse=True)
def _restore_service_logger() -> Iterator[None]:
    """`evaluate` configures the `legcramp_cds` logger for the process; undo it per test."""
    logger = logging.getLogger("legcramp_cds")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture
def write_toml(tmp_path: Path):
    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def as_of_config(write_toml) -> Path:
    return write_toml('[evaluation]\nas_of = "2026-11-21"\n')


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("LEGCRAMP_CDS_CONFIG", raising=False)
    return CliRunner()


def _stdout(result: Any) -> str:
    return result.stdout if hasattr(result, "stdout") else result.output


def _no_traceback(result: Any) -> None:
    assert "Traceback" not in result.output
    # An exception that escaped the command would be kept here instead of a SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))


# --- evaluate --------------------------------------------------------------------------------


def test_evaluate_prints_a_schema_valid_response_with_the_quinine_card(runner, as_of_config):
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--config", str(as_of_config)])
    assert result.exit_code == 0, result.output
    body = json.loads(_stdout(result))
    assert contracts.violations("response.schema.json", body) == []
    quinine = [c for c in body["cards"] if c["summary"].startswith(QUININE_SUMMARY_START)]
    assert len(quinine) == 1
    assert quinine[0]["indicator"] == "critical"
    actions = quinine[0]["suggestions"][0]["actions"]
    assert actions[0]["type"] == "delete"
    assert actions[0]["resourceId"] == "MedicationRequest/draft-quinine-1"


def test_evaluate_gives_the_same_cards_as_the_http_service(runner, as_of_config, call):
    """One engine: the CLI's answer for a request equals the web service's, uuids included."""
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--config", str(as_of_config)])
    assert result.exit_code == 0, result.output
    request = json.loads(QUININE_FULL.read_text(encoding="utf-8"))
    response = call("legcramp-order-select", request)
    assert response.status_code == 200
    assert json.loads(_stdout(result)) == response.get_json()


def test_evaluate_answers_a_refill_request_with_the_refill_service(runner, as_of_config,
                                                                   tmp_path):
    path = tmp_path / "refill.json"
    path.write_text(json.dumps(load_request("medication-refill-quinine")), encoding="utf-8")
    result = runner.invoke(main, ["evaluate", str(path), "--config", str(as_of_config)])
    assert result.exit_code == 0, result.output
    [card] = json.loads(_stdout(result))["cards"]
    assert card["summary"].startswith(QUININE_SUMMARY_START)
    assert card["suggestions"][0]["actions"][0]["resourceId"] == (
        "MedicationRequest/refill-quinine-1")


def test_evaluate_with_explicit_service_uses_that_service(runner, as_of_config):
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--config", str(as_of_config),
                                  "--service", "legcramp-order-sign"])
    assert result.exit_code == 1
    body = json.loads(_stdout(result))
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"] == ["$.hook"]


def test_evaluate_invalid_request_exits_1_with_an_operation_outcome(runner, as_of_config, tmp_path):
    request = json.loads(QUININE_FULL.read_text(encoding="utf-8"))
    del request["hookInstance"]
    path = tmp_path / "no-hook-instance.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    result = runner.invoke(main, ["evaluate", str(path), "--config", str(as_of_config)])
    assert result.exit_code == 1
    body = json.loads(_stdout(result))
    assert contracts.violations("operation-outcome.schema.json", body) == []
    assert any("hookInstance" in issue.get("diagnostics", "") for issue in body["issue"])
    _no_traceback(result)


def test_evaluate_file_that_is_not_json_fails_with_a_clear_message(runner, tmp_path):
    path = tmp_path / "request.json"
    path.write_text("this is { not json", encoding="utf-8")
    result = runner.invoke(main, ["evaluate", str(path)])
    assert result.exit_code != 0
    assert "cannot read a JSON request" in result.output
    assert str(path) in result.output
    _no_traceback(result)


def test_evaluate_missing_file_fails_without_traceback(runner, tmp_path):
    result = runner.invoke(main, ["evaluate", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    _no_traceback(result)


def test_evaluate_request_for_an_unknown_hook_asks_for_service(runner, tmp_path):
    path = tmp_path / "encounter-start.json"
    path.write_text(json.dumps({"hook": "encounter-start", "hookInstance": "x", "context": {}}),
                    encoding="utf-8")
    result = runner.invoke(main, ["evaluate", str(path)])
    assert result.exit_code == 1
    assert "--service" in result.output
    _no_traceback(result)


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[evaluation]\nas_of = "2026-11-21"\nasof = "2026-11-21"\n', "asof"),
        ("[server]\nwokers = 1\n", "wokers"),
        ("[fhri]\nmax_pages = 3\n", "fhri"),
    ],
    ids=["key-in-evaluation", "key-in-server", "unknown-section"],
)
def test_config_with_unknown_key_fails_naming_the_key(runner, write_toml, toml, named):
    config = write_toml(toml)
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--config", str(config)])
    assert result.exit_code != 0
    assert named in result.output
    assert "cards" not in result.output
    _no_traceback(result)


def test_config_with_wrong_type_fails_naming_the_key(runner, write_toml):
    config = write_toml('[server]\nworkers = "two"\n')
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--config", str(config)])
    assert result.exit_code != 0
    assert "server.workers" in result.output
    _no_traceback(result)


def test_serve_with_unknown_config_key_fails_before_starting(runner, write_toml):
    config = write_toml("[server]\nwokers = 1\n")
    result = runner.invoke(main, ["serve", "--config", str(config)])
    assert result.exit_code != 0
    assert "wokers" in result.output
    _no_traceback(result)


def test_config_with_unknown_rule_id_fails_naming_the_rule(runner, write_toml):
    config = write_toml('[rules."quinine-leg-cramp"]\nenabled = false\n')
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--config", str(config)])
    assert result.exit_code != 0
    _no_traceback(result)
    assert "unknown rule" in result.output
    assert "quinine-leg-cramp" in result.output
    assert "cards" not in result.output


@pytest.mark.parametrize(
    ("setting", "named"),
    [("enabeld = false", "enabeld"), ('enabled = "false"', "enabled")],
    ids=["misspelt-key", "string-instead-of-boolean"],
)
def test_config_with_bad_rule_setting_fails_naming_the_key(runner, write_toml, setting, named):
    config = write_toml('[evaluation]\nas_of = "2026-11-21"\n\n'
                        f'[rules."quinine-leg-cramps"]\n{setting}\n')
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--config", str(config)])
    assert result.exit_code != 0
    assert named in result.output
    assert "quinine-leg-cramps" in result.output
    assert "cards" not in result.output
    _no_traceback(result)


def test_config_disabling_the_rule_silences_its_card(runner, write_toml):
    config = write_toml('[evaluation]\nas_of = "2026-11-21"\n\n'
                        '[rules."quinine-leg-cramps"]\nenabled = false\n')
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert json.loads(_stdout(result)) == {"cards": []}


# --- serve: a real gunicorn process ----------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "serve.toml"
    config.write_text('[server]\nworkers = 1\n\n[evaluation]\nas_of = "2026-11-21"\n',
                      encoding="utf-8")
    with serve(config, free_port(), tmp_path / "serve.log") as server:
        yield server.base
    assert server.process.returncode is not None


def test_serve_answers_discovery_calls_and_cors_preflight_end_to_end(served):
    health = requests.get(f"{served}/health", timeout=5)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    discovery = requests.get(f"{served}/cds-services", timeout=5)
    assert discovery.status_code == 200
    services = discovery.json()["services"]
    assert contracts.violations("discovery.schema.json", discovery.json()) == []
    assert sorted(s["id"] for s in services) == [
        "legcramp-medication-refill", "legcramp-order-select", "legcramp-order-sign",
        "legcramp-patient-view"]

    request = json.loads(QUININE_MALARIA_SIGN.read_text(encoding="utf-8"))
    answer = requests.post(f"{served}/cds-services/legcramp-order-sign", json=request, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {"cards": []}

    preflight = requests.options(
        f"{served}/cds-services/legcramp-order-sign",
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=5,
    )
    assert 200 <= preflight.status_code < 300
    assert preflight.headers.get("Access-Control-Allow-Origin") in ("*", SANDBOX_ORIGIN)
    allowed_headers = {h.strip().lower() for h in
                       preflight.headers.get("Access-Control-Allow-Headers", "").split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    allowed_methods = {m.strip().upper() for m in
                       preflight.headers.get("Access-Control-Allow-Methods", "").split(",")}
    assert "POST" in allowed_methods


def test_serve_stops_on_sigterm_with_the_cards_it_showed_written(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\nworkers = 1\n\n[store]\nurl = "sqlite:///{tmp_path}/s.db"\n',
                      encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [console_script(), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                    break
            except requests.RequestException:  # refused, or accepted before a worker is up
                time.sleep(0.2)
        assert process.poll() is None, "serve exited before answering"
        answer = requests.post(f"http://127.0.0.1:{port}/cds-services/legcramp-order-select",
                               json=load_request("order-select-quinine-full-prefetch"),
                               timeout=10)
        assert answer.status_code == 200, answer.text
        shown = {card["uuid"] for card in answer.json()["cards"]}
        assert shown
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        stop(process)
    store = Store(f"sqlite:///{tmp_path}/s.db")
    try:
        assert {row["card_uuid"] for row in store.cards_since(None)} == shown
    finally:
        store.close()


def test_a_stopping_worker_writes_the_cards_it_still_holds(make_app):
    app = make_app()
    engine = app.extensions["legcramp_engine"]
    store = engine.store.get()
    gate, write = threading.Event(), store.record_shown
    store.record_shown = lambda batches: (gate.wait(10), write(batches))
    answer = app.test_client().post("/cds-services/legcramp-order-select",
                                    json=load_request("order-select-quinine-full-prefetch"))
    shown = {card["uuid"] for card in answer.get_json()["cards"]}
    assert engine.card_log.pending(shown) == shown
    threading.Timer(0.2, gate.set).start()
    close_worker_engine(None, SimpleNamespace(wsgi=app))
    assert engine.card_log.pending(shown) == set()
    check = Store(engine.config.store.url)
    try:
        assert {row["card_uuid"] for row in check.cards_since(None)} == shown
    finally:
        check.close()
    close_worker_engine(None, SimpleNamespace(wsgi=None))  # a worker that never loaded the app


def test_serve_with_unknown_rule_id_fails_before_starting_without_traceback(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text('[server]\nworkers = 1\n\n[rules."quinine-leg-cramp"]\nenabled = false\n',
                      encoding="utf-8")
    process = subprocess.Popen(
        [console_script(), "serve", "--host", "127.0.0.1", "--port", str(free_port()),
         "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        stop(process)
        pytest.fail("serve kept running with an unknown rule id in its configuration")
    finally:
        stop(process)
    text = output.decode(errors="replace")
    assert process.returncode != 0
    assert "Traceback" not in text, text
    assert "quinine-leg-cramp" in text
