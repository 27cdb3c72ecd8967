"""FHIR R4 JSON into `fhir.resources` R4B models: lenient where real clients are sloppy, and
a resource the models reject is skipped and counted, never fatal to the request.

The one leniency is structural: a member the model wants as a list but the client sent as a
single object (the official sandbox sends `MedicationRequest.category` that way) is wrapped in a
list and parsed again. Nothing else is guessed. Rejection reasons name the element and the
error kind, never the value (it may be patient data).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds_service.errors import ResourceRejected

MAX_REPAIRS = 5


@dataclass
class ParseReport:
    """What happened to each resource the request carried, by type and reason (no values)."""

    parsed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    repaired: Counter[tuple[str, str]] = field(default_factory=Counter)
    other_patient: Counter[str] = field(default_factory=Counter)
    not_read: Counter[str] = field(default_factory=Counter)  # held, but no rule asked for it

    def skip(self, resource_type: str, reason: str) -> None:
        self.skipped[(resource_type, reason)] += 1

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> dict[str, Any]:
        return {
            "parsed": dict(self.parsed),
            "skipped": {f"{t}: {r}": n for (t, r), n in sorted(self.skipped.items())},
            "repaired": {f"{t}: {r}": n for (t, r), n in sorted(self.repaired.items())},
            "otherPatient": dict(self.other_patient),
            "notRead": {t: n for t, n in self.not_read.items() if n},
        }


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
    kind = str(error.get("type", "invalid")).rsplit(".", 1)[-1]
    return f"{kind} at {location}" if location else kind


def _wrap_at(document: Any, location: tuple[Any, ...]) -> bool:
    """Wrap the object at `location` in a list; False when the path does not lead to an object."""
    parent = document
    for part in location[:-1]:
        if isinstance(parent, dict) and isinstance(part, str) and part in parent:  # noqa: SIM114 (separate branches let mypy narrow)
            parent = parent[part]
        elif isinstance(parent, list) and isinstance(part, int) and part < len(parent):
            parent = parent[part]
        else:
            return False
    last = location[-1] if location else None
    if isinstance(parent, dict) and isinstance(last, str) and isinstance(parent.get(last), dict):
        parent[last] = [parent[last]]
        return True
    return False


def parse_resource(raw: dict[str, Any], report: ParseReport | None = None) -> Any:
    """The R4B model of `raw`; ResourceRejected (value-free reason) if it is not one."""
    resource_type = raw.get("resourceType")
    if not isinstance(resource_type, str):
        raise ResourceRejected("unknown", "no resourceType")
    try:
        model_class = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError) as exc:
        raise ResourceRejected(resource_type, "not an R4 resource type") from exc
    document = raw
    for _ in range(MAX_REPAIRS + 1):
        try:
            return model_class.model_validate(document)
        except ValidationError as exc:
            errors = exc.errors()
            list_errors = [e for e in errors if e.get("type") == "list_type"]
            if not list_errors or len(list_errors) != len(errors):
                raise ResourceRejected(resource_type, _describe(errors[0])) from None
            if document is raw:
                document = copy.deepcopy(raw)
            for error in list_errors:
                if not _wrap_at(document, tuple(error.get("loc", ()))):
                    raise ResourceRejected(resource_type, _describe(error)) from None
                if report is not None:
                    report.repaired[(resource_type, _describe(error))] += 1
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            # fhir_core raises KeyError for an unknown type nested in a resource (contained),
            # and the models recurse once per level: a resource from a FHIR server (whose
            # answers only the parser's own depth limit bounds) nested a few hundred levels
            # deep is not read, as any other the models cannot parse
            raise ResourceRejected(resource_type, type(exc).__name__) from None
    raise ResourceRejected(resource_type, "too many structural repairs")
