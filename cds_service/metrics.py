"""Prometheus metrics: their definitions, the few calls that move them, and the exposition.

Every label value is from a fixed set or an id of our own making (service id, rule id, prefetch
key): never a path, URL, host, patient id, token or any other value a request can choose. Free
text that reaches a helper here is mapped to a fixed slug, and anything not on a list becomes
"other" (or "unknown"), so a hostile client cannot create a new time series.

Under gunicorn, `legcramp-cds serve` sets PROMETHEUS_MULTIPROC_DIR to a fresh directory before
any worker imports prometheus_client: each worker then writes its values to files there, a
worker that exits is marked dead by the master, and GET /metrics aggregates the files of all
workers with `MultiProcessCollector`. Without the variable (tests, `evaluate`) the process's
default registry is used.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The text exposition format 0.0.4, which generate_latest writes (newer prometheus_client
# versions advertise 1.0.0 as CONTENT_TYPE_LATEST for the same text).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

UNKNOWN = "unknown"
OTHER = "other"


def package_version() -> str:
    """The installed legcramp-cds version (pyproject.toml's, as the install recorded it)."""
    try:
        return metadata.version("legcramp-cds")
    except metadata.PackageNotFoundError:  # run from a tree that was never installed
        return UNKNOWN


# Build ------------------------------------------------------------------------------------------
VERSION = package_version()
BUILD_INFO = Gauge(
    "legcramp_cds_build_info",
    "Always 1: the legcramp-cds version and the Python version this process runs.",
    ["version", "python_version"],
    multiprocess_mode="max",  # one series over all workers, not one per process
)
BUILD_INFO.labels(VERSION, platform.python_version()).set(1)

# HTTP ------------------------------------------------------------------------------------------
ENDPOINTS = frozenset({"discovery", "service_call", "feedback", "health", "ready", "metrics"})
METHODS = frozenset({"GET", "POST", "OPTIONS", "HEAD"})

HTTP_REQUEST_SECONDS = Histogram(
    "legcramp_cds_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, endpoint, service (the service id on service "
    "and feedback routes, 'unknown' for an id that is not a service, else the endpoint name) "
    "and HTTP status.",
    ["method", "endpoint", "service", "status"],
)

# Cards and prefetch ----------------------------------------------------------------------------
INDICATORS = frozenset({"info", "warning", "critical"})
NOT_RECORDED_REASONS = frozenset({"store", "queue_full", "closing"})
PREFETCH_SOURCES = frozenset({"supplied", "fetched", "null", "missing"})

CARDS = Counter(
    "legcramp_cds_cards_total",
    "Cards returned, by service, rule (the card's topic code) and indicator.",
    ["service", "rule", "indicator"],
)
CARDS_NOT_RECORDED = Counter(
    "legcramp_cds_cards_not_recorded_total",
    "Cards answered but not kept for the feedback report, by reason: the store failed, the "
    "write queue was full (the store was away too long), or the process was closing.",
    ["reason"],
)
# Why a key was unobtainable besides a FHIR failure (FHIR_OUTCOMES).
UNAVAILABLE_EXTRA = frozenset({"refused", "no_server", "template"})
PREFETCH_UNAVAILABLE = Counter(
    "legcramp_cds_prefetch_unavailable_total",
    "Prefetch keys answered 412, by key and why (refused: fhirServer not allowed for this "
    "caller; no_server; template; or the FHIR failure): the caller is told the key only.",
    ["key", "reason"],
)
ORDERS_UNIDENTIFIED = Counter(
    "legcramp_cds_orders_unidentified_total",
    "Orders a hook asked about that name no drug at all (no code, no name, no coded "
    "ingredient): judged by no rule and never guessed at, by service.",
    ["service"],
)
RULE_FAILURES = Counter(
    "legcramp_cds_rule_failures_total",
    "Rules that raised on a request's data, by service and rule: the answer carried a 'not "
    "checked' card in place of the rule's cards, and the log has the error (no patient data).",
    ["service", "rule"],
)
PREFETCH_KEYS = Counter(
    "legcramp_cds_prefetch_keys_total",
    "Prefetch keys a service call needed, by key and where the data came from: supplied by the "
    "client, fetched from fhirServer, null (the client says there is none) or missing (412).",
    ["key", "source"],
)

# FHIR ------------------------------------------------------------------------------------------
FHIR_KINDS = frozenset({"read", "search", "page"})
FHIR_OUTCOMES = frozenset({
    "ok", "not_found", "http_error", "redirect", "timeout", "unreachable", "too_large",
    "not_json", "outside_base", "budget_spent", "not_a_resource", "operation_outcome",
    "not_a_bundle", "too_many_pages", "circuit_open",
})
FHIR_SUCCESS = frozenset({"ok", "not_found"})

FHIR_REQUEST_SECONDS = Histogram(
    "legcramp_cds_fhir_request_duration_seconds",
    "Time of one call to a FHIR server, by kind (read, search = a search's first page, page = a "
    "next page) and outcome (ok, not_found or the failure).",
    ["kind", "outcome"],
)
FHIR_FAILURES = Counter(
    "legcramp_cds_fhir_failures_total",
    "FHIR calls that gave no usable data, by kind and reason (never the URL or host).",
    ["kind", "reason"],
)

# Authentication --------------------------------------------------------------------------------
AUTH_REASONS = frozenset({
    "missing_token", "malformed", "iss", "typ", "alg", "kid", "jku", "jwks", "unknown_kid",
    "aud", "bad_signature", "missing_claim", "invalid", "expired", "not_yet_valid", "too_old",
    "tenant", "replay", "replay_cache", "other",
})

AUTH_FAILURES = Counter(
    "legcramp_cds_auth_failures_total",
    "Requests refused with 401, by the check that failed.",
    ["reason"],
)

# Feedback --------------------------------------------------------------------------------------
FEEDBACK_OUTCOMES = frozenset({"accepted", "overridden"})

FEEDBACK_ITEMS = Counter(
    "legcramp_cds_feedback_items_total",
    "Feedback items received in batches that were stored, by service and outcome.",
    ["service", "outcome"],
)
FEEDBACK_STORED = Counter(
    "legcramp_cds_feedback_stored_total",
    "Feedback items by what the store did with them: stored (new) or duplicate (seen before).",
    ["service", "result"],
)


def _bounded(value: object, allowed: frozenset[str], fallback: str = OTHER) -> str:
    return value if isinstance(value, str) and value in allowed else fallback


def observe_request(method: str, endpoint: str | None, service: str | None, status: int,
                    seconds: float) -> None:
    """`endpoint` is the Flask endpoint's short name; `service` a known service id or None."""
    name = _bounded(endpoint, ENDPOINTS, "unmatched" if endpoint is None else OTHER)
    code = str(status) if 100 <= status <= 599 else OTHER
    HTTP_REQUEST_SECONDS.labels(
        _bounded(method, METHODS), name, service if service is not None else name, code
    ).observe(seconds)


def count_cards(service: str, cards: Iterable[tuple[str | None, str]]) -> None:
    """`cards`: (rule id, indicator) per card returned."""
    for rule, indicator in cards:
        CARDS.labels(service, rule or UNKNOWN, _bounded(indicator, INDICATORS)).inc()


def count_rule_failure(service: str, rule: str) -> None:
    RULE_FAILURES.labels(service, rule).inc()


def count_unidentified_orders(service: str, count: int) -> None:
    if count:
        ORDERS_UNIDENTIFIED.labels(service).inc(count)


def count_prefetch_unavailable(codes: Mapping[str, str]) -> None:
    """`codes`: prefetch key -> why it could not be had (a fixed slug)."""
    for key, code in codes.items():
        PREFETCH_UNAVAILABLE.labels(key, _bounded(code, FHIR_OUTCOMES | UNAVAILABLE_EXTRA)).inc()


def count_cards_not_recorded(reason: str, count: int) -> None:
    CARDS_NOT_RECORDED.labels(_bounded(reason, NOT_RECORDED_REASONS)).inc(count)


def count_prefetch(sources: Mapping[str, str]) -> None:
    """`sources`: declared prefetch key -> supplied, fetched, null or missing."""
    for key, source in sources.items():
        PREFETCH_KEYS.labels(key, _bounded(source, PREFETCH_SOURCES)).inc()


def observe_fhir(kind: str, outcome: str, seconds: float) -> None:
    kind, outcome = _bounded(kind, FHIR_KINDS), _bounded(outcome, FHIR_OUTCOMES)
    FHIR_REQUEST_SECONDS.labels(kind, outcome).observe(seconds)
    if outcome not in FHIR_SUCCESS:
        FHIR_FAILURES.labels(kind, outcome).inc()


FHIR_CIRCUIT_OPENED = Counter(
    "legcramp_cds_fhir_circuit_opened_total",
    "Times a FHIR server was left alone for fhir.breaker_cooldown_seconds after "
    "fhir.breaker_failures slow or unreachable calls in a row (never the URL or host).",
)


def count_fhir_circuit_opened() -> None:
    FHIR_CIRCUIT_OPENED.inc()


def count_fhir_failure(kind: str, reason: str) -> None:
    """A failure that is not one call's (e.g. a search stopped at the page cap)."""
    FHIR_FAILURES.labels(_bounded(kind, FHIR_KINDS), _bounded(reason, FHIR_OUTCOMES)).inc()


def count_auth_failure(reason: str) -> None:
    AUTH_FAILURES.labels(_bounded(reason, AUTH_REASONS)).inc()


def count_feedback(service: str, outcomes: Iterable[object], stored: int,
                   duplicates: int) -> None:
    for outcome in outcomes:
        FEEDBACK_ITEMS.labels(service, _bounded(outcome, FEEDBACK_OUTCOMES)).inc()
    if stored:
        FEEDBACK_STORED.labels(service, "stored").inc(stored)
    if duplicates:
        FEEDBACK_STORED.labels(service, "duplicate").inc(duplicates)


def multiprocess_mode() -> bool:
    """Whether values are kept in files (PROMETHEUS_MULTIPROC_DIR was set when prometheus_client
    was imported), whatever the environment says now."""
    return values.ValueClass is not values.MutexValue


def exposition() -> bytes:
    """Every metric in the text format: of all gunicorn workers in multiprocess mode, else of
    this process."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def serve_apart(host: str, port: int) -> None:
    """`GET /metrics` on its own listener, in gunicorn's master: a port the operator keeps off
    the network the EHRs reach (firewall, a NetworkPolicy), with no CORS and no JWT. It answers
    the same exposition as the service's own `/metrics` (every worker's files)."""
    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:  # no access lines among the JSON logs
            pass

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") != "GET":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        body = exposition()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE),
                                  ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store"),
                                  ("X-Content-Type-Options", "nosniff")])
        return [body]

    server = make_server(host, port, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: the worker's live gauges go (its counters stay counted)."""
    if multiprocess_mode() and os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
