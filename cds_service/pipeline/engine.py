"""The request pipeline: request JSON -> typed hook request -> resolve prefetch / fetch ->
PatientRecord -> rules -> card policy -> response JSON.

Data flows one way. HTTP lives in `web`; this module takes a decoded JSON document and
returns one, so the CLI's `evaluate` and the web service run exactly the same code.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cds_service import metrics
from cds_service.clock import Clock, FixedClock, SystemClock
from cds_service.config import Config
from cds_service.errors import (
    FhirError,
    Issue,
    MedicationsUnavailable,
    StoreError,
    Unavailable,
    bad_request,
    not_found,
)
from cds_service.kit.cards import Card, CdsResponse, Coding, Source
from cds_service.kit.hook_names import ORDER_SELECT, PATIENT_VIEW
from cds_service.kit.record import MedicationOrder, PatientRecord
from cds_service.kit.rules import RuleContext
from cds_service.kit.service_declaration import ServiceDeclaration
from cds_service.logs import bind_hook_instance
from cds_service.pipeline import contracts
from cds_service.pipeline.card_policy import CardPolicy
from cds_service.pipeline.fetching import run_bounded
from cds_service.pipeline.fhir_client import (
    FhirServer,
    FhirSessionPool,
    clean_url,
    server_allowed,
    transport_allowed,
)
from cds_service.pipeline.medication_reads import read_medications
from cds_service.pipeline.prefetch import NO_SERVER, Unobtainable, resolve
from cds_service.pipeline.record_builder import RecordBuilder, unresolved_reason_conditions
from cds_service.pipeline.request import (
    ANONYMOUS,
    HookRequest,
    Principal,
    check_envelope,
    parse_hook_request,
    violations_error,
)
from cds_service.pipeline.rule_settings import rule_settings
from cds_service.store.card_log import CardLog
from cds_service.store.database import CardRecord, LazyStore, parse_instant

log = logging.getLogger("legcramp_cds.engine")


def _sorted_reads(
    outcomes: Mapping[str, Any], resource_type: str | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Reads by reference split into what was found and why the rest was not (a FHIR
    failure's code, the deadline, or absent); an unexpected exception is raised as it is."""
    found: dict[str, dict[str, Any]] = {}
    unread: dict[str, str] = {}
    for reference, outcome in outcomes.items():
        if isinstance(outcome, FhirError):
            unread[reference] = outcome.code
        elif isinstance(outcome, FutureTimeout):
            unread[reference] = "budget_spent"
        elif isinstance(outcome, Exception):
            raise outcome
        elif outcome is None or (resource_type is not None
                                 and outcome.get("resourceType") != resource_type):
            unread[reference] = "not_found"
        else:
            found[reference] = outcome
    return found, unread


def _fail_closed(unread: Mapping[str, str], kind: str) -> None:
    """An order whose drug (or cited reason) cannot be read cannot be judged, and a 200
    without its card would read as "nothing to say" (a quinine order by reference with its
    server down used to lose its critical card that way): 412 naming the references. The log
    and the metric say why, by code only (references name a patient's resources)."""
    if not unread:
        return
    reasons = sorted(set(unread.values()))
    log.warning(f"{kind}s could not be read", extra={"reasons": reasons, "count": len(unread)})
    for code in reasons:
        metrics.count_prefetch_unavailable({kind: code})
    raise MedicationsUnavailable.unreadable(sorted(unread), kind=kind)


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
        self.store = store or LazyStore(config.store.url, config.store.patient_hash_key,
                                        config.store.migrate_on_start)
        self.card_log = CardLog(self.store, background=config.store.record_cards_in_background)
        self.card_policy = CardPolicy(self.store, self.card_log, config.cards.repeat_quiet_days)
        self.executor = ThreadPoolExecutor(
            max_workers=config.fhir.max_parallel_fetches, thread_name_prefix="fhir-fetch"
        )
        self.rule_settings = rule_settings(services, config.rules)
        # The names the rules' value sets give their codes: a card about an order sent by code
        # alone names the product as a clinician would.
        self.product_names = {key: name for service in services
                              for value_set in service.value_sets()
                              for key, name in value_set.names.items()}

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.sessions.close()
        self.card_log.close()
        self.store.close()

    # Discovery -----------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery_entry(metrics.VERSION) for s in self.services.values()]}

    def service(self, service_id: str) -> ServiceDeclaration:
        service = self.services.get(service_id)
        if service is None:
            raise not_found("no CDS service with that id; see GET /cds-services")
        return service

    # Service call --------------------------------------------------------------------------
    def call(
        self, service_id: str, payload: Any, principal: Principal = ANONYMOUS,
        test_traffic: bool = False, summary: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """request JSON -> typed hook request -> patient record -> rules -> card policy ->
        response JSON.

        What the call found (cards, prefetch supplied and fetched, resources read) goes into
        `summary` when the caller gives one (the web layer writes it on its one access line
        per request), else into a "service call answered" line of its own (the CLI)."""
        started = time.perf_counter()
        service = self.service(service_id)
        bind_hook_instance(check_envelope(payload, service.hook))  # every later log line
        request = parse_hook_request(payload, service.hook)

        deadline = time.monotonic() + self.config.fhir.request_budget_seconds
        server, refusal = self._server(request, principal, deadline)
        resolved = resolve(service.requirements, request.prefetch, request.context.tokens,
                           server, self.executor, no_server=refusal, deadline=deadline,
                           limit=self.config.fhir.max_parallel_fetches_per_request)
        record = self._record(request, resolved.all_resources(), server, deadline)
        subjects, others = self._subjects(request, record)
        unidentified = sum(1 for order in subjects if not order.is_identifiable)
        metrics.count_unidentified_orders(service.id, unidentified)
        cards = self._run_rules(service, subjects, others, record)
        policy = self.card_policy
        caller = "" if principal.anonymous else f"{principal.iss}|{principal.tenant or ''}"
        patient = f"{caller}|{request.context.patient_id}" if caller else \
            request.context.patient_id  # ids are each EHR's own: the same id, another patient
        # Quiet repeats are per clinician: a card one user was shown stays visible to the
        # next user who opens the chart (the key is hashed with the rest; no userId is kept).
        viewer = f"{patient}|user:{request.context.user_id or ''}"
        cards = policy.with_uuids(service.id, request.hook_instance, viewer, cards, caller)
        # A silent pilot: these rules' cards are recorded, and the EHR gets none of them.
        shown: list[Card] = []
        silent: list[Card] = []
        for card in cards:
            (silent if self._silent(card.topic_code) else shown).append(card)
        cards = policy.quiet_repeats(service.hook, shown)
        response = CdsResponse(policy.arranged(cards))
        if not test_traffic:  # the conformance kit's calls are never governance data
            self._record_cards(service, request, response, principal, silent)
        metrics.count_cards(service.id, ((c.topic_code, c.indicator) for c in response.cards))
        found = {
            "cards": len(cards),
            "unidentified_orders": unidentified,
            "prefetch_supplied": resolved.supplied,
            "prefetch_fetched": resolved.fetched,
            "resources": record.report.summary(),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if summary is not None:
            summary.update(found)
        else:
            log.info("service call answered", extra={
                "service": service.id, "hook_instance": request.hook_instance, **found})
        return response.to_json()

    def _silent(self, rule_id: str | None) -> bool:
        """Whether a rule's cards are only recorded: the whole service in a silent pilot, or
        the rule's own `silent` setting."""
        if self.config.cards.silent:
            return True
        settings = self.rule_settings.get(rule_id or "")
        return bool(settings is not None and settings.silent)

    def _record_cards(
        self, service: ServiceDeclaration, request: HookRequest, response: CdsResponse,
        principal: Principal, silent: Sequence[Card] = (),
    ) -> None:
        """Keep what was shown, and what a silent pilot held back (no patient data), for the
        report. A database problem is logged and never costs the prescriber the cards."""
        if not self.config.store.record_cards:
            return
        records = [CardRecord(str(c.uuid), c.topic_code or "unknown", c.indicator, silent=quiet)
                   for group, quiet in ((response.cards, False), (silent, True)) for c in group]
        if not records:
            return
        self.card_log.add(
            service_id=service.id, hook=service.hook, hook_instance=request.hook_instance,
            patient_id=request.context.patient_id, cards=records,
            shown_at=datetime.now(UTC), issuer=principal.iss or "",
            tenant=principal.tenant or "",
        )

    def _server(
        self, request: HookRequest, principal: Principal, deadline: float
    ) -> tuple[FhirServer | None, Unobtainable]:
        """The request's FHIR server, if this caller may send its token there; else why not."""
        base = request.fhir_server
        if not base:
            return None, NO_SERVER
        try:
            parts = urlsplit(base)
            valid = clean_url(base) and bool(parts.hostname) and (
                parts.port is None or parts.port > 0)
        except ValueError:
            valid = False
        if not valid:
            raise bad_request("fhirServer is not a usable http(s) URL", expression=["$.fhirServer"])
        allowed, http_loopback = self.config.fhir.in_force(self.config.auth.required)
        if not transport_allowed(base, http_loopback):
            log.warning("fhirServer refused: not https", extra={"host": parts.hostname})
            return None, Unobtainable("fhirServer must use https; it was not called", "refused")
        if not server_allowed(base, (*allowed, *principal.fhir_servers)):
            log.warning("fhirServer refused: not on the allowlist",
                        extra={"host": parts.hostname, "iss": principal.iss})
            return None, Unobtainable(
                "fhirServer is not on this service's allowlist; it was not called", "refused")
        return self.sessions.connect(base, request.access_token, deadline), NO_SERVER

    def _record(
        self, request: HookRequest, chart: list[dict[str, Any]],
        server: FhirServer | None, deadline: float,
    ) -> PatientRecord:
        drafts = [(draft.resource, draft.full_url) for draft in request.context.draft_orders]
        builder = RecordBuilder(request.context.patient_id, self.clock.now(),
                                self.product_names)
        wanted = builder.unresolved_medication_references(chart, drafts)
        fetched: dict[str, dict[str, Any]] = {}
        fhir = self.config.fhir
        if wanted and server is None:
            _fail_closed(dict.fromkeys(wanted, "no_server"), "medicationReference")
        if wanted and server is not None:
            outcomes = read_medications(
                server, wanted, self.executor, limit=fhir.max_parallel_fetches_per_request,
                deadline=deadline, cap=fhir.max_medication_references,
                batch_size=fhir.medication_batch_size)
            fetched, unread = _sorted_reads(outcomes)
            _fail_closed(unread, "medicationReference")
        chart = chart + self._reason_conditions(chart, drafts, server, deadline)
        return builder.build(chart, drafts, fetched)

    def _reason_conditions(
        self, chart: list[dict[str, Any]], drafts: list[tuple[dict[str, Any], str | None]],
        server: FhirServer | None, deadline: float,
    ) -> list[dict[str, Any]]:
        """The Conditions draft orders cite as their reason and the request does not carry,
        read from the server; any that cannot be read is a 412 naming it (fail closed)."""
        wanted = unresolved_reason_conditions(chart, drafts)
        if not wanted:
            return []
        if server is None:
            _fail_closed(dict.fromkeys(wanted, "no_server"), "reasonReference")
            return []  # not reached: _fail_closed raised
        if len(wanted) > self.config.fhir.max_medication_references:
            raise MedicationsUnavailable.too_many(
                f"the orders cite {len(wanted)} reason Conditions the request does not carry; "
                f"this service reads at most {self.config.fhir.max_medication_references}")
        reads = {ref: functools.partial(server.read, ref) for ref in wanted}
        found, unread = _sorted_reads(run_bounded(
            self.executor, reads, self.config.fhir.max_parallel_fetches_per_request, deadline,
            server.slots), resource_type="Condition")
        _fail_closed(unread, "reasonReference")
        return list(found.values())

    def _subjects(
        self, request: HookRequest, record: PatientRecord
    ) -> tuple[tuple[MedicationOrder, ...], tuple[MedicationOrder, ...]]:
        """Which orders the rules judge: selections (order-select), every open draft
        (order-sign), every refill request (medication-refill: it has no selections), the
        chart's active medications (patient-view)."""
        if request.hook == PATIENT_VIEW:
            return tuple(record.active_medications()), ()
        drafts = record.open_drafts()
        if request.hook == ORDER_SELECT:
            selected = set(request.context.selections)
            subjects = tuple(o for o in drafts if o.reference in selected)
            return subjects, tuple(o for o in drafts if o.reference not in selected)
        return tuple(drafts), ()

    def _run_rules(
        self, service: ServiceDeclaration, subjects: tuple[MedicationOrder, ...],
        others: tuple[MedicationOrder, ...], record: PatientRecord,
    ) -> list[Card]:
        cards: list[Card] = []
        for rule in service.rules:
            settings = self.rule_settings[rule.rule_id]
            if not settings.enabled:
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
                metrics.count_rule_failure(service.id, rule.rule_id)
                # Fail closed: the answer says the check did not run, never a silent all-clear.
                cards.append(self._not_checked(rule))
        return cards

    def _not_checked(self, rule: Any) -> Card:
        """The card that stands in for a rule that failed on this patient's data. It names the
        check (the rule's catalog title), not the error: the log has that for the operators."""
        base = self.config.cards.code_system_base
        summary = f"Not checked: {rule.title} ({rule.catalog_code}); review this yourself"
        if len(summary) > 139:
            summary = f"Not checked: {rule.catalog_code} ({rule.rule_id}); review this yourself"
        return Card(
            summary=summary[:139],
            indicator="warning",
            source=Source(label="legcramp-cds: a check could not run",
                          topic=Coding(system=f"{base}/rule", code=rule.rule_id,
                                       display=rule.title)),
            detail=(
                f"The check **{rule.title}** ({rule.catalog_code}) could not be completed on "
                "this patient's data, so it gave no answer. This is not an all-clear: review "
                "this point yourself. The failure is logged for the service's operators."
            ),
            identity=f"not-checked:{rule.rule_id}",
        )

    # Feedback ------------------------------------------------------------------------------
    def feedback(self, service_id: str, payload: Any,
                 principal: Principal = ANONYMOUS) -> dict[str, Any]:
        self.service(service_id)
        payload = _legacy_feedback(payload)
        found = contracts.violations("feedback.schema.json", payload)
        found += [
            contracts.Violation(f"$.feedback[{i}].outcomeTimestamp", "is not a valid instant")
            for i, item in enumerate(payload["feedback"]) if parse_instant(
                item["outcomeTimestamp"]) is None
        ] if not found else []
        if found:
            raise violations_error(found, "invalid feedback")
        limit = self.config.server.max_feedback_items
        if len(payload["feedback"]) > limit:
            raise bad_request(f"a feedback batch holds at most {limit} items "
                              "(server.max_feedback_items); send the rest in another batch",
                              expression=["$.feedback"], code="too-costly")
        # The cards this feedback is about may still be on their way to the store.
        self.card_log.flush(timeout=2.0)
        try:
            result = self.store.get().record_feedback(
                service_id, payload["feedback"], datetime.now(UTC),
                issuer=principal.iss or "", tenant=principal.tenant or "")
        except StoreError as exc:
            log.error("feedback not stored", extra={"error": str(exc), "service": service_id})
            raise Unavailable([Issue("the feedback store is unavailable; nothing was stored",
                                     code="transient")]) from exc
        metrics.count_feedback(service_id, (item["outcome"] for item in payload["feedback"]),
                               result.stored, result.duplicates)
        log.info("feedback stored", extra={
            "service": service_id, "received": result.received, "stored": result.stored,
            "duplicates": result.duplicates, "unknown_cards": result.unknown_cards})
        return {"received": result.received, "stored": result.stored,
                "duplicates": result.duplicates, "unknownCards": result.unknown_cards}
