"""What a CDS service is to the engine: a declaration beside its rules, from which discovery,
prefetch templates and dispatch are all derived (never written twice)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cds_service.kit.hook_names import SUPPORTED_HOOKS
from cds_service.kit.requirements import DataRequirement, union, validate_template
from cds_service.kit.rules import Rule
from cds_service.kit.terminology import ValueSet

# Where discovery gives the package version: in the service's `extension`, not as `version`,
# which CDS Hooks 3.0 (ballot) reserves for the version of the CDS Hooks specification a
# service implements ("STU1 | STU2 | STU3"); a 3.0 client reading our "0.1.0" there would be
# told something false about the protocol.
VERSION_EXTENSION = "legcramp-cds.version"


def value_sets_of(rule: Rule) -> list[ValueSet]:
    """The value sets a rule declares: its fields, and the fields of the helpers it holds (a
    rule's labs, say), each once, in declaration order."""
    found: dict[int, ValueSet] = {}

    def walk(value: Any, depth: int = 0) -> None:
        if isinstance(value, ValueSet):
            found.setdefault(id(value), value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type) and depth < 3:
            for item in dataclasses.fields(value):
                walk(getattr(value, item.name), depth + 1)

    walk(rule)
    return list(found.values())


@dataclass(frozen=True)
class ServiceDeclaration:
    """One CDS service: its id and hook, what discovery says of it, and the rules it runs."""

    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    rules: Sequence[Rule] = field(default_factory=tuple)
    base_requirements: Sequence[DataRequirement] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.hook not in SUPPORTED_HOOKS:
            raise ValueError(f"service {self.id}: hook {self.hook!r} is not supported")
        for requirement in self.requirements:
            validate_template(requirement.template, self.hook)

    @property
    def requirements(self) -> tuple[DataRequirement, ...]:
        """Prefetch keys: the service's own plus every rule's, each key once."""
        return union([self.base_requirements, *(rule.reads(self.hook) for rule in self.rules)])

    def value_sets(self) -> list[ValueSet]:
        """Every value set the service's rules declare, each once."""
        found = {id(vs): vs for rule in self.rules for vs in value_sets_of(rule)}
        return list(found.values())

    def discovery_entry(self, version: str | None = None) -> dict[str, Any]:
        """The service as discovery lists it; `version`, the package version the engine
        runs, goes in its `extension` (the kit reads no installed metadata itself)."""
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        prefetch = {r.key: r.template for r in self.requirements}
        if prefetch:
            entry["prefetch"] = prefetch
        if version:
            entry["extension"] = {VERSION_EXTENSION: version}
        return entry
