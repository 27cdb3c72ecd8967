"""Example hook requests (fixtures, golden cases, the review page's patients) completed for
prefetch keys declared after they were written.

An example that carries the patient's chart in prefetch states what the chart holds; when a
rule later declares a new prefetch key, the example's answer for that key is already in it: the
resources of the chart that the key's template would find. So a key the example lacks is filled
by running its template as a FHIR search over the example's own resources, instead of editing
every example by hand. Only the search parameters the templates use are understood (`patient`,
`status`, `code`, and `_sort`/`_count`, which change no membership); any other makes the
completion fail loudly rather than guess. An example without its chart (no `conditions`, the
key every service reads) is left as it is: it is there to show fetching from `fhirServer`.

Offline only (tests and `legcramp-cds review-page`): the service itself never invents data.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

from cds_service.kit.record import referenced_id
from cds_service.kit.requirements import DataRequirement
from cds_service.pipeline.prefetch import fill_template, is_read, resources_of

CHART_KEY = "conditions"
_NO_FILTER = frozenset({"_sort", "_count"})


def _codes(resource: dict[str, Any]) -> set[tuple[str | None, str | None]]:
    concepts = [resource.get("code"), *(c.get("code") for c in resource.get("component") or []
                                        if isinstance(c, dict))]
    return {(coding.get("system"), coding.get("code"))
            for concept in concepts if isinstance(concept, dict)
            for coding in concept.get("coding") or [] if isinstance(coding, dict)}


def _matches(resource: dict[str, Any], name: str, value: str) -> bool:
    if name == "patient":
        subject = resource.get("subject") or resource.get("patient") or {}
        return referenced_id(subject.get("reference")) == value
    if name == "status":
        return resource.get("status") in value.split(",")
    if name == "code":
        wanted = {tuple(token.split("|", 1)) if "|" in token else (None, token)
                  for token in value.split(",")}
        have = _codes(resource)
        return any(w in have or (w[0] is None and any(c == w[1] for _, c in have))
                   for w in wanted)
    raise ValueError(f"an example cannot be completed for the search parameter {name!r}")


def search(resources: Iterable[dict[str, Any]], relative_url: str) -> list[dict[str, Any]]:
    """What `relative_url` (a filled template) finds among `resources`."""
    if is_read(relative_url):
        resource_type, resource_id = relative_url.strip("/").split("/")
        return [r for r in resources
                if r.get("resourceType") == resource_type and r.get("id") == unquote(resource_id)]
    resource_type, _, query = relative_url.partition("?")
    params = [(k, v) for k, v in parse_qsl(query) if k not in _NO_FILTER]
    return [r for r in resources if r.get("resourceType") == resource_type
            and all(_matches(r, k, v) for k, v in params)]


def complete_prefetch(request: dict[str, Any],
                      requirements: Sequence[DataRequirement]) -> dict[str, Any]:
    """A copy of `request` with every declared key it lacks answered from its own chart."""
    prefetch = request.get("prefetch")
    if not isinstance(prefetch, dict) or CHART_KEY not in prefetch:
        return request
    missing = [r for r in requirements if r.key not in prefetch]
    if not missing:
        return request
    chart = [resource for value in prefetch.values() if isinstance(value, dict)
             for resource in resources_of(value)]
    completed = copy.deepcopy(request)
    for requirement in missing:
        url = fill_template(requirement.template, request["context"])
        found = search(chart, url)
        if is_read(url):
            completed["prefetch"][requirement.key] = found[0] if found else None
        else:
            completed["prefetch"][requirement.key] = {
                "resourceType": "Bundle", "type": "searchset", "total": len(found),
                "entry": [{"resource": resource} for resource in found]}
    return completed
