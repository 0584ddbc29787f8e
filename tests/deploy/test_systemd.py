"""deploy/systemd/floorwatch-edge.service, the edge agent on a box without Docker: systemd accepts the unit,
its one command line is the agent, which itself refuses a bad file with the exit status the unit does not
restart on (an ExecStartPre failing would be restarted for ever: RestartPreventExitStatus covers only the
main process), and docs/deployment.md installs to the paths the unit uses."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy/systemd/floorwatch-edge.service"
INSTALLED = "/opt/floorwatch/bin/floorwatch"
CONFIG = "/etc/floorwatch/edge.yaml"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser["Service"]


def here(command: str, config: Path) -> list[str]:
    """A command line of the unit, run from this checkout's floorwatch with `config` for the installed file."""
    argv = shlex.split(command)
    assert argv[0] == INSTALLED and CONFIG in argv, command
    return [sys.executable, "-m", "server.cli", *[str(config) if a == CONFIG else a for a in argv[1:]]]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require_service(analyze is not None, "systemd-analyze (apt-get install systemd)")
    assert analyze is not None
    floorwatch = shutil.which("floorwatch", path=str(Path(sys.executable).parent))
    assert floorwatch is not None, "the floorwatch console script of this environment"
    unit = tmp_path / "floorwatch-edge.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED, floorwatch))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if str(unit) in line]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr


def test_the_units_main_command_is_what_refuses_a_bad_edge_file(tmp_path: Path) -> None:
    unit = service()
    assert "ExecStartPre" not in unit, "RestartPreventExitStatus does not cover ExecStartPre: it would loop"
    assert unit["ExecStart"].split() == [INSTALLED, "edge", "--config", CONFIG]
    config = tmp_path / "edge.yaml"
    config.write_text((REPO / "edge/examples/edge-small.yaml").read_text(encoding="utf-8")
                      .replace("var/edge-f3-buffer.sqlite", "/var/lib/floorwatch/edge-buffer.sqlite"))
    checked = subprocess.run([*here(unit["ExecStart"], config), "--check"], capture_output=True, text=True, timeout=120,
                             cwd=REPO)
    assert checked.returncode == 0 and ": OK: site hq, edge edge-f3" in checked.stdout, checked.stderr
    # The main command itself exits on a problem of the file with the status the unit does not restart on.
    config.write_text(config.read_text(encoding="utf-8").replace("edge: edge-f3", "edge: Edge F3"))
    refused = subprocess.run(here(unit["ExecStart"], config), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert refused.returncode == int(unit["RestartPreventExitStatus"]) == 2, refused.stderr
    assert f"{config}:5: edge: " in refused.stderr and "Traceback" not in refused.stderr


def test_the_docs_install_to_the_units_paths() -> None:
    unit = service()
    doc = (REPO / "docs/deployment.md").read_text(encoding="utf-8")
    section = doc.split("## An edge box without Docker", 1)[1].split("\n## ", 1)[0]
    assert f"/var/lib/{unit['StateDirectory']}/edge-buffer.sqlite" in section
    assert f"install -m 640 -g {unit['Group']} edge-f4.yaml {CONFIG}" in section
    assert f"useradd --system --home-dir /var/lib/floorwatch --shell /usr/sbin/nologin {unit['User']}" in section
    assert INSTALLED.removesuffix("/bin/floorwatch") in section and "pip install '.[edge]'" in section
    assert f"install -m 644 deploy/systemd/{UNIT.name} /etc/systemd/system/" in section
    # The unit has no separate check before start; the docs may not promise one.
    assert "before each start" not in section and "(`--check`)" not in section
