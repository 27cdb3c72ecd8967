"""One version everywhere: pyproject.toml's, as the installation recorded it, in discovery, the
`legcramp_cds_build_info` metric, the `starting` line of `serve` (tests/test_logs.py),
`openapi.yaml` and CHANGELOG.md (tests/test_project_files.py)."""

from __future__ import annotations

import tomllib
from importlib import metadata

import cds_service
from cds_service.kit.service_declaration import VERSION_EXTENSION
from cds_service.metrics import VERSION, package_version
from hooks import build_services
from tests.conftest import ROOT


def pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"]


def test_the_installed_version_is_pyprojects():
    """Fails after a version bump until the package is installed again (`./scripts/test`)."""
    assert metadata.version("legcramp-cds") == pyproject_version()
    assert package_version() == VERSION == pyproject_version()


def test_the_package_attribute_is_the_same_version():
    assert cds_service.__version__ == pyproject_version()


def test_discovery_gives_each_service_the_version_in_its_extension(client):
    services = client.get("/cds-services").get_json()["services"]
    assert len(services) == len(build_services()) == 4
    for service in services:
        assert service["extension"] == {VERSION_EXTENSION: pyproject_version()}, service["id"]
        # not CDS Hooks 3.0's `version`, which names the CDS Hooks specification implemented
        assert "version" not in service


def test_a_declaration_alone_gives_no_version():
    """The kit reads no installed metadata: the engine hands the version in."""
    for declaration in build_services():
        assert "extension" not in declaration.discovery_entry()
        entry = declaration.discovery_entry("9.9.9")
        assert entry["extension"] == {VERSION_EXTENSION: "9.9.9"}
