"""`floorwatch demo` as a user runs it: a subprocess with its own ports, stopped by SIGTERM or Ctrl-C.

Two demos run at once on one machine, each playing strip-overload: each starts quiet (no alarm before
the heater goes on), refuses a `floorwatch simulate` on its broker (its own simulator plays the floor),
raises elec.strip_overload after it, prints only its own pushes (each push links to its own page's
port; the first says, in both languages, that the heater's plug was cut), and stops cleanly, its
Mosquitto child included.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import free_port, mosquitto_binary
from tests.conftest import require_service
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
SPEED = 2.0  # faster, and the simulated plug's own 30 s rule beats the strip's 10 s one on the wall clock
HEATER_ON_S = 60.0  # strip-overload.yaml: heater_on at 60 s of scenario time


@dataclass
class Demo:
    port: int
    data_dir: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    started_at: float = 0.0

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def token(self) -> str | None:
        found = re.search(r"#token=(\S+)", self.output)
        return found.group(1) if found else None

    def alarms(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/alarms?limit=500",
                                         headers={"Authorization": f"Bearer {self.token()}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            result: list[dict[str, Any]] = json.load(response)
        return result


def start_demo(tmp: Path, name: str, env_port: bool) -> Demo:
    port = free_port()
    args = [sys.executable, "-m", "server.cli", "demo", "--speed", str(SPEED), "--data-dir", str(tmp / name)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if env_port:
        env["FLOORWATCH_HTTP_PORT"] = str(port)  # the variable, as `make demo` users may set it
    else:
        args += ["--port", str(port)]
    # Its own process group, so a "Ctrl-C" reaches the demo and its children as a terminal's would.
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    demo = Demo(port, tmp / name, process)
    threading.Thread(target=demo.read, daemon=True).start()
    return demo


def mosquitto_children(data_dir: Path) -> list[int]:
    """Running Mosquitto processes whose configuration lies in this demo's data folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "mosquitto" in command and str(data_dir / "broker") in command:
            found.append(int(entry.name))
    return found


def kill_what_is_left(demo: Demo) -> None:
    """After a test, whatever happened: the demo's process and its Mosquitto child are gone."""
    if demo.process.poll() is None:
        demo.process.kill()
        demo.process.wait(10)
    for pid in mosquitto_children(demo.data_dir):
        os.kill(pid, signal.SIGKILL)


def test_two_demos_start_quiet_raise_the_scenario_alarm_keep_their_pushes_and_stop_cleanly(tmp_path: Path) -> None:
    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    demos = [start_demo(tmp_path, "a", env_port=False), start_demo(tmp_path, "b", env_port=True)]
    try:
        for demo in demos:
            assert wait_until(lambda d=demo: "scenario:" in d.output or d.process.poll() is not None, 120, 0.2)
            assert demo.process.poll() is None, demo.output
            demo.started_at = time.monotonic()
            assert f"live page:  http://127.0.0.1:{demo.port}/#token=" in demo.output
            assert re.search(r"demo inbox on 127\.0\.0\.1:(\d+)", demo.output)
        inbox_ports = {re.search(r"demo inbox on 127\.0\.0\.1:(\d+)", d.output).group(1) for d in demos}  # type: ignore[union-attr]
        assert len(inbox_ports) == 2
        # a second simulator on a demo's own devices is refused, with the way to run one beside it
        broker = re.search(r"broker: .* on (127\.0\.0\.1:\d+)", demos[0].output)
        assert broker, demos[0].output
        second = subprocess.run([sys.executable, "-m", "simulators.cli", "--scenario", "fire-drill", "--broker",
                                 broker.group(1), "--server", f"http://127.0.0.1:{demos[0].port}", "--token",
                                 str(demos[0].token()), "--speed", "0"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "already playing strip-overload on floor demo" in second.stderr and "--scenario none" in second.stderr

        for demo in demos:
            # Quiet until the heater goes on (HEATER_ON_S of scenario time after the scenario starts).
            quiet_until = demo.started_at + HEATER_ON_S / SPEED - 2.0
            while time.monotonic() < quiet_until:
                assert demo.alarms() == [], demo.alarms()
                time.sleep(0.5)
        for demo in demos:
            raised = wait_until(lambda d=demo: d.alarms(), 120, 0.5)
            assert [(a["rule"], a["subject"]) for a in raised] == [("elec.strip_overload", "strip-f3-03")]
            assert wait_until(lambda d=demo: "[push → shift-lead]" in d.output, 60, 0.2), demo.output
        for demo, other in (demos, demos[::-1]):
            pushes = [line for line in demo.lines if line.startswith("[push → ")]
            assert pushes and all(f":{demo.port}/#alarm=" in line for line in pushes), pushes
            # Chinese first, and the server's cut of the heater's plug on the very first page.
            first = pushes[0]
            assert "插线板过载" in first and "已断电：服务器已向插座 plug-strip-f3-03-spare 下发断电指令" in first
            assert "cut: the server switched plug plug-strip-f3-03-spare OFF" in first
            assert not any(f":{other.port}/" in line for line in pushes)

        assert mosquitto_children(demos[0].data_dir) and mosquitto_children(demos[1].data_dir)
        demos[0].process.send_signal(signal.SIGTERM)
        os.killpg(demos[1].process.pid, signal.SIGINT)  # Ctrl-C in the demo's terminal
        for demo in demos:
            assert demo.process.wait(60) == 0, demo.output
            assert wait_until(lambda d=demo: not mosquitto_children(d.data_dir), 10), demo.output
            assert "stopped" in demo.lines
            assert "ERROR" not in demo.output and "Traceback" not in demo.output, demo.output
    finally:
        for demo in demos:
            kill_what_is_left(demo)


def test_a_busy_port_and_a_second_demo_on_the_same_data_folder_are_refused(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "server.cli", "demo", "--port", str(port), "--data-dir",
                               str(tmp_path / "d")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2  # a setting to change, as for `floorwatch server` (README)
    assert f"cannot listen on 127.0.0.1:{port}" in done.stdout and "make demo PORT=N" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr and "alembic" not in done.stdout + done.stderr

    lock = (tmp_path / ".d.lock").open("a+")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running demo on that folder holds
    lock.truncate(0)
    lock.write("4242")
    lock.flush()
    try:
        done = subprocess.run([sys.executable, "-m", "server.cli", "demo", "--port", str(free_port()),
                               "--data-dir", str(tmp_path / "d")], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    finally:
        lock.close()
    assert done.returncode == 2
    assert "another demo (pid 4242) is running on" in done.stdout and "--data-dir" in done.stdout


@pytest.mark.parametrize("value", ["abc", "70000"])
def test_a_bad_http_port_variable_is_named(value: str) -> None:
    done = subprocess.run([sys.executable, "-m", "server.cli", "demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "FLOORWATCH_HTTP_PORT": value})
    assert done.returncode == 2
    assert f"FLOORWATCH_HTTP_PORT: {value!r} is not a TCP port" in done.stderr
    assert "Traceback" not in done.stderr


def test_make_demo_passes_port_host_and_scenario_on() -> None:
    # as a user types it: not a sub-make of `make test` (whose MAKEFLAGS would print "Entering directory")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(["make", "-n", "demo", "PORT=8123", "HOST=0.0.0.0", "SCENARIO=fire-drill"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    command = " ".join(done.stdout.replace("\\\n", " ").split())
    assert "floorwatch demo --port 8123 --host 0.0.0.0 --scenario fire-drill" in command
    plain = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert " ".join(plain.stdout.replace("\\\n", " ").split()).endswith("floorwatch demo")


def test_a_demo_on_every_interface_prints_its_lan_address_and_answers_there(tmp_path: Path) -> None:
    from server.demo import lan_address

    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    lan = lan_address()
    require_service(lan is not None and lan != "127.0.0.1", "a network interface other than loopback")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "demo", "--scenario", "none", "--host", "0.0.0.0",
                                "--port", str(port), "--data-dir", str(tmp_path / "lan")], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    demo = Demo(port, tmp_path / "lan", process)
    threading.Thread(target=demo.read, daemon=True).start()
    try:
        assert wait_until(lambda: "no scenario;" in demo.output or process.poll() is not None, 120, 0.2)
        assert f"live page:  http://{lan}:{port}/#token=" in demo.output, demo.output
        assert "anyone on this network who has the link can act as admin" in demo.output
        with urllib.request.urlopen(f"http://{lan}:{port}/api/health", timeout=10) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert "ERROR" not in demo.output and "Traceback" not in demo.output, demo.output
    finally:
        kill_what_is_left(demo)


def test_a_kept_demo_prints_a_token_its_server_accepts(tmp_path: Path) -> None:
    """`--keep` keeps the accounts of the earlier run; the new run's printed link must still sign in (and a
    `floorwatch simulate --token` with it must not stop at its first operator step with a 401)."""
    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    tokens: list[str] = []
    for keep in (False, True):
        port = free_port()
        args = [sys.executable, "-m", "server.cli", "demo", "--scenario", "none", "--port", str(port),
                "--data-dir", str(tmp_path / "kept")] + (["--keep"] if keep else [])
        process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        demo = Demo(port, tmp_path / "kept", process)
        threading.Thread(target=demo.read, daemon=True).start()
        try:
            assert wait_until(lambda d=demo: "no scenario;" in d.output or d.process.poll() is not None, 120, 0.2)
            token = demo.token()
            assert token is not None, demo.output
            tokens.append(token)
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/me",
                                             headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=10) as response:  # a 401 raises HTTPError
                assert json.load(response)["name"] == "admin"
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0, demo.output
        finally:
            kill_what_is_left(demo)
    assert tokens[0] != tokens[1]  # each run prints its own
