"""Many feedback posts in parallel from several processes to a live two-worker server, on both
back ends: nothing lost, nothing doubled, every post answered 200. And several processes
migrating the same empty database at once."""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.live_server import free_port, serve

PROCESSES = 4
POSTS = 25  # per process, two items each: one of its own, one every process sends
SEEDED_CALLS = 5
SERVICE = "legcramp-order-select"
SUGGESTION = "97155928-53e6-52af-b7d5-79fbfabbb3d5"
ROOT = Path(__file__).resolve().parents[2]
QUININE = ROOT / "fixtures" / "requests" / "order-select-quinine-full-prefetch.json"


def _batch(process: int, post: int, cards: list[str]) -> list[dict[str, Any]]:
    card = cards[post % len(cards)]
    own = {"card": card, "outcome": "overridden",
           "outcomeTimestamp": f"2026-11-21T10:{process:02d}:{post:02d}Z",
           "overrideReason": {"userComment": f"process {process} post {post}"}}
    shared = {"card": card, "outcome": "accepted",
              "outcomeTimestamp": f"2026-11-21T11:00:{post:02d}Z",
              "acceptedSuggestions": [{"id": SUGGESTION}]}
    return [own, shared] if process % 2 else [shared, own]


def _poster(base: str, process: int, cards: list[str], start: Any, results: Any) -> None:
    """One client process: wait for the others, then post its batches as fast as it can, each
    on a new connection so that both server workers take a share."""
    answers = []
    try:
        start.wait(timeout=30)
        for post in range(POSTS):
            response = requests.post(f"{base}/cds-services/{SERVICE}/feedback",
                                     json={"feedback": _batch(process, post, cards)},
                                     headers={"Connection": "close"}, timeout=30)
            answers.append((response.status_code, response.text))
    except Exception as exc:  # report it to the test rather than die silently
        answers.append((0, repr(exc)))
    results.put((process, answers))


@pytest.fixture
def live_server(store_url: str, tmp_path: Path) -> Iterator[str]:
    """`legcramp-cds serve` with two workers on the store under test."""
    config = tmp_path / "serve.toml"
    config.write_text(
        '[server]\nworkers = 2\nthreads = 4\n\n[evaluation]\nas_of = "2026-11-21"\n\n'
        f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    with serve(config, free_port(), tmp_path / "serve.log", ready_path="/ready",
               cwd=tmp_path) as server:
        yield server.base
    assert "Traceback" not in server.output()


def test_parallel_feedback_from_several_processes_is_stored_exactly_once(live_server, store_url):
    from cds_service.store.database import Store

    request = json.loads(QUININE.read_text(encoding="utf-8"))
    cards: list[str] = []
    for n in range(SEEDED_CALLS):  # each hookInstance gives its cards their own uuids
        request["hookInstance"] = f"00000000-0000-4000-8000-{n:012d}"
        answer = requests.post(f"{live_server}/cds-services/{SERVICE}", json=request, timeout=15)
        assert answer.status_code == 200, answer.text
        cards += [card["uuid"] for card in answer.json()["cards"]]
    assert len(set(cards)) == len(cards) >= SEEDED_CALLS

    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    workers = [context.Process(target=_poster, args=(live_server, p, cards, start, results))
               for p in range(PROCESSES)]
    for worker in workers:
        worker.start()
    try:
        start.set()
        answers = dict(results.get(timeout=60) for _ in workers)
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()

    bodies = []
    for process, replies in sorted(answers.items()):
        assert len(replies) == POSTS, (process, replies[-1:])
        for status, body in replies:
            assert status == 200, (process, status, body)
            bodies.append(json.loads(body))
    distinct = {json.dumps(item, sort_keys=True)
                for p in range(PROCESSES) for n in range(POSTS) for item in _batch(p, n, cards)}
    assert len(distinct) == PROCESSES * POSTS + POSTS
    assert sum(b["received"] for b in bodies) == 2 * PROCESSES * POSTS
    assert sum(b["stored"] for b in bodies) == len(distinct)
    assert sum(b["duplicates"] for b in bodies) == 2 * PROCESSES * POSTS - len(distinct)
    assert all(b["unknownCards"] == 0 for b in bodies)

    store = Store(store_url)
    try:
        rows = store.feedback_for()
    finally:
        store.close()
    assert len(rows) == len(distinct)  # nothing lost, nothing doubled
    assert len({row["item_key"] for row in rows}) == len(rows)
    comments = sorted(row["user_comment"] for row in rows if row["outcome"] == "overridden")
    assert comments == sorted(f"process {p} post {n}"
                              for p in range(PROCESSES) for n in range(POSTS))
    assert sum(1 for row in rows if row["outcome"] == "accepted") == POSTS
    assert all(row["known_card"] for row in rows)


def _open_store(url: str, start: Any, results: Any) -> None:
    try:
        from cds_service.store.database import Store

        start.wait(timeout=30)
        store = Store(url)
        results.put(("at head", store.at_head()))
        store.close()
    except Exception as exc:
        results.put(("failed", repr(exc)))


def test_workers_migrating_an_empty_database_at_once_all_succeed(store_url):
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    openers = [context.Process(target=_open_store, args=(store_url, start, results))
               for _ in range(PROCESSES)]
    for opener in openers:
        opener.start()
    try:
        time.sleep(1)  # let them import; then they all migrate together
        start.set()
        outcomes = [results.get(timeout=60) for _ in openers]
    finally:
        for opener in openers:
            opener.join(timeout=10)
            if opener.is_alive():
                opener.kill()
    assert outcomes == [("at head", True)] * PROCESSES
