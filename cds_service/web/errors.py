"""Domain errors as HTTP answers: the one place that knows which status each error is.

The engine raises the errors of `cds_service.errors` and never names a status; this module maps
each to its status and writes the FHIR OperationOutcome (`application/fhir+json`), with
`Retry-After` where the error says when to come back.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response

from cds_service.errors import (
    DataUnavailable,
    InvalidRequest,
    Issue,
    RequestError,
    RequestTooLarge,
    Unavailable,
    UnknownService,
    UnsupportedMediaType,
    operation_outcome,
)

# Most specific first: the first class an error is an instance of gives its status.
STATUS_OF: tuple[tuple[type[RequestError], int], ...] = (
    (InvalidRequest, 400),
    (UnknownService, 404),
    (RequestTooLarge, 413),
    (UnsupportedMediaType, 415),
    (DataUnavailable, 412),
    (Unavailable, 503),
)


def status_of(error: RequestError) -> int:
    """The HTTP status of a domain error (500 for a kind this table does not know: a fault)."""
    return next((status for kind, status in STATUS_OF if isinstance(error, kind)), 500)


def json_response(body: Any, status: int = 200, content_type: str = "application/json") -> Response:
    try:
        data = orjson.dumps(body)
    except TypeError:  # an integer past 64 bits, echoed from a request the standard parser read
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(data, status=status, content_type=f"{content_type}; charset=utf-8")


def outcome(status: int, *issues: Issue, headers: dict[str, str] | None = None) -> Response:
    """An OperationOutcome answer with this status."""
    response = json_response(operation_outcome(issues), status, "application/fhir+json")
    response.headers.update(headers or {})
    return response


def error_response(error: RequestError) -> Response:
    """The answer to a domain error: its status, its issues, Retry-After when it has one."""
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return outcome(status_of(error), *error.issues, headers=headers)
