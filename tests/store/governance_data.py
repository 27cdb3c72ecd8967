"""A small hand-made store for the weekly report and the governance page, with every expected
number worked out by hand below (weeks start on Monday, UTC).

W1 = week of Monday 2 November 2026, W2 = 9 November, W3 = 16 November.

Cards (number: rule, service, hookInstance, shown at, silent?)
  1, 2, 3  quinine  order-sign   call-a  Tue 3 Nov 10:00Z            W1
  4        quinine  order-sign   call-a  Tue 3 Nov 10:00Z   silent   W1
  8        quinine  order-sign   call-f  Sun 8 Nov 23:59:59Z          W1 (its last second)
  9        quinine  order-sign   call-g  Mon 9 Nov 00:30+01:00        W1 (Sun 23:30 UTC)
  5, 6     quinine  order-sign   call-b  Mon 9 Nov 00:00Z             W2 (its first instant)
  7        quinine  order-sign   call-c  Tue 10 Nov 09:00Z  silent   W2 (a call of silent cards)
  11, 12   iron     patient-view call-d  Wed 11 Nov 08:00Z            W2
  13       iron     patient-view call-e  Tue 17 Nov 08:00Z            W3
  14       iron     patient-view call-e  Tue 17 Nov 08:00Z  silent   W3
  -> quinine: W1 5 shown + 1 silent, W2 2 shown + 1 silent; 7 shown, 2 silent.
     iron: W2 2 shown, W3 1 shown + 1 silent; 3 shown, 1 silent.
  -> order-sign: 5 recorded calls (a, b, c, f, g), 7 shown, 2 silent: 140 and 40 per 100.
     patient-view: 2 recorded calls (d, e), 3 shown, 1 silent: 150 and 50 per 100.

Decisions (the latest feedback on each card counts, in the week it was made)
  1  accepted, 2 suggestions  3 Nov 10:01Z  W1   60 s after shown
  2  overridden "Treating malaria"  3 Nov 10:02Z  W1   120 s
  3  accepted (1 suggestion) 3 Nov 10:03Z, then overridden "Treating malaria" 9 Nov 10:00Z:
     the override counts, in W2, 518,400 s (6 days) after shown
  5  overridden "Treating malaria"  9 Nov 00:05Z  W2   300 s
  6  overridden, code "not-indicated" only  9 Nov 00:10Z  W2   600 s
  11 accepted, no suggestion named  11 Nov 08:10Z  W2   600 s
  12 accepted, 1 suggestion  17 Nov 09:00Z  W3 (shown in W2)  522,000 s
  13 overridden, comment only  17 Nov 08:20Z  W3   1,200 s
  -> quinine: W1 1 accepted 1 overridden (50 %), W2 3 overridden (100 %); in all 1 accepted,
     4 overridden, 80 %; reasons Treating malaria 3, not-indicated 1; median 300 s;
     1 acceptance naming a suggestion, 2 suggestions.
     iron: W2 1 accepted (0 % overridden), W3 1 accepted 1 overridden (50 %); in all 2 and 1,
     33 %; reasons comment only 1; median 1,200 s; 1 acceptance naming 1 suggestion.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from cds_service.store.database import CardRecord, Store

QUININE, IRON = "quinine-leg-cramps", "rls-iron-low"
ORDER_SIGN, PATIENT_VIEW = "legcramp-order-sign", "legcramp-patient-view"
W1, W2, W3 = date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)
RECEIVED = datetime(2026, 11, 20, tzinfo=UTC)
SYSTEM = "https://legcramp-cds.example.org/fhir/CodeSystem/override-reason"


def uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def utc(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def show(store: Store, service: str, call: str, shown_at: datetime, rule: str,
         numbers: list[int], silent: list[int] | None = None) -> None:
    cards = [CardRecord(uuid(n), rule, "warning") for n in numbers]
    cards += [CardRecord(uuid(n), rule, "warning", silent=True) for n in silent or []]
    hook = "order-sign" if service == ORDER_SIGN else "patient-view"
    store.record_cards(service_id=service, hook=hook, hook_instance=call, patient_id="p",
                       cards=cards, shown_at=shown_at)


def accepted(n: int, when: datetime, suggestions: int = 0) -> dict[str, Any]:
    item: dict[str, Any] = {"card": uuid(n), "outcome": "accepted",
                            "outcomeTimestamp": when.isoformat()}
    if suggestions:
        item["acceptedSuggestions"] = [{"id": uuid(1000 * n + i)} for i in range(suggestions)]
    return item


def overridden(n: int, when: datetime, code: str | None = None, display: str | None = None,
               comment: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"card": uuid(n), "outcome": "overridden",
                            "outcomeTimestamp": when.isoformat()}
    reason: dict[str, Any] = {}
    if code:
        reason["reason"] = {"system": SYSTEM, "code": code,
                            **({"display": display} if display else {})}
    if comment:
        reason["userComment"] = comment
    if reason:
        item["overrideReason"] = reason
    return item


def fill(store: Store, malaria: str = "Treating malaria") -> Store:
    """The store described above (`malaria`: the display of that override reason)."""
    show(store, ORDER_SIGN, "call-a", utc(3, 10), QUININE, [1, 2, 3], silent=[4])
    show(store, ORDER_SIGN, "call-f", utc(8, 23, 59, 59), QUININE, [8])
    show(store, ORDER_SIGN, "call-g",
         datetime(2026, 11, 9, 0, 30, tzinfo=timezone(timedelta(hours=1))), QUININE, [9])
    show(store, ORDER_SIGN, "call-b", utc(9), QUININE, [5, 6])
    show(store, ORDER_SIGN, "call-c", utc(10, 9), QUININE, [], silent=[7])
    show(store, PATIENT_VIEW, "call-d", utc(11, 8), IRON, [11, 12])
    show(store, PATIENT_VIEW, "call-e", utc(17, 8), IRON, [13], silent=[14])
    quinine = [
        accepted(1, utc(3, 10, 1), suggestions=2),
        overridden(2, utc(3, 10, 2), "treating-malaria", malaria),
        accepted(3, utc(3, 10, 3), suggestions=1),
        overridden(3, utc(9, 10), "treating-malaria", malaria),
        overridden(5, utc(9, 0, 5), "treating-malaria", malaria),
        overridden(6, utc(9, 0, 10), "not-indicated"),
    ]
    iron = [
        accepted(11, utc(11, 8, 10)),
        accepted(12, utc(17, 9), suggestions=1),
        overridden(13, utc(17, 8, 20), comment="patient has their own supply"),
    ]
    assert store.record_feedback(ORDER_SIGN, quinine, RECEIVED).stored == len(quinine)
    assert store.record_feedback(PATIENT_VIEW, iron, RECEIVED).stored == len(iron)
    return store
