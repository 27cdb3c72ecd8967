"""The cards shown, kept for the feedback report and the repeat check, written off the request.

Writing them inline made every answer wait for a database commit: with SQLite that is an fsync
and the one write lock of the file, shared by every worker, and it cost the service about 40% of
its throughput and most of its p99. So an answer hands its cards to this log and returns; one
thread per process writes what gathers within `window` seconds of the first waiting answer, in
one transaction (under load, many answers per commit). What that changes, and how it is held
together:

- A card reaches the database within about `window` of its answer, not before. The repeat
  check on patient-view asks `pending()` as well as the store, and feedback has this process's
  log written (`flush`, which does not wait out the window) before it looks its cards up, so
  neither misses a card of its own process. Another replica sees it once it is written.
- A write that fails is retried; after `retries` it is dropped, logged and counted, as an
  inline write that failed was. While the database is away the queue is bounded
  (`max_pending` cards); past that, new cards are dropped and counted, never the request.
- `close` (a worker's exit) writes what is queued first, within `close_timeout` seconds.
  Only a process killed outright loses what it had queued.

`[store] record_cards_in_background = false` writes inline, each answer waiting for its commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime

from cds_service import metrics
from cds_service.store.database import CardRecord, LazyStore, ShownCards, StoreError

log = logging.getLogger("legcramp_cds.cards")


class CardLog:
    def __init__(
        self,
        store: LazyStore,
        *,
        background: bool = True,
        max_pending: int = 20000,
        retries: int = 3,
        retry_delay: float = 0.2,
        close_timeout: float = 5.0,
        window: float = 0.05,
        max_batch: int = 500,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._store = store
        self._background = background
        self._max_pending = max_pending
        self._retries = retries
        self._retry_delay = retry_delay
        self._close_timeout = close_timeout
        self._window = window
        self._max_batch = max_batch
        self._sleep = sleep
        self._changed = threading.Condition()
        self._queue: list[ShownCards] = []
        self._queued_cards = 0
        self._pending: Counter[str] = Counter()  # card uuid -> answers not yet written
        self._added = 0  # answers accepted, in order
        self._settled = 0  # answers written or dropped, in the same order
        self._thread: threading.Thread | None = None
        self._closing = False
        self._hurry = 0  # callers of flush waiting: write without waiting for company

    # Requests -------------------------------------------------------------------------------
    def add(self, *, service_id: str, hook: str, hook_instance: str, patient_id: str,
            cards: Iterable[CardRecord], shown_at: datetime, issuer: str = "",
            tenant: str = "") -> None:
        """Keep one answer's cards. Never raises: a card not kept costs the report a row, never
        the prescriber the answer."""
        records = tuple(cards)
        if not records:
            return
        try:
            store = self._store.get()
            batch = ShownCards(service_id, hook, hook_instance, store.patient_hash(patient_id),
                               records, shown_at, issuer, tenant)
            if not self._background:
                store.record_shown([batch])
                return
        except StoreError as exc:
            self._dropped(len(records), "store", str(exc))
            return
        with self._changed:
            if self._closing or self._queued_cards + len(records) > self._max_pending:
                reason = "closing" if self._closing else "queue_full"
            else:
                reason = ""
                self._queue.append(batch)
                self._queued_cards += len(records)
                # Only cards someone saw quiet a repeat; silent ones are never "shown".
                self._pending.update(card.card_uuid for card in records if not card.silent)
                self._added += 1
                self._start()
                self._changed.notify_all()
        if reason:
            self._dropped(len(records), reason, "")

    def pending(self, card_uuids: Iterable[str]) -> set[str]:
        """Which of these cards this process has shown and not yet written."""
        with self._changed:
            return {uuid for uuid in card_uuids if self._pending[uuid] > 0}

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every answer added so far is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            target = self._added
            self._hurry += 1
            self._changed.notify_all()
            try:
                while self._settled < target:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None:
                        return False
                    self._changed.wait(left)
            finally:
                self._hurry -= 1
        return True

    def close(self) -> None:
        """Write what is queued (within `close_timeout`), then stop the writer."""
        with self._changed:
            self._closing = True
            thread = self._thread
            self._changed.notify_all()
        if thread is not None:
            thread.join(self._close_timeout)
            if thread.is_alive():
                log.error("cards not recorded at exit: the store did not answer in time")

    # Writer ---------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="card-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if not self._queue:
                    return
                # Answers that arrive within the window share this commit.
                until = time.monotonic() + self._window
                while not (self._closing or self._hurry or len(self._queue) >= self._max_batch):
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
                batches, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                self._queued_cards -= sum(len(batch.cards) for batch in batches)
            self._write(batches)
            with self._changed:
                for batch in batches:
                    self._pending.subtract(card.card_uuid for card in batch.cards
                                           if not card.silent)
                self._pending = +self._pending  # drop the zero counts
                self._settled += len(batches)
                self._changed.notify_all()

    def _write(self, batches: list[ShownCards]) -> None:
        for attempt in range(self._retries + 1):
            try:
                self._store.get().record_shown(batches)
                return
            except StoreError as exc:
                error = str(exc)
            if attempt < self._retries and not self._closing:
                self._sleep(self._retry_delay * 2 ** attempt)
            elif self._closing:
                break
        self._dropped(sum(len(b.cards) for b in batches), "store", error)

    def _dropped(self, count: int, reason: str, error: str) -> None:
        metrics.count_cards_not_recorded(reason, count)
        log.error("cards not recorded", extra={"reason": reason, "cards": count,
                                               "error": error})
