"""Each rule's settings: its `Settings` dataclass, overlaid by `[rules."<rule_id>"]`.

Checked key by key at start-up against the dataclass the rule declares: an unknown rule id, an
unknown key or a value of the wrong type is a `ConfigError`, so a misspelt threshold stops the
service instead of silently keeping a default. Integers are accepted where a float is declared
(TOML writes `75` as well as `75.0`); booleans are never numbers.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from cds_service.errors import ConfigError
from cds_service.kit.rules import Rule, RuleSettings
from cds_service.kit.service_declaration import ServiceDeclaration

_KINDS: Mapping[type, str] = {bool: "a boolean", int: "an integer", float: "a number",
                              str: "a string"}


def _accepts(kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def setting_types(settings_class: type[RuleSettings]) -> dict[str, type]:
    """The declared type of each setting (bool, int, float or str), resolved from the
    dataclass annotations; anything else is a programming error in the rule."""
    hints = typing.get_type_hints(settings_class)
    types = {}
    for item in dataclasses.fields(settings_class):
        kind = hints[item.name]
        if kind not in _KINDS:
            raise TypeError(f"{settings_class.__qualname__}.{item.name}: settings are bool, "
                            f"int, float or str, not {kind!r}")
        types[item.name] = kind
    return types


def settings_for(rule: Rule, configured: Mapping[str, Any]) -> RuleSettings:
    """`rule.Settings` with the configured values, checked against their declared types."""
    types = setting_types(rule.Settings)
    values = dict(configured)
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"rules.{rule.rule_id}: unknown setting {key!r}")
        if not _accepts(types[key], value):
            raise ConfigError(f"rules.{rule.rule_id}.{key} has the wrong type "
                              f"(expected {_KINDS[types[key]]})")
        if types[key] is float:
            values[key] = float(value)
    return rule.Settings(**values)


def rule_settings(
    services: Sequence[ServiceDeclaration], configured: Mapping[str, Mapping[str, Any]]
) -> dict[str, RuleSettings]:
    """Every rule's settings by rule id, for the rules the services run."""
    rules = {rule.rule_id: rule for service in services for rule in service.rules}
    unknown = set(configured) - set(rules)
    if unknown:
        raise ConfigError(f"configuration names unknown rule(s): {', '.join(sorted(unknown))}")
    return {rule_id: settings_for(rule, configured.get(rule_id, {}))
            for rule_id, rule in rules.items()}


def as_table(settings: RuleSettings) -> dict[str, Any]:
    """The settings as the TOML table that would set them (for the catalog and the docs)."""
    return dataclasses.asdict(settings)
