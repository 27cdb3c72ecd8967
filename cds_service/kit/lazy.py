"""Resources kept as the client's JSON and validated with the FHIR models only when a rule
reads them.

Validating a resource with `fhir.resources` costs about 0.2 ms, and a chart carries hundreds of
resources of which the rules read a handful: the newest result of each test, the conditions in a
value set, the active orders. So the record keeps raw JSON and a rule's question first screens
the raw codes against the compiled value set, through an index of the record's distinct codes
and texts built once per record (a resource whose codes are not plain strings is always a
candidate). Only what passes the screen is validated, and the rule then decides on the
validated model exactly as before, so nothing a rule relies on is read unvalidated. A resource
the models reject is skipped and counted when it is read; one never read is counted as not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from cds_service.kit.terminology import concept_terms

T = TypeVar("T")
_UNREAD = object()


class Screen(Protocol):
    def has_code(self, system: str | None, code: str | None) -> bool: ...

    def matches_text(self, text: str | None) -> bool: ...


class _TermIndex:
    """Which resources carry each distinct (system, code) and text, and which cannot be read
    without the models."""

    def __init__(self, concepts_of: Iterable[Iterable[Any]]):
        self.by_code: dict[tuple[str | None, str | None], list[int]] = {}
        self.by_text: dict[str, list[int]] = {}
        self.unreadable: list[int] = []
        # Each value set's candidates, once per record: several rules ask about the same set.
        self._answers: dict[int, tuple[Screen, list[int]]] = {}
        for index, concepts in enumerate(concepts_of):
            for concept in concepts:
                terms = concept_terms(concept)
                if terms is None:
                    self.unreadable.append(index)
                    break
                for pair in terms[0]:
                    self.by_code.setdefault(pair, []).append(index)
                for text in terms[1]:
                    self.by_text.setdefault(text, []).append(index)

    def candidates(self, value_set: Screen) -> list[int]:
        known = self._answers.get(id(value_set))
        if known is not None and known[0] is value_set:
            return known[1]
        found = set(self.unreadable)
        for (system, code), indexes in self.by_code.items():
            if value_set.has_code(system, code):
                found.update(indexes)
        for text, indexes in self.by_text.items():
            if value_set.matches_text(text):
                found.update(indexes)
        answer = sorted(found)
        self._answers[id(value_set)] = (value_set, answer)  # held: its id is never reused
        return answer


class LazyResources(Generic[T]):
    """Raw resources of one kind, each validated at most once, on first read.

    `parse` returns the model (None when the models reject it, which it counts); `concepts`
    names the raw CodeableConcepts a value set is matched against (`code`, components'
    `code`, an order's medication).
    """

    def __init__(
        self,
        raws: Iterable[dict[str, Any]],
        parse: Callable[[dict[str, Any]], T | None],
        concepts: Callable[[dict[str, Any]], Iterable[Any]] = lambda raw: (),
        on_read: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.raws: tuple[dict[str, Any], ...] = tuple(raws)
        self._parse = parse
        self._concepts = concepts
        self._on_read = on_read
        self._models: list[Any] = [_UNREAD] * len(self.raws)
        self._terms: _TermIndex | None = None
        self._keys: dict[Callable[[dict[str, Any]], Any], list[Any]] = {}
        self._orders: dict[tuple[Callable[..., Any], Callable[..., Any]],
                           tuple[list[Any], list[int]]] = {}

    def model(self, index: int) -> T | None:
        model = self._models[index]
        if model is _UNREAD:
            raw = self.raws[index]
            if self._on_read is not None:
                self._on_read(raw)
            model = self._models[index] = self._parse(raw)
        return model

    def __iter__(self) -> Iterator[T]:
        """Every resource the models accept (validating all of them)."""
        for index in range(len(self.raws)):
            model = self.model(index)
            if model is not None:
                yield model

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return any(True for _ in self)

    def screened_indexes(self, value_set: Screen) -> list[int]:
        """Indexes of the resources whose raw codes may match `value_set` (a superset of those
        whose validated codes do)."""
        if self._terms is None:
            self._terms = _TermIndex(self._concepts(raw) for raw in self.raws)
        return self._terms.candidates(value_set)

    def screened(self, value_set: Screen) -> list[T]:
        """The validated resources that may match `value_set`, in the record's order."""
        return self.models(self.screened_indexes(value_set))

    def keyed(self, key: Callable[[dict[str, Any]], Any], indexes: Iterable[int],
              ) -> list[tuple[Any, int]]:
        """(key(raw), index) for each of `indexes`, each key computed once per record (the raw
        date of a lab result, say, asked again for every test it may be a result of)."""
        known = self._keys.get(key)
        if known is None:
            known = self._keys[key] = [_UNREAD] * len(self.raws)
        found = []
        for index in indexes:
            value = known[index]
            if value is _UNREAD:
                value = known[index] = key(self.raws[index])
            found.append((value, index))
        return found

    def ordered(self, key: Callable[[dict[str, Any]], Any],
                rank: Callable[[tuple[Any, int]], Any]) -> tuple[list[Any], list[int]]:
        """key(raw) of every resource, and every index sorted by rank((key, index)): one sort
        per record and key, however many questions walk it (the newest result of each of a
        dozen tests in a long history, say)."""
        known = self._orders.get((key, rank))
        if known is None:
            values = [value for value, _ in self.keyed(key, range(len(self.raws)))]
            order = sorted(range(len(values)), key=lambda index: rank((values[index], index)))
            known = self._orders[(key, rank)] = (values, order)
        return known

    def select(self, keep: Callable[[dict[str, Any]], bool]) -> list[T]:
        """The validated resources whose raw JSON passes `keep`, in the record's order."""
        return self.models(i for i, raw in enumerate(self.raws) if keep(raw))

    def models(self, indexes: Iterable[int]) -> list[T]:
        found = []
        for index in indexes:
            model = self.model(index)
            if model is not None:
                found.append(model)
        return found


def screened(resources: Iterable[T], value_set: Screen) -> Iterable[T]:
    """What a rule should look at for `value_set`: screened when the record is lazy, else all."""
    if isinstance(resources, LazyResources):
        return resources.screened(value_set)
    return resources
