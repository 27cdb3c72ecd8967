"""Configuration is strict about what it knows; logs carry no patient data or tokens."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import pytest

from cds_service.config import CONFIG_ENV_VAR, ConfigError, load_config
from cds_service.kit import RuleSettings
from cds_service.logs import JsonFormatter, RequestContextFilter
from cds_service.pipeline.rule_settings import rule_settings
from hooks import build_services
from tests.conftest import load_request


def test_embedded_defaults_run_as_is():
    config = load_config(None)
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.cors.allowed_origins == ("*",)
    assert config.rules == {}  # no rule tables: each rule's own Settings defaults apply
    settings = rule_settings(build_services(), config.rules)
    quinine = settings["quinine-leg-cramps"]
    assert quinine == type(quinine)()  # its declared defaults, untouched
    assert quinine.enabled is True and isinstance(quinine, RuleSettings)


def test_file_overrides_defaults_and_env_var_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "cds.toml"
    path.write_text("[server]\nport = 9090\n[fhir]\nread_timeout_seconds = 2\n", encoding="utf-8")
    config = load_config(path)
    assert config.server.port == 9090 and config.fhir.read_timeout_seconds == 2.0
    assert config.server.host == "127.0.0.1"
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    assert load_config().server.port == 9090


@pytest.mark.parametrize(
    "text, message",
    [
        ("[server]\nprot = 1\n", "prot"),
        ("[sever]\nport = 1\n", "sever"),
        ('[server]\nport = "80"\n', "server.port"),
        ('[evaluation]\nas_of = "last tuesday"\n', "as_of"),
        ("[server\n", "TOML"),
    ],
)
def test_bad_configuration_is_refused_with_the_key_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize("rules, message", [
    ({"no-such-rule": {"enabled": True}}, "no-such-rule"),
    ({"quinine-leg-cramps": {"enabeld": False}}, "enabeld"),
    ({"quinine-leg-cramps": {"enabled": "no"}}, "wrong type"),
])
def test_bad_rule_settings_are_refused(make_app, rules, message):
    with pytest.raises(ConfigError, match=message):
        make_app(load_config(None, overrides={"rules": rules}))


def test_as_of_sets_the_evaluation_clock():
    config = load_config(None, overrides={"evaluation": {"as_of": "2021-06-30"}})
    assert config.evaluation.as_of_instant() == datetime(2021, 6, 30, tzinfo=UTC)


def test_logs_hold_no_token_or_patient_data(make_app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())  # as every handler `serve` writes with
    logger = logging.getLogger("legcramp_cds")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        request = load_request("patient-view-full-prefetch")
        request["prefetch"]["conditions"]["entry"].append(
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "broken",
                    "subject": {"reference": "Patient/cramps-001"},
                    "onsetDateTime": "Hartley-secret",
                }
            }
        )
        client = make_app().test_client()
        assert client.post("/cds-services/legcramp-patient-view", json=request).status_code == 200
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line.get("hook_instance") == request["hookInstance"] for line in lines)
    for secret in (
        request["fhirAuthorization"]["access_token"],
        "cramps-001",
        "Hartley",
        "Margaret",
        "1951-03-14",
        "Hartley-secret",
    ):
        assert secret not in text


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_the_two_worker_classes_are_accepted(worker_class):
    config = load_config(None, overrides={"server": {"worker_class": worker_class}})
    assert config.server.worker_class == worker_class


@pytest.mark.parametrize("worker_class", ["sync", "eventlet", "GEVENT", ""])
def test_another_worker_class_is_refused_naming_the_key(worker_class):
    with pytest.raises(ConfigError, match=r"server\.worker_class"):
        load_config(None, overrides={"server": {"worker_class": worker_class}})


def test_the_default_worker_class_holds_no_thread_per_connection():
    """The embedded default is the one measured to survive slow clients (README, Security)."""
    assert load_config(None).server.worker_class == "gevent"
