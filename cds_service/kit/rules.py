"""What a rule is to the engine: its declaration, its typed settings, and what it may read.

A rule is one recommendation of the catalog, declared in one place: its module holds the class
with its id, title, indicator and sources, the value sets it uses (dataclass fields), a typed
`Settings` dataclass with the defaults of its thresholds, what it reads per hook, and
`evaluate`. The engine validates `[rules."<rule_id>"]` of the configuration against `Settings`
at start-up and hands each evaluation a `RuleContext` carrying the settings as that dataclass,
so `context.settings.max_days` is checked by mypy, not discovered misspelt at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from cds_service.kit.cards import Card
from cds_service.kit.hook_names import ORDER_HOOKS
from cds_service.kit.record import MedicationOrder, PatientRecord
from cds_service.kit.requirements import DataRequirement


def setting(default: Any, source: str) -> Any:
    """A threshold with the source of its default (`max_days: int = setting(21, "label: ...")`):
    the catalog (docs/rules.md) prints the source beside the value a reviewer signs off.
    Where the source gives no number, `source` says the value was chosen and why."""
    return field(default=default, metadata={"source": source})


def setting_sources(settings: type[RuleSettings]) -> dict[str, str]:
    """The source of each setting's default that declares one, by setting name."""
    return {f.name: f.metadata["source"] for f in fields(settings) if "source" in f.metadata}


@dataclass(frozen=True)
class RuleSettings:
    """What every rule can be told: whether it runs, and whether its cards are only recorded
    (a silent pilot of this rule: the EHR gets none). A rule with thresholds subclasses this
    with its own fields and defaults (`class Settings(RuleSettings): max_days: int = 21`)."""

    enabled: bool = True
    silent: bool = False


SettingsT = TypeVar("SettingsT", bound=RuleSettings)


@dataclass(frozen=True)
class RuleContext(Generic[SettingsT]):
    """What a rule may read: the record, the orders it is asked about, the time, and its own
    settings (the rule's `Settings`, overlaid by the configuration)."""

    hook: str
    record: PatientRecord
    subject_orders: tuple[MedicationOrder, ...]
    context_orders: tuple[MedicationOrder, ...]
    now: datetime
    settings: SettingsT
    code_system_base: str

    @property
    def is_order_hook(self) -> bool:
        return self.hook in ORDER_HOOKS


class Rule(Protocol):
    """One recommendation of the catalog: inclusion, exclusion and card content."""

    @property
    def rule_id(self) -> str: ...

    @property
    def catalog_code(self) -> str:
        """The short code of the catalog (Q1, C1, ...)."""
        ...

    @property
    def title(self) -> str: ...

    @property
    def indicator(self) -> str: ...

    @property
    def sources(self) -> str:
        """Which guidance the rule carries, for the catalog a reviewer signs off."""
        ...

    @property
    def applies(self) -> str:
        """When it runs, in one sentence for the catalog."""
        ...

    @property
    def Settings(self) -> type[RuleSettings]:
        """Thresholds and windows with their defaults, overridable in [rules."<rule_id>"]."""
        ...

    def reads(self, hook: str) -> Sequence[DataRequirement]:
        """The prefetch keys this rule needs when it runs on `hook`."""
        ...

    def evaluate(self, context: RuleContext[Any]) -> list[Card]:
        """The cards for this context; a rule types its own `RuleContext[Settings]`."""
        ...
