"""The first `make demo` installs the project as pip does (`pip install -q -e .`, an isolated build with the
newest setuptools that `[build-system]` allows): the build says nothing about the project's own metadata,
so a fresh install prints no deprecation of ours (the machine's pip configuration may add warnings of its own)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_installing_the_project_prints_no_deprecation_of_its_metadata() -> None:
    with tempfile.TemporaryDirectory(prefix="floorwatch-install-") as folder:
        venv = Path(folder) / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        run = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                              "--no-deps", "-e", str(ROOT)], capture_output=True, text=True, timeout=540, cwd=folder)
        assert run.returncode == 0, run.stderr[-2000:]
    text = run.stdout + run.stderr
    assert "project.license` as a TOML table is deprecated" not in text, text[-2000:]
