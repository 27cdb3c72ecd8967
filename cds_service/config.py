"""Configuration: embedded TOML defaults overlaid by one operator file.

Read once at start-up into frozen dataclasses and handed to `create_app`, so nothing reads
globals or the environment per request. Unknown keys are errors: a typo in a threshold must not
silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from cds_service.errors import ConfigError

CONFIG_ENV_VAR = "LEGCRAMP_CDS_CONFIG"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    threads: int = 4
    gc_threshold: int = 50000
    max_body_bytes: int = 5 * 1024 * 1024
    max_json_depth: int = 64
    max_bundle_entries: int = 10000
    max_prefetch_keys: int = 32
    max_string_length: int = 1048576
    large_request_bytes: int = 1048576
    max_large_requests: int = 1
    large_request_wait_seconds: float = 10.0
    metrics_enabled: bool = True
    metrics_dir: str = ""


@dataclass(frozen=True)
class CorsConfig:
    allowed_origins: tuple[str, ...] = ("*",)
    max_age_seconds: int = 600


@dataclass(frozen=True)
class FhirConfig:
    connect_timeout_seconds: float = 3.05
    read_timeout_seconds: float = 8.0
    max_pages: int = 20
    max_parallel_fetches: int = 8
    pool_connections_per_server: int = 8
    max_response_bytes: int = 20 * 1024 * 1024
    request_budget_seconds: float = 10.0
    allowed_servers: tuple[str, ...] = ()
    allow_http_loopback: bool = False


@dataclass(frozen=True)
class IssuerConfig:
    """One EHR (or other client) whose JWTs are trusted, and where its tokens may be sent."""

    iss: str
    jwks_url: str = ""
    jwks_file: str = ""
    jku_allowlist: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ("ES384", "RS384")
    fhir_servers: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthConfig:
    required: bool = False
    public_base_url: str = "http://127.0.0.1:8080"
    aud_aliases: tuple[str, ...] = ()
    leeway_seconds: int = 30
    max_token_age_seconds: int = 3600
    jwks_cache_seconds: int = 300
    jwks_max_bytes: int = 65536
    jwks_timeout_seconds: float = 3.0
    sandbox_issuer: bool = False
    issuers: tuple[IssuerConfig, ...] = ()


@dataclass(frozen=True)
class StoreConfig:
    url: str = "sqlite:///var/legcramp-cds.sqlite3"
    patient_hash_key: str = ""
    record_cards: bool = True
    record_cards_in_background: bool = True


@dataclass(frozen=True)
class ReportConfig:
    override_rate_flag: float = 0.5
    min_feedback: int = 10


@dataclass(frozen=True)
class EvaluationConfig:
    as_of: str = ""

    def as_of_instant(self) -> datetime | None:
        """The fixed evaluation instant, or None for the system clock."""
        if not self.as_of:
            return None
        text = self.as_of.strip()
        try:
            if len(text) == 10:
                return datetime.fromisoformat(text).replace(tzinfo=UTC)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(
                f"evaluation.as_of is not an ISO 8601 date or instant: {text!r}"
            ) from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class CardsConfig:
    code_system_base: str = "https://legcramp-cds.example.org/fhir/CodeSystem"
    repeat_quiet_days: int = 30


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    cors: CorsConfig = field(default_factory=CorsConfig)
    fhir: FhirConfig = field(default_factory=FhirConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    cards: CardsConfig = field(default_factory=CardsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "embedded defaults"


_SECTIONS = {
    "server": ServerConfig,
    "cors": CorsConfig,
    "fhir": FhirConfig,
    "evaluation": EvaluationConfig,
    "cards": CardsConfig,
    "store": StoreConfig,
    "report": ReportConfig,
}

ALLOWED_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _coerce(section: str, name: str, expected: Any, value: Any) -> Any:
    default = expected
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{section}.{name} has the wrong type: {value!r}")
    return value


def _build_section(name: str, cls: type, values: Mapping[str, Any]) -> Any:
    defaults = cls(iss="") if cls is IssuerConfig else cls()
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}")
    kwargs = {
        key: _coerce(name, key, getattr(defaults, key), value) for key, value in values.items()
    }
    return cls(**kwargs)


def _read_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from exc


def default_document() -> dict[str, Any]:
    text = resources.files("cds_service").joinpath("defaults.toml").read_text(encoding="utf-8")
    return _read_toml(text, "defaults.toml")


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults, then the file (argument, else $LEGCRAMP_CDS_CONFIG), then `overrides`."""
    document = default_document()
    source = "embedded defaults"
    chosen = path if path is not None else os.environ.get(CONFIG_ENV_VAR) or None
    if chosen is not None:
        file_path = Path(chosen)
        try:
            text = file_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {file_path}: {exc}") from exc
        document = _merge(document, _read_toml(text, str(file_path)))
        source = str(file_path)
    if overrides:
        document = _merge(document, overrides)
    return config_from_document(document, source)


def config_from_document(document: Mapping[str, Any], source: str = "document") -> Config:
    unknown = set(document) - set(_SECTIONS) - {"rules", "auth"}
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    sections = {
        name: _build_section(name, cls, document.get(name, {})) for name, cls in _SECTIONS.items()
    }
    rules = document.get("rules", {})
    if not isinstance(rules, Mapping) or not all(isinstance(v, Mapping) for v in rules.values()):
        raise ConfigError("[rules] must hold one table per rule id")
    config = Config(
        rules={k: dict(v) for k, v in rules.items()},
        auth=_build_auth(document.get("auth", {})),
        source=source,
        **sections,
    )
    config.evaluation.as_of_instant()  # fail at start-up, not on the first request
    return config


def _build_auth(values: Mapping[str, Any]) -> AuthConfig:
    """[auth] with its [[auth.issuers]] tables; only asymmetric JWT algorithms are accepted."""
    values = dict(values)
    issuers = values.pop("issuers", [])
    if not isinstance(issuers, list) or not all(isinstance(i, Mapping) for i in issuers):
        raise ConfigError("[[auth.issuers]] must be a list of tables")
    auth = _build_section("auth", AuthConfig, values)
    built = []
    for table in issuers:
        if not isinstance(table.get("iss"), str) or not table["iss"]:
            raise ConfigError("each [[auth.issuers]] needs an iss")
        issuer = _build_section("auth.issuers", IssuerConfig, table)
        bad = set(issuer.algorithms) - ALLOWED_ALGORITHMS
        if bad:
            raise ConfigError(
                f"auth.issuers {issuer.iss}: algorithm(s) not allowed: {', '.join(sorted(bad))}"
                " (asymmetric only: ES*, RS*, PS*)")
        if not (issuer.jwks_url or issuer.jwks_file or issuer.jku_allowlist):
            raise ConfigError(f"auth.issuers {issuer.iss}: give jwks_url, jwks_file or "
                              "jku_allowlist")
        built.append(issuer)
    return replace(auth, issuers=tuple(built))
