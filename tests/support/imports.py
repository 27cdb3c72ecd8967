"""What a module imports, read from its source: for the tests that hold the layout's boundaries."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def imports_of(source: str, package: str) -> list[str]:
    """Every module an import statement of `source` names (relative imports resolved against
    `package`; `from cds_service import x` names `cds_service.x`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            if module == "cds_service":
                found += [f"cds_service.{alias.name}" for alias in node.names]
            else:
                found.append(module)
    return found


def _is_or_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imports_in(path: Path) -> list[str]:
    """`imports_of` for a file of this checkout, its package read from its path."""
    package = ".".join(path.relative_to(ROOT).parts[:-1])
    return imports_of(path.read_text(encoding="utf-8"), package)
