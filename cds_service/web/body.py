"""A request body read in one piece when its length is known.

werkzeug reads a body in 64 KiB pieces into a bytearray and copies it once more at the end, and
under gunicorn each piece is put together by `Body.read` a kilobyte at a time (a loop in Python
per KiB, each slicing and re-buffering what the socket gave). When gunicorn serves the request
and the body has a Content-Length, this reads it through the `Body`'s own length-bounded reader
instead, which asks the socket for what it holds (8 KiB at a time) until the length is reached:
one loop per socket read, no per-KiB slicing, no final copy (a typical 80 KiB order-sign: about
100 Python steps fewer; 10 MB: about 10,000). Anything else (a chunked body, another server,
the test client) takes werkzeug's way, which refuses a body over the limit in the same words.
"""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

try:  # gunicorn serves the service; the test client and other WSGI servers do not
    from gunicorn.http.body import Body, LengthReader
except ImportError:  # pragma: no cover - gunicorn is a dependency
    Body = LengthReader = None


def _length_reader(environ: dict[str, Any]) -> Any | None:
    """gunicorn's reader of a body with a Content-Length, when nothing has read from it yet."""
    stream = environ.get("wsgi.input")
    if Body is None or type(stream) is not Body:
        return None
    reader = getattr(stream, "reader", None)
    buffered = getattr(stream, "buf", None)
    if type(reader) is not LengthReader or buffered is None or buffered.tell():
        return None
    return reader


def read_body(request: Request, limit: int | None) -> bytes:
    """The whole body; RequestEntityTooLarge past `limit`, ClientDisconnected when the client
    stops before its Content-Length (both as werkzeug raises them)."""
    length = request.content_length
    reader = _length_reader(request.environ) if length is not None else None
    if reader is None or length is None:
        return request.get_data(cache=False)
    if limit is not None and length > limit:
        raise RequestEntityTooLarge()
    if length == 0:
        return b""
    try:
        data = reader.read(length)
    except (OSError, ValueError):  # reset, timed out or closed mid-body: as werkzeug says it
        raise ClientDisconnected() from None
    if len(data) < length:
        raise ClientDisconnected()
    return data
