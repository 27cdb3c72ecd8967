"""FHIR REST access: one pooled `requests.Session` per server, explicit timeouts, no redirects.

The access token from `fhirAuthorization` goes only to the `fhirServer` it came with: redirects
are not followed and `next` links that leave that base are refused. Failures become `FhirError`
whose text names what went wrong without the URL (it carries patient ids) or the token.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter

from cds_service import metrics
from cds_service.config import FhirConfig
from cds_service.errors import FhirError

FHIR_JSON = "application/fhir+json"
UTF8_BOM = b"\xef\xbb\xbf"
READ_SIZE = 256 * 1024  # most one receive hands over; the deadline is checked between them
T = TypeVar("T")
# urllib3 logs each request line, with the patient id of a FHIR search, at DEBUG.
logging.getLogger("urllib3").setLevel(logging.INFO)


UNSAFE_IN_URL = re.compile(r"[\\\s\x00-\x1f\x7f]")
ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c)", re.IGNORECASE)


def clean_url(url: str) -> bool:
    """False for URLs that HTTP clients and URL parsers may read differently: backslashes,
    whitespace or control characters, an encoded slash in the path, or credentials before the
    host. Such a URL is never called, so an allowlist check cannot be fooled into sending a
    token elsewhere. (An encoded slash in the query is ordinary: it cannot change the path.)"""
    if UNSAFE_IN_URL.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return "@" not in parts.netloc and not ENCODED_SEPARATOR.search(parts.path)


def _without_dot_segments(path: str) -> str:
    """The path as HTTP clients send it: '.' and '..' segments resolved (RFC 3986 5.2.4),
    including percent-encoded dots, which clients decode before sending."""
    path = re.sub("%2e", ".", path, flags=re.IGNORECASE)
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(segments) > 1:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    return "/".join(segments)


def _same_base(url: str, base: str) -> bool:
    if not clean_url(url):
        return False
    try:
        target, root = urlsplit(url), urlsplit(base)
    except ValueError:
        return False
    if (target.scheme, target.netloc.lower()) != (root.scheme, root.netloc.lower()):
        return False
    root_path = root.path.rstrip("/") + "/"
    return (_without_dot_segments(target.path).rstrip("/") + "/").startswith(root_path)


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def server_allowed(url: str, allowlist: tuple[str, ...] | list[str]) -> bool:
    """Whether `url` is one of the allowed FHIR bases: an entry is a base URL (the server or
    anything under it), "scheme://host:*" for any port, or "base/*" for any path below."""
    if not clean_url(url):
        return False
    try:
        target = urlsplit(url)
        target_port = target.port
    except ValueError:
        return False
    for entry in allowlist:
        any_port = entry.endswith(":*")
        pattern = urlsplit(entry[:-2] if any_port else entry.removesuffix("/*"))
        if (target.scheme, (target.hostname or "")) != (pattern.scheme, pattern.hostname or ""):
            continue
        if not any_port and target_port != pattern.port:
            continue
        root = pattern.path.rstrip("/") + "/"
        if (_without_dot_segments(target.path).rstrip("/") + "/").startswith(root):
            return True
    return False


def transport_allowed(url: str, allow_http_loopback: bool) -> bool:
    """https always; plain http only to loopback, and only when configured for development."""
    if not clean_url(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_http_loopback and is_loopback(parts.hostname)


# Failures that say the server itself is slow or away (not that it answered something wrong).
SERVER_FAULTS = frozenset({"timeout", "unreachable", "budget_spent"})


class CircuitBreaker:
    """Stops calling a server that keeps failing: after `failures` slow or unreachable calls in
    a row it is not called for `cooldown_seconds` (each call fails at once, so a request's
    budget and a fetch thread are not spent waiting on it); then one call is tried, and one
    more fault opens it again. Kept per server base for the process."""

    def __init__(self, failures: int, cooldown_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.failures, self.cooldown_seconds, self._clock = failures, cooldown_seconds, clock
        self._in_a_row = 0
        self._open_until = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            return self._clock() >= self._open_until

    def record(self, code: str) -> None:
        """The outcome of one call (`ok` for a usable answer, else the failure's code)."""
        with self._lock:
            if code not in SERVER_FAULTS:
                self._in_a_row = 0
                return
            self._in_a_row += 1
            if self._in_a_row >= self.failures and self._clock() >= self._open_until:
                self._open_until = self._clock() + self.cooldown_seconds
                self._in_a_row = self.failures - 1  # after the cool-down: one more fault re-opens
                metrics.count_fhir_circuit_opened()


class FhirSessionPool:
    """Sessions kept per server base for the life of the process (connections are reused)."""

    def __init__(self, config: FhirConfig):
        self._config = config
        self._sessions: dict[str, requests.Session] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def slots_for(self, base_url: str) -> threading.BoundedSemaphore:
        """The fetch slots all requests to this server share in this worker
        (`fhir.max_parallel_fetches_per_server`): a slow server waits in its own share."""
        key = base_url.rstrip("/")
        with self._lock:
            slots = self._slots.get(key)
            if slots is None:
                slots = self._slots[key] = threading.BoundedSemaphore(
                    self._config.max_parallel_fetches_per_server)
            return slots

    def breaker_for(self, base_url: str) -> CircuitBreaker:
        key = base_url.rstrip("/")
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(
                    self._config.breaker_failures, self._config.breaker_cooldown_seconds)
            return breaker

    def session_for(self, base_url: str) -> requests.Session:
        key = base_url.rstrip("/")
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = requests.Session()
                size = self._config.pool_connections_per_server
                adapter = HTTPAdapter(pool_connections=1, pool_maxsize=size, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.headers.update({"Accept": FHIR_JSON, "User-Agent": "legcramp-cds"})
                session.trust_env = False  # no proxies or .netrc credentials from the environment
                # The session is shared by every hook request to this server: a cookie set for
                # one user's token must never ride along with another user's request.
                session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
                self._sessions[key] = session
            return session

    def connect(
        self, base_url: str, access_token: str | None, deadline: float | None = None
    ) -> FhirServer:
        """A server for one hook request; `deadline` (time.monotonic) bounds all its calls."""
        return FhirServer(
            base_url.rstrip("/"), self.session_for(base_url), access_token, self._config, deadline,
            breaker=self.breaker_for(base_url), slots=self.slots_for(base_url),
        )

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()


@dataclass
class FhirServer:
    """One server as seen by one hook request (its token is this request's only)."""

    base_url: str
    session: requests.Session
    access_token: str | None
    config: FhirConfig
    deadline: float | None = None
    # What this request has read so far, across every key, page and Medication: a budget per
    # request, not per response (70 pages of 9 MB each must not take a worker to gigabytes).
    breaker: CircuitBreaker | None = field(default=None, compare=False, repr=False)
    slots: threading.BoundedSemaphore | None = field(default=None, compare=False, repr=False)
    bytes_read: int = field(default=0, compare=False)
    resources_read: int = field(default=0, compare=False)
    _budget_lock: threading.Lock = field(default_factory=threading.Lock, compare=False,
                                         repr=False)

    def _spend(self, size: int = 0, resources: int = 0) -> None:
        """Count what a response brought against the request's budgets; over a budget the key
        being read is unobtainable (412 naming it) and what it read is dropped."""
        with self._budget_lock:
            self.bytes_read += size
            self.resources_read += resources
            over_bytes = self.bytes_read > self.config.max_request_bytes
            over_resources = self.resources_read > self.config.max_request_resources
        if over_bytes:
            raise FhirError(f"the request's FHIR data budget ({self.config.max_request_bytes} "
                            "bytes) is spent", code="too_large")
        if over_resources:
            raise FhirError(f"the request's FHIR resource budget "
                            f"({self.config.max_request_resources}) is spent", code="too_large")

    def _headers(self) -> dict[str, str]:
        if self.access_token:
            return {"Authorization": f"Bearer {self.access_token}"}
        return {}

    def url_for(self, relative: str) -> str:
        return f"{self.base_url}/{relative.lstrip('/')}"

    def _call(self, kind: str, url: str, accept: Callable[[int, Any], T]) -> T:
        """One GET of `url` checked by `accept`, timed and counted by `kind` and outcome."""
        started = time.perf_counter()
        outcome = "other"
        if self.breaker is not None and not self.breaker.allow():
            metrics.observe_fhir(kind, "circuit_open", 0.0)
            raise FhirError("FHIR server is cooling down after repeated slow or failed calls; "
                            "it was not called", code="circuit_open")
        try:
            status, body = self.get_json(url)
            result = accept(status, body)
            outcome = "not_found" if status in (404, 410) else "ok"
            return result
        except FhirError as exc:
            outcome = exc.code
            raise
        finally:
            metrics.observe_fhir(kind, outcome, time.perf_counter() - started)
            if self.breaker is not None:
                self.breaker.record(outcome)

    def get_json(self, url: str) -> tuple[int, Any]:
        if not _same_base(url, self.base_url):
            raise FhirError("a link pointed outside the FHIR server the request named",
                            code="outside_base")
        timeout = self._timeout()
        try:
            with self.session.get(
                url, headers=self._headers(), timeout=timeout, allow_redirects=False, stream=True
            ) as response:
                status = response.status_code
                if 300 <= status < 400:
                    raise FhirError(
                        f"FHIR server answered a redirect ({status}), not followed", status,
                        code="redirect",
                    )
                body = self._read_limited(response)
        except requests.Timeout as exc:
            raise FhirError("FHIR server did not answer in time", code="timeout") from exc
        except requests.RequestException as exc:
            raise FhirError(f"FHIR server could not be reached ({type(exc).__name__})",
                            code="unreachable") from exc
        if status >= 400:
            return status, None
        try:
            # orjson: a page of search results parses in a third of the time, and it refuses
            # what is not strict JSON (NaN, Infinity, numbers past a double, lone surrogates)
            # as well as nesting past 1,024. FHIR's JSON is UTF-8: a byte-order mark before
            # it is read past (as `json` did); UTF-16 or UTF-32 is not JSON here. An integer
            # past 64 bits is read as a float, as in request bodies.
            document = orjson.loads(body[3:] if body.startswith(UTF8_BOM) else body)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past ~1000 levels
            raise FhirError("FHIR server answered with something that is not JSON (or is "
                            "nested too deep to read)", status, code="not_json") from exc
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            entries = document.get("entry")
            self._spend(resources=len(entries) if isinstance(entries, list) else 0)
        else:
            self._spend(resources=1)
        return status, document

    def _timeout(self) -> tuple[float, float]:
        connect, read = self.config.connect_timeout_seconds, self.config.read_timeout_seconds
        if self.deadline is None:
            return connect, read
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise FhirError("the request's time budget for FHIR calls is spent",
                            code="budget_spent")
        return min(connect, remaining), min(read, remaining)

    def _read_limited(self, response: requests.Response) -> bytes:
        """The body, one receive at a time (`read1`: whatever one read of the socket brings),
        stopped at the size limit, the request's budgets, and the request's deadline. A timeout
        in `requests` bounds each receive, not the response, and a plain read of a body with a
        Content-Length waits for all of it: a server trickling a byte a second would hold this
        fetch slot for days. Each receive waits at most the read timeout, itself cut to what
        was left of the deadline when the call began."""
        limit = self.config.max_response_bytes
        chunks, size = [], 0
        raw = response.raw
        while True:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise FhirError("the request's time budget for FHIR calls is spent (the "
                                "answer was still arriving)", code="budget_spent")
            try:
                chunk = raw.read1(READ_SIZE, decode_content=True)
            except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
                raise requests.Timeout(str(exc)) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise requests.ConnectionError(str(exc)) from exc
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise FhirError(f"FHIR response larger than {limit} bytes", code="too_large")
            self._spend(size=len(chunk))
            chunks.append(chunk)
        return b"".join(chunks)

    def read(self, relative: str) -> dict[str, Any] | None:
        """A read; None when the server says the resource does not exist (404/410)."""
        return self._call("read", self.url_for(relative), _read_result)

    def search(self, relative: str) -> list[dict[str, Any]]:
        """Every page of a search, as the list of its Bundles (first page first)."""
        first = self._call("search", self.url_for(relative), _search_result)
        return [first, *self.follow(first)]

    def follow(self, bundle: dict[str, Any]) -> list[dict[str, Any]]:
        """The pages after `bundle`, by its `next` links, up to the configured page cap."""
        pages: list[dict[str, Any]] = []
        seen: set[str] = set()
        current = bundle
        while (next_url := next_link(current)) and next_url not in seen:
            seen.add(next_url)
            if len(pages) + 1 >= self.config.max_pages:
                metrics.count_fhir_failure("page", "too_many_pages")
                raise FhirError(f"search has more than {self.config.max_pages} pages",
                                code="too_many_pages")
            current = self._call("page", next_url, _page_result)
            pages.append(current)
        return pages


def _read_result(status: int, body: Any) -> dict[str, Any] | None:
    if status in (404, 410):
        return None
    if body is None:
        raise FhirError(f"FHIR server answered {status}", status, code="http_error")
    if not isinstance(body, dict) or "resourceType" not in body:
        raise FhirError("FHIR server answered without a resource", status, code="not_a_resource")
    if body["resourceType"] == "OperationOutcome":
        raise FhirError("FHIR server answered with an OperationOutcome", status,
                        code="operation_outcome")
    return body


def _search_result(status: int, body: Any) -> dict[str, Any]:
    if body is None:
        raise FhirError(f"FHIR server answered {status}", status, code="http_error")
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError("FHIR search did not answer with a Bundle", status, code="not_a_bundle")
    return body


def _page_result(status: int, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        code = "http_error" if body is None else "not_a_bundle"
        raise FhirError(f"FHIR server answered {status} for a next page", status, code=code)
    return body


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
