"""`legcramp-cds config show`: the configuration a command would run with, as TOML, each value
followed by where it came from (`default`, `file <path>`, `env <VARIABLE>` or `env
<VARIABLE>_FILE`), and every secret redacted.

A secret (`secret=True` in its key's metadata) is shown as `"<redacted>"`, or `""` when it is
not set, so the page says whether it is set and never what it is. A database URL keeps its
scheme, user, host and database and loses its password (and any password-like query value),
which is what an operator checks when the service opens the wrong database.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from cds_service.config import Config, Origin
from cds_service.kit.rules import RuleSettings
from cds_service.pipeline.rule_settings import as_table
from cds_service.tools.config_reference import SECTIONS, toml_value

REDACTED = "<redacted>"
_SENSITIVE_QUERY = re.compile(r"pass|secret|token|key", re.IGNORECASE)
_COMMENT_COLUMN = 44


def render(config: Config, rule_settings: Mapping[str, RuleSettings] | None = None) -> str:
    """The effective configuration; `rule_settings` (every rule's, by rule id) adds each
    rule's table, else only the rule settings the file or the environment set are shown."""
    lines = ["# The effective configuration: embedded defaults < file < environment.",
             f"# Read from: {config.source}. Secrets are redacted.", ""]
    for section in SECTIONS:
        values = getattr(config, section)
        lines.append(f"[{section}]")
        lines += _aligned([
            (f"{item.name} = {_shown(getattr(values, item.name), item)}",
             _origin(config, f"{section}.{item.name}"))
            for item in dataclasses.fields(values) if item.name != "issuers"])
        lines.append("")
        if section == "auth":
            for issuer in config.auth.issuers:
                lines.append(f"[[auth.issuers]]  # {_origin(config, 'auth.issuers')}")
                lines += [f"{item.name} = {_shown(getattr(issuer, item.name), item)}"
                          for item in dataclasses.fields(issuer)]
                lines.append("")
    tables = ({rule_id: as_table(settings) for rule_id, settings in rule_settings.items()}
              if rule_settings is not None else config.rules)
    for rule_id in sorted(tables):
        lines.append(f'[rules."{rule_id}"]')
        lines += _aligned([(f"{key} = {toml_value(value)}",
                            _origin(config, f"rules.{rule_id}.{key}"))
                           for key, value in tables[rule_id].items()])
        lines.append("")
    return "\n".join(lines)


def redact_url(url: str) -> str:
    """A database URL without its password or password-like query values; all of it redacted
    when it cannot be read as a URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return REDACTED
    query = {key: ("redacted" if _SENSITIVE_QUERY.search(key) else value)
             for key, value in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True)


def _shown(value: Any, item: dataclasses.Field[Any]) -> str:
    if not item.metadata.get("secret") or value in ("", None):
        return toml_value(value)
    if item.name.endswith("url"):
        return toml_value(redact_url(value))
    return toml_value(REDACTED)


def _origin(config: Config, key: str) -> str:
    return str(config.origins.get(key, Origin("default")))


def _aligned(rows: list[tuple[str, str]]) -> list[str]:
    width = min(max((len(text) for text, _ in rows), default=0), _COMMENT_COLUMN)
    return [f"{text:<{width}}  # {origin}" for text, origin in rows]
