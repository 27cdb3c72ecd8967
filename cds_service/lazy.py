"""Resources kept as the client's JSON and validated with the FHIR models only when a rule
reads them.

Validating a resource with `fhir.resources` costs about 0.2 ms, and a chart carries hundreds of
resources of which the rules read a handful: the newest result of each test, the conditions in a
value set, the active orders. So the record keeps raw JSON and a rule's question first screens
the raw codes against the compiled value set (`ValueSet.may_match_json`, which answers "maybe"
for anything it cannot read as plain strings). Only what passes the screen is validated, and
the rule then decides on the validated model exactly as before, so nothing a rule relies on is
read unvalidated. A resource the models reject is skipped and counted when it is read; one
never read is counted as not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
_UNREAD = object()


class Screen(Protocol):
    def may_match_json(self, concept: Any) -> bool: ...


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
        return [
            index for index, raw in enumerate(self.raws)
            if any(value_set.may_match_json(concept) for concept in self._concepts(raw))
        ]

    def screened(self, value_set: Screen) -> list[T]:
        """The validated resources that may match `value_set`, in the record's order."""
        return self.models(self.screened_indexes(value_set))

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
