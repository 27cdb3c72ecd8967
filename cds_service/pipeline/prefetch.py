"""Prefetch: templates declared by the rules, filled from context, and resolved per key.

Per key, as CDS Hooks 2.0 says: absent -> fetch it from `fhirServer` with the same template;
`null` -> no data exists, do not fetch; an OperationOutcome -> the client's fetch failed, fetch
it; a Bundle -> use it and follow its `next` links. Missing keys are fetched in parallel. Data
that cannot be had makes a 412 naming the key rather than a guess: a rule that cannot see a
malaria diagnosis must not decide there is none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cds_service import metrics
from cds_service.errors import DataUnavailable, FhirError, TemplateError, bad_request
from cds_service.kit.requirements import TOKEN_PATTERN, USER_TOKENS, DataRequirement
from cds_service.pipeline.fetching import run_bounded
from cds_service.pipeline.fhir_client import FhirServer, next_link

log = logging.getLogger("legcramp_cds.prefetch")


def is_read(relative_url: str) -> bool:
    """A filled template is a read when it is `Type/id` with no query (else a search)."""
    return "?" not in relative_url and relative_url.strip("/").count("/") == 1


def fill_template(template: str, context: Mapping[str, Any]) -> str:
    """The template with each token replaced by its URL-escaped value from `context`."""

    def value_of(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("context."):
            value = context.get(token.removeprefix("context."))
        elif token in USER_TOKENS:
            user = str(context.get("userId") or "")
            kind, _, user_id = user.partition("/")
            value = user_id if kind == USER_TOKENS[token] and user_id else None
        else:
            value = None
        if not isinstance(value, str) or not value:
            raise TemplateError(f"no value for token {{{{{token}}}}} in this request's context")
        if token == "context.userId":  # Type/id by the hook's definition: keep the one slash
            kind, _, user_id = value.partition("/")
            return f"{quote(kind, safe='')}/{quote(user_id, safe='')}"
        # Everything else is one path segment or one parameter value: escape "/" too, so an id
        # like "../x" can never climb out of the FHIR base the token is meant for.
        return quote(value, safe="")

    return TOKEN_PATTERN.sub(value_of, template)


@dataclass(frozen=True)
class Unobtainable:
    """Why a key could not be had: `reason` for the log (safe: no URL, no token), `code` a
    fixed slug for the metric. The caller is told only which key (see DataUnavailable)."""

    reason: str
    code: str


NO_SERVER = Unobtainable("no fhirServer was given to fetch it from", "no_server")


@dataclass
class ResolvedData:
    """Resources per prefetch key, and where each key's data came from."""

    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    supplied: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    def all_resources(self) -> list[dict[str, Any]]:
        return [resource for items in self.resources.values() for resource in items]


class NotABundle(ValueError):
    """A Bundle whose `entry` is not an array: its resources cannot be read, so they are never
    guessed at (a supplied one is a bad request; a fetched one a bad answer)."""


def resources_of(value: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources a prefetch value carries: a Bundle's entries, or the resource itself."""
    if value.get("resourceType") != "Bundle":
        return [value]
    entries = value.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise NotABundle("Bundle.entry is not an array")
    found = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
            found.append(resource)
    return found


def resolve(
    requirements: Sequence[DataRequirement],
    prefetch: Mapping[str, Any] | None,
    context: Mapping[str, Any],
    server: FhirServer | None,
    executor: Executor,
    no_server: Unobtainable = NO_SERVER,
    deadline: float | None = None,
    limit: int | None = None,
) -> ResolvedData:
    resolved = ResolvedData()
    jobs: dict[str, Callable[[], list[dict[str, Any]]]] = {}
    missing: dict[str, Unobtainable] = {}
    supplied = prefetch or {}

    for requirement in requirements:
        key = requirement.key
        value = supplied.get(key, _ABSENT)
        if value is None:
            resolved.resources[key] = []
            resolved.empty.append(key)
        elif value is _ABSENT or value.get("resourceType") == "OperationOutcome":
            if server is None:
                missing[key] = no_server
                continue
            try:
                url = fill_template(requirement.template, context)
            except TemplateError as exc:
                missing[key] = Unobtainable(str(exc), "template")
                continue
            jobs[key] = _fetch_job(server, url, is_read(url))
            resolved.fetched.append(key)
        else:
            try:
                resolved.resources[key] = resources_of(value)
            except NotABundle:
                raise bad_request(f"prefetch.{key}: Bundle.entry must be an array",
                                  expression=[f"$.prefetch.{key}.entry"]) from None
            resolved.supplied.append(key)
            if value.get("resourceType") == "Bundle" and next_link(value):
                if server is None:
                    missing[key] = Unobtainable(
                        f"the Bundle has more pages; {no_server.reason}", no_server.code)
                    continue
                jobs[key] = _more_pages_job(server, value)

    gate = server.slots if server is not None else None
    for key, outcome in run_bounded(executor, jobs, limit or len(jobs), deadline,
                                    gate).items():
        if isinstance(outcome, FhirError):
            missing[key] = Unobtainable(outcome.reason, outcome.code)
        elif isinstance(outcome, FutureTimeout):
            missing[key] = Unobtainable("the request's time budget for FHIR calls ran out",
                                        "budget_spent")
        elif isinstance(outcome, Exception):
            raise outcome
        else:
            resolved.resources.setdefault(key, []).extend(outcome)
    metrics.count_prefetch(_sources(requirements, resolved, missing))
    if missing:
        metrics.count_prefetch_unavailable({key: m.code for key, m in missing.items()})
        log.warning("prefetch keys could not be obtained", extra={
            "unobtainable": {key: {"reason": m.reason, "code": m.code}
                             for key, m in sorted(missing.items())}})
        raise DataUnavailable({key: m.reason for key, m in missing.items()})
    return resolved


def _sources(requirements: Sequence[DataRequirement], resolved: ResolvedData,
             missing: Mapping[str, Unobtainable]) -> dict[str, str]:
    """Per declared key, where its data came from (a key that could not be had: missing)."""
    sources = {key: "supplied" for key in resolved.supplied}
    sources.update({key: "fetched" for key in resolved.fetched})
    sources.update({key: "null" for key in resolved.empty})
    sources.update({key: "missing" for key in missing})
    return {r.key: sources[r.key] for r in requirements if r.key in sources}


_ABSENT: Any = object()


def _answered(pages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        return [r for page in pages for r in resources_of(page)]
    except NotABundle as exc:
        raise FhirError("FHIR server answered a Bundle whose entry is not an array",
                        code="not_a_bundle") from exc


def _fetch_job(server: FhirServer, url: str, read: bool) -> Callable[[], list[dict[str, Any]]]:
    def job() -> list[dict[str, Any]]:
        if read:
            resource = server.read(url)
            return [] if resource is None else _answered([resource])
        return _answered(server.search(url))

    return job


def _more_pages_job(
    server: FhirServer, bundle: dict[str, Any]
) -> Callable[[], list[dict[str, Any]]]:
    def job() -> list[dict[str, Any]]:
        return _answered(server.follow(bundle))

    return job
