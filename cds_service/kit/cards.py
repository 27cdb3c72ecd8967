"""Typed builders for the CDS Hooks 2.0 response objects.

`to_json` omits every member that has no value: the spec forbids `null`, `""` and `[]` for
optional members, and EHRs have rejected cards for less. Rules build these; the card policy
(`pipeline.card_policy`) gives them their uuids, combines and orders them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Indicator = Literal["info", "warning", "critical"]
INDICATOR_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
SUMMARY_MAX_CHARS = 139  # spec: "<140 characters"

# Namespace for deterministic card and suggestion uuids (uuid5 of the card's identity).
CARD_UUID_NAMESPACE = uuid.UUID("5f0f3c1e-7a4b-4d8e-9a0c-6c1d2b3e4f50")


def _compact(members: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in members.items() if v is not None and v != "" and v != [] and v != {}}


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact({"system": self.system, "code": self.code, "display": self.display})


@dataclass(frozen=True)
class Source:
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "label": self.label,
                "url": self.url,
                "icon": self.icon,
                "topic": self.topic.to_json() if self.topic else None,
            }
        )


@dataclass(frozen=True)
class Action:
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resource_id: str | None = None

    def __post_init__(self) -> None:
        if self.type == "delete" and (not self.resource_id or self.resource is not None):
            raise ValueError("a delete action names resourceId and carries no resource")
        if self.type in ("create", "update") and not self.resource:
            raise ValueError(f"a {self.type} action carries the whole resource")

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "type": self.type,
                "description": self.description,
                "resource": self.resource,
                "resourceId": self.resource_id,
            }
        )


@dataclass(frozen=True)
class Suggestion:
    label: str
    actions: Sequence[Action] = ()
    is_recommended: bool | None = None
    uuid: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "label": self.label,
                "uuid": self.uuid,
                "isRecommended": self.is_recommended,
                "actions": [a.to_json() for a in self.actions],
            }
        )


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    app_context: str | None = None

    def __post_init__(self) -> None:
        if self.app_context and self.type != "smart":
            raise ValueError("appContext belongs to smart links only")

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "label": self.label,
                "url": self.url,
                "type": self.type,
                "appContext": self.app_context,
            }
        )


@dataclass(frozen=True)
class Card:
    """A card as a rule states it. `identity` (never serialised) names the finding, e.g. the
    order it is about, so the engine can derive a uuid that is stable for the same request."""

    summary: str
    indicator: Indicator
    source: Source
    detail: str | None = None
    suggestions: Sequence[Suggestion] = ()
    selection_behavior: Literal["at-most-one", "any"] | None = None
    override_reasons: Sequence[Coding] = ()
    links: Sequence[Link] = ()
    identity: str = ""
    uuid: str | None = None
    # Guidance that should not repeat on every chart open: its uuid is stable per patient and
    # finding, and patient-view leaves it out while it was shown recently (engine).
    repeat_quietly: bool = False

    def __post_init__(self) -> None:
        if len(self.summary) > SUMMARY_MAX_CHARS:
            raise ValueError(f"card summary is {len(self.summary)} characters; the limit is 139")
        if self.suggestions and not self.selection_behavior:
            raise ValueError("a card with suggestions states its selectionBehavior")
        if any(not reason.display for reason in self.override_reasons):
            raise ValueError("every override reason carries a display")
        recommended = sum(1 for s in self.suggestions if s.is_recommended)
        if self.selection_behavior == "at-most-one" and recommended > 1:
            raise ValueError("at-most-one cards recommend at most one suggestion")

    @property
    def topic_code(self) -> str | None:
        return self.source.topic.code if self.source.topic else None

    def with_uuids(self, seed: str) -> Card:
        """Give the card and its suggestions uuids derived from `seed` and the card identity."""
        card_uuid = uuid.uuid5(CARD_UUID_NAMESPACE, f"{seed}|{self.topic_code}|{self.identity}")
        suggestions = tuple(
            replace(s, uuid=s.uuid or str(uuid.uuid5(card_uuid, f"suggestion|{i}|{s.label}")))
            for i, s in enumerate(self.suggestions)
        )
        return replace(self, uuid=self.uuid or str(card_uuid), suggestions=suggestions)

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "uuid": self.uuid,
                "summary": self.summary,
                "detail": self.detail,
                "indicator": self.indicator,
                "source": self.source.to_json(),
                "suggestions": [s.to_json() for s in self.suggestions],
                "selectionBehavior": self.selection_behavior if self.suggestions else None,
                "overrideReasons": [r.to_json() for r in self.override_reasons],
                "links": [link.to_json() for link in self.links],
            }
        )


@dataclass(frozen=True)
class CdsResponse:
    cards: Sequence[Card] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"cards": [card.to_json() for card in self.cards]}
