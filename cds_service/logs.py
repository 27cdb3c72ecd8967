"""Log lines as JSON objects, with the `extra` fields a call adds.

Callers pass counts, ids of our own making (service, rule, hookInstance) and reasons; never
request bodies, patient identifiers, JWTs or access tokens. A line logged while a request is
handled also carries that request's `request_id` (and its `hook_instance` once the engine has
read a valid one), added by `RequestContextFilter` from `flask.g`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


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


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger("legcramp_cds")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # urllib3 logs request lines (with patient ids in FHIR search URLs) at DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
