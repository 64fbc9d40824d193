"""A normal install (the wheel, not the source tree) runs anywhere: the default machine and the
migrations ship inside the package, with the license and the type-hint marker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

from orchestrator.config.settings import Settings
from orchestrator.config.unknown_variables import setting_names, unknown_variables

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installed_elsewhere_runs_the_demo_from_any_directory(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "machines/thread.yaml",
        "orchestrator/py.typed",
        "persistence/migrations/env.py",
        "persistence/migrations/script.py.mako",
        "persistence/migrations/versions/0001_schema_of_release_0_1_0.py",
    } <= names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)

    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # the dependencies come from this venv
    env.pop("ORCH_MACHINE", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    where = run("--version")
    assert where.stdout == f"orchestrator {version('slack-thread-orchestrator')}\n"
    probe = subprocess.run(
        [sys.executable, "-c", "import machines, orchestrator; print(machines.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.stdout.startswith(str(site)), probe.stdout  # not the source tree
    demo = run("demo", "--delay", "0")
    assert demo.returncode == 0, demo.stderr
    assert "demo finished" in demo.stdout
    assert "socket_mode_enabled: true" in run("manifest", "--socket").stdout
    assert run("machine", "validate").stdout.startswith("thread.yaml (built in): ok")


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    assert listed == setting_names(Settings)
    assert unknown_variables(setting_names(Settings), {}, ROOT / ".env.example") == []
