"""Issue 18: every setting from the environment (LEGCRAMP_CDS_<SECTION>__<KEY>), secrets from
files (<VARIABLE>_FILE), `legcramp-cds config show`, and a store that is found from any folder
(`[store] data_dir`)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cds_service import config as config_module
from cds_service.cli import main
from cds_service.config import ConfigError, Origin, load_config
from cds_service.config_env import (
    PREFIX,
    environment_overlay,
    rule_variable_name,
    variable_name,
)
from tests.conftest import FIXTURES, ROOT

QUININE = "quinine-leg-cramps"
QUININE_FULL = FIXTURES / "requests" / "order-select-quinine-full-prefetch.json"
HASH_KEY = "hash-key-8f3e1c-never-shown"
DB_PASSWORD = "db-pw-5b7a9d-never-shown"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment of our own (no LEGCRAMP_CDS_* of the developer's), with the per-user
    data directory in tmp_path."""
    return {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def load(env: dict[str, str], path: Path | None = None, **variables: str) -> Any:
    return load_config(path, environ={**env, **variables})


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- names and values ---------------------------------------------------------------------------


def test_a_string_an_integer_a_boolean_and_a_number_are_read_as_their_keys_types(env):
    config = load(env, LEGCRAMP_CDS_SERVER__HOST="0.0.0.0", LEGCRAMP_CDS_SERVER__PORT="9100",
                  LEGCRAMP_CDS_AUTH__REQUIRED="true", LEGCRAMP_CDS_FHIR__READ_TIMEOUT_SECONDS="2",
                  LEGCRAMP_CDS_SERVER__METRICS_ENABLED="false")
    assert config.server.host == "0.0.0.0"
    assert config.server.port == 9100 and type(config.server.port) is int
    assert config.auth.required is True and config.server.metrics_enabled is False
    assert config.fhir.read_timeout_seconds == 2.0
    assert type(config.fhir.read_timeout_seconds) is float


@pytest.mark.parametrize("text, expected", [
    ("https://a.example, https://b.example", ("https://a.example", "https://b.example")),
    ('["https://a.example", "https://b,c.example"]', ("https://a.example", "https://b,c.example")),
    ("https://a.example", ("https://a.example",)),
    ("", ()),
])
def test_a_list_is_a_comma_list_or_a_json_array(env, text, expected):
    config = load(env, LEGCRAMP_CDS_CORS__ALLOWED_ORIGINS=text)
    assert config.cors.allowed_origins == expected


def test_issuers_are_a_json_array_of_tables_checked_like_the_files(env):
    issuers = [{"iss": "https://ehr.example", "jwks_url": "https://ehr.example/jwks",
                "algorithms": ["ES384"]}]
    config = load(env, LEGCRAMP_CDS_AUTH__ISSUERS=json.dumps(issuers))
    assert [(i.iss, i.algorithms) for i in config.auth.issuers] == [
        ("https://ehr.example", ("ES384",))]
    issuers[0]["algorithms"] = ["HS256"]
    with pytest.raises(ConfigError, match=r"HS256.*LEGCRAMP_CDS_AUTH__ISSUERS"):
        load(env, LEGCRAMP_CDS_AUTH__ISSUERS=json.dumps(issuers))


def test_a_rule_setting_is_named_by_its_rule_id_with_underscores(env):
    config = load(env, LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__ENABLED="false",
                  LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__OLDER_ADULT_AGE="70",
                  LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__EGFR_SEVERE_BELOW="25.5")
    assert config.rules == {QUININE: {"enabled": False, "older_adult_age": 70,
                                      "egfr_severe_below": 25.5}}
    assert config.origins[f"rules.{QUININE}.enabled"] == Origin(
        "env", "LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__ENABLED")


def test_every_rule_id_maps_to_one_variable_and_back():
    """The mapping is unambiguous only while rule ids are lower-case words joined by '-'."""
    from hooks import build_services

    rule_ids = {rule.rule_id for service in build_services() for rule in service.rules}
    assert rule_ids
    for rule_id in rule_ids:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule_id), rule_id
        variable = rule_variable_name(rule_id, "enabled")
        document, _ = environment_overlay({variable: "false"}, {})
        assert document == {"rules": {rule_id: {"enabled": False}}}


def test_every_key_of_every_section_has_a_variable_that_sets_it(env):
    sections = {**config_module._SECTIONS, "auth": config_module.AuthConfig}
    for section, cls in sections.items():
        for item in dataclasses.fields(cls):
            if item.name == "issuers":
                continue
            default = getattr(cls(), item.name)
            text = ("true" if default is False else "false" if default is True
                    else str(default + 1) if isinstance(default, int | float)
                    else "a, b" if isinstance(default, tuple) else "x")
            document, origins = environment_overlay({variable_name(section, item.name): text},
                                                    sections)
            assert list(document[section]) == [item.name]
            assert origins == {f"{section}.{item.name}": variable_name(section, item.name)}


def test_no_secret_key_has_a_sibling_whose_variable_is_its_file_form():
    sections = {**config_module._SECTIONS, "auth": config_module.AuthConfig}
    for cls in sections.values():
        names = {item.name for item in dataclasses.fields(cls)}
        for item in dataclasses.fields(cls):
            if item.metadata.get("secret"):
                assert f"{item.name}_file" not in names, item.name


def test_the_secrets_are_the_database_url_and_the_patient_hash_key():
    secret = {f"{section}.{item.name}"
              for section, cls in {**config_module._SECTIONS, "auth": config_module.AuthConfig,
                                   "auth.issuers": config_module.IssuerConfig}.items()
              for item in dataclasses.fields(cls) if item.metadata.get("secret")}
    assert secret == {"store.url", "store.patient_hash_key"}


# --- precedence ---------------------------------------------------------------------------------


def test_the_environment_overrides_the_file_which_overrides_the_defaults(env, tmp_path):
    path = write(tmp_path / "cds.toml", '[server]\nport = 9000\nhost = "10.0.0.1"\n'
                 f'[rules."{QUININE}"]\nolder_adult_age = 70\nenabled = true\n')
    config = load(env, path, LEGCRAMP_CDS_SERVER__PORT="9100",
                  LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__ENABLED="false")
    assert config.server.port == 9100  # env over file
    assert config.server.host == "10.0.0.1"  # file over default
    assert config.server.workers == 2  # default
    assert config.rules[QUININE] == {"older_adult_age": 70, "enabled": False}
    assert config.origins["server.port"] == Origin("env", "LEGCRAMP_CDS_SERVER__PORT")
    assert config.origins["server.host"] == Origin("file", str(path))
    assert "server.workers" not in config.origins
    assert config.source == f"{path} + environment"


def test_the_file_named_by_legcramp_cds_config_is_overridden_too(env, tmp_path):
    path = write(tmp_path / "cds.toml", "[server]\nport = 9000\nworkers = 3\n")
    config = load(env, LEGCRAMP_CDS_CONFIG=str(path), LEGCRAMP_CDS_SERVER__PORT="9100")
    assert (config.server.port, config.server.workers) == (9100, 3)


def test_the_process_environment_is_read_when_none_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("LEGCRAMP_CDS_CONFIG", raising=False)
    monkeypatch.setenv("LEGCRAMP_CDS_SERVER__PORT", "9200")
    assert load_config(None).server.port == 9200


# --- refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable, hint", [
    ("LEGCRAMP_CDS_SERVER_PORT", "did you mean LEGCRAMP_CDS_SERVER__PORT"),
    ("LEGCRAMP_CDS_SERVER__PROT", "did you mean LEGCRAMP_CDS_SERVER__PORT"),
    ("LEGCRAMP_CDS_SEVER__PORT", "did you mean LEGCRAMP_CDS_SERVER__PORT"),
    ("LEGCRAMP_CDS_LOGLEVEL", "LEGCRAMP_CDS_<SECTION>__<KEY>"),
    ("LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS", "LEGCRAMP_CDS_RULES__<RULE_ID>__<KEY>"),
    ("LEGCRAMP_CDS_RULES__QUININE-LEG-CRAMPS__ENABLED", "LEGCRAMP_CDS_RULES__<RULE_ID>__<KEY>"),
])
def test_an_unknown_variable_is_refused_by_name(env, variable, hint):
    with pytest.raises(ConfigError) as raised:
        load(env, **{variable: "1"})
    assert f"unknown environment variable {variable}" in str(raised.value)
    assert hint in str(raised.value)


def test_the_variables_the_code_reads_for_itself_and_other_prefixes_are_not_refused(env, tmp_path):
    path = write(tmp_path / "cds.toml", "")
    config = load(env, LEGCRAMP_CDS_CONFIG=str(path), LEGCRAMP_TEST_POSTGRES_URL="x",
                  LEGCRAMP_REQUIRE_POSTGRES="1", LEGCRAMP_CDS="x")
    assert config.source == str(path)


def test_an_unknown_rule_or_rule_setting_from_the_environment_is_refused_naming_it(monkeypatch,
                                                                                   tmp_path):
    monkeypatch.delenv("LEGCRAMP_CDS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    runner = CliRunner()
    for variable, message in [
        ("LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMP__ENABLED", "unknown rule(s): quinine-leg-cramp"),
        ("LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__ENABELD", "unknown setting 'enabeld'"),
        ("LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__OLDER_ADULT_AGE", "older_adult_age has the "
         "wrong type (expected an integer)"),
    ]:
        result = runner.invoke(main, ["config", "show"], env={variable: "6.5"})
        assert result.exit_code != 0
        assert message in result.output and f"(set by {variable})" in result.output, (
            result.output)


@pytest.mark.parametrize("variable, text, kind", [
    ("LEGCRAMP_CDS_SERVER__PORT", "eighty", "an integer"),
    ("LEGCRAMP_CDS_SERVER__PORT", "80.5", "an integer"),
    ("LEGCRAMP_CDS_SERVER__PORT", "true", "an integer"),
    ("LEGCRAMP_CDS_SERVER__PORT", "", "an integer"),
    ("LEGCRAMP_CDS_AUTH__REQUIRED", "yes", "true or false"),
    ("LEGCRAMP_CDS_AUTH__REQUIRED", "True", "true or false"),
    ("LEGCRAMP_CDS_FHIR__READ_TIMEOUT_SECONDS", "fast", "a number"),
    ("LEGCRAMP_CDS_CORS__ALLOWED_ORIGINS", '["a", 1]', "a JSON array of strings"),
    ("LEGCRAMP_CDS_AUTH__ISSUERS", '{"iss": "x"}', "a JSON array of objects"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_variable(env, variable, text, kind):
    with pytest.raises(ConfigError) as raised:
        load(env, **{variable: text})
    assert str(raised.value).startswith(f"{variable} (")
    assert f"must be {kind}" in str(raised.value)


def test_a_value_checked_after_typing_names_the_variable_too(env):
    with pytest.raises(ConfigError, match=r"server\.worker_class must be one of .*'sync' "
                                          r"\(set by LEGCRAMP_CDS_SERVER__WORKER_CLASS\)"):
        load(env, LEGCRAMP_CDS_SERVER__WORKER_CLASS="sync")
    with pytest.raises(ConfigError, match="LEGCRAMP_CDS_EVALUATION__AS_OF"):
        load(env, LEGCRAMP_CDS_EVALUATION__AS_OF="last tuesday")


def test_a_secret_of_the_wrong_type_in_the_environment_is_not_echoed():
    """Today's secrets are strings, which any text is; a secret of another type must still
    never be echoed."""

    @dataclasses.dataclass(frozen=True)
    class Vault:
        pin: int = config_module._key(0, "a numeric secret", secret=True)

    with pytest.raises(ConfigError) as raised:
        environment_overlay({"LEGCRAMP_CDS_VAULT__PIN": HASH_KEY}, {"vault": Vault})
    assert "LEGCRAMP_CDS_VAULT__PIN (vault.pin) must be an integer" in str(raised.value)
    assert HASH_KEY not in str(raised.value)


def test_a_secret_of_the_wrong_type_in_the_file_is_not_echoed(env, tmp_path):
    path = write(tmp_path / "cds.toml", f"[store]\npatient_hash_key = [\"{HASH_KEY}\"]\n")
    with pytest.raises(ConfigError) as raised:
        load(env, path)
    assert "store.patient_hash_key has the wrong type" in str(raised.value)
    assert HASH_KEY not in str(raised.value)


# --- secrets from files -------------------------------------------------------------------------


def test_a_secret_is_read_from_the_file_its_file_variable_names(env, tmp_path):
    key_file = write(tmp_path / "secrets" / "hash", f"{HASH_KEY}\n")
    url_file = write(tmp_path / "secrets" / "url",
                     f"postgresql+psycopg://cds:{DB_PASSWORD}@db.example/cds\r\n")
    config = load(env, LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE=str(key_file),
                  LEGCRAMP_CDS_STORE__URL_FILE=str(url_file))
    assert config.store.patient_hash_key == HASH_KEY  # the trailing newline dropped
    assert config.store.url == f"postgresql+psycopg://cds:{DB_PASSWORD}@db.example/cds"
    assert config.origins["store.patient_hash_key"] == Origin(
        "env", "LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE")


def test_only_one_trailing_newline_is_dropped(env, tmp_path):
    key_file = write(tmp_path / "hash", f" {HASH_KEY}\n\n")
    config = load(env, LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE=str(key_file))
    assert config.store.patient_hash_key == f" {HASH_KEY}\n"


@pytest.mark.parametrize("make_path, reason", [
    (lambda tmp: str(tmp / "absent"), "No such file or directory"),
    (lambda tmp: str(tmp), "Is a directory"),
    (lambda tmp: "", "names no file"),
])
def test_a_missing_or_unreadable_secret_file_is_refused_naming_the_variable(env, tmp_path,
                                                                            make_path, reason):
    with pytest.raises(ConfigError) as raised:
        load(env, LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE=make_path(tmp_path))
    assert str(raised.value).startswith("LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE")
    assert reason in str(raised.value)


def test_a_secret_file_that_is_not_text_is_refused_without_its_contents(env, tmp_path):
    path = tmp_path / "hash"
    path.write_bytes(b"\xff\xfe" + HASH_KEY.encode())
    with pytest.raises(ConfigError) as raised:
        load(env, LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE=str(path))
    assert "LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE" in str(raised.value)
    assert HASH_KEY not in str(raised.value)


def test_a_secret_set_both_ways_is_refused(env, tmp_path):
    key_file = write(tmp_path / "hash", HASH_KEY)
    with pytest.raises(ConfigError, match="LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY and "
                                          "LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE are both"):
        load(env, LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY="other",
             LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE=str(key_file))


def test_a_setting_that_is_not_a_secret_is_not_read_from_a_file(env, tmp_path):
    port_file = write(tmp_path / "port", "9100")
    with pytest.raises(ConfigError, match="LEGCRAMP_CDS_SERVER__PORT_FILE: only secrets"):
        load(env, LEGCRAMP_CDS_SERVER__PORT_FILE=str(port_file))


# --- config show --------------------------------------------------------------------------------


@pytest.fixture
def show(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("LEGCRAMP_CDS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    def run(*args: str, **variables: str) -> str:
        result = CliRunner().invoke(main, ["config", "show", *args], env=variables)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def _line(output: str, section: str, key: str) -> str:
    table = output.split(f"\n{section}\n", 1)[1].split("\n\n", 1)[0]
    return next(line for line in table.splitlines() if line.startswith(f"{key} = "))


def test_config_show_redacts_every_secret_and_says_where_each_value_came_from(show, tmp_path):
    path = write(tmp_path / "cds.toml", "[server]\nworkers = 3\nport = 9000\n"
                 f'[store]\nurl = "postgresql+psycopg://cds:{DB_PASSWORD}@db.example/cds'
                 f'?sslmode=require&password={DB_PASSWORD}"\n')
    key_file = write(tmp_path / "secrets" / "hash", f"{HASH_KEY}\n")
    output = show("--config", str(path), LEGCRAMP_CDS_SERVER__PORT="9100",
                  LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE=str(key_file),
                  LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__OLDER_ADULT_AGE="70")
    assert HASH_KEY not in output and DB_PASSWORD not in output
    assert re.fullmatch(r'url = "postgresql\+psycopg://cds:\*\*\*@db\.example/cds\?'
                        r'password=redacted&sslmode=require" +# file .*cds\.toml',
                        _line(output, "[store]", "url"))
    assert re.fullmatch(r'patient_hash_key = "<redacted>" +# env '
                        r"LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE",
                        _line(output, "[store]", "patient_hash_key"))
    assert re.fullmatch(r"port = 9100 +# env LEGCRAMP_CDS_SERVER__PORT",
                        _line(output, "[server]", "port"))
    assert re.fullmatch(rf"workers = 3 +# file {re.escape(str(path))}",
                        _line(output, "[server]", "workers"))
    assert re.fullmatch(r"threads = 4 +# default", _line(output, "[server]", "threads"))
    assert re.fullmatch(r"older_adult_age = 70 +# env "
                        r"LEGCRAMP_CDS_RULES__QUININE_LEG_CRAMPS__OLDER_ADULT_AGE",
                        _line(output, f'[rules."{QUININE}"]', "older_adult_age"))
    assert re.fullmatch(r"egfr_severe_below = 30.0 +# default",
                        _line(output, f'[rules."{QUININE}"]', "egfr_severe_below"))


def test_config_show_redacts_a_secret_given_directly_in_the_environment(show):
    output = show(LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY=HASH_KEY,
                  LEGCRAMP_CDS_STORE__URL=f"postgresql://u:{DB_PASSWORD}@h/d")
    assert HASH_KEY not in output and DB_PASSWORD not in output
    assert 'url = "postgresql://u:***@h/d"' in output


def test_config_show_says_an_unset_secret_is_empty(show):
    assert re.fullmatch(r'patient_hash_key = "" +# default',
                        _line(show(), "[store]", "patient_hash_key"))


def test_a_database_url_that_cannot_be_read_is_redacted_whole(show):
    output = show(LEGCRAMP_CDS_STORE__URL=f"not a url {DB_PASSWORD}")
    assert DB_PASSWORD not in output
    assert _line(output, "[store]", "url").startswith('url = "<redacted>"')


def test_config_show_is_valid_toml_that_loads_back(show, tmp_path):
    output = show(LEGCRAMP_CDS_SERVER__PORT="9100")
    path = write(tmp_path / "shown.toml", output)
    assert load_config(path, environ={}).server.port == 9100


# --- where the store is -------------------------------------------------------------------------


def test_the_default_store_is_in_the_per_user_data_directory_not_the_current_folder(
        env, tmp_path, monkeypatch):
    urls = set()
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        urls.add(load(env).store.url)
    assert urls == {f"sqlite:///{tmp_path}/xdg/legcramp-cds/legcramp-cds.sqlite3"}


def test_the_store_of_a_configuration_file_is_beside_it_from_any_folder(env, tmp_path,
                                                                        monkeypatch):
    path = write(tmp_path / "etc" / "cds.toml", "[server]\nport = 9000\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "etc")
    beside = load(env, Path("cds.toml"))
    monkeypatch.chdir(tmp_path / "elsewhere")
    from_elsewhere = load(env, Path("../etc/cds.toml"))
    assert beside.store.url == from_elsewhere.store.url == (
        f"sqlite:///{tmp_path}/etc/legcramp-cds.sqlite3")
    assert beside.store.data_dir == str(tmp_path / "etc")
    assert beside.origins["store.data_dir"] == Origin("default", "(beside the configuration file)")
    assert load(env, path).store.url == beside.store.url


def test_a_relative_data_dir_in_the_file_is_relative_to_the_file(env, tmp_path, monkeypatch):
    write(tmp_path / "etc" / "cds.toml",
          '[store]\ndata_dir = "../data"\nurl = "sqlite:///sub/cards.db"\n')
    monkeypatch.chdir(tmp_path)
    config = load(env, Path("etc/cds.toml"))
    assert config.store.data_dir == str(tmp_path / "data")
    assert config.store.url == f"sqlite:///{tmp_path}/data/sub/cards.db"


def test_a_data_dir_from_the_environment_is_used_whatever_the_file_says(env, tmp_path,
                                                                       monkeypatch):
    path = write(tmp_path / "etc" / "cds.toml", f'[store]\ndata_dir = "{tmp_path}/a"\n')
    config = load(env, path, LEGCRAMP_CDS_STORE__DATA_DIR=str(tmp_path / "volume"))
    assert config.store.url == f"sqlite:///{tmp_path}/volume/legcramp-cds.sqlite3"
    assert config.origins["store.data_dir"] == Origin("env", "LEGCRAMP_CDS_STORE__DATA_DIR")
    monkeypatch.chdir(tmp_path)  # a relative one is relative to where the command starts
    config = load(env, path, LEGCRAMP_CDS_STORE__DATA_DIR="volume")
    assert config.store.data_dir == str(tmp_path / "volume")


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://cds@db.example/cds",
    "sqlite:////srv/cds/store.sqlite3",
    "sqlite://",
    "sqlite:///:memory:",
])
def test_a_url_that_is_not_a_relative_sqlite_path_is_kept_as_it_is(env, url):
    assert load(env, LEGCRAMP_CDS_STORE__URL=url).store.url == url


def test_without_xdg_the_store_is_in_local_share_or_as_root_in_var_lib(tmp_path, monkeypatch):
    environ = {"HOME": str(tmp_path / "home")}
    monkeypatch.setattr(config_module, "running_as_root", lambda: False)
    assert load_config(None, environ=environ).store.data_dir == str(
        tmp_path / "home" / ".local" / "share" / "legcramp-cds")
    monkeypatch.setattr(config_module, "running_as_root", lambda: True)
    assert load_config(None, environ=environ).store.data_dir == "/var/lib/legcramp-cds"
    environ["XDG_DATA_HOME"] = "relative/xdg"  # not absolute: ignored, as the XDG spec says
    assert load_config(None, environ=environ).store.data_dir == "/var/lib/legcramp-cds"


def test_report_run_from_another_folder_reads_the_cards_evaluate_recorded(tmp_path, monkeypatch):
    monkeypatch.delenv("LEGCRAMP_CDS_CONFIG", raising=False)
    for variable in [name for name in os.environ if name.startswith(PREFIX)]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    for folder in ("serving", "reporting"):
        (tmp_path / folder).mkdir()
    runner = CliRunner()
    monkeypatch.chdir(tmp_path / "serving")
    result = runner.invoke(main, ["evaluate", str(QUININE_FULL), "--as-of", "2026-11-21"])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "reporting")
    result = runner.invoke(main, ["report", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {row["rule_id"]: row["shown"] for row in json.loads(result.output)} == {QUININE: 1}
    assert (tmp_path / "xdg" / "legcramp-cds" / "legcramp-cds.sqlite3").exists()
    assert list((tmp_path / "serving").iterdir()) == []


# --- documentation ------------------------------------------------------------------------------


def test_every_variable_the_docs_and_deployment_name_is_one_the_service_accepts():
    sections = {**config_module._SECTIONS, "auth": config_module.AuthConfig}
    texts = [ROOT / "README.md", ROOT / "Dockerfile", *sorted((ROOT / "deploy").rglob("*.yaml"))]
    named = {name for path in texts if path.exists()
             for name in re.findall(r"LEGCRAMP_CDS_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*<)",
                                    path.read_text(encoding="utf-8"))}
    assert "LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE" in named
    for name in sorted(named - config_module.RESERVED_ENV_VARS):
        if name.endswith("_FILE"):
            try:
                environment_overlay({name: "/nonexistent/secret"}, sections)
            except ConfigError as exc:
                assert "cannot read /nonexistent/secret" in str(exc), name
        else:
            try:
                environment_overlay({name: "1"}, sections)
            except ConfigError as exc:
                assert "unknown environment variable" not in str(exc), name
