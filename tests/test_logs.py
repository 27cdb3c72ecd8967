"""One JSON format for every line a `serve` process writes: the service's, gunicorn's own, other
libraries', Python warnings and uncaught exceptions; the level from `[server] log_level`.

In process, the pieces `serve` wires together (`configure_process_logging`, gunicorn's
`logger_class`); then a real `legcramp-cds serve`, whose whole output is read line by line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gunicorn.config import Config as GunicornConfig

from cds_service.config import ConfigError, load_config
from cds_service.logs import (
    JsonFormatter,
    configure_process_logging,
    gunicorn_logger_class,
    level_number,
)
from cds_service.metrics import package_version
from tests.conftest import load_request
from tests.support.live_server import free_port, serve, stop

SERVICE_PATH = "/cds-services/legcramp-order-sign"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` as JSON (a line that is not JSON fails the test, naming it)."""
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a line that is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= set(record), record
        records.append(record)
    return records


# --- the formatter ---------------------------------------------------------------------------


def test_an_exception_is_logged_as_its_type_and_frames_never_its_message():
    secret = f"Hartley-{uuid.uuid4().hex}"
    try:
        raise ValueError(f"bad birth date for {secret}")
    except ValueError:
        record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1,
                                   "Error handling request %s", ("/cds-services/x",),
                                   sys.exc_info())
    (line,) = json_lines(JsonFormatter().format(record))
    assert line["message"] == "Error handling request /cds-services/x"
    assert line["error"] == "ValueError"
    assert "test_an_exception_is_logged_as_its_type_and_frames" in line["where"]
    assert secret not in json.dumps(line)


# --- the configured level --------------------------------------------------------------------


def test_the_log_level_defaults_to_info_and_takes_the_five_names():
    assert load_config(None).server.log_level == "info"
    for name in ("debug", "info", "warning", "error", "critical"):
        config = load_config(None, overrides={"server": {"log_level": name}})
        assert level_number(config.server.log_level) == getattr(logging, name.upper())


@pytest.mark.parametrize("level", ["INFO", "verbose", "", "warn"])
def test_another_log_level_is_refused_naming_the_key(level):
    with pytest.raises(ConfigError, match=r"server\.log_level"):
        load_config(None, overrides={"server": {"log_level": level}})


# --- gunicorn's own lines --------------------------------------------------------------------


@pytest.fixture
def gunicorn_logger(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """gunicorn's Logger as `serve` configures it (errorlog "-", `loglevel`), writing to the
    captured stderr; its handlers are taken off again afterwards."""
    made: list[Any] = []

    def make(level: str, accesslog: str | None = None) -> Any:
        cfg = GunicornConfig()
        cfg.set("logger_class", gunicorn_logger_class())
        cfg.set("errorlog", "-")
        cfg.set("accesslog", accesslog)
        cfg.set("loglevel", level)
        logger = cfg.logger_class(cfg)
        made.append(logger)
        return logger

    yield make
    for logger in made:
        for log in (logger.error_log, logger.access_log):
            log.handlers[:] = []


def test_serve_gives_gunicorn_the_json_logger_class():
    from gunicorn.glogging import Logger

    cls = gunicorn_logger_class()
    assert issubclass(cls, Logger) and cls is not Logger
    assert gunicorn_logger_class() is cls  # made once


def test_gunicorn_error_lines_are_json(gunicorn_logger, capsys):
    logger = gunicorn_logger("info")
    logger.info("Booting worker with pid: %s", 4242)
    logger.warning("Worker (pid:%s) was sent SIGKILL! Perhaps out of memory?", 4243)
    secret = f"boom-{uuid.uuid4().hex}"
    try:
        raise OSError(secret)
    except OSError:
        logger.exception("Exception in worker process")
    lines = json_lines(capsys.readouterr().err)
    assert [(line["logger"], line["level"], line["message"]) for line in lines] == [
        ("gunicorn.error", "info", "Booting worker with pid: 4242"),
        ("gunicorn.error", "warning", "Worker (pid:4243) was sent SIGKILL! Perhaps out of memory?"),
        ("gunicorn.error", "error", "Exception in worker process"),
    ]
    assert lines[2]["error"] == "OSError"
    assert secret not in json.dumps(lines)


def test_gunicorn_lines_never_quote_what_a_client_sent(gunicorn_logger, capsys):
    secret = f"cramps-{uuid.uuid4().hex}"
    logger = gunicorn_logger("info")
    try:
        raise ConnectionResetError(104, "reset")
    except OSError:
        logger.exception("Error handling request %s", f"/cds-services/x?patient={secret}")
    for sent in (f"GET /Patient/{secret} HTTP/1.1 x", f"GET /?name='{secret}' HTTP/1.1 x"):
        logger.warning(f"Invalid request from ip=127.0.0.1: Invalid HTTP request line: {sent!r}")
    logger.warning(f"Invalid request from ip=127.0.0.1: No more data after: {secret.encode()!r}")
    lines = json_lines(capsys.readouterr().err)
    assert [line["message"] for line in lines] == [
        "Error handling request",
        "Invalid request from ip=127.0.0.1: Invalid HTTP request line",
        "Invalid request from ip=127.0.0.1: Invalid HTTP request line",
        "Invalid request from ip=127.0.0.1: No more data after",
    ]
    assert secret not in json.dumps(lines)


def test_gunicorn_takes_the_configured_level(gunicorn_logger, capsys):
    logger = gunicorn_logger("warning")
    logger.info("Booting worker with pid: %s", 1)
    logger.debug("Closing connection.")
    logger.warning("Worker timeout")
    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == ["Worker timeout"]
    logger = gunicorn_logger("debug")
    logger.debug("Closing connection.")
    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == [
        "Closing connection."]


def test_gunicorn_access_lines_would_be_json_too(gunicorn_logger, capsys):
    """`serve` leaves gunicorn's access log off (the service writes its own access line, with
    no path); were an operator to turn it on, its lines would still be JSON."""
    logger = gunicorn_logger("info", accesslog="-")
    logger.access_log.info("an access line")
    (line,) = json_lines(capsys.readouterr().out)  # gunicorn writes access lines to stdout
    assert line["logger"] == "gunicorn.access"


# --- the rest of the process -----------------------------------------------------------------


@contextlib.contextmanager
def process_logging(level: str) -> Iterator[None]:
    """`configure_process_logging(level)`, undone afterwards (root logger, service logger,
    warnings, exception hooks)."""
    root, service = logging.getLogger(), logging.getLogger("legcramp_cds")
    saved_root = (list(root.handlers), root.level)
    saved_service = (list(service.handlers), service.level, service.propagate)
    saved_hooks = (sys.excepthook, threading.excepthook)
    try:
        configure_process_logging(level)
        yield
    finally:
        logging.captureWarnings(False)
        sys.excepthook, threading.excepthook = saved_hooks
        root.handlers[:], root.level = saved_root
        service.handlers[:], service.level, service.propagate = saved_service


def test_other_libraries_warnings_and_uncaught_exceptions_are_json(capsys):
    secret = f"cramps-{uuid.uuid4().hex}"

    def fail_in_a_thread() -> None:
        raise KeyError(secret)

    with process_logging("info"):
        logging.getLogger("sqlalchemy.pool").warning("connection invalidated")
        logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
        logging.getLogger("legcramp_cds.test").info("service line")
        warnings.warn("a deprecated call", DeprecationWarning, stacklevel=1)
        thread = threading.Thread(target=fail_in_a_thread, name="card-writer")
        thread.start()
        thread.join()
        try:
            raise RuntimeError(secret)
        except RuntimeError:
            sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    lines = json_lines(capsys.readouterr().err)
    by_logger = {line["logger"]: line for line in lines}
    assert by_logger["sqlalchemy.pool"]["message"] == "connection invalidated"
    assert "alembic.runtime.migration" not in by_logger  # other libraries: warning and up
    assert by_logger["legcramp_cds.test"]["level"] == "info"  # the service: from `info`
    assert "a deprecated call" in by_logger["py.warnings"]["message"]
    uncaught = [line for line in lines if line["logger"] == "legcramp_cds.process"]
    assert [(u["message"], u["error"]) for u in uncaught] == [
        ("uncaught exception in a thread", "KeyError"), ("uncaught exception", "RuntimeError")]
    assert uncaught[0]["thread_name"] == "card-writer"
    assert secret not in json.dumps(lines)


def test_the_level_holds_for_the_service_and_floors_other_libraries_at_warning(capsys):
    with process_logging("error"):
        logging.getLogger("legcramp_cds.test").warning("service warning")
        logging.getLogger("sqlalchemy.pool").warning("library warning")
        logging.getLogger("legcramp_cds.test").error("service error")
    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == ["service error"]
    with process_logging("debug"):
        logging.getLogger("legcramp_cds.test").debug("service debug")
        logging.getLogger("urllib3.connectionpool").debug("GET /fhir/Patient/cramps-001")
    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == ["service debug"]


# --- a real `legcramp-cds serve` -------------------------------------------------------------


def _serve_config(tmp_path: Path, log_level: str) -> Path:
    config = tmp_path / "serve.toml"
    config.write_text(
        f'[server]\nworkers = 2\nlog_level = "{log_level}"\n\n'
        '[evaluation]\nas_of = "2026-11-21"\n\n'
        f'[store]\nurl = {json.dumps(f"sqlite:///{tmp_path}/s.sqlite3")}\n', encoding="utf-8")
    return config


def _call(base: str) -> tuple[str, dict[str, Any]]:
    request = load_request("order-sign-quinine-malaria")
    response = requests.post(f"{base}{SERVICE_PATH}", json=request, timeout=20)
    assert response.status_code == 200, response.text
    return response.headers["X-Request-ID"], request


def _send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return sock.recv(200)


def test_every_line_serve_writes_is_json(tmp_path):
    secret = f"cramps-{uuid.uuid4().hex}"
    with serve(_serve_config(tmp_path, "info"), free_port(), tmp_path / "serve.log") as live:
        request_id, request = _call(live.base)
        assert requests.get(f"{live.base}/no/such/route", timeout=10).status_code == 404
        # a request line gunicorn refuses itself (a lowercase method), quoting a patient id
        refused = _send_raw(live.port, f"{secret} / HTTP/1.1\r\n\r\n".encode())
        assert refused.startswith(b"HTTP/1.1 400"), refused
        stop(live.process)  # gunicorn's shutdown lines too
        assert live.process.returncode == 0
        lines = json_lines(live.output())
    (starting,) = [line for line in lines if line["message"] == "starting"]
    assert starting["version"] == package_version()
    gunicorn = [line["message"] for line in lines if line["logger"] == "gunicorn.error"]
    assert any(m.startswith("Starting gunicorn") for m in gunicorn), gunicorn
    assert len([m for m in gunicorn if m.startswith("Booting worker with pid")]) == 2, gunicorn
    assert "Shutting down: Master" in gunicorn, gunicorn
    mine = [line for line in lines if line.get("request_id") == request_id]
    (line,) = mine  # one line per request, the call's findings on it
    assert line["message"] == "request" and isinstance(line["cards"], int), line
    assert line["hook_instance"] == request["hookInstance"]
    access = [line for line in lines if line["logger"] == "legcramp_cds.access"]
    assert len(access) >= 3 and all("request_id" in line for line in access), access
    assert "Invalid request from ip=127.0.0.1: Invalid HTTP method" in gunicorn, gunicorn
    assert secret not in live.output()


def test_serve_at_warning_writes_no_info_line_of_its_own_or_gunicorns(tmp_path):
    with serve(_serve_config(tmp_path, "warning"), free_port(), tmp_path / "serve.log") as live:
        _call(live.base)
        stop(live.process)
        lines = json_lines(live.output())
    assert {line["level"] for line in lines} <= {"warning", "error", "critical"}, lines
    assert any(line["message"].startswith("AUTHENTICATION IS OFF") for line in lines), lines
