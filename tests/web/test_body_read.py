"""The body is read in one piece from gunicorn's length-bounded reader (issue 19), and every other
way (chunked, the test client) still goes through werkzeug with the same refusals."""

from __future__ import annotations

import pytest
from flask import Flask, request
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import IterUnreader
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from cds_service.web.body import read_body

APP = Flask(__name__)


def _body(data: bytes, length: int, piece: int = 8192) -> Body:
    pieces = [data[i:i + piece] for i in range(0, len(data), piece)]
    return Body(LengthReader(IterUnreader(pieces), length))


def _read(stream: object, length: int | None, limit: int | None = None) -> bytes:
    environ = {"wsgi.input": stream, "CONTENT_TYPE": "application/json"}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    with APP.test_request_context("/", method="POST", environ_overrides=environ):
        return read_body(request, limit)


def test_a_body_with_a_length_is_read_whole_through_the_reader(monkeypatch):
    data = b'{"x": "' + b"y" * 300_000 + b'"}'
    monkeypatch.setattr(Body, "read", lambda *a, **k: pytest.fail("read a KiB at a time"))
    assert _read(_body(data, len(data)), len(data)) == data


def test_a_body_cut_short_is_a_client_disconnect():
    data = b"z" * 20_000
    with pytest.raises(ClientDisconnected):
        _read(_body(data, len(data) + 1), len(data) + 1)


@pytest.mark.parametrize("error", [ConnectionResetError, TimeoutError, ValueError])
def test_a_connection_lost_mid_body_is_a_client_disconnect(monkeypatch, error):
    """As werkzeug's stream says it (a 400), never an unexpected error (a 500)."""
    data = b"z" * 20_000

    def lost(*_: object) -> bytes:
        raise error("lost")

    monkeypatch.setattr(LengthReader, "read", lost)
    with pytest.raises(ClientDisconnected):
        _read(_body(data, len(data)), len(data))


def test_a_body_over_the_limit_is_refused_before_it_is_read(monkeypatch):
    data = b"z" * 20_000
    monkeypatch.setattr(LengthReader, "read", lambda *a, **k: pytest.fail("read"))
    with pytest.raises(RequestEntityTooLarge):
        _read(_body(data, len(data)), len(data), limit=len(data) - 1)


def test_an_empty_body_is_empty():
    assert _read(_body(b"", 0), 0) == b""


def test_a_chunked_body_goes_through_werkzeug():
    chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"

    class Req:  # what ChunkedReader asks of the request it belongs to
        def __init__(self) -> None:
            self.trailers: list[tuple[str, str]] = []

    stream = Body(ChunkedReader(Req(), IterUnreader([chunked])))
    with APP.test_request_context("/", method="POST", environ_overrides={
            "wsgi.input": stream, "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input_terminated": True}):
        assert read_body(request, None) == b"hello world"


def test_a_stream_something_already_read_from_goes_through_werkzeug():
    data = b"abcdef" * 2000
    stream = _body(data, len(data))
    stream.read(10)  # now buffered inside Body: the reader alone would lose it
    assert _read(stream, len(data) - 10) == data[10:]


def test_a_live_worker_answers_a_body_cut_short_and_serves_the_next(tmp_path):
    """Through gunicorn's gevent worker, as served: the reader path in the real server."""
    import json
    import socket

    import requests

    from tests.support.live_server import ROOT, free_port, serve

    config = tmp_path / "serve.toml"
    config.write_text("[server]\nworkers = 1\n\n"
                      f"[store]\nurl = {json.dumps(f'sqlite:///{tmp_path}/s.sqlite3')}\n")
    request_body = (ROOT / "fixtures" / "golden" /
                    "rls-pramipexole.order-sign.request.json").read_bytes()
    with serve(config, free_port(), tmp_path / "serve.log") as live:
        with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
            sock.sendall(b"POST /cds-services/legcramp-order-sign HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                         + request_body[:100])
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(65536)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]
        whole = requests.post(f"{live.base}/cds-services/legcramp-order-sign", data=request_body,
                              headers={"Content-Type": "application/json"}, timeout=20)
        assert whole.status_code == 200 and whole.json()["cards"], whole.text[:300]
        assert "Traceback" not in live.output()
