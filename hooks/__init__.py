"""The clinical content: CDS service declarations, rules, value sets. No HTTP here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cds_service.kit.service_declaration import ServiceDeclaration


def build_services() -> list[ServiceDeclaration]:
    """Imported lazily so the value set builder runs even while value set files are missing."""
    from hooks.services import build_services as build

    return build()
