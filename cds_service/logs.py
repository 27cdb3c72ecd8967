"""Log lines as JSON objects, with the `extra` fields a call adds: one format for every line.

Callers pass counts, ids of our own making (service, rule, hookInstance) and reasons; never
request bodies, patient identifiers, JWTs or access tokens. A line logged while a request is
handled also carries that request's `request_id` (and its `hook_instance` once the engine has
read a valid one), added by `RequestContextFilter` from `flask.g`.

`serve` writes nothing else: `configure_process_logging` gives the same JSON to gunicorn's own
lines (its `logger_class`, `gunicorn_logger_class()`), to every other library's (the root
logger, `warning` and above), to Python warnings, and to an exception nothing caught, in the
master and in each worker. An exception is logged as its type and the frames it went through,
never its message (which can quote what a request carried), and gunicorn's lines never quote a
request's URI or a refused request line.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import threading
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from flask import g, has_request_context

from cds_service.config import LOG_LEVELS

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
SERVICE_LOGGER = "legcramp_cds"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            kind, _, frames = record.exc_info
            entry.setdefault("error", kind.__name__)
            entry.setdefault("where", "".join(traceback.format_tb(frames, limit=-5)))
        return json.dumps(entry, default=str, ensure_ascii=False)


class RequestContextFilter(logging.Filter):
    """Adds the current request's `request_id` and `hook_instance` (when known) to a record
    that does not already name them. Outside a request it adds nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            for name in ("request_id", "hook_instance"):
                value = g.get(name)
                if value is not None and not hasattr(record, name):
                    setattr(record, name, value)
        return True


def bind_hook_instance(hook_instance: str) -> None:
    """The engine read a valid hookInstance: the request's later log lines carry it."""
    if has_request_context():
        g.hook_instance = hook_instance[:200]  # not the client's megabyte on every line


def json_handler() -> logging.Handler:
    """A handler writing JSON lines to stderr, with the request's ids."""
    handler = logging.StreamHandler(sys.stderr)
    _make_json(handler)
    return handler


def _make_json(handler: logging.Handler) -> None:
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())


def level_number(level: str) -> int:
    """`info` (or `INFO`) as logging's number; an unknown name is a ValueError."""
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; one of {', '.join(LOG_LEVELS)}")
    return logging.getLevelNamesMapping()[level.upper()]


def configure_logging(level: str = "info") -> None:
    """The service's own loggers (`legcramp_cds.*`): JSON lines on stderr from `level` up."""
    root = logging.getLogger(SERVICE_LOGGER)
    root.handlers[:] = [json_handler()]
    root.setLevel(level_number(level))
    root.propagate = False
    # urllib3 logs request lines (with patient ids in FHIR search URLs) at DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


class _ProcessHandler(logging.StreamHandler):
    """The root logger's JSON handler, told apart from handlers others installed there."""


def configure_process_logging(level: str = "info") -> None:
    """Everything a `serve` process (master or worker) writes is a JSON line on stderr: the
    service's loggers from `level` up, any other library's (through the root logger) from
    `warning` up or `level` if higher, Python warnings, and exceptions nothing caught (in any
    thread). gunicorn's own loggers take `gunicorn_logger_class()`."""
    configure_logging(level)
    floor = max(logging.WARNING, level_number(level))
    handler = _ProcessHandler(sys.stderr)
    handler.setLevel(floor)  # also for a library that set its own logger's level lower
    _make_json(handler)
    top = logging.getLogger()
    top.handlers[:] = [h for h in top.handlers if not isinstance(h, _ProcessHandler)] + [handler]
    top.setLevel(floor)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


_process_log = logging.getLogger(f"{SERVICE_LOGGER}.process")


def _log_uncaught(kind: type[BaseException], value: BaseException,
                  frames: TracebackType | None) -> None:
    _process_log.critical("uncaught exception", exc_info=(kind, value, frames))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:  # as threading's own hook
        return
    _process_log.critical("uncaught exception in a thread",
                          exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
                          extra={"thread_name": getattr(args.thread, "name", None)})


_QUOTED = re.compile(r"b?['\"(]")


class _GunicornRequestFilter(logging.Filter):
    """gunicorn quotes what a client sent in two of its lines: the URI, query string included,
    of a request that failed ("Error handling request %s"), and the bad request line or header
    of one it refused ("Invalid request from ip=...: Invalid HTTP request line: '...'"). Either
    can hold a patient identifier, so both are cut to what they say happened."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Error handling request %s":
            record.msg, record.args = "Error handling request", ()
        elif isinstance(record.msg, str) and record.msg.startswith("Invalid request from ip="):
            # gunicorn's errors end in the repr of what was sent: cut where it opens.
            record.msg, record.args = _QUOTED.split(record.msg, maxsplit=1)[0].rstrip(": "), ()
        return True


@functools.cache
def gunicorn_logger_class() -> type:
    """gunicorn's Logger, its error and access lines written as JSON (gunicorn's
    `logger_class` setting; its level is gunicorn's `loglevel`). Made on first use, so that
    importing this module does not import gunicorn before `serve` has patched for gevent."""
    from gunicorn.glogging import Logger

    class JsonGunicornLogger(Logger):
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    _make_json(handler)
                    handler.addFilter(_GunicornRequestFilter())

    return JsonGunicornLogger
