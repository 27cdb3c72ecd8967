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

from cds_service.config import Config, ConfigError, explain, load_config
from cds_service.errors import RequestError

log = logging.getLogger("legcramp_cds.cli")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # as metrics.MULTIPROC_ENV (not imported: see serve)


# The --config option of the commands that read the whole configuration.
_config_option = click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="TOML configuration file (else $LEGCRAMP_CDS_CONFIG, else embedded defaults).",
)


def _config(path: str | None):
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _check_rule_settings(config) -> dict[str, Any]:
    """Every rule's settings by rule id; a bad one stops the command, naming the environment
    variable that set it when one did."""
    from cds_service.pipeline.rule_settings import rule_settings
    from hooks import build_services

    try:
        return dict(rule_settings(build_services(), config.rules))
    except ConfigError as exc:
        raise click.ClickException(explain(str(exc), config.origins)) from exc


def _check_schema(config) -> None:
    """With `[store] migrate_on_start = false` the service's role may not change the schema:
    it refuses to start while the database is behind, saying what to run."""
    if config.store.migrate_on_start:
        return
    from cds_service.errors import StoreError
    from cds_service.store.database import Store

    try:
        Store(config.store.url, config.store.patient_hash_key, migrate=False).close()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(package_name="legcramp-cds")
def main() -> None:
    """CDS Hooks 2.0 service for leg cramp, leg spasm and restless legs guidance."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default from configuration).")
@click.option("--port", default=None, type=int, help="Port (default from configuration).")
@_config_option
def serve(host: str | None, port: int | None, config_path: str | None) -> None:
    """Serve the CDS Hooks endpoints with gunicorn."""
    config = _config(config_path)
    # Before anything imports prometheus_client (it picks multiprocess mode at import).
    metrics_dir = _prepare_metrics_dir(config)
    try:
        _check_rule_settings(config)  # refuse bad settings here, not in every worker
        _check_schema(config)  # without DDL rights, refuse an old schema before forking
    except click.ClickException:
        _discard_metrics_dir(metrics_dir)
        raise
    if config.server.worker_class == "gevent":
        _patch_for_gevent()  # once the configuration is accepted, before gunicorn is imported

    from gunicorn.app.base import BaseApplication

    from cds_service.logs import configure_process_logging, gunicorn_logger_class
    from cds_service.metrics import VERSION, mark_process_dead

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
                "logger_class": gunicorn_logger_class(),  # its lines as JSON, like ours
                "loglevel": config.server.log_level,
                "limit_request_line": 8190,
                "child_exit": _child_exit,
                "worker_exit": close_worker_engine,
                "on_exit": _on_exit,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from cds_service.web.app import create_app  # in the worker, after any patching

            configure_process_logging(config.server.log_level)
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

    configure_process_logging(config.server.log_level)
    log.info(
        "starting", extra={"version": VERSION, "bind": bind, "config": config.source,
                           "workers": config.server.workers,
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
        raise click.ClickException(explain(str(exc), config.origins)) from exc
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


@main.group("config")
def config_group() -> None:
    """Inspect the configuration the commands run with."""


@config_group.command("show")
@_config_option
def config_show(config_path: str | None) -> None:
    """Print the effective configuration (defaults < file < environment) as TOML, each value
    with where it came from, and every secret redacted."""
    from cds_service.tools.config_show import render

    config = _config(config_path)
    click.echo(render(config, _check_rule_settings(config)), nl=False)


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
@click.option("--since", default=None,
              help="Only cards and feedback from this date or instant (ISO 8601, UTC unless "
              "it names an offset).")
@click.option("--until", default=None,
              help="... and before this instant; a date includes that whole day.")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json", "html"]),
              default="table", show_default=True,
              help="html: the governance page, one self-contained file with its charts.")
@click.option("--output", "output_path", default=None, type=click.Path(dir_okay=False),
              help="Write the report to this file instead of standard output.")
def report(config_path: str | None, since: str | None, until: str | None, output_format: str,
           output_path: str | None) -> None:
    """Per rule: cards shown and silent, accepted, overridden, override rate, top reasons, time
    to decide; with --format html, week by week, as charts."""
    from cds_service.store.database import Store, StoreError
    from cds_service.store.governance_page import render_page
    from cds_service.store.report import build_governance, build_report, period_bound, render

    config = _config(config_path)
    bounds = []
    for name, text, end in (("--since", since, False), ("--until", until, True)):
        try:
            bounds.append(period_bound(text, end=end) if text else None)
        except ValueError as exc:
            raise click.ClickException(f"{name} is not an ISO 8601 date: {text}") from exc
    start, stop = bounds
    if start is not None and stop is not None and stop <= start:
        raise click.ClickException("--until must come after --since")
    try:
        store = Store(config.store.url, config.store.patient_hash_key)
    except StoreError as exc:
        raise click.ClickException(f"cannot open the store: {exc}") from exc
    flag_rate, min_feedback = config.report.override_rate_flag, config.report.min_feedback
    try:
        if output_format == "html":
            text = render_page(build_governance(store, start, stop, flag_rate, min_feedback))
        else:
            text = render(build_report(store, start, flag_rate, min_feedback, until=stop),
                          output_format, flag_rate)
    finally:
        store.close()
    if output_path is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output_path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output_path}: {exc}") from exc
    click.echo(f"report written to {output_path}", err=True)


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


@main.group("db")
def db() -> None:
    """The database: its schema and its data lifecycle."""


@db.command("upgrade")
@_config_option
def db_upgrade(config_path: str | None) -> None:
    """Bring the schema up to date (needs a role with DDL rights). The service can then run
    with `[store] migrate_on_start = false` and a role without them."""
    from cds_service.errors import StoreError
    from cds_service.store.database import Store

    config = _config(config_path)
    try:
        store = Store(config.store.url, config.store.patient_hash_key, migrate=True)
        current, head = store.revisions()
        store.close()
    except StoreError as exc:
        raise click.ClickException(f"the schema could not be brought up to date: {exc}") from exc
    click.echo(f"schema at revision {current} (newest: {head})")


def _days(text: str | None, default: int, name: str) -> int:
    if text is None:
        return default
    value = text.strip().lower().removesuffix("d")
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"{text!r}: give a number of days, e.g. 400d", param_hint=name)
    return int(value)


@db.command("purge")
@_config_option
@click.option("--older-than", "older_than", default=None,
              help="Delete cards shown and feedback older than this, e.g. 400d "
              "(default: [store] retention_days).")
@click.option("--comments-older-than", "comments_older_than", default=None,
              help="Blank feedback userComment older than this, e.g. 90d "
              "(default: [store] comment_retention_days).")
def db_purge(config_path: str | None, older_than: str | None,
             comments_older_than: str | None) -> None:
    """Delete governance data past its retention period and blank old free-text comments (they
    may hold patient data). Also deletes feedback about cards the store never knew (kept
    before revision 0004). Run it daily from cron or a Kubernetes CronJob."""
    from datetime import UTC, datetime

    from cds_service.errors import StoreError
    from cds_service.store.database import Store

    config = _config(config_path)
    days = _days(older_than, config.store.retention_days, "--older-than")
    comment_days = _days(comments_older_than, config.store.comment_retention_days,
                         "--comments-older-than")
    try:
        store = Store(config.store.url, config.store.patient_hash_key,
                      migrate=config.store.migrate_on_start)
        result = store.purge(datetime.now(UTC), days, comment_days)
        store.close()
    except StoreError as exc:
        raise click.ClickException(f"nothing was purged: {exc}") from exc
    click.echo(f"deleted {result.cards} card(s) shown and {result.feedback} feedback row(s) "
               f"older than {days} days or about unknown cards; blanked {result.comments} "
               f"comment(s) older than {comment_days} days")


if __name__ == "__main__":
    main()
