"""Log lines as JSON objects, with the `extra` fields a call adds.

Callers pass counts, ids of our own making (service, rule, hookInstance) and reasons; never
request bodies, patient identifiers, JWTs or access tokens.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

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


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("legcramp_cds")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # urllib3 logs request lines (with patient ids in FHIR search URLs) at DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
