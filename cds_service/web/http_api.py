"""HTTP for CDS Hooks 2.0: discovery, service calls, feedback, health; errors as OperationOutcome.

Every non-200 answer is a FHIR OperationOutcome (`application/fhir+json`) that says what was
wrong without echoing the request, and no exception reaches the client as a stack trace. Every
answer carries an `X-Request-ID` (the caller's, when it is a sane one, else a new uuid4) that
every log line of the request carries too; each request ends with one access-log line (a service
call's findings ride on it: one line per request) and one observation of the request-latency
metric.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
import uuid
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge

from cds_service import metrics
from cds_service.errors import (
    AuthError,
    InvalidRequest,
    Issue,
    RequestError,
    RequestTooLarge,
    StoreError,
    Unavailable,
    UnsupportedMediaType,
)
from cds_service.pipeline.engine import CdsEngine
from cds_service.pipeline.request import (
    ANONYMOUS,
    TEST_TRAFFIC_HEADER,
    TEST_TRAFFIC_VALUE,
    Principal,
)
from cds_service.web import collector
from cds_service.web.admission import LargeRequestGate
from cds_service.web.auth import Authenticator
from cds_service.web.body import read_body
from cds_service.web.errors import error_response, json_response, outcome, status_of

log = logging.getLogger("legcramp_cds.http")
access_log = logging.getLogger("legcramp_cds.access")
api = Blueprint("cds_hooks", __name__)
# Probes and the metrics carry no patient data: no JWT is asked for them.
PUBLIC_ENDPOINTS = frozenset({"cds_hooks.health", "cds_hooks.ready", "cds_hooks.metrics"})
SERVICE_ENDPOINTS = frozenset({"service_call", "feedback"})
REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

JSON_TYPES = ("application/json", "application/fhir+json")


def _engine() -> CdsEngine:
    return current_app.extensions["legcramp_engine"]


def parse_json(raw: bytes) -> Any:
    """orjson's parse, with the collector paused for a large body (and always resumed): a
    chunked body has no length to pause its whole request by (see `collector`)."""
    with collector.paused(len(raw)):
        return orjson.loads(raw)


def _read_json_bytes() -> bytes:
    """The body of a JSON request, whole; 415 for another media type, 413 past the limit."""
    mimetype = (request.mimetype or "").lower()
    if mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(
            [Issue("the request body must be application/json", code="not-supported")]
        )
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    raw = read_body(request, limit)  # raises RequestEntityTooLarge past a Content-Length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body is cut at the limit rather than refused: refuse it here.
        raise RequestEntityTooLarge()
    return raw


def _read_json_body() -> Any:
    return _parsed(_read_json_bytes())


def _parsed(raw: bytes) -> Any:
    """The document `raw` holds, within the hostile-input limits (400 otherwise)."""
    from cds_service.web.limits import (  # local: the limits belong to this function alone
        Limits,
        NotJsonNumber,
        check_limits,
        check_parsed_limits,
        finite_float,
        reject_constant,
        too_deep,
    )

    limits = Limits.from_server(current_app.config["LEGCRAMP_CONFIG"].server)
    try:
        document = parse_json(raw)
    except orjson.JSONDecodeError:
        pass  # the standard parser below says what is wrong, and where
    else:
        check_parsed_limits(document, limits, raw)
        return document
    try:
        document = json.loads(raw, parse_constant=reject_constant, parse_float=finite_float)
    except RecursionError:  # the C decoder recurses: past ~1000 levels it gives up
        raise too_deep(limits.max_json_depth) from None
    except NotJsonNumber as exc:
        raise InvalidRequest(
            [Issue(f"the request body is not valid JSON: {exc}", code="structure")]
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = getattr(exc, "pos", None)
        where = f" at character {position}" if position is not None else ""
        raise InvalidRequest(
            [Issue(f"the request body is not valid JSON{where}", code="structure")]
        ) from None
    except ValueError:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise InvalidRequest(
            [Issue("the request body is not valid JSON: a number is too long", code="structure")],
        ) from None
    check_limits(document, limits)
    return document


@api.before_request
def authenticate() -> None:
    """Every CDS Hooks endpoint but the CORS preflight (and the liveness probe) needs the JWT."""
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS:
        return
    authenticator: Authenticator = current_app.extensions["legcramp_auth"]
    g.principal = authenticator.authenticate(request.headers.get("Authorization"), request.path)


def _principal() -> Principal:
    return g.get("principal", ANONYMOUS)


@api.get("/cds-services")
def discovery() -> Response:
    return json_response(_engine().discovery())


@api.post("/cds-services/<service_id>")
def service_call(service_id: str) -> Response:
    engine = _engine()
    engine.service(service_id)  # 404 before reading a body we would not use
    gate: LargeRequestGate = current_app.extensions["legcramp_gate"]
    # The conformance kit marks its calls: they are answered as any other, never recorded as
    # cards shown (governance data), so its test feedback cannot land in the report either.
    test_traffic = (request.headers.get(TEST_TRAFFIC_HEADER, "").strip().lower()
                    == TEST_TRAFFIC_VALUE)
    g.call_summary = {}  # written on the request's one access line
    with gate.admit(request.content_length):
        raw = _read_json_bytes()
        # From the parse until the document is dropped, not while the client sends the body
        # (see `collector`); the bytes go as soon as they are parsed.
        with collector.paused(len(raw)):
            document = _parsed(raw)
            del raw
            answer = engine.call(service_id, document, _principal(),
                                 test_traffic=test_traffic, summary=g.call_summary)
            del document
    return json_response(answer)


@api.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    engine = _engine()
    engine.service(service_id)
    return json_response(engine.feedback(service_id, _read_json_body(), _principal()))


@api.get("/health")
def health() -> Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


@api.get("/ready")
def ready() -> Response:
    """Readiness: the database answers (migrated, reachable)."""
    try:
        ok = current_app.extensions["legcramp_store"].get().ready()
    except StoreError:
        ok = False
    if not ok:
        raise Unavailable([Issue("the database is not reachable", code="transient")])
    return json_response({"status": "ready"})


@api.get("/metrics", endpoint="metrics")
def prometheus_metrics() -> Response:
    """Prometheus text exposition (counts and timings by service, rule, key and reason only:
    no patient data, hence no JWT). 404 when [server] metrics_enabled is false."""
    server = current_app.config["LEGCRAMP_CONFIG"].server
    if not server.metrics_enabled or server.metrics_port:  # off, or on its own listener
        raise NotFound()
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE)


def _endpoint_name() -> str | None:
    """The short name of the matched route (`service_call`, `health`, ...), None if none."""
    return request.endpoint.rpartition(".")[2] if request.endpoint else None


def _service_label(endpoint: str | None) -> str | None:
    """The service id on service and feedback routes ("unknown" when it names no service)."""
    if endpoint not in SERVICE_ENDPOINTS:
        return None
    service_id = (request.view_args or {}).get("service_id")
    return service_id if service_id in _engine().services else metrics.UNKNOWN


def register_request_hooks(app: Flask) -> None:
    """Request ids, the access log and the request metrics, for every route of `app`."""

    @app.before_request
    def start_request() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else str(uuid.uuid4())

    @app.after_request
    def finish_request(response: Response) -> Response:
        if g.get("request_id") is None:  # a request that failed before start_request
            g.request_id = str(uuid.uuid4())
        response.headers[REQUEST_ID_HEADER] = g.request_id
        # Answers carry what was found in a patient's chart: never cached by a browser or a
        # proxy, never sniffed as something other than what their content type says.
        endpoint = _endpoint_name()
        response.headers["X-Content-Type-Options"] = "nosniff"
        if endpoint in SERVICE_ENDPOINTS or endpoint == "discovery" or response.status_code >= 400:
            response.headers["Cache-Control"] = "no-store"
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        service = _service_label(endpoint)
        method = request.method if request.method in metrics.METHODS else metrics.OTHER
        metrics.observe_request(method, endpoint, service, response.status_code, seconds)
        # One line per request: a service call's findings (cards, prefetch, resources read)
        # ride on it rather than on a line of their own.
        access_log.info("request", extra={
            "method": method, "endpoint": endpoint or "unmatched", "service": service,
            "status": response.status_code, "duration_ms": round(seconds * 1000, 2),
            **g.get("call_summary", {})})
        return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def request_error(error: RequestError) -> Response:
        status = status_of(error)
        if status >= 500:
            log.error("request failed", extra={"status": status})
        return error_response(error)

    @app.errorhandler(AuthError)
    def unauthorized(error: AuthError) -> Response:
        metrics.count_auth_failure(error.code)
        log.warning("authentication failed", extra={
            "check": error.reason, "code": error.code, "iss": error.iss, "kid": error.kid,
            "jti": error.jti, "path": request.path,
        })
        return outcome(401, Issue("authentication failed", code="login"),
                       headers={"WWW-Authenticate": 'Bearer realm="cds-services"'})

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return error_response(RequestTooLarge([Issue(
            f"the request body is larger than the limit of {limit} bytes", code="too-costly")]))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = {404: "not-found", 405: "not-supported"}.get(status, "processing")
        response = outcome(status, Issue(error.name, code=code))
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.error(
            "unexpected error",
            extra={
                "error": type(error).__name__,
                "where": "".join(traceback.format_tb(error.__traceback__, limit=-5)),
            },
        )
        return outcome(500, Issue("the service failed to process this request",
                                  code="exception", severity="fatal"))
