"""`legcramp-cds conformance`: the black-box kit against live servers (anonymous and with JWT
auth required) and against a deliberately broken app, which it must fail."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from flask import Flask, jsonify
from werkzeug.serving import make_server

from cds_service.cli import main
from tests.support.auth import ec_key, free_port, serve, toml_string, write_jwks

ISSUER = "https://ehr.conformance.test/issuer"
KID = "conformance-ec-1"


def _rows(output: str) -> dict[str, str]:
    """check id -> PASS/FAIL/SKIP, from the printed table."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ("PASS", "FAIL", "SKIP"):
            rows[parts[0]] = parts[1]
    return rows


def _kit(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["conformance", *args, "--timeout", "10"])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    return result.exit_code, result.output


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(
        "[server]\nworkers = 1\nthreads = 4\n\n"
        f"[store]\nurl = {toml_string(f'sqlite:///{tmp_path}/store.sqlite3')}\n\n" + extra,
        encoding="utf-8",
    )
    return path


def test_kit_passes_against_the_service_with_anonymous_calls(tmp_path):
    port = free_port()
    with serve(_config(tmp_path), port, tmp_path / "serve.log") as served:
        code, output = _kit(served.base)
    rows = _rows(output)
    assert code == 0, output
    assert "FAIL" not in rows.values(), output
    assert rows["discovery"] == "PASS"
    for service in ("legcramp-order-select", "legcramp-order-sign", "legcramp-patient-view",
                    "legcramp-medication-refill"):
        for check in ("valid", "partial-prefetch", "malformed-json", "schema-invalid",
                      "wrong-hook", "fhir-authorization", "content-type", "cors"):
            assert rows[f"service.{service}.{check}"] == "PASS", output
        assert rows[f"feedback.{service}.accepted-without-suggestions"] == "PASS", output
    assert rows["jwt.replayed"] == "SKIP"
    assert "accepts anonymous calls" in output


def test_kit_passes_with_jwt_auth_required_and_its_jwt_checks_pass(tmp_path):
    key = ec_key(KID, slot=7)
    jwks_path = write_jwks(tmp_path / "jwks.json", key)
    pem = tmp_path / "ehr-private.pem"
    pem.write_bytes(key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = _config(tmp_path, (
        "[cors]\nallowed_origins = [\"https://sandbox.cds-hooks.org\"]\n\n"  # '*' is off with auth
        f"[auth]\nrequired = true\npublic_base_url = {toml_string(base)}\naud_aliases = []\n\n"
        f"[[auth.issuers]]\niss = {toml_string(ISSUER)}\n"
        f"jwks_file = {toml_string(str(jwks_path))}\nalgorithms = [\"ES384\"]\n"
    ))
    with serve(config, port, tmp_path / "serve.log") as served:
        code, output = _kit(served.base, "--jwt-key", str(pem), "--issuer", ISSUER,
                            "--kid", KID, "--alg", "ES384")
        unsigned_code, unsigned_output = _kit(served.base, "--service", "legcramp-order-sign")
    rows = _rows(output)
    assert code == 0, output
    assert "FAIL" not in rows.values(), output
    for case in ("missing", "alg-none", "bad-signature", "wrong-aud", "expired", "replayed"):
        assert rows[f"jwt.{case}"] == "PASS", output
    assert rows["service.legcramp-order-sign.valid"] == "PASS"
    # Without a key the kit cannot call a service that requires a token: it says so by failing.
    assert unsigned_code != 0
    assert _rows(unsigned_output)["discovery"] == "FAIL"


def _broken_app() -> Flask:
    app = Flask("broken-cds")

    @app.get("/cds-services")
    def discovery():
        return jsonify({"services": [{"id": "x"}]})

    @app.route("/cds-services/<path:rest>", methods=["POST"])
    def anything(rest: str):
        return "Traceback (most recent call last):\n  boom", 500

    return app


@pytest.fixture
def broken_base() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _broken_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_kit_fails_against_a_broken_service(broken_base):
    code, output = _kit(broken_base)
    rows = _rows(output)
    assert code != 0, output
    for check in ("discovery", "discovery.members", "service.unknown", "discovery.cors",
                  "service.x.valid", "service.x.malformed-json", "service.x.schema-invalid",
                  "service.x.cors", "feedback.x.accepted", "feedback.x.duplicate",
                  "feedback.x.accepted-without-suggestions", "errors.operation-outcome"):
        assert rows[check] == "FAIL", (check, output)
    assert "failed" in output.splitlines()[-1]


def test_prefetch_token_check_flags_nested_and_legacy_tokens():
    from cds_service.tools.conformance import bad_prefetch_tokens

    assert bad_prefetch_tokens("order-sign", {
        "patient": "Patient/{{context.patientId}}",
        "user": "{{context.userId}}",
        "practitioner": "Practitioner/{{userPractitionerId}}",
    }) == []
    bad = bad_prefetch_tokens("order-sign", {
        "nested": "Medication/{{context.draftOrders.entry}}",
        "legacy": "Condition?patient={{Patient.id}}",
        "selections": "MedicationRequest/{{context.selections}}",
    })
    assert len(bad) == 3, bad


def test_kit_has_a_valid_minimal_request_for_every_supported_hook():
    """A hook the service answers without a built-in request would only be SKIPped."""
    from cds_service.kit import SUPPORTED_HOOKS
    from cds_service.pipeline import contracts
    from cds_service.pipeline.request import CONTEXT_SCHEMAS
    from cds_service.tools.conformance import hook_context, hook_request

    for hook in SUPPORTED_HOOKS:
        context = hook_context(hook)
        assert context is not None, hook
        assert contracts.violations(CONTEXT_SCHEMAS[hook], context) == [], hook
        body = hook_request(hook, {"patient": "Patient/{{context.patientId}}"})
        assert body is not None and contracts.violations("request.schema.json", body) == []


def test_kit_refill_request_carries_the_refill_in_medications_and_no_user():
    from cds_service.tools.conformance import DRAFT_ID, hook_context

    context = hook_context("medication-refill")
    assert context is not None
    assert "userId" not in context and "draftOrders" not in context
    [entry] = context["medications"]["entry"]
    assert (entry["resource"]["id"], entry["resource"]["status"]) == (DRAFT_ID, "draft")


def test_kit_output_for_ci_and_its_traffic_never_becomes_governance_data(tmp_path):
    """Given the discovery URL instead of the base, the kit says so and tests the base; it
    writes JSON and JUnit for an EHR team's CI; and the service records none of its calls: no
    card shown, no feedback in the deployment's governance data."""
    import json
    import sqlite3
    from xml.etree import ElementTree

    port = free_port()
    with serve(_config(tmp_path), port, tmp_path / "serve.log") as served:
        result = CliRunner().invoke(main, ["conformance", f"{served.base}/cds-services",
                                           "--format", "json", "--timeout", "10"])
        assert result.exit_code == 0, result.output
        assert f"{served.base}/cds-services is the discovery URL" in result.stderr
        report = json.loads(result.stdout)
        assert report["summary"]["fail"] == 0 and report["summary"]["pass"] > 40
        assert {c["id"]: c["status"] for c in report["checks"]}["discovery"] == "PASS"

        code, output = _kit(served.base, "--format", "junit")
        assert code == 0
        suite = ElementTree.fromstring(output.split("\n", 1)[1] if output.startswith("<?xml")
                                       else output)
        assert suite.tag == "testsuite" and suite.get("failures") == "0"
        cases = suite.findall("testcase")
        assert len(cases) == int(suite.get("tests")) > 40
        assert any(c.find("skipped") is not None for c in cases)  # jwt.replayed, anonymous

    database = sqlite3.connect(tmp_path / "store.sqlite3")
    assert database.execute("SELECT count(*) FROM card_shown").fetchone() == (0,)
    assert database.execute("SELECT count(*) FROM feedback").fetchone() == (0,)


def test_kit_says_in_one_line_when_the_url_leads_nowhere(tmp_path):
    port = free_port()  # nothing listens there
    result = CliRunner().invoke(main, ["conformance", f"http://127.0.0.1:{port}",
                                       "--timeout", "2"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        f"Error: cannot reach http://127.0.0.1:{port}/cds-services (ConnectionError)"]
    assert "Traceback" not in result.output

    result = CliRunner().invoke(main, ["conformance", "not-a-url", "--timeout", "2"])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1
    assert "is not a URL" in result.output


def test_every_kit_call_is_marked_as_test_traffic():
    """The mark is what keeps the kit's calls out of the governance data (the service side is
    tested in tests/web/test_silent_pilot.py)."""
    from cds_service.tools.conformance import Kit

    sent: list[dict[str, str]] = []

    class Session:
        def request(self, method, url, data=None, headers=None, **kwargs):
            sent.append(dict(headers or {}))
            raise requests.ConnectionError("not sent")

    kit = Kit("http://cds.test")
    kit.session = Session()
    for call in (lambda: kit.call("GET", "/cds-services"),
                 lambda: kit.call("POST", "/cds-services/x", body={}, headers={"X-A": "1"})):
        with contextlib.suppress(requests.ConnectionError):
            call()
    assert [h.get("X-Legcramp-Test-Traffic") for h in sent] == ["conformance", "conformance"]
