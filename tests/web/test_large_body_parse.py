"""Large bodies are parsed with the garbage collector paused (issue 19), and it always resumes."""

from __future__ import annotations

import gc
import json

import orjson
import pytest

from cds_service.web import collector, http_api


def _body(size: int) -> bytes:
    return json.dumps({"padding": "x" * size}).encode()


def test_a_large_body_is_parsed_with_the_collector_paused_and_it_resumes(monkeypatch):
    seen: list[bool] = []
    real = orjson.loads
    monkeypatch.setattr(http_api.orjson, "loads", lambda raw: (seen.append(gc.isenabled()),
                                                               real(raw))[1])
    assert gc.isenabled()
    http_api.parse_json(_body(collector.PAUSE_BYTES))
    http_api.parse_json(_body(10))
    assert seen == [False, True]  # paused for the large one only
    assert gc.isenabled()


def test_the_collector_resumes_when_the_parse_fails():
    with pytest.raises(orjson.JSONDecodeError):
        http_api.parse_json(b"{" + b" " * collector.PAUSE_BYTES)
    assert gc.isenabled()


def test_a_collector_the_process_paused_is_left_paused():
    gc.disable()
    try:
        http_api.parse_json(_body(collector.PAUSE_BYTES))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_pauses_nest_and_the_collector_resumes_with_the_last():
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer request still holds its document
    assert gc.isenabled()


def test_a_small_or_unknown_length_never_pauses():
    for size in (None, collector.PAUSE_BYTES - 1):
        with collector.paused(size):
            assert gc.isenabled()


def test_a_large_request_runs_the_pipeline_with_the_collector_paused(monkeypatch, tmp_path):
    """The whole request, not only the parse: otherwise the first allocation after the parse
    walks every object the parse made (and the middle and full collections again)."""
    from cds_service.config import load_config
    from cds_service.pipeline.engine import CdsEngine
    from cds_service.web.app import create_app

    config = tmp_path / "c.toml"
    config.write_text(f"[auth]\nrequired = false\n[server]\nmax_body_bytes = {32 << 20}\n"
                      f'[store]\nurl = "sqlite:///{tmp_path}/s.sqlite3"\n')
    app = create_app(load_config(str(config)))
    seen: list[bool] = []
    monkeypatch.setattr(CdsEngine, "call", lambda self, *a, **k: (
        seen.append(gc.isenabled()), {"cards": []})[1])
    client = app.test_client()
    for size in (collector.PAUSE_BYTES, 10):
        answer = client.post("/cds-services/legcramp-order-sign", data=_body(size),
                             content_type="application/json")
        assert answer.status_code == 200
    assert seen == [False, True]
    assert gc.isenabled()


def test_the_body_is_read_with_the_collector_running(monkeypatch, tmp_path):
    """A client still sending (or stalled mid-body) must not hold the worker's collector."""
    from cds_service.config import load_config
    from cds_service.web.app import create_app

    config = tmp_path / "c.toml"
    config.write_text(f"[auth]\nrequired = false\n[server]\nmax_body_bytes = {32 << 20}\n"
                      f'[store]\nurl = "sqlite:///{tmp_path}/s.sqlite3"\n')
    app = create_app(load_config(str(config)))
    seen: list[bool] = []
    real = http_api.read_body
    monkeypatch.setattr(http_api, "read_body", lambda *a: (seen.append(gc.isenabled()),
                                                           real(*a))[1])
    answer = app.test_client().post("/cds-services/legcramp-order-sign",
                                    data=_body(collector.PAUSE_BYTES),
                                    content_type="application/json")
    assert answer.status_code == 400  # not a hook request: what matters is the read
    assert seen == [True]
    assert gc.isenabled()


def test_a_pause_longer_than_the_limit_is_ended_by_the_next_request(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(collector.time, "monotonic", lambda: clock[0])
    with collector.paused():
        assert not gc.isenabled()
        clock[0] += collector.MAX_PAUSE_SECONDS / 2
        with collector.paused(10):  # a small request, within the limit: still paused
            assert not gc.isenabled()
        clock[0] += collector.MAX_PAUSE_SECONDS
        with collector.paused(10):  # past it: resumed
            assert gc.isenabled()
        with collector.paused():  # a large request while the long one lasts: not paused again
            assert gc.isenabled()
        assert gc.isenabled()
    assert gc.isenabled()
    with collector.paused():  # a new pause once none is left
        assert not gc.isenabled()
    assert gc.isenabled()
