"""Configuration: embedded TOML defaults, overlaid by one operator file, overlaid by
`LEGCRAMP_CDS_*` environment variables (config_env.py).

Read once at start-up into frozen dataclasses and handed to `create_app`, so nothing reads
globals or the environment per request. Unknown keys (and unknown variables) are errors: a typo
in a threshold must not silently fall back to a default. `load_config` also records where each
value came from (`Config.origins`, for `legcramp-cds config show`) and resolves the store's
location (`[store] data_dir`), so every command opens the same database wherever it is run from.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from cds_service.config_env import environment_overlay
from cds_service.errors import ConfigError

CONFIG_ENV_VAR = "LEGCRAMP_CDS_CONFIG"
# LEGCRAMP_CDS_* variables the code reads for itself; any other that is not a setting is refused.
RESERVED_ENV_VARS = frozenset({CONFIG_ENV_VAR})
WORKER_CLASSES = ("gevent", "gthread")
# gunicorn's own names for its levels (its `loglevel`), which the service's loggers share.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
APP_DIR_NAME = "legcramp-cds"


def _key(default: Any, doc: str, *, secret: bool = False) -> Any:
    """A configuration key: its default (as the dataclass holds it) and what it means, for the
    generated reference in the README (`legcramp-cds config-reference`). A secret may also be
    read from a file (`<VARIABLE>_FILE`), and its value is never shown (`config show`, errors)."""
    return field(default=default, metadata={"doc": doc, "secret": secret})


@dataclass(frozen=True)
class ServerConfig:
    host: str = _key("127.0.0.1", "Where `serve` listens")
    port: int = _key(8080, "Where `serve` listens")
    workers: int = _key(2, "gunicorn worker processes")
    worker_class: str = _key(
        "gevent", "`gevent`: each connection is a cooperative greenlet, so slow clients and slow "
        "FHIR servers hold no thread and `/health` never waits behind hook work (measured: "
        "`bench/slow_clients.py`). `gthread`: a pool of `threads` OS threads per worker, which "
        "slow clients can fill; only behind a buffering proxy")
    threads: int = _key(4, "Threads per worker with `worker_class = \"gthread\"`")
    worker_connections: int = _key(
        1000, "Connections one worker holds at once with `worker_class = \"gevent\"`; more "
        "wait in the listen backlog")
    gc_threshold: int = _key(50000, "Objects allocated between young-generation garbage "
                             "collections in each worker (Python's default is 700)")
    max_body_bytes: int = _key(5 * 1024 * 1024, "Larger request bodies get 413")
    max_json_depth: int = _key(64, "Deeper JSON nesting gets 400 (hostile-input limit)")
    max_bundle_entries: int = _key(10000, "Entries per Bundle (draftOrders, medications or a "
                                   "prefetch value); more gets 400")
    max_prefetch_keys: int = _key(32, "Keys in `prefetch`; more gets 400")
    max_string_length: int = _key(1048576, "Characters in any one JSON string; more gets 400")
    max_feedback_items: int = _key(500, "Items in one feedback batch; more gets 400 (nothing "
                                   "of the batch is stored)")
    large_request_bytes: int = _key(
        1048576, "Hook requests this large (or chunked) are worked on `max_large_requests` at a "
        "time per worker; small ones never wait. Each costs ~6x its size in memory and the "
        "threads share one interpreter lock, so more at once only adds memory and delay")
    max_large_requests: int = _key(1, "Large hook requests worked on at once per worker")
    large_request_wait_seconds: float = _key(
        10.0, "A large request that waits longer than this gets 503 + `Retry-After`")
    metrics_enabled: bool = _key(True, "`GET /metrics`; `false` makes it answer 404")
    metrics_port: int = _key(
        0, "Serve `GET /metrics` on a listener of its own on this port, and not on the "
        "service's port (keep it off the network the EHRs reach); 0: on the service's port")
    metrics_host: str = _key("127.0.0.1", "Where that metrics listener listens")
    metrics_dir: str = _key("", "Where `serve`'s workers keep their metric files (emptied at "
                            "start); empty: a temporary directory removed at exit")
    log_level: str = _key("info", "Lowest level logged by the service and gunicorn (`debug`, "
                          "`info`, `warning`, `error`, `critical`); other libraries log "
                          "`warning` and above")


@dataclass(frozen=True)
class CorsConfig:
    allowed_origins: tuple[str, ...] = _key(
        ("*",), "Origins browsers may call the CDS Hooks endpoints from (the sandbox is a "
        "browser app: `https://sandbox.cds-hooks.org`); `*` only in anonymous mode, ignored "
        "with `[auth] required = true`")
    max_age_seconds: int = _key(600, "How long browsers cache a preflight")


@dataclass(frozen=True)
class FhirConfig:
    connect_timeout_seconds: float = _key(3.05, "Per FHIR call: to connect")
    read_timeout_seconds: float = _key(8.0, "Per FHIR call: between bytes of the answer")
    max_pages: int = _key(20, "Pages followed per search; more makes the key unobtainable (412)")
    max_parallel_fetches: int = _key(32, "FHIR calls (missing keys, pages, Medications) in "
                                     "flight at once per worker (greenlets under gevent, "
                                     "threads under gthread)")
    max_parallel_fetches_per_request: int = _key(
        8, "Of those, how many one hook request may use at once (a request with many keys or "
        "Medications cannot take them all); 8 fetches every key a service declares in one "
        "round")
    max_parallel_fetches_per_server: int = _key(
        16, "Of those, how many all requests to one FHIR server may hold together: a server "
        "trickling its answers fills its own share, never the calls to other servers")
    max_medication_references: int = _key(
        200, "Distinct Medications the orders of one request may name by reference for the "
        "service to read; more: 412, nothing read")
    medication_batch_size: int = _key(
        50, "Medications asked for in one `Medication?_id=a,b,c` search (1: read one by one)")
    pool_connections_per_server: int = _key(16, "Pooled connections kept per FHIR server")
    max_response_bytes: int = _key(20 * 1024 * 1024, "Larger FHIR answers are refused")
    request_budget_seconds: float = _key(
        10.0, "Time all FHIR calls of one hook request may take together")
    breaker_failures: int = _key(
        5, "Slow or unreachable calls in a row after which a FHIR server is left alone ...")
    breaker_cooldown_seconds: float = _key(
        30.0, "... for this long (its keys are unobtainable at once, 412) before one call is "
        "tried again")
    max_request_bytes: int = _key(
        64 * 1024 * 1024, "Bytes all FHIR answers of one hook request may bring together "
        "(every key, page and Medication); past it the key is unobtainable (412)")
    max_request_resources: int = _key(
        50000, "Resources all FHIR answers of one hook request may bring together; past it the "
        "key is unobtainable (412)")
    allowed_servers: tuple[str, ...] = _key(
        (), "FHIR bases any caller may name, in every mode (`https://x/*` = any path; "
        "`http://127.0.0.1:*` = any port); a verified issuer adds its own `fhir_servers`. "
        "Empty: only the issuers' lists")
    allow_http_loopback: bool = _key(
        False, "Plain http to loopback in every mode (an operator's sidecar); otherwise https "
        "only")
    development_servers: tuple[str, ...] = _key(
        (), "FHIR bases added in anonymous mode only (development: loopback and the public "
        "sandbox's server); never with `[auth] required = true`")
    development_http_loopback: bool = _key(
        False, "Plain http to loopback in anonymous mode only (development)")

    def in_force(self, auth_required: bool) -> tuple[tuple[str, ...], bool]:
        """The FHIR bases any caller may name, and whether plain http to loopback is allowed:
        deny by default once auth is on (the operator's list only; each verified issuer adds
        its own); the development conveniences only in anonymous mode."""
        if auth_required:
            return self.allowed_servers, self.allow_http_loopback
        return ((*self.allowed_servers, *self.development_servers),
                self.allow_http_loopback or self.development_http_loopback)


@dataclass(frozen=True)
class IssuerConfig:
    """One EHR (or other client) whose JWTs are trusted, and where its tokens may be sent."""

    iss: str = _key("", "The issuer (`iss` claim); required")
    jwks_url: str = _key("", "Where its public keys are (JWKS over https)")
    jwks_file: str = _key("", "Or a JWKS file")
    jku_allowlist: tuple[str, ...] = _key((), "`jku` header values accepted for this issuer")
    algorithms: tuple[str, ...] = _key(("ES384", "RS384"), "JWT algorithms accepted "
                                       "(asymmetric only: ES*, RS*, PS*)")
    fhir_servers: tuple[str, ...] = _key((), "FHIR servers this issuer's tokens may be sent to")
    tenants: tuple[str, ...] = _key((), "Tenants accepted (`tenant` claim); empty: any")


@dataclass(frozen=True)
class AuthConfig:
    required: bool = _key(False, "Refuse calls without a valid JWT (401); `false` accepts "
                          "anonymous calls and says so at start-up")
    public_base_url: str = _key("http://127.0.0.1:8080", "The JWT `aud` is computed from "
                                "this, never from request headers")
    aud_aliases: tuple[str, ...] = _key((), "Other base URLs accepted as `aud`")
    leeway_seconds: int = _key(30, "Clock skew allowed on `exp`, `nbf` and `iat`")
    max_token_age_seconds: int = _key(3600, "Tokens older than this (by `iat`) are refused")
    jwks_cache_seconds: int = _key(300, "How long an issuer's keys are cached")
    jwks_max_bytes: int = _key(65536, "Larger JWKS answers are refused")
    jwks_timeout_seconds: float = _key(3.0, "Per JWKS fetch")
    sandbox_issuer: bool = _key(False, "Trust the public CDS Hooks sandbox, whose private key is "
                                "public: development and testing only")
    issuers: tuple[IssuerConfig, ...] = field(
        default=(), metadata={"doc": "`[[auth.issuers]]` tables: the EHRs that may call"})


@dataclass(frozen=True)
class StoreConfig:
    url: str = _key("sqlite:///legcramp-cds.sqlite3", "The service's database (replay "
                    "cache, cards shown, feedback); a relative SQLite path is relative to "
                    "`data_dir`; `postgresql+psycopg://...` for several instances. A secret (it "
                    "may hold a password)", secret=True)
    data_dir: str = _key(
        "", "Where a relative SQLite path in `url` lives, whatever folder a command runs from "
        "(a relative `data_dir` is relative to the configuration file). Empty: beside the "
        "configuration file when one is given, else `$XDG_DATA_HOME/legcramp-cds`, else "
        "`/var/lib/legcramp-cds` as root, else `~/.local/share/legcramp-cds`")
    patient_hash_key: str = _key("", "Secret for the keyed hash of patient ids kept with cards "
                                 "(empty: none kept)", secret=True)
    record_cards: bool = _key(True, "Record every card shown for the report")
    retention_days: int = _key(
        400, "`legcramp-cds db purge` deletes cards shown and feedback older than this")
    comment_retention_days: int = _key(
        90, "... and blanks feedback `userComment` (free text that may hold patient data) "
        "older than this")
    migrate_on_start: bool = _key(
        True, "Bring the schema up to date when the service starts (needs DDL rights); "
        "`false`: run `legcramp-cds db upgrade` first, and the service refuses to start while "
        "the schema is behind, so it can run with a role that has no DDL rights")
    record_cards_in_background: bool = _key(
        True, "Write them from a thread of each worker, the answers of 50 ms in one commit, "
        "after the answer has gone (written at a worker's exit; failures retried, then counted "
        "in `legcramp_cds_cards_not_recorded_total`); `false`: each answer waits for its own "
        "commit")


@dataclass(frozen=True)
class ReportConfig:
    override_rate_flag: float = _key(0.5, "The report flags a rule overridden more often than "
                                     "this ...")
    min_feedback: int = _key(10, "... once its cards have at least this many decisions")


@dataclass(frozen=True)
class EvaluationConfig:
    as_of: str = _key("", "Evaluate as of this ISO date/instant (tests and replays only)")

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
    code_system_base: str = _key(
        "https://legcramp-cds.example.org/fhir/CodeSystem", "Base of the code systems for "
        "`source.topic` (`/rule`) and override reasons (`/override-reason`); set it to a URL "
        "your organisation controls")
    repeat_quiet_days: int = _key(30, "Guidance about a standing finding is not repeated on "
                                  "patient-view within this many days (0: every time)")
    silent: bool = _key(
        False, "Silent pilot: every rule runs and its cards are recorded as shown silently, "
        "but the EHR gets none of them; the report counts them apart (\"would have fired\"). "
        "One rule alone: `silent = true` in its `[rules.\"<id>\"]` table")


@dataclass(frozen=True)
class Origin:
    """Where one effective value came from: `default`, `file` (where: the file), `env` (where:
    the variable, or its `_FILE`) or `override` (from the program, e.g. `review-page`)."""

    kind: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.where}" if self.where else self.kind


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
    # Where each value that is not an embedded default came from, by key ("server.port",
    # "auth.issuers", "rules.<rule-id>.<key>"), and why `store.data_dir` is where it is.
    origins: Mapping[str, Origin] = field(default_factory=dict, compare=False, repr=False)


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


def _coerce(section: str, name: str, expected: Any, value: Any, secret: bool = False) -> Any:
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
        shown = "(the value of a secret is not shown)" if secret else repr(value)
        raise ConfigError(f"{section}.{name} has the wrong type: {shown}")
    return value


def _build_section(name: str, cls: type, values: Mapping[str, Any]) -> Any:
    defaults = cls()
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}")
    kwargs = {
        key: _coerce(name, key, getattr(defaults, key), value,
                     bool(known[key].metadata.get("secret")))
        for key, value in values.items()
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


def embedded_config() -> Config:
    """The embedded defaults alone, as written (no file, no environment, the store's location
    unresolved): what the generated reference documents."""
    return config_from_document(default_document(), "embedded defaults")


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """The configuration a command runs with: the embedded defaults, then the file (argument,
    else $LEGCRAMP_CDS_CONFIG), then the LEGCRAMP_CDS_* environment variables (config_env.py),
    then `overrides` (the program's own); with where each value came from (`origins`) and the
    store's location resolved (`resolve_store`). `environ` is os.environ unless given."""
    environ = os.environ if environ is None else environ
    document = default_document()
    origins: dict[str, Origin] = {}
    source = "embedded defaults"
    config_file = None
    chosen = path if path is not None else environ.get(CONFIG_ENV_VAR) or None
    if chosen is not None:
        config_file = Path(chosen)
        try:
            text = config_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {config_file}: {exc}") from exc
        from_file = _read_toml(text, str(config_file))
        document = _merge(document, from_file)
        origins.update(_origins_of(from_file, Origin("file", str(config_file))))
        source = str(config_file)
    from_environment, variables = environment_overlay(
        environ, {**_SECTIONS, "auth": AuthConfig}, RESERVED_ENV_VARS)
    if from_environment:
        document = _merge(document, from_environment)
        origins.update({key: Origin("env", variable) for key, variable in variables.items()})
        source += " + environment"
    if overrides:
        document = _merge(document, overrides)
        origins.update(_origins_of(overrides, Origin("override")))
    try:
        config = config_from_document(document, source)
    except ConfigError as exc:
        raise ConfigError(explain(str(exc), origins)) from exc
    store, data_dir_origin = resolve_store(config.store, config_file,
                                           origins.get("store.data_dir"), environ)
    origins.setdefault("store.data_dir", data_dir_origin)
    return replace(config, store=store, origins=origins)


def _origins_of(document: Mapping[str, Any], origin: Origin) -> dict[str, Origin]:
    """`origin` for every key `document` sets: `section.key`, `auth.issuers` as one key, and
    `rules.<rule-id>.<key>`."""
    found = {}
    for section, table in document.items():
        if not isinstance(table, Mapping):
            continue
        for key, value in table.items():
            if section == "rules" and isinstance(value, Mapping):
                found.update({f"rules.{key}.{setting}": origin for setting in value})
            else:
                found[f"{section}.{key}"] = origin
    return found


def explain(message: str, origins: Mapping[str, Origin]) -> str:
    """A ConfigError's `message` with the environment variables that set the keys it names, so
    an error about a value from the environment names the variable to fix."""
    named = set()
    for key, origin in origins.items():
        if origin.kind != "env":
            continue
        if key.startswith("rules."):
            _, rule_id, setting = key.split(".", 2)
            hit = (_names(message, key) or _names(message, rule_id)
                   or (f"rules.{rule_id}:" in message and f"'{setting}'" in message))
        else:
            hit = _names(message, key)
        if hit:
            named.add(origin.where)
    return f"{message} (set by {', '.join(sorted(named))})" if named else message


def _names(message: str, name: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", message) is not None


def resolve_store(
    store: StoreConfig,
    config_file: Path | None,
    data_dir_origin: Origin | None,
    environ: Mapping[str, str],
) -> tuple[StoreConfig, Origin]:
    """`store` with `data_dir` absolute and a relative SQLite path in `url` made absolute
    within it, and where `data_dir` came from. A relative `data_dir` from the file is relative
    to the file; from the environment or the program, to the current folder."""
    if store.data_dir:
        from_file = data_dir_origin is not None and data_dir_origin.kind == "file"
        base = config_file.parent if from_file and config_file is not None else Path.cwd()
        data_dir = Path(os.path.abspath(base / os.path.expanduser(store.data_dir)))
        origin = data_dir_origin or Origin("default")
    else:
        data_dir, why = default_data_dir(config_file, environ)
        origin = Origin("default", f"({why})")
    return replace(store, data_dir=str(data_dir),
                   url=database_url(store.url, data_dir)), origin


def default_data_dir(config_file: Path | None, environ: Mapping[str, str]) -> tuple[Path, str]:
    """Where the store lives when `[store] data_dir` is not set, and why there: beside the
    configuration file; else the XDG data directory; else /var/lib as root (a service); else
    the user's ~/.local/share. Never the current folder, so `report` run from elsewhere reads
    the database `serve` writes."""
    if config_file is not None:
        return Path(os.path.abspath(config_file)).parent, "beside the configuration file"
    xdg = environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / APP_DIR_NAME, "$XDG_DATA_HOME"
    if running_as_root():
        return Path("/var/lib") / APP_DIR_NAME, "as root"
    try:
        home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    except (KeyError, RuntimeError) as exc:
        raise ConfigError("no home directory to keep the store in: set [store] data_dir "
                          "(or LEGCRAMP_CDS_STORE__DATA_DIR)") from exc
    return home / ".local" / "share" / APP_DIR_NAME, "the user's ~/.local/share"


def running_as_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def database_url(url: str, data_dir: Path) -> str:
    """`url` with a relative SQLite database path made absolute within `data_dir`; any other
    URL (PostgreSQL, an absolute path, in memory) as it is."""
    if not url.startswith("sqlite"):
        return url
    from sqlalchemy.engine import make_url  # the store's own reading of the URL
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # the store refuses it, with its reason
    database = parsed.database
    if (parsed.get_backend_name() != "sqlite" or not database or database == ":memory:"
            or database.startswith("file:") or os.path.isabs(database)):
        return url
    return parsed.set(database=str(data_dir / database)).render_as_string(hide_password=False)


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
    for key, allowed in (("worker_class", WORKER_CLASSES), ("log_level", LOG_LEVELS)):
        value = getattr(config.server, key)
        if value not in allowed:
            raise ConfigError(f"server.{key} must be one of {', '.join(allowed)}: {value!r}")
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
