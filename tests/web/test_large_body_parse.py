"""Large bodies are parsed with the garbage collector paused (issue 19), and it always resumes."""

from __future__ import annotations

import gc
import json

import orjson
import pytest

from cds_service.web import http_api


def _body(size: int) -> bytes:
    return json.dumps({"padding": "x" * size}).encode()


def test_a_large_body_is_parsed_with_the_collector_paused_and_it_resumes(monkeypatch):
    seen: list[bool] = []
    real = orjson.loads
    monkeypatch.setattr(http_api.orjson, "loads", lambda raw: (seen.append(gc.isenabled()),
                                                               real(raw))[1])
    assert gc.isenabled()
    http_api.parse_json(_body(http_api.GC_PAUSE_BYTES))
    http_api.parse_json(_body(10))
    assert seen == [False, True]  # paused for the large one only
    assert gc.isenabled()


def test_the_collector_resumes_when_the_parse_fails():
    with pytest.raises(orjson.JSONDecodeError):
        http_api.parse_json(b"{" + b" " * http_api.GC_PAUSE_BYTES)
    assert gc.isenabled()


def test_a_collector_the_process_paused_is_left_paused():
    gc.disable()
    try:
        http_api.parse_json(_body(http_api.GC_PAUSE_BYTES))
        assert not gc.isenabled()
    finally:
        gc.enable()
