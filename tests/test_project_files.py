"""The project files a release carries: LICENSE (pyproject's licence, its full text),
CHANGELOG.md (Keep a Changelog, its newest release the package version), SECURITY.md and
CONTRIBUTING.md (what they point at exists)."""

from __future__ import annotations

import hashlib
import re
import tomllib
from datetime import date

import pytest

from cds_service.metrics import package_version
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# SPDX id -> SHA-256 of the licence text as its steward distributes it (Apache: the
# LICENSE-2.0.txt of apache.org, the copy in ../shared/reference/rxnorm-sandbox/).
LICENSE_TEXTS = {
    "Apache-2.0": "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
}
APACHE_REFERENCE = ROOT.parent / "shared" / "reference" / "rxnorm-sandbox" / "LICENSE"
VERSION_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\S+))?$", re.MULTILINE)


def read(name: str) -> str:
    path = ROOT / name
    assert path.is_file(), f"{name} is missing"
    text = path.read_text(encoding="utf-8")
    assert text.strip(), f"{name} is empty"
    return text


@pytest.mark.parametrize("name", ["LICENSE", "CHANGELOG.md", "SECURITY.md", "CONTRIBUTING.md"])
def test_the_project_file_exists(name):
    read(name)


# --- LICENSE ---------------------------------------------------------------------------------


def test_license_is_the_full_text_of_the_licence_pyproject_names():
    text = read("LICENSE")
    assert PYPROJECT["license"] in LICENSE_TEXTS, PYPROJECT["license"]
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == LICENSE_TEXTS[
        PYPROJECT["license"]], "LICENSE is not the licence text, unchanged"
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


@pytest.mark.skipif(not APACHE_REFERENCE.is_file(), reason="no ../shared/reference checkout")
def test_license_is_byte_for_byte_the_reference_copy():
    assert (ROOT / "LICENSE").read_bytes() == APACHE_REFERENCE.read_bytes()


# --- CHANGELOG.md ----------------------------------------------------------------------------


def releases() -> list[tuple[str, str | None]]:
    return [(m["version"], m["date"]) for m in VERSION_HEADING.finditer(read("CHANGELOG.md"))]


def test_changelog_follows_keep_a_changelog():
    text = read("CHANGELOG.md")
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in text
    headings = releases()
    assert headings[0] == ("Unreleased", None), "an [Unreleased] section comes first"
    for version, day in headings[1:]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
        assert day is not None and date.fromisoformat(day), (version, day)
    for section in re.findall(r"^### (.+)$", text, re.MULTILINE):
        assert section in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_changelogs_newest_release_is_the_package_version():
    newest = next(version for version, _ in releases() if version != "Unreleased")
    assert newest == PYPROJECT["version"] == package_version()


# --- SECURITY.md and CONTRIBUTING.md ---------------------------------------------------------


def test_security_policy_says_how_to_report_what_is_promised_and_what_is_in_scope():
    text = read("SECURITY.md")
    for heading in ("## Reporting a vulnerability", "## What we promise", "## Supported versions",
                    "## Scope", "## The security model in short"):
        assert heading in text, heading
    major, minor, _ = PYPROJECT["version"].split(".")
    assert f"| {major}.{minor}.x | yes |" in text, "the current release line is not supported"


def test_contributing_gives_the_readmes_two_set_up_commands():
    readme, contributing = read("README.md"), read("CONTRIBUTING.md")
    setup = re.search(r"## Set up\n.*?```sh\n(.*?)```", readme, re.DOTALL)
    assert setup and "./scripts/run" in setup[1] and "./scripts/test" in setup[1]
    assert setup[1] in contributing
    for script in ("scripts/run", "scripts/test"):
        assert (ROOT / script).is_file(), script


def test_contributing_points_at_sections_and_files_that_exist():
    readme, contributing = read("README.md"), read("CONTRIBUTING.md")
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", readme, re.MULTILINE)}
    anchors = re.findall(r"README\.md#([a-z0-9-]+)", contributing)
    assert {"writing-a-rule", "where-things-are"} <= set(anchors)
    assert set(anchors) <= headings, set(anchors) - headings
    for path in re.findall(r"`((?:tests|docs|hooks|scripts)/[\w./-]+\.(?:py|md))`", contributing):
        assert (ROOT / path).exists(), path
    for command in ("ruff check .", "mypy cds_service hooks", "python -m pytest"):
        assert command in contributing, command
