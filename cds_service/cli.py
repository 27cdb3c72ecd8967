"""`legcramp-cds serve` and `legcramp-cds evaluate`: the same engine as a server or one-shot."""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from cds_service.config import Config, ConfigError, load_config
from cds_service.errors import RequestError

log = logging.getLogger("legcramp_cds.cli")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # as metrics.MULTIPROC_ENV (not imported: see serve)


def _config(path: str | None):
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _check_rule_settings(config) -> None:
    from cds_service.pipeline.rule_settings import rule_settings
    from hooks import build_services

    try:
        rule_settings(build_services(), config.rules)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(package_name="legcramp-cds")
def main() -> None:
    """CDS Hooks 2.0 service for leg cramp, leg spasm and restless legs guidance."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default from configuration).")
@click.option("--port", default=None, type=int, help="Port (default from configuration).")
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="TOML configuration file (else $LEGCRAMP_CDS_CONFIG, else embedded defaults).",
)
def serve(host: str | None, port: int | None, config_path: str | None) -> None:
    """Serve the CDS Hooks endpoints with gunicorn."""
    config = _config(config_path)
    # Before anything imports prometheus_client (it picks multiprocess mode at import).
    metrics_dir = _prepare_metrics_dir(config)
    try:
        _check_rule_settings(config)  # refuse bad settings here, not in every worker
    except click.ClickException:
        _discard_metrics_dir(metrics_dir)
        raise
    if config.server.worker_class == "gevent":
        _patch_for_gevent()  # once the configuration is accepted, before gunicorn is imported

    from gunicorn.app.base import BaseApplication

    from cds_service.logs import configure_logging
    from cds_service.metrics import mark_process_dead

    bind = f"{host or config.server.host}:{port or config.server.port}"

    class Server(BaseApplication):
        def load_config(self) -> None:
            settings = {
                "bind": bind,
                "workers": config.server.workers,
                "worker_class": config.server.worker_class,
                "threads": config.server.threads,
                "worker_connections": config.server.worker_connections,
                **({"pre_request": _take_turns} if config.server.worker_class == "gevent" else {}),
                **({"when_ready": _serve_metrics_apart}
                   if config.server.metrics_enabled and config.server.metrics_port else {}),
                "timeout": 30,
                "graceful_timeout": 10,
                "accesslog": None,
                "errorlog": "-",
                "limit_request_line": 8190,
                "child_exit": _child_exit,
                "worker_exit": close_worker_engine,
                "on_exit": _on_exit,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from cds_service.web.app import create_app  # in the worker, after any patching

            configure_logging()
            app = create_app(config)
            tune_garbage_collector(config.server.gc_threshold)
            return app

    def _serve_metrics_apart(server: Any) -> None:
        from cds_service.metrics import serve_apart

        serve_apart(config.server.metrics_host, config.server.metrics_port)
        log.info("metrics served apart", extra={
            "bind": f"{config.server.metrics_host}:{config.server.metrics_port}"})

    def _child_exit(server: Any, worker: Any) -> None:
        mark_process_dead(worker.pid)

    def _on_exit(server: Any) -> None:
        _discard_metrics_dir(metrics_dir)

    configure_logging()
    log.info(
        "starting", extra={"bind": bind, "config": config.source, "workers": config.server.workers,
                           "worker_class": config.server.worker_class,
                           "metrics_dir": str(metrics_dir.path) if metrics_dir else None}
    )
    Server().run()


def _patch_for_gevent() -> None:
    """Make the standard library cooperative before anything else is imported, in the master
    as well as the workers it forks: gunicorn's gevent worker patches only at fork, after the
    master has imported `ssl` (through prometheus_client), and a late `ssl` patch is what
    gevent warns can end in RecursionError on the first https FHIR call. psycopg 3 (>= 3.1.14)
    notices the patching and waits cooperatively on its own."""
    from gevent import monkey

    monkey.patch_all()


def _take_turns(worker: Any, request: Any) -> None:
    """gunicorn's pre_request hook under gevent: let every other connection with a request
    waiting go first. A greenlet yields only when a socket would block, and a keep-alive client
    whose next request is already in the socket would otherwise be served again and again
    while the others wait. Measured on order-sign at 8 keep-alive connections, 2 workers:
    p99 943 ms without this, 85-109 ms with it, at the same throughput (`gevent.idle()`
    instead: p99 45 ms but half the throughput)."""
    import gevent

    gevent.sleep(0)


def close_worker_engine(server: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook, in the worker as it stops: the cards it still holds are
    written (within the card log's close timeout) and the store is closed."""
    engine = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("legcramp_engine")
    if engine is not None:
        engine.close()


def tune_garbage_collector(threshold: int) -> None:
    """In a worker, once the app is loaded: what start-up built (models, value sets, schemas)
    lives as long as the worker, so it is moved out of the collector's way (`gc.freeze`), and
    young collections run every `threshold` allocations rather than every 700."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(max(threshold, 1), older, oldest)


@dataclass(frozen=True)
class MetricsDir:
    path: Path
    temporary: bool


def _prepare_metrics_dir(config: Config) -> MetricsDir | None:
    """A fresh, empty directory for the workers' metric files, in PROMETHEUS_MULTIPROC_DIR for
    the workers to inherit: the configured one with its old metric files removed, else a new
    temporary one. Files left by an earlier run would be added to this run's counts. With the
    metrics off, none (and no inherited PROMETHEUS_MULTIPROC_DIR either)."""
    if not config.server.metrics_enabled:
        os.environ.pop(MULTIPROC_ENV, None)
        return None
    configured = config.server.metrics_dir
    try:
        if configured:
            path = Path(configured)
            path.mkdir(parents=True, exist_ok=True)
            for stale in path.glob("*.db"):
                stale.unlink()
        else:
            path = Path(tempfile.mkdtemp(prefix="legcramp-cds-metrics-"))
    except OSError as exc:
        raise click.ClickException(f"cannot prepare the metrics directory: {exc}") from exc
    os.environ[MULTIPROC_ENV] = str(path)
    return MetricsDir(path, temporary=not configured)


def _discard_metrics_dir(metrics_dir: MetricsDir | None) -> None:
    """At exit: a temporary directory goes (a configured one stays, for a last look)."""
    if metrics_dir is not None and metrics_dir.temporary:
        shutil.rmtree(metrics_dir.path, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == str(metrics_dir.path):
            del os.environ[MULTIPROC_ENV]


@main.command()
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="TOML configuration file.",
)
@click.option(
    "--service",
    "service_id",
    default=None,
    help="Service id to call (default: the service for the request's hook).",
)
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="INSTANT",
    help="Evaluate as of this ISO 8601 date or instant (testing only; overrides "
    "[evaluation] as_of).",
)
def evaluate(
    request_file: str, config_path: str | None, service_id: str | None, as_of: str | None
) -> None:
    """Print the CDS Hooks response for one hook request, without a server.

    It still fetches from the request's fhirServer what prefetch does not carry. Exit status 0
    with the response on stdout; 1 with the OperationOutcome on stdout when the request fails.
    `--as-of` fixes the evaluation date for testing; a request can never set it.
    """
    os.environ.pop(MULTIPROC_ENV, None)  # one process: metrics in memory, no files written
    from cds_service.logs import configure_logging
    from cds_service.pipeline.engine import CdsEngine
    from hooks import build_services

    configure_logging("WARNING")
    config = _config(config_path)
    if as_of is not None:
        config = replace(config, evaluation=replace(config.evaluation, as_of=as_of))
        try:
            config.evaluation.as_of_instant()
        except ConfigError as exc:
            raise click.ClickException(f"--as-of: {exc}") from exc
    try:
        payload = json.loads(Path(request_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(
            f"cannot read a JSON request from {request_file}: {exc}"
        ) from exc
    try:
        engine = CdsEngine(build_services(), config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        if service_id is None:
            hook = payload.get("hook") if isinstance(payload, dict) else None
            matching = [s.id for s in engine.services.values() if s.hook == hook]
            if not matching:
                raise click.ClickException("the request's hook matches no service; use --service")
            service_id = matching[0]
        response = engine.call(service_id, payload)
        click.echo(json.dumps(response, indent=2, ensure_ascii=False))
    except RequestError as error:
        click.echo(json.dumps(error.to_operation_outcome(), indent=2, ensure_ascii=False))
        sys.exit(1)
    finally:
        engine.close()


@main.command()
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="TOML configuration file (its rule settings are shown).")
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True)
def rules(config_path: str | None, output_format: str) -> None:
    """Print the rule catalog (id, hooks, indicator, settings, source) from the code."""
    from cds_service.tools.catalog import entries, render_markdown, render_text
    from hooks import build_services

    config = _config(config_path)
    _check_rule_settings(config)
    services = build_services()
    if output_format == "markdown":
        click.echo(render_markdown(services, config), nl=False)
    elif output_format == "json":
        click.echo(json.dumps(entries(services, config), indent=2))
    else:
        click.echo(render_text(services, config), nl=False)


@main.command("valuesets")
def valuesets() -> None:
    """Print the medication value set page (levels, sources, scope, rules) from the code."""
    from cds_service.tools.valuesets_page import render_markdown
    from hooks import build_services
    from hooks.valuesets import documents

    click.echo(render_markdown(build_services(), documents()), nl=False)


@main.command("config-reference")
@click.option("--write", "readme_path", default=None, type=click.Path(dir_okay=False),
              help="Replace the reference in this README instead of printing it.")
def config_reference(readme_path: str | None) -> None:
    """Print the configuration reference (every key, its default and meaning) from the code."""
    from cds_service.tools.config_reference import render, replaced_in
    from hooks import build_services

    reference = render(build_services())
    if readme_path is None:
        click.echo(reference)
        return
    path = Path(readme_path)
    path.write_text(replaced_in(path.read_text(encoding="utf-8"), reference), encoding="utf-8")


@main.command("review-page")
@click.option("--examples", default="fixtures/golden", show_default=True,
              type=click.Path(file_okay=False, exists=True),
              help="Directory of example hook requests (*.request.json).")
@click.option("--as-of", "as_of", default="2026-11-21T12:00:00Z", show_default=True,
              help="Evaluate the examples as of this instant.")
def review_page(examples: str, as_of: str) -> None:
    """Print the clinical review page: per rule, an example patient and its card, and one
    that must not get it (and, for the refill examples, the card a refill request gets)."""
    import tempfile

    from cds_service.config import load_config
    from cds_service.pipeline.engine import CdsEngine
    from cds_service.tools.review import render_review_page
    from hooks import build_services
    from hooks.review_examples import QUIET_EXAMPLES, REFILL_EXAMPLES

    with tempfile.TemporaryDirectory() as scratch:
        config = load_config(None, overrides={
            "evaluation": {"as_of": as_of},
            "store": {"url": f"sqlite:///{scratch}/review.sqlite3",
                      "patient_hash_key": "review-page"},
        })
        services = build_services()
        engine = CdsEngine(services, config)
        try:
            page = render_review_page(services, config, engine, Path(examples), QUIET_EXAMPLES,
                                      REFILL_EXAMPLES)
        finally:
            engine.close()
    click.echo(page, nl=False)


@main.command()
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="TOML configuration file (its [store] url is read).")
@click.option("--since", default=None, help="Only cards and feedback from this date (ISO 8601).")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]),
              default="table", show_default=True)
def report(config_path: str | None, since: str | None, output_format: str) -> None:
    """Per rule: cards shown, accepted, overridden, override rate, top reasons, time to decide."""
    from datetime import UTC, datetime

    from cds_service.store.database import Store, StoreError
    from cds_service.store.report import build_report, render

    config = _config(config_path)
    start = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError as exc:
            raise click.ClickException(f"--since is not an ISO 8601 date: {since}") from exc
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    try:
        store = Store(config.store.url, config.store.patient_hash_key)
    except StoreError as exc:
        raise click.ClickException(f"cannot open the store: {exc}") from exc
    try:
        reports = build_report(store, start, config.report.override_rate_flag,
                               config.report.min_feedback)
    finally:
        store.close()
    click.echo(render(reports, output_format, config.report.override_rate_flag), nl=False)


@main.command("conformance")
@click.argument("base_url")
@click.option("--jwt-key", "jwt_key", default=None, type=click.Path(exists=True, dir_okay=False),
              help="PEM private key to sign a fresh JWT for every request (with --issuer).")
@click.option("--issuer", default=None, help="The JWT iss (with --jwt-key).")
@click.option("--kid", default=None, help="The JWT kid (default: the key's RFC 7638 thumbprint).")
@click.option("--alg", default=None, type=click.Choice(["ES384", "RS384"]),
              help="The JWT alg (default: ES384 for an EC key, RS384 for an RSA key).")
@click.option("--service", "service_ids", multiple=True,
              help="Check only this service id (repeatable; default: every discovered one).")
@click.option("--timeout", default=10.0, show_default=True, type=float,
              help="Seconds to wait for each HTTP response.")
@click.option("--format", "output_format", default="table", show_default=True,
              type=click.Choice(["table", "json", "junit"]),
              help="table for people; json or junit (JUnit XML) for an EHR team's CI.")
def conformance(base_url: str, jwt_key: str | None, issuer: str | None, kid: str | None,
                alg: str | None, service_ids: tuple[str, ...], timeout: float,
                output_format: str) -> None:
    """Black-box CDS Hooks 2.0 protocol checks against a running deployment at BASE_URL (the
    service's base: BASE_URL/cds-services is its discovery).

    Prints one row per check (PASS, FAIL or SKIP) and exits 1 when any check fails. Its calls
    are marked as test traffic: the service never records them as cards shown.
    """
    from cds_service.tools.conformance import (
        FAIL,
        Signer,
        Unreachable,
        check_base_url,
        render,
        render_json,
        render_junit,
        run,
    )

    if bool(jwt_key) != bool(issuer):
        raise click.UsageError("--jwt-key and --issuer go together")
    signer = None
    if jwt_key and issuer:
        try:
            signer = Signer.from_pem(jwt_key, issuer, kid, alg)
        except (OSError, ValueError, TypeError) as exc:
            raise click.ClickException(f"cannot load the signing key {jwt_key}: {exc}") from exc
    try:
        base_url, note = check_base_url(base_url, timeout)
    except Unreachable as exc:
        raise click.ClickException(str(exc)) from None
    if note:
        click.echo(note, err=True)
    rows = run(base_url, signer, service_ids, timeout)
    rendered = {"table": render, "json": lambda r: render_json(r, base_url),
                "junit": lambda r: render_junit(r, base_url)}[output_format](rows)
    click.echo(rendered, nl=False)
    if any(row.status == FAIL for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
