"""Limits on hostile input, checked on the decoded request body before anything else reads it.

The walk is iterative (an explicit stack, never recursion), so a deeply nested document costs a
list, not the interpreter's stack. A violation is a 400 OperationOutcome that names the limit and
its configured value and points at where it was exceeded; it never echoes the request's content
(an object key is shown in the path only when it looks like an identifier).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

from cds_service.config import ServerConfig
from cds_service.errors import InvalidRequest, Issue
from cds_service.kit.hook_names import ORDER_BUNDLES

# A path is built only when a violation is reported: each container on the stack carries a
# link (parent link, key or index) instead of a string.
_Link = tuple[Any, str | int] | None

# Context members that hold an order hook's Bundle (draftOrders, medications).
ORDER_BUNDLE_MEMBERS = tuple(sorted(set(ORDER_BUNDLES.values())))

_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class Limits:
    max_json_depth: int = 64
    max_bundle_entries: int = 10000
    max_prefetch_keys: int = 32
    max_string_length: int = 1048576

    @classmethod
    def from_server(cls, server: ServerConfig) -> Limits:
        return cls(
            max_json_depth=server.max_json_depth,
            max_bundle_entries=server.max_bundle_entries,
            max_prefetch_keys=server.max_prefetch_keys,
            max_string_length=server.max_string_length,
        )


def json_path(link: _Link) -> str:
    """`$.context.draftOrders.entry[3]` for a chain of links; unsafe keys show as `[*]`."""
    parts: list[str] = []
    while link is not None:
        link, step = link
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _SAFE_KEY.fullmatch(step):
            parts.append(f".{step}")
        else:
            parts.append("[*]")
    return "$" + "".join(reversed(parts))


def too_deep(limit: int, where: str = "$") -> InvalidRequest:
    return _violation(
        f"the request body is nested deeper than the limit of {limit} levels "
        "(server.max_json_depth)",
        where,
    )


def _violation(diagnostics: str, where: str, code: str = "too-costly") -> InvalidRequest:
    return InvalidRequest([Issue(diagnostics, code=code, expression=(where,))])


def _string_error(text: str, limits: Limits, link: _Link, what: str) -> InvalidRequest | None:
    if len(text) > limits.max_string_length:
        return _violation(
            f"{what} is longer than the limit of {limits.max_string_length} characters "
            "(server.max_string_length)",
            json_path(link),
        )
    if not text.isascii() and _SURROGATE.search(text):
        return _violation(
            f"{what} holds an unpaired UTF-16 surrogate escape, which is not Unicode text",
            json_path(link),
            code="structure",
        )
    return None


def check_parsed_limits(document: Any, limits: Limits, raw: bytes) -> None:
    """`check_limits` for a document a strict parser (orjson) read from `raw`: it has no
    unpaired surrogates, so what is left is proved from the raw bytes at C speed where it can
    be, and walked only where it cannot. Any possible violation is found (and placed) by the
    full walk."""
    text = _ESCAPE.sub(b"_", raw) if b"\\" in raw else raw  # one byte per escape, no quotes
    _check_prefetch_keys(document, limits)
    if (
        _may_hold_long_string(text, limits.max_string_length)
        or not _bundles_within_limit(document, text, limits.max_bundle_entries)
        or nested_deeper_than(text, limits.max_json_depth)
    ):
        check_limits(document, limits)


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
# Keeps quotes and brackets (as parentheses); deletes every other byte.
_BRACKETS = bytes.maketrans(b"{[}]", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b'"{}[]')


@functools.lru_cache(maxsize=8)
def _longer_than(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb'"[^"]{%d,}"' % (limit + 1))


def _may_hold_long_string(text: bytes, limit: int) -> bool:
    """Whether some string (or key) may be longer than `limit` characters: UTF-8 takes at
    least a byte per character and each escape is one byte in `text`, so no run of more than
    `limit` bytes between quotes means no such string.

    Usually shown without reading the whole text: a run of 2c - 1 bytes covers a whole aligned
    block of c bytes, so when every whole block of c = limit // 2 bytes holds a quote, no run
    reaches `limit` (each block is searched only up to its first quote)."""
    if len(text) <= limit + 2:
        return False
    block = limit // 2
    if block >= 1 and all(text.find(b'"', start, start + block) >= 0
                          for start in range(0, len(text) - block + 1, block)):
        return False
    return _longer_than(limit).search(text) is not None


def _bundles_within_limit(document: Any, text: bytes, limit: int) -> bool:
    """Whether every Bundle is within `limit` entries, shown cheaply: when the text is too
    short for a longer list (an entry takes `{}` and a comma); when all Bundles are where CDS
    Hooks puts them (prefetch values, context.draftOrders, context.medications), because the
    bytes `"Bundle"` occur at least once in each, so no more occurrences than Bundles found
    there means none elsewhere; or when the text has fewer commas than a longer list needs.
    False (walk everything) when none shows it."""
    if len(text) < 2 * limit:
        return True
    prefetch = document.get("prefetch") if isinstance(document, dict) else None
    context = document.get("context") if isinstance(document, dict) else None
    places = list(prefetch.values()) if isinstance(prefetch, dict) else []
    if isinstance(context, dict):
        places += [context.get(member) for member in ORDER_BUNDLE_MEMBERS]
    bundles = [v for v in places if isinstance(v, dict) and v.get("resourceType") == "Bundle"]
    if text.count(b'"Bundle"') <= len(bundles):
        return all(not isinstance(b.get("entry"), list) or len(b["entry"]) <= limit
                   for b in bundles)
    return text.count(b",") < limit


def nested_deeper_than(text: bytes, limit: int) -> bool:
    """Whether valid JSON text nests containers deeper than `limit`, read from the bytes at C
    speed: with escapes replaced (so quotes delimit strings), everything but quotes and
    brackets is deleted, then strings; each pass removes every innermost `()` pair, one nesting
    level, so the text is empty after exactly `depth` passes. Only for text a JSON parser
    accepted."""
    if b"\\" in text:
        text = _ESCAPE.sub(b"_", text)
    # `""` is an empty string, or two strings with nothing structural between them: dropping
    # it first leaves few strings for the (slower) regex.
    skeleton = text.translate(_BRACKETS, _NOT_BRACKETS).replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = _STRING.sub(b"", skeleton)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"()", b"")
    return bool(skeleton)


def _check_prefetch_keys(document: Any, limits: Limits) -> None:
    if isinstance(document, dict):
        prefetch = document.get("prefetch")
        if isinstance(prefetch, dict) and len(prefetch) > limits.max_prefetch_keys:
            raise _violation(
                f"prefetch has more keys than the limit of {limits.max_prefetch_keys} "
                "(server.max_prefetch_keys)",
                "$.prefetch",
            )


def check_limits(document: Any, limits: Limits) -> None:
    """Raise an InvalidRequest (400) at the first limit `document` exceeds: nesting depth,
    entries in a Bundle, keys in the top-level `prefetch`, length (and Unicode validity) of
    strings and keys."""
    if isinstance(document, str):
        error = _string_error(document, limits, None, "a string")
        if error:
            raise error
        return
    _check_prefetch_keys(document, limits)
    if not isinstance(document, dict | list):
        return
    stack: list[tuple[dict[str, Any] | list[Any], int, _Link]] = [(document, 1, None)]
    while stack:
        node, depth, link = stack.pop()
        if depth > limits.max_json_depth:
            raise too_deep(limits.max_json_depth, json_path(link))
        items: Any
        if isinstance(node, dict):
            if node.get("resourceType") == "Bundle":
                entries = node.get("entry")
                if isinstance(entries, list) and len(entries) > limits.max_bundle_entries:
                    raise _violation(
                        "a Bundle has more entries than the limit of "
                        f"{limits.max_bundle_entries} (server.max_bundle_entries)",
                        json_path((link, "entry")),
                    )
            for key in node:
                error = _string_error(key, limits, link, "an object member name")
                if error:
                    raise error
            items = node.items()
        else:
            items = enumerate(node)
        for step, value in items:
            if isinstance(value, str):
                error = _string_error(value, limits, (link, step), "a string")
                if error:
                    raise error
            elif isinstance(value, dict | list):
                stack.append((value, depth + 1, (link, step)))


class NotJsonNumber(ValueError):
    """A number literal JSON does not have (NaN, Infinity) or that a double cannot hold."""


def reject_constant(_: str) -> Any:
    """`json.loads(parse_constant=...)`: NaN, Infinity and -Infinity are not JSON."""
    raise NotJsonNumber("NaN and Infinity are not JSON numbers")


def finite_float(text: str) -> float:
    """`json.loads(parse_float=...)`: 1e999 would be read as inf, which JSON cannot hold."""
    value = float(text)
    if not math.isfinite(value):
        raise NotJsonNumber("a number is out of the range of a double")
    return value
