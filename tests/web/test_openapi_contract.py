"""The code held to `openapi.yaml`: the routes it serves, and the responses it really produces.

`$ref`s are resolved here: `#/components/...` pointers inside openapi.yaml, and file refs
(`./cds_service/schemas/x.schema.json`) validated with the service's own compiled validator
(`contracts.validator`), whose registry resolves the cross-file refs by bare file name.
"""

from __future__ import annotations

import copy
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from cds_service.config import load_config
from cds_service.pipeline import contracts
from tests.conftest import ROOT, load_request

OPENAPI_PATH = ROOT / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Answered by Werkzeug/Flask for every GET route (HEAD) and by flask-cors (OPTIONS) on their own.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
SMALL_BODY_LIMIT = 2000

Json = dict[str, Any]


@cache
def openapi() -> Json:
    return yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))


def _pointer(document: Json, ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def resolve(node: Any) -> Any:
    """Follow `#/...` refs inside openapi.yaml until the node is not a local ref."""
    seen = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and \
            node["$ref"].startswith("#/"):
        ref = node["$ref"]
        assert ref not in seen, f"$ref cycle at {ref}"
        seen.add(ref)
        node = _pointer(openapi(), ref)
    return node


def schema_validator(schema: Any) -> Draft202012Validator:
    """The validator for an OpenAPI schema object: a file ref, a component ref, or inline."""
    schema = resolve(schema)
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if isinstance(ref, str):
        assert ref.startswith("./cds_service/schemas/"), f"unexpected $ref {ref}"
        assert (ROOT / ref).is_file(), f"{ref} does not exist"
        return contracts.validator(ref.rsplit("/", 1)[-1])
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(schema: Any, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}"
            for e in schema_validator(schema).iter_errors(instance)]


def flask_path(rule: str) -> str:
    """`/cds-services/<service_id>` (or `<string:service_id>`) as `/cds-services/{service_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in openapi()["paths"].items()
            for method in item if method in HTTP_METHODS}


def app_operations(app: Any) -> set[tuple[str, str]]:
    return {
        (flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods - AUTOMATIC_METHODS
    }


def operation(path: str, method: str) -> Json:
    item = openapi()["paths"].get(path)
    assert item is not None, f"{path} is not documented"
    assert method in item, f"{method.upper()} {path} is not documented"
    return item[method]


def documented_response(path: str, method: str, status: int) -> Json:
    responses = operation(path, method)["responses"]
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return resolve(responses[key])
    raise AssertionError(f"{method.upper()} {path} does not document status {status}; "
                         f"documented: {sorted(responses)}")


# --- (a) routes --------------------------------------------------------------------------


def test_flask_rule_placeholders_map_to_openapi_templates():
    assert flask_path("/cds-services/<service_id>/feedback") == (
        "/cds-services/{service_id}/feedback")
    assert flask_path("/x/<string:service_id>") == "/x/{service_id}"


def test_every_route_the_app_serves_is_documented(app):
    served = app_operations(app)
    assert ("/cds-services/{service_id}", "post") in served  # the mapping found the routes
    undocumented = served - documented_operations()
    assert not undocumented, f"served but not in openapi.yaml: {sorted(undocumented)}"


def test_every_documented_operation_is_served(app):
    documented = {op for op in documented_operations() if op[1] != "options"}
    missing = documented - app_operations(app)
    assert not missing, f"in openapi.yaml but not served: {sorted(missing)}"


def test_documented_path_parameters_are_the_route_placeholders(app):
    for path, item in openapi()["paths"].items():
        placeholders = set(re.findall(r"\{([^}]+)\}", path))
        for method in (m for m in item if m in HTTP_METHODS):
            parameters = [resolve(p) for p in [*item.get("parameters", []),
                                               *item[method].get("parameters", [])]]
            in_path = {p["name"] for p in parameters if p["in"] == "path"}
            assert in_path == placeholders, (path, method)
            assert all(p.get("required") is True for p in parameters if p["in"] == "path")


@pytest.mark.parametrize(
    "path",
    [p for p, item in openapi()["paths"].items() if "options" in item],
)
def test_documented_preflight_is_answered_with_documented_status_and_headers(client, path):
    concrete = path.replace("{service_id}", "legcramp-order-sign")
    response = client.options(concrete, headers={
        "Origin": SANDBOX_ORIGIN,
        "Access-Control-Request-Method": "POST" if "service_id" in path else "GET",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    documented = documented_response(path, "options", response.status_code)
    for header in documented.get("headers", {}):
        assert header in response.headers, f"{header} missing from preflight of {path}"
    assert "content" not in documented
    assert response.get_data() == b""


# --- (b) real responses against the documented ones ---------------------------------------


@dataclass
class Exchange:
    """One real request: where it goes, what it sends, which status it must get."""

    name: str
    method: str
    template: str
    status: int
    path: str = ""
    json_body: Any = None
    raw_body: bytes | None = None
    content_type: str | None = None
    config_overrides: Json = field(default_factory=dict)
    busy: bool = False  # sent while another large request holds the worker's one slot

    def __post_init__(self) -> None:
        self.path = self.path or self.template.replace("{service_id}", "legcramp-order-select")


def _quinine_request() -> Json:
    return load_request("order-select-quinine-full-prefetch")


def _refill_request() -> Json:
    return load_request("medication-refill-quinine")


def _no_data_request() -> Json:
    request = load_request("patient-view-full-prefetch")
    for member in ("prefetch", "fhirServer", "fhirAuthorization"):
        request.pop(member, None)
    return request


def _padded_request(size: int) -> Json:
    request = _quinine_request()
    request["extension"] = {"org.example.padding": "x" * size}
    return request


def _feedback() -> Json:
    return {"feedback": [{
        "card": str(uuid.UUID("5f0f3c1e-7a4b-4d8e-9a0c-6c1d2b3e4f50")),
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-21T10:05:31Z",
        "overrideReason": {"reason": {
            "system": "https://legcramp-cds.example.org/fhir/CodeSystem/override-reason",
            "code": "treating-malaria", "display": "Treating malaria"}},
    }]}


AUTH_REQUIRED = {"auth": {"required": True}}  # no issuer: every call is refused

EXCHANGES = [
    Exchange("discovery", "get", "/cds-services", 200),
    Exchange("discovery-without-token", "get", "/cds-services", 401,
             config_overrides=AUTH_REQUIRED),
    Exchange("service-call-without-token", "post", "/cds-services/{service_id}", 401,
             json_body=_quinine_request(), config_overrides=AUTH_REQUIRED),
    Exchange("feedback-without-token", "post", "/cds-services/{service_id}/feedback", 401,
             json_body=_feedback(), config_overrides=AUTH_REQUIRED),
    Exchange("service-call-with-cards", "post", "/cds-services/{service_id}", 200,
             json_body=_quinine_request()),
    Exchange("refill-call-with-cards", "post", "/cds-services/{service_id}", 200,
             path="/cds-services/legcramp-medication-refill", json_body=_refill_request()),
    Exchange("refill-call-without-medications", "post", "/cds-services/{service_id}", 400,
             path="/cds-services/legcramp-medication-refill",
             json_body={**_refill_request(), "context": {"patientId": "cramps-001"}}),
    Exchange("service-call-bad-json", "post", "/cds-services/{service_id}", 400,
             raw_body=b'{"hook": "order-select", ', content_type="application/json"),
    Exchange("service-call-wrong-hook", "post", "/cds-services/{service_id}", 400,
             path="/cds-services/legcramp-order-sign", json_body=_quinine_request()),
    Exchange("service-call-unknown-id", "post", "/cds-services/{service_id}", 404,
             path="/cds-services/no-such-service", json_body=_quinine_request()),
    Exchange("service-call-no-data", "post", "/cds-services/{service_id}", 412,
             path="/cds-services/legcramp-patient-view", json_body=_no_data_request()),
    Exchange("service-call-too-large", "post", "/cds-services/{service_id}", 413,
             json_body=_padded_request(SMALL_BODY_LIMIT),
             config_overrides={"server": {"max_body_bytes": SMALL_BODY_LIMIT}}),
    Exchange("service-call-busy", "post", "/cds-services/{service_id}", 503,
             json_body=_quinine_request(), busy=True,
             config_overrides={"server": {"large_request_bytes": 1, "max_large_requests": 1,
                                          "large_request_wait_seconds": 0.01}}),
    Exchange("service-call-not-json", "post", "/cds-services/{service_id}", 415,
             raw_body=b"hook=order-select", content_type="text/plain"),
    Exchange("feedback", "post", "/cds-services/{service_id}/feedback", 200,
             json_body=_feedback()),
    Exchange("feedback-invalid", "post", "/cds-services/{service_id}/feedback", 400,
             json_body={"feedback": []}),
    Exchange("feedback-unknown-id", "post", "/cds-services/{service_id}/feedback", 404,
             path="/cds-services/no-such-service/feedback", json_body=_feedback()),
    Exchange("feedback-too-large", "post", "/cds-services/{service_id}/feedback", 413,
             json_body={**_feedback(), "extension": {"padding": "x" * SMALL_BODY_LIMIT}},
             config_overrides={"server": {"max_body_bytes": SMALL_BODY_LIMIT}}),
    Exchange("feedback-not-json", "post", "/cds-services/{service_id}/feedback", 415,
             raw_body=b"<feedback/>", content_type="application/xml"),
    Exchange("health", "get", "/health", 200),
]


def _send(make_app: Any, exchange: Exchange) -> Any:
    config = load_config(None, overrides=copy.deepcopy(exchange.config_overrides) or None)
    app = make_app(config)
    client = app.test_client()
    headers = {"Origin": SANDBOX_ORIGIN}
    if exchange.busy:
        with app.extensions["legcramp_gate"].admit(None):
            return client.post(exchange.path, data=json.dumps(exchange.json_body),
                               content_type="application/json", headers=headers)
    if exchange.method == "get":
        return client.get(exchange.path, headers=headers)
    if exchange.json_body is not None:
        return client.post(exchange.path, data=json.dumps(exchange.json_body),
                           content_type="application/json", headers=headers)
    return client.post(exchange.path, data=exchange.raw_body,
                       content_type=exchange.content_type, headers=headers)


@pytest.mark.parametrize("exchange", EXCHANGES, ids=lambda e: e.name)
def test_real_response_status_content_type_and_body_are_documented(make_app, exchange):
    response = _send(make_app, exchange)
    assert response.status_code == exchange.status, response.get_data(as_text=True)

    documented = documented_response(exchange.template, exchange.method, response.status_code)
    content = documented.get("content")
    assert content, f"{exchange.name}: documented response has no content but a body came back"
    assert response.mimetype in content, (
        f"{exchange.name}: Content-Type {response.mimetype} not in {sorted(content)}")
    if response.mimetype.endswith("json"):
        assert response.mimetype_params.get("charset", "utf-8").lower() == "utf-8"

    body = json.loads(response.get_data(as_text=True))
    errors = schema_errors(content[response.mimetype]["schema"], body)
    assert not errors, f"{exchange.name}: body does not match the documented schema: {errors}"

    for header in documented.get("headers", {}):
        assert header in response.headers, f"{exchange.name}: documented {header} missing"


@pytest.mark.parametrize("exchange", [e for e in EXCHANGES if e.status == 200 and e.json_body],
                         ids=lambda e: e.name)
def test_request_bodies_that_succeed_match_the_documented_request_schema(exchange):
    request_body = operation(exchange.template, exchange.method)["requestBody"]
    assert "application/json" in request_body["content"]
    errors = schema_errors(request_body["content"]["application/json"]["schema"],
                           exchange.json_body)
    assert not errors, errors


@pytest.mark.parametrize("name", ["service-call-with-cards", "refill-call-with-cards"])
def test_service_call_exchange_really_carries_cards(make_app, name):
    exchange = next(e for e in EXCHANGES if e.name == name)
    body = _send(make_app, exchange).get_json()
    assert len(body["cards"]) >= 1
    assert body["cards"][0]["indicator"] == "critical"
    assert body["cards"][0]["suggestions"][0]["actions"][0]["type"] == "delete"


@pytest.mark.parametrize(("schema", "hook"), [
    ("PatientViewContext", "patient-view"), ("OrderSelectContext", "order-select"),
    ("OrderSignContext", "order-sign"), ("MedicationRefillContext", "medication-refill"),
])
def test_documented_context_schema_is_the_one_the_service_checks(schema, hook):
    from cds_service.pipeline.request import CONTEXT_SCHEMAS

    documented = openapi()["components"]["schemas"][schema]["$ref"]
    assert documented == f"./cds_service/schemas/{CONTEXT_SCHEMAS[hook]}"
    assert schema_validator({"$ref": f"#/components/schemas/{schema}"}) is contracts.validator(
        CONTEXT_SCHEMAS[hook])


def test_refill_context_example_of_the_fixture_matches_the_documented_context():
    context = _refill_request()["context"]
    assert not schema_errors({"$ref": "#/components/schemas/MedicationRefillContext"}, context)
    assert schema_errors({"$ref": "#/components/schemas/MedicationRefillContext"},
                         {"patientId": "cramps-001"})


def test_too_large_exchange_is_over_the_limit_and_fits_the_default(make_app):
    """The 413 comes from the configured limit, not from the body itself."""
    exchange = next(e for e in EXCHANGES if e.name == "service-call-too-large")
    assert len(json.dumps(exchange.json_body).encode()) > SMALL_BODY_LIMIT
    relaxed = Exchange("same-body-default-limit", "post", exchange.template, 200,
                       json_body=exchange.json_body)
    assert _send(make_app, relaxed).status_code == 200


def test_error_diagnostics_name_the_problem_for_each_status(make_app):
    by_name = {e.name: e for e in EXCHANGES}
    expectations = {
        "service-call-bad-json": "not valid JSON",
        "service-call-unknown-id": "no CDS service with that id",
        "service-call-no-data": "prefetch key",
        "service-call-too-large": f"limit of {SMALL_BODY_LIMIT} bytes",
        "service-call-not-json": "application/json",
    }
    for name, fragment in expectations.items():
        body = _send(make_app, by_name[name]).get_json()
        assert any(fragment in issue.get("diagnostics", "") for issue in body["issue"]), (
            name, body)


def test_every_documented_status_of_the_service_call_is_exercised():
    documented = set(operation("/cds-services/{service_id}", "post")["responses"])
    exercised = {str(e.status) for e in EXCHANGES if e.template == "/cds-services/{service_id}"}
    assert documented == exercised


# --- authentication as documented ------------------------------------------------------------

CDS_HOOKS_OPERATIONS = [("/cds-services", "get"), ("/cds-services/{service_id}", "post"),
                        ("/cds-services/{service_id}/feedback", "post")]


def test_the_jwt_is_declared_as_the_bearer_scheme_cds_hooks_describes():
    scheme = openapi()["components"]["securitySchemes"]["cdsHooksJwt"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert "security" not in openapi()  # no global requirement: the probes take no token


@pytest.mark.parametrize(("path", "method"), CDS_HOOKS_OPERATIONS)
def test_discovery_calls_and_feedback_take_the_jwt_or_none_in_anonymous_mode(path, method):
    """As the code does: the same check on all three (discovery included); the empty
    requirement is the development mode, `[auth] required = false`."""
    assert operation(path, method)["security"] == [{"cdsHooksJwt": []}, {}]
    assert "401" in operation(path, method)["responses"]


@pytest.mark.parametrize(("path", "method"), sorted(
    op for op in documented_operations() if op not in CDS_HOOKS_OPERATIONS))
def test_probes_metrics_and_preflights_declare_no_token(path, method):
    assert "security" not in operation(path, method)
    assert "401" not in operation(path, method)["responses"]


@pytest.mark.parametrize("exchange", [e for e in EXCHANGES if e.status == 401],
                         ids=lambda e: e.name)
def test_a_refused_token_gets_the_documented_challenge_and_generic_outcome(make_app, exchange):
    response = _send(make_app, exchange)
    assert response.status_code == 401
    challenge = resolve(documented_response(exchange.template, exchange.method, 401)[
        "headers"]["WWW-Authenticate"])
    assert response.headers["WWW-Authenticate"] in challenge["schema"]["examples"]
    assert response.get_json() == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "login", "diagnostics": "authentication failed"}]}


def test_the_same_calls_without_a_token_are_answered_in_anonymous_mode(make_app):
    """The empty requirement `{}` is true of the embedded defaults."""
    for exchange in (e for e in EXCHANGES if e.status == 401):
        anonymous = Exchange(exchange.name, exchange.method, exchange.template, 200,
                             path=exchange.path, json_body=exchange.json_body)
        assert _send(make_app, anonymous).status_code == 200, exchange.name


def test_discovery_when_tokens_cannot_be_checked_gets_the_documented_503(make_app, tmp_path):
    from dataclasses import replace

    from cds_service.config import StoreConfig
    from tests.support.auth import auth_config, bearer, ec_key, issuer, token, write_jwks

    key = ec_key("openapi-1", slot=12)
    config = auth_config(tmp_path, [issuer(jwks_file=str(write_jwks(tmp_path / "k.json", key)))])
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    config = replace(config, store=StoreConfig(url=f"sqlite:///{blocker}/s.sqlite3"))
    response = make_app(config).test_client().get(
        "/cds-services", headers=bearer(token(key, "/cds-services")))
    assert response.status_code == 503, response.get_data(as_text=True)
    documented = documented_response("/cds-services", "get", 503)
    assert not schema_errors(documented["content"]["application/fhir+json"]["schema"],
                             response.get_json())
    for header in documented["headers"]:
        assert header in response.headers, header


# --- servers and the version -----------------------------------------------------------------


def test_servers_is_relative_to_where_the_service_is_served():
    assert [server["url"] for server in openapi()["servers"]] == ["/"]


def test_the_documented_version_is_the_package_version():
    from cds_service.metrics import package_version

    assert openapi()["info"]["version"] == package_version()


# --- bodies without Content-Length (chunked transfer encoding, as gunicorn passes them) -------

CHUNKED_ENVIRON = {"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"}


def _post_chunked(client: Any, path: str, body: bytes) -> Any:
    return client.post(path, input_stream=io.BytesIO(body), content_type="application/json",
                       environ_overrides=CHUNKED_ENVIRON)


def test_chunked_body_within_the_limit_is_read_whole(make_app):
    body = json.dumps(_quinine_request()).encode()
    response = _post_chunked(make_app().test_client(), "/cds-services/legcramp-order-select", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["cards"]) >= 1


def test_chunked_body_over_the_limit_gets_the_documented_413(make_app):
    config = load_config(None, overrides={"server": {"max_body_bytes": SMALL_BODY_LIMIT}})
    body = json.dumps(_padded_request(SMALL_BODY_LIMIT)).encode()
    assert len(body) > SMALL_BODY_LIMIT
    response = _post_chunked(make_app(config).test_client(),
                             "/cds-services/legcramp-order-select", body)
    assert response.status_code == 413, response.get_data(as_text=True)
    documented = documented_response("/cds-services/{service_id}", "post", 413)
    assert response.mimetype in documented["content"]
