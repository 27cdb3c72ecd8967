"""`./scripts/run` installs only when the installation may be out of date.

The script runs in a copy of the checkout's skeleton whose `.venv/bin/python` is a stand-in:
`-m pip ...` is written to a log (and an install makes the `legcramp-cds` command), anything
else goes to the real Python. `legcramp-cds` logs its arguments instead of serving.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

RUN = ROOT / "scripts" / "run"

FAKE_PYTHON = f"""#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "pip $*" >>"$LOG"
  [ -z "$PIP_FAILS" ] || exit 1
  printf '#!/bin/sh\\necho "serve $*" >>"$LOG"\\n' >"$(dirname "$0")/legcramp-cds"
  chmod +x "$(dirname "$0")/legcramp-cds"
  exit 0
fi
exec {sys.executable} "$@"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """scripts/run, pyproject.toml and the package directories, with a stand-in venv."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(RUN, tmp_path / "scripts" / "run")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in ("cds_service/store", "hooks/rules"):
        (tmp_path / package).mkdir(parents=True)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON, encoding="utf-8")
    python.chmod(0o755)
    return tmp_path


def run(checkout: Path, *args: str, **env: str) -> list[str]:
    """Runs scripts/run; returns what it did (pip calls, then the serve call)."""
    log = checkout / "log"
    log.unlink(missing_ok=True)
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("LEGCRAMP_RUN_REINSTALL", "PIP_FAILS")}
    environment.update(LOG=str(log), **env)
    result = subprocess.run([str(checkout / "scripts" / "run"), *args], env=environment,
                            capture_output=True, text=True, timeout=60)
    done = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return [*done, f"exit {result.returncode}"]


def pip_calls(done: list[str]) -> list[str]:
    return [line for line in done if line.startswith("pip ")]


def test_the_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(RUN)], check=True)


def test_the_first_run_installs_then_serves_with_the_arguments(checkout):
    done = run(checkout, "--port", "9000")
    assert any("install" in call and "-e ." in call for call in pip_calls(done))
    assert done[-2:] == ["serve serve --port 9000", "exit 0"]


def test_a_second_run_serves_without_pip(checkout):
    run(checkout)
    assert run(checkout, "--port", "9001") == ["serve serve --port 9001", "exit 0"]


@pytest.mark.parametrize("change", ["pyproject", "new package directory", "command removed",
                                    "forced"])
def test_a_change_that_may_need_an_install_runs_pip_again(checkout, change):
    run(checkout)
    env = {}
    if change == "pyproject":
        with (checkout / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
            pyproject.write("\n# changed\n")
    elif change == "new package directory":
        (checkout / "cds_service" / "schemas").mkdir()  # a namespace package: mapped at install
    elif change == "command removed":
        (checkout / ".venv" / "bin" / "legcramp-cds").unlink()
    else:
        env["LEGCRAMP_RUN_REINSTALL"] = "1"
    done = run(checkout, **env)
    assert pip_calls(done), change
    assert run(checkout) == ["serve serve", "exit 0"]  # and the run after that does not


def test_an_edited_module_needs_no_install(checkout):
    run(checkout)
    (checkout / "hooks" / "rules" / "new_rule.py").write_text("X = 1\n", encoding="utf-8")
    (checkout / "cds_service" / "store" / "__pycache__").mkdir()
    assert not pip_calls(run(checkout))


def test_a_moved_checkout_installs_again(checkout, tmp_path_factory):
    run(checkout)
    moved = tmp_path_factory.mktemp("moved") / "checkout"
    shutil.copytree(checkout, moved, symlinks=True)
    assert pip_calls(run(moved))


def test_a_failed_install_is_tried_again_and_nothing_is_served(checkout):
    run(checkout)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'changed'\n", encoding="utf-8")
    failed = run(checkout, PIP_FAILS="1")
    assert pip_calls(failed) and failed[-1] != "exit 0"
    assert not any(line.startswith("serve") for line in failed)
    assert pip_calls(run(checkout)), "the stamp must not survive a failed install"
