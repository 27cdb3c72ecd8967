"""What a CDS service is to the engine: a declaration beside its rules, from which discovery,
prefetch templates and dispatch are all derived (never written twice)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cds_service.config import ConfigError
from cds_service.kit.cards import Card
from cds_service.kit.record import MedicationOrder, PatientRecord
from cds_service.kit.requirements import DataRequirement, validate_template
from cds_service.pipeline.prefetch import union

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

    @property
    def rule_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def indicator(self) -> str: ...

    @property
    def sources(self) -> str:
        """Which seed documents the rule carries, for the catalog a reviewer signs off."""
        ...

    @property
    def applies(self) -> str:
        """When it runs, in one sentence for the catalog."""
        ...

    @property
    def defaults(self) -> Mapping[str, Any]:
        """Thresholds and windows, overridable in [rules."<rule_id>"]."""
        ...

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        """The prefetch keys this rule needs when it runs on `hook`."""
        ...

    def evaluate(self, context: RuleContext) -> list[Card]: ...


def rule_settings(
    services: Sequence[ServiceDeclaration], configured: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each rule's settings: its defaults overlaid by the configuration, checked key by key.

    Raises ConfigError for an unknown rule id, an unknown key or a value of the wrong type, so
    a misspelt threshold stops the service at start-up instead of silently keeping a default.
    """
    rules = {rule.rule_id: rule for service in services for rule in service.rules}
    unknown = set(configured) - set(rules)
    if unknown:
        raise ConfigError(f"configuration names unknown rule(s): {', '.join(sorted(unknown))}")
    resolved = {}
    for rule_id, rule in rules.items():
        defaults = {"enabled": True, **rule.defaults}
        values = dict(configured.get(rule_id, {}))
        for key, value in values.items():
            if key not in defaults:
                raise ConfigError(f"rules.{rule_id}: unknown setting {key!r}")
            expected = type(defaults[key])
            number = expected in (int, float) and isinstance(value, int | float)
            if not (isinstance(value, expected) or number) or isinstance(value, bool) != (
                expected is bool
            ):
                raise ConfigError(f"rules.{rule_id}.{key} has the wrong type")
        resolved[rule_id] = {**defaults, **values}
    return resolved


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
