"""Data flows one way: web -> pipeline -> kit, with the store beside the pipeline and the
tools on top. Each room of `cds_service/` may import only the rooms below it, so a line of code
knows its room from its path and no room reaches back up."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.support.imports import imports_in

ENGINE = ROOT / "cds_service"
SHARED = {"errors", "clock"}  # the exception tree and the clock: every room may use them
# room -> the rooms of cds_service it may import (besides itself and SHARED)
MAY_IMPORT = {
    "kit": set(),
    "store": {"metrics"},
    "pipeline": {"kit", "store", "config", "metrics", "logs"},
    "web": {"kit", "pipeline", "store", "config", "metrics", "logs"},
    "tools": {"kit", "pipeline", "store", "config"},
}
MODULES = [path for room in MAY_IMPORT for path in sorted((ENGINE / room).rglob("*.py"))]


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "cds_service" else None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ENGINE)))
def test_a_room_imports_only_the_rooms_below_it(path):
    room = path.relative_to(ENGINE).parts[0]
    allowed = MAY_IMPORT[room] | SHARED | {room}
    reached = {r for m in imports_in(path) if (r := room_of(m)) is not None}
    assert reached <= allowed, f"cds_service/{room} reaches {sorted(reached - allowed)}"


def test_the_rooms_are_the_ones_the_readme_names():
    rooms = {p.name for p in ENGINE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms == set(MAY_IMPORT)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for room in rooms:
        assert f"`cds_service/{room}/`" in readme, room
