"""The boundaries of the house: a rule comes in through `cds_service.kit` only, and the kit
does no I/O (no Flask, requests, SQLAlchemy, nor the configuration loader).

Read from the source (every import statement, wherever it stands in the module) and, for the
kit, from what importing it really loads in a fresh interpreter, so an import hidden behind
another module is caught too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cds_service.kit as kit
from tests.conftest import ROOT
from tests.support.imports import imports_in, imports_of

RULES = sorted((ROOT / "hooks" / "rules").glob("*.py"))
KIT = sorted((ROOT / "cds_service" / "kit").glob("*.py"))
# What the kit must never import: web, database and HTTP client libraries, the configuration
# loader, and the layers that use the kit (pipeline, web, store, tools, the CLI).
FORBIDDEN_IN_KIT = (
    "flask", "flask_cors", "werkzeug", "requests", "urllib3", "sqlalchemy", "alembic",
    "psycopg", "gunicorn", "prometheus_client", "cds_service.config", "cds_service.pipeline",
    "cds_service.web", "cds_service.store", "cds_service.tools", "cds_service.cli",
    "cds_service.metrics", "cds_service.logs",
)


def _is_or_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def rule_violations(modules: list[str]) -> list[str]:
    return sorted({m for m in modules if _is_or_under(m, "cds_service")} - {"cds_service.kit"})


def kit_violations(modules: list[str]) -> list[str]:
    return sorted({m for m in modules if any(_is_or_under(m, f) for f in FORBIDDEN_IN_KIT)})


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_a_rule_imports_the_engine_only_through_the_kit(path):
    bad = rule_violations(imports_in(path))
    assert not bad, (f"{path.name} imports {bad}: a rule imports from `cds_service.kit` only "
                     "(add what it needs to the kit's __all__)")


@pytest.mark.parametrize("path", KIT, ids=lambda p: p.name)
def test_a_kit_module_imports_nothing_that_does_io(path):
    bad = kit_violations(imports_in(path))
    assert not bad, f"cds_service/kit/{path.name} imports {bad}: the kit does no I/O"


def test_importing_the_kit_loads_no_io_library_and_no_configuration_loader():
    """What `import cds_service.kit` pulls in, transitively, in a fresh interpreter."""
    script = "import json, sys, cds_service.kit; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout)
    assert "cds_service.kit" in loaded
    assert not kit_violations(loaded), f"importing cds_service.kit loads {kit_violations(loaded)}"


def test_the_checks_see_a_forbidden_import_however_it_is_written():
    assert rule_violations(imports_of("from cds_service.kit.cards import Card", "hooks.rules")) \
        == ["cds_service.kit.cards"]
    assert rule_violations(imports_of("from cds_service import config", "hooks.rules")) \
        == ["cds_service.config"]
    assert rule_violations(imports_of("def f():\n    import cds_service.pipeline.prefetch\n",
                                      "hooks.rules")) == ["cds_service.pipeline.prefetch"]
    assert rule_violations(imports_of("from cds_service.kit import Card", "hooks.rules")) == []
    assert kit_violations(imports_of("import requests", "cds_service.kit")) == ["requests"]
    assert kit_violations(imports_of("from ..config import load_config", "cds_service.kit")) \
        == ["cds_service.config"]
    assert kit_violations(imports_of("from flask import Flask", "cds_service.kit")) == ["flask"]


def test_the_kit_exports_exactly_what_its_all_names():
    public = {name for name in vars(kit) if not name.startswith("_")}
    submodules = {path.stem for path in KIT if path.stem != "__init__"}
    assert public - submodules - {"annotations"} == set(kit.__all__)
    assert len(kit.__all__) == len(set(kit.__all__))
    for name in kit.__all__:
        assert getattr(kit, name) is not None, name
