"""What a CDS service is to the engine: a declaration beside its rules, from which discovery,
prefetch templates and dispatch are all derived (never written twice)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .cards import Card
from .prefetch import DataRequirement, union, validate_template
from .record import MedicationOrder, PatientRecord

SUPPORTED_HOOKS = ("patient-view", "order-select", "order-sign")


@dataclass(frozen=True)
class RuleContext:
    """What a rule may read: the record, the orders it is asked about, and the time."""

    hook: str
    record: PatientRecord
    subject_orders: tuple[MedicationOrder, ...]
    context_orders: tuple[MedicationOrder, ...]
    now: datetime
    settings: Mapping[str, Any]
    code_system_base: str

    @property
    def is_order_hook(self) -> bool:
        return self.hook in ("order-select", "order-sign")


class Rule(Protocol):
    """One recommendation of the catalog: inclusion, exclusion and card content."""

    rule_id: str

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        """The prefetch keys this rule needs when it runs on `hook`."""
        ...

    def evaluate(self, context: RuleContext) -> list[Card]: ...


@dataclass(frozen=True)
class ServiceDeclaration:
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

    def discovery_entry(self) -> dict[str, Any]:
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
        return entry
