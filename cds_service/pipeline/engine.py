"""The request pipeline: validate -> resolve prefetch / fetch -> PatientRecord -> rules -> cards.

Data flows one way. HTTP lives in `http_api`; this module takes a decoded JSON document and
returns one, so the CLI's `evaluate` and the web service run exactly the same code.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cds_service import metrics
from cds_service.clock import Clock, FixedClock, SystemClock
from cds_service.config import Config
from cds_service.kit.cards import Card, CdsResponse, combined, ordered
from cds_service.kit.record import MedicationOrder, PatientRecord, RecordBuilder
from cds_service.logs import bind_hook_instance
from cds_service.pipeline import contracts
from cds_service.pipeline.errors import CdsError, Issue, bad_request, not_found
from cds_service.pipeline.fhir_client import (
    FhirError,
    FhirServer,
    FhirSessionPool,
    clean_url,
    server_allowed,
    transport_allowed,
)
from cds_service.pipeline.prefetch import resolve
from cds_service.pipeline.services import RuleContext, ServiceDeclaration, rule_settings
from cds_service.store.card_log import CardLog
from cds_service.store.database import CardRecord, LazyStore, StoreError, parse_instant
from cds_service.web.auth import ANONYMOUS, Principal

log = logging.getLogger("legcramp_cds.engine")


def _violations_error(found: Sequence[contracts.Violation], what: str) -> CdsError:
    issues = [
        Issue(f"{what}: {v.path} {v.message}", code="structure", expression=(v.path,))
        for v in found
    ]
    return CdsError(400, issues)


def _legacy_feedback(payload: Any) -> Any:
    """Early 2.0 sandboxes sent overrideReason as a bare Coding; 2.0 nests it under `reason`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("feedback"), list):
        return payload
    for item in payload["feedback"]:
        reason = item.get("overrideReason") if isinstance(item, dict) else None
        if isinstance(reason, dict) and "code" in reason and "reason" not in reason:
            item["overrideReason"] = {"reason": reason}
    return payload


class CdsEngine:
    def __init__(
        self,
        services: Sequence[ServiceDeclaration],
        config: Config,
        clock: Clock | None = None,
        sessions: FhirSessionPool | None = None,
        store: LazyStore | None = None,
    ):
        ids = [s.id for s in services]
        if len(ids) != len(set(ids)):
            raise ValueError("service ids must be unique")
        self.services = {s.id: s for s in services}
        self.config = config
        as_of = config.evaluation.as_of_instant()
        self.clock: Clock = clock or (FixedClock(as_of) if as_of else SystemClock())
        self.sessions = sessions or FhirSessionPool(config.fhir)
        self.store = store or LazyStore(config.store.url, config.store.patient_hash_key)
        self.card_log = CardLog(self.store, background=config.store.record_cards_in_background)
        self.executor = ThreadPoolExecutor(
            max_workers=config.fhir.max_parallel_fetches, thread_name_prefix="fhir-fetch"
        )
        self.rule_settings = rule_settings(services, config.rules)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.sessions.close()
        self.card_log.close()
        self.store.close()

    # Discovery -----------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery_entry() for s in self.services.values()]}

    def service(self, service_id: str) -> ServiceDeclaration:
        service = self.services.get(service_id)
        if service is None:
            raise not_found("no CDS service with that id; see GET /cds-services")
        return service

    # Service call --------------------------------------------------------------------------
    def call(
        self, service_id: str, payload: Any, principal: Principal = ANONYMOUS
    ) -> dict[str, Any]:
        started = time.perf_counter()
        service = self.service(service_id)
        if not isinstance(payload, dict):
            raise bad_request("the request body must be a JSON object", expression=["$"])
        found = contracts.violations("request.schema.json", payload)
        if found:
            raise _violations_error(found, "invalid hook request")
        if payload["hook"] != service.hook:
            raise bad_request(
                f"this service answers the '{service.hook}' hook, not the hook in the request",
                expression=["$.hook"],
                code="value",
            )
        bind_hook_instance(payload["hookInstance"])  # every later log line of this request
        context = payload["context"]
        found = contracts.violations(contracts.CONTEXT_SCHEMAS[service.hook], context, "$.context")
        if found:
            raise _violations_error(found, f"invalid {service.hook} context")

        deadline = time.monotonic() + self.config.fhir.request_budget_seconds
        server, refusal = self._server(payload, principal, deadline)
        resolved = resolve(service.requirements, payload.get("prefetch"), context, server,
                           self.executor, no_server_reason=refusal, deadline=deadline)
        record = self._record(context, resolved.all_resources(), server, deadline)
        cards = self._run_rules(service, context, record)
        cards = self._quiet_repeats(service, payload, self._with_uuids(service, payload, cards))
        response = CdsResponse(ordered(combined(cards)))
        self._record_cards(service, payload, response)
        metrics.count_cards(service.id, ((c.topic_code, c.indicator) for c in response.cards))
        log.info(
            "service call answered",
            extra={
                "service": service.id,
                "hook_instance": payload["hookInstance"],
                "cards": len(cards),
                "prefetch_supplied": resolved.supplied,
                "prefetch_fetched": resolved.fetched,
                "resources": record.report.summary(),
                "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return response.to_json()

    def _with_uuids(
        self, service: ServiceDeclaration, payload: Mapping[str, Any], cards: list[Card]
    ) -> list[Card]:
        """Per-call uuids (stable for the same hookInstance); guidance that repeats quietly
        gets a uuid stable per patient and finding (keyed, so it names no one)."""
        seed = f"{service.id}|{payload['hookInstance']}"
        patient_id = payload["context"]["patientId"]
        out = []
        for card in cards:
            finding_seed = None
            if card.repeat_quietly:
                try:
                    finding_seed = "finding|" + self.store.get().finding_key(
                        patient_id, card.topic_code or "", card.identity)
                except StoreError as exc:
                    log.warning("finding key unavailable", extra={"error": str(exc)})
            out.append(card.with_uuids(finding_seed or seed))
        return out

    def _quiet_repeats(
        self, service: ServiceDeclaration, payload: Mapping[str, Any], cards: list[Card]
    ) -> list[Card]:
        """On patient-view, guidance shown for the same finding within `repeat_quiet_days` is
        not shown again (order hooks always show it: the order makes it relevant now)."""
        days = self.config.cards.repeat_quiet_days
        quiet = [card.uuid for card in cards if card.repeat_quietly and card.uuid]
        if service.hook != "patient-view" or not quiet or days <= 0:
            return cards
        try:
            shown = self.card_log.pending(quiet) | self.store.get().shown_since(
                quiet, datetime.now(UTC) - timedelta(days=days))
        except StoreError as exc:
            log.warning("repeat check unavailable; showing the cards", extra={"error": str(exc)})
            return cards
        return [card for card in cards if not (card.repeat_quietly and card.uuid in shown)]

    def _record_cards(
        self, service: ServiceDeclaration, payload: Mapping[str, Any], response: CdsResponse
    ) -> None:
        """Keep what was shown (no patient data) for the feedback report. A database problem
        is logged and never costs the prescriber the cards."""
        if not self.config.store.record_cards or not response.cards:
            return
        self.card_log.add(
            service_id=service.id, hook=service.hook, hook_instance=payload["hookInstance"],
            patient_id=payload["context"]["patientId"],
            cards=[CardRecord(str(c.uuid), c.topic_code or "unknown", c.indicator)
                   for c in response.cards],
            shown_at=datetime.now(UTC),
        )

    def _server(
        self, payload: Mapping[str, Any], principal: Principal, deadline: float
    ) -> tuple[FhirServer | None, str]:
        """The request's FHIR server, if this caller may send its token there; else why not."""
        base = payload.get("fhirServer")
        if not base:
            return None, "no fhirServer was given to fetch it from"
        try:
            parts = urlsplit(base)
            valid = clean_url(base) and bool(parts.hostname) and (
                parts.port is None or parts.port > 0)
        except ValueError:
            valid = False
        if not valid:
            raise bad_request("fhirServer is not a usable http(s) URL", expression=["$.fhirServer"])
        fhir = self.config.fhir
        if not transport_allowed(base, fhir.allow_http_loopback):
            log.warning("fhirServer refused: not https", extra={"host": parts.hostname})
            return None, "fhirServer must use https; it was not called"
        if not server_allowed(base, (*fhir.allowed_servers, *principal.fhir_servers)):
            log.warning("fhirServer refused: not on the allowlist",
                        extra={"host": parts.hostname, "iss": principal.iss})
            return None, "fhirServer is not on this service's allowlist; it was not called"
        token = (payload.get("fhirAuthorization") or {}).get("access_token")
        return self.sessions.connect(base, token, deadline), ""

    def _record(
        self, context: Mapping[str, Any], chart: list[dict[str, Any]],
        server: FhirServer | None, deadline: float,
    ) -> PatientRecord:
        drafts = [
            (entry["resource"], entry.get("fullUrl"))
            for entry in (context.get("draftOrders") or {}).get("entry") or []
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        ]
        builder = RecordBuilder(context["patientId"], self.clock.now())
        wanted = builder.unresolved_medication_references(chart, drafts)
        fetched: dict[str, dict[str, Any]] = {}
        if wanted and server is not None:
            futures = {ref: self.executor.submit(server.read, ref) for ref in wanted}
            for reference, future in futures.items():
                try:
                    medication = future.result(timeout=max(0.0, deadline - time.monotonic()))
                except FhirError as exc:
                    log.warning("medication read failed", extra={"reason": exc.reason})
                    continue
                except FutureTimeout:
                    future.cancel()
                    log.warning("medication read failed", extra={"reason": "time budget"})
                    continue
                if medication is not None:
                    fetched[reference] = medication
        return builder.build(chart, drafts, fetched)

    def _subjects(
        self, hook: str, context: Mapping[str, Any], record: PatientRecord
    ) -> tuple[tuple[MedicationOrder, ...], tuple[MedicationOrder, ...]]:
        """Which orders the rules judge: selections (order-select), every open draft
        (order-sign), the chart's active medications (patient-view)."""
        if hook == "patient-view":
            return tuple(record.active_medications()), ()
        drafts = record.open_drafts()
        if hook == "order-select":
            selected = {sel for sel in context.get("selections") or []}
            subjects = tuple(o for o in drafts if o.reference in selected)
            return subjects, tuple(o for o in drafts if o.reference not in selected)
        return tuple(drafts), ()

    def _run_rules(
        self, service: ServiceDeclaration, context: Mapping[str, Any], record: PatientRecord
    ) -> list[Card]:
        subjects, others = self._subjects(service.hook, context, record)
        cards: list[Card] = []
        for rule in service.rules:
            settings = self.rule_settings[rule.rule_id]
            if not settings["enabled"]:
                continue
            rule_context = RuleContext(
                hook=service.hook,
                record=record,
                subject_orders=subjects,
                context_orders=others,
                now=record.as_of,
                settings=settings,
                code_system_base=self.config.cards.code_system_base,
            )
            try:
                cards.extend(rule.evaluate(rule_context))
            except Exception as exc:  # a faulty rule must not take the other rules' cards with it
                log.error(
                    "rule failed",
                    extra={
                        "rule": rule.rule_id,
                        "service": service.id,
                        "error": type(exc).__name__,
                        "where": "".join(traceback.format_tb(exc.__traceback__, limit=-3)),
                    },
                )
        return cards

    # Feedback ------------------------------------------------------------------------------
    def feedback(self, service_id: str, payload: Any) -> dict[str, Any]:
        self.service(service_id)
        payload = _legacy_feedback(payload)
        found = contracts.violations("feedback.schema.json", payload)
        found += [
            contracts.Violation(f"$.feedback[{i}].outcomeTimestamp", "is not a valid instant")
            for i, item in enumerate(payload["feedback"]) if parse_instant(
                item["outcomeTimestamp"]) is None
        ] if not found else []
        if found:
            raise _violations_error(found, "invalid feedback")
        # The cards this feedback is about may still be on their way to the store.
        self.card_log.flush(timeout=2.0)
        try:
            result = self.store.get().record_feedback(service_id, payload["feedback"],
                                                      datetime.now(UTC))
        except StoreError as exc:
            log.error("feedback not stored", extra={"error": str(exc), "service": service_id})
            raise CdsError(503, [Issue("the feedback store is unavailable; nothing was stored",
                                       code="transient")]) from exc
        metrics.count_feedback(service_id, (item["outcome"] for item in payload["feedback"]),
                               result.stored, result.duplicates)
        log.info("feedback stored", extra={
            "service": service_id, "received": result.received, "stored": result.stored,
            "duplicates": result.duplicates, "unknown_cards": result.unknown_cards})
        return {"received": result.received, "stored": result.stored,
                "duplicates": result.duplicates, "unknownCards": result.unknown_cards}
