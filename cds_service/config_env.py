"""Settings from the environment, over the configuration file: one variable per key.

    LEGCRAMP_CDS_<SECTION>__<KEY>                 [server] port: LEGCRAMP_CDS_SERVER__PORT
    LEGCRAMP_CDS_AUTH__ISSUERS                    [[auth.issuers]], as a JSON array of tables
    LEGCRAMP_CDS_RULES__<RULE>__<KEY>             [rules."quinine-leg-cramps"] enabled:
                                                  LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__ENABLED
    <the variable of a secret key>_FILE           the value is that file's contents

Names are the key's path in upper case, with `__` between section, rule and key. A rule id
(lower-case words joined by `-`) is written with `_` for `-`; the mapping back is unambiguous
because rule ids hold no `_` and neither ids nor keys hold `__` (a test holds every rule id to
that).

Values are typed by the key, as in the file: a string as it is (no quotes); an integer, a
number or a boolean as its TOML literal (`8080`, `2.5`, `true`, `false`); a list of strings as
a JSON array (`["https://a", "https://b"]`) or a comma list (`https://a, https://b`; empty: no
items); `[[auth.issuers]]` as a JSON array of objects, which replaces the file's issuers. A rule
setting's type is declared by its rule, which the engine checks later, so its value is read as a
TOML literal when it is one (`true`, `21`, `2.5`, `"quoted text"`) and as text otherwise.

A secret key (`_key(..., secret=True)` in config.py) may instead be read from a file,
`<VARIABLE>_FILE=/run/secrets/...`, as Kubernetes and Docker mount secrets; one trailing newline
is dropped. An unreadable file is an error that names the variable and the file, never its
contents; so is setting both the variable and its `_FILE`.

Any other `LEGCRAMP_CDS_*` variable is refused (a misspelt name must not leave a default in
force), except the few the code reads for itself (`reserved`, e.g. LEGCRAMP_CDS_CONFIG).

Why not pydantic-settings: the configuration is frozen dataclasses whose field metadata carries
each key's meaning for the generated reference (`legcramp-cds config-reference`), and the rest of
the code reads those dataclasses; pydantic-settings would need a second, parallel set of models.
It also reads secrets from a directory of files named after the fields rather than
`<VARIABLE>_FILE`, ignores unknown prefixed variables instead of refusing them, cannot know the
rule tables (their keys are declared by the rules, outside this module), and parses lists as JSON
only. What is needed here is one pass over `os.environ` into the same document the TOML file
gives, which then goes through the same checks as the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from cds_service.errors import ConfigError

PREFIX = "LEGCRAMP_CDS_"
FILE_SUFFIX = "_FILE"
RULES_PREFIX = f"{PREFIX}RULES__"
_WORDS = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)*")
_NOT_A_LITERAL = object()


@dataclasses.dataclass(frozen=True)
class _Key:
    section: str
    name: str
    default: Any
    secret: bool

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"


def variable_name(section: str, key: str) -> str:
    """The variable that sets `[section] key`."""
    return f"{PREFIX}{section.upper()}__{key.upper()}"


def rule_variable_name(rule_id: str, key: str) -> str:
    """The variable that sets `key` of `[rules."<rule_id>"]`."""
    return f"{RULES_PREFIX}{rule_id.upper().replace('-', '_')}__{key.upper()}"


def environment_overlay(
    environ: Mapping[str, str],
    sections: Mapping[str, type],
    reserved: Collection[str] = (),
) -> tuple[dict[str, Any], dict[str, str]]:
    """The configuration document the environment sets (to merge over the file's), and for each
    key it sets (`server.port`, `auth.issuers`, `rules.<rule-id>.<key>`) the variable that set
    it. `sections` maps each section name to its dataclass."""
    keys = {
        variable_name(section, item.name): _Key(section, item.name, getattr(cls(), item.name),
                                                bool(item.metadata.get("secret")))
        for section, cls in sections.items()
        for item in dataclasses.fields(cls)
    }
    document: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in reserved:
            continue
        text = environ[name]
        if name in keys:
            key = keys[name]
            value = _typed(name, key, text)
        elif name.endswith(FILE_SUFFIX) and (plain := name.removesuffix(FILE_SUFFIX)) in keys:
            key = keys[plain]
            if not key.secret:
                raise ConfigError(
                    f"{name}: only secrets are read from a file "
                    f"({', '.join(sorted(v + FILE_SUFFIX for v, k in keys.items() if k.secret))});"
                    f" set {plain} instead")
            if plain in environ:
                raise ConfigError(f"{plain} and {name} are both set: set one of them")
            value = _typed(name, key, read_secret_file(name, text))
        elif name.startswith(RULES_PREFIX):
            rule_id, setting = _rule_key(name)
            document.setdefault("rules", {}).setdefault(rule_id, {})[setting] = _rule_value(text)
            origins[f"rules.{rule_id}.{setting}"] = name
            continue
        else:
            raise ConfigError(_unknown(name, [*keys, *(k + FILE_SUFFIX for k, v in keys.items()
                                                      if v.secret), *reserved]))
        document.setdefault(key.section, {})[key.name] = value
        origins[key.dotted] = name
    return document, origins


def read_secret_file(variable: str, path_text: str) -> str:
    """The contents of the file `variable` names, without one trailing newline. Errors name the
    variable and the file, never what the file holds."""
    if not path_text:
        raise ConfigError(f"{variable} names no file")
    try:
        data = Path(path_text).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path_text}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}: {path_text} is not UTF-8 text") from None
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text


def _typed(variable: str, key: _Key, text: str) -> Any:
    """`text` as the value the TOML file would give for `key` (its type is its default's)."""
    default = key.default

    def wrong(kind: str) -> ConfigError:
        shown = "(the value of a secret is not shown)" if key.secret else repr(text)
        return ConfigError(f"{variable} ({key.dotted}) must be {kind}: {shown}")

    if key.dotted == "auth.issuers":
        issuers = _json_array(text, dict)
        if issuers is None:
            raise wrong("a JSON array of objects (one per issuer)")
        return issuers
    if isinstance(default, bool):
        if text not in ("true", "false"):
            raise wrong("true or false")
        return text == "true"
    if isinstance(default, int | float):
        value = _toml_literal(text)
        expected = int if isinstance(default, int) else int | float
        if isinstance(value, bool) or not isinstance(value, expected):
            raise wrong("an integer" if isinstance(default, int) else "a number")
        return value
    if isinstance(default, tuple):
        return _string_list(text, wrong)
    return text


def _string_list(text: str, wrong: Any) -> list[str]:
    """A JSON array of strings, or a comma list (items stripped, empty ones dropped)."""
    if text.lstrip().startswith("["):
        items = _json_array(text, str)
        if items is None:
            raise wrong("a JSON array of strings or a comma list")
        return items
    return [item.strip() for item in text.split(",") if item.strip()]


def _json_array(text: str, item_type: type) -> list[Any] | None:
    """`text` as a JSON array whose every item is an `item_type`, else None."""
    try:
        items = json.loads(text)
    except ValueError:
        return None
    if not isinstance(items, list) or not all(isinstance(item, item_type) for item in items):
        return None
    return items


def _toml_literal(text: str) -> Any:
    """The value of `text` read as one TOML literal, or _NOT_A_LITERAL."""
    try:
        document = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError:
        return _NOT_A_LITERAL
    return document["value"] if list(document) == ["value"] else _NOT_A_LITERAL


def _rule_value(text: str) -> Any:
    value = _toml_literal(text)
    return value if isinstance(value, bool | int | float | str) else text


def _rule_key(variable: str) -> tuple[str, str]:
    """(rule id, setting) from LEGCRAMP_CDS_RULES__<RULE>__<KEY>."""
    parts = variable[len(RULES_PREFIX):].split("__")
    if len(parts) != 2 or not all(_WORDS.fullmatch(part) for part in parts):
        raise ConfigError(f"unknown environment variable {variable}: a rule setting is "
                          "LEGCRAMP_CDS_RULES__<RULE_ID>__<KEY>, the rule id with _ for - "
                          "(e.g. LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__ENABLED)")
    return parts[0].lower().replace("_", "-"), parts[1].lower()


def _unknown(variable: str, known: list[str]) -> str:
    message = (f"unknown environment variable {variable}: settings are "
               "LEGCRAMP_CDS_<SECTION>__<KEY> (README, Configuration)")
    close = difflib.get_close_matches(variable, known, n=1, cutoff=0.8)
    return f"{message}; did you mean {close[0]}?" if close else message
