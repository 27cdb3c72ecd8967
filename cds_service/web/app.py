"""The Flask application factory: configuration in, app out (no globals read per request)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from flask import Flask
from flask_cors import CORS

from cds_service.clock import Clock
from cds_service.config import Config, load_config
from cds_service.kit.service_declaration import ServiceDeclaration
from cds_service.pipeline.engine import CdsEngine
from cds_service.pipeline.fhir_client import FhirSessionPool
from cds_service.store.database import LazyStore
from cds_service.web.admission import LargeRequestGate
from cds_service.web.auth import Authenticator
from cds_service.web.http_api import api, register_error_handlers, register_request_hooks

log = logging.getLogger("legcramp_cds.app")


def create_app(
    config: Config | None = None,
    services: Sequence[ServiceDeclaration] | None = None,
    clock: Clock | None = None,
    sessions: FhirSessionPool | None = None,
    auth_clock: Callable[[], float] | None = None,
) -> Flask:
    config = config or load_config()
    if services is None:
        from hooks import build_services  # the clinical content, loaded once per process

        services = build_services()
    app = Flask("legcramp_cds")
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_body_bytes
    app.config["LEGCRAMP_CONFIG"] = config
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = LazyStore(config.store.url, config.store.patient_hash_key,
                      config.store.migrate_on_start)
    app.extensions["legcramp_store"] = store
    app.extensions["legcramp_engine"] = CdsEngine(services, config, clock, sessions, store)
    server = config.server
    app.extensions["legcramp_gate"] = LargeRequestGate(
        server.large_request_bytes, server.max_large_requests, server.large_request_wait_seconds)
    app.extensions["legcramp_auth"] = Authenticator(config.auth, store.get, auth_clock or time.time)
    if not config.auth.required:
        log.warning(
            "AUTHENTICATION IS OFF: anonymous calls are accepted (embedded defaults). Set "
            "[auth] required = true and list trusted issuers before exposing this service.",
            extra={"config": config.source},
        )
    allowed, http_loopback = config.fhir.in_force(config.auth.required)
    log.warning(
        "FHIR servers callers may name: %s%s%s",
        ", ".join(allowed) or "none but each verified issuer's fhir_servers",
        "; plain http to loopback allowed" if http_loopback else "; https only",
        "" if config.auth.required else " (anonymous mode: the development list is in force)",
        extra={"auth_required": config.auth.required})
    if not config.store.patient_hash_key:
        log.warning("no [store] patient_hash_key: no patient hash is kept with the cards shown, "
                    "and quiet repeats hold only within each worker process until it restarts "
                    "(findings are keyed by a per-process secret). Set a long random key, the "
                    "same for every replica, to count repeats across workers and restarts.")
    if config.auth.sandbox_issuer:
        log.warning("the public CDS Hooks sandbox issuer is trusted: its private key is "
                    "public, so anyone can mint its tokens. Development only.")
    origins = list(config.cors.allowed_origins)
    if config.auth.required and "*" in origins:
        origins = [origin for origin in origins if origin != "*"]
        log.warning("cors.allowed_origins '*' ignored with [auth] required = true: browsers may "
                    "call only from the origins listed (%s)", ", ".join(origins) or "none")
    CORS(
        app,
        # The CDS Hooks endpoints only: probes and /metrics are for the operator, not browsers.
        resources={r"/cds-services*": {}},
        origins=origins,
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
        max_age=config.cors.max_age_seconds,
        supports_credentials=False,
        vary_header=True,
    )
    register_request_hooks(app)
    app.register_blueprint(api)
    register_error_handlers(app)
    return app
