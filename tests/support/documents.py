"""JSON documents as the input limits measure them, for the limit tests (HTTP and fast path)."""

from __future__ import annotations

from typing import Any


def depth(value: Any) -> int:
    """Containers nested in `value` (a scalar is 0), the measure max_json_depth limits."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0
