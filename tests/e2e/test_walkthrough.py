"""docs/devices.md's walk-through, followed command by command: three simulated Tasmota plugs and a DS18B20
probe announce themselves on a real Mosquitto (the floor broker); the documented commands run as
subprocesses in an empty folder, exactly as written except the three port numbers (1883 the floor
broker, 1884 the server's broker, 8000 the server's HTTP), which become free ones. Each output the page
shows is compared with the real one; the documented files are written as shown; and at the end the
server's API lists the four devices online with their readings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.broker import EmbeddedBroker, free_port
from tests.e2e.tasmota_floor import PLUGS, PROBE, TasmotaFloor
from tests.support.wait import wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "devices.md"
HEADING = "## Walk-through: three Tasmota plugs and a probe"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Block:
    lang: str
    text: str


def walkthrough() -> list[Block]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(HEADING)
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else None]
    return [Block(m[1], m[2]) for m in re.finditer(r"^```(\w+)\n(.*?)^```$", section, re.S | re.M)]


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:  # the documented `&` commands: stopped as a service manager would
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_walkthrough_takes_four_tasmota_devices_to_monitored(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, tmp_path: Path,
        background: list[subprocess.Popen[bytes]]) -> None:
    ports = {"1883": str(floor.port), "1884": str(mosquitto.port), "8000": str(free_port())}

    def local(text: str) -> str:
        return re.sub(r"\b(1883|1884|8000)\b", lambda m: ports[m[1]], text)

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("FLOORWATCH_")}
    devices = TasmotaFloor(floor.client_settings()).start()
    blocks = walkthrough()
    assert [b.lang for b in blocks].count("sh") == 6, "the walk-through's commands changed: update this test"
    ran: list[str] = []
    api_answer: list[dict[str, Any]] = []
    try:
        for index, block in enumerate(blocks):
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if block.lang == "yaml":
                name = block.text.partition("\n")[0]
                assert name.startswith("# "), f"a documented file starts with '# <name>': {name!r}"
                (tmp_path / name[2:].strip()).write_text(local(block.text), encoding="utf-8")
                continue
            if block.lang != "sh":
                continue
            for line in block.text.strip().splitlines():
                command = local(line)
                ran.append(line)
                if line.startswith("export "):
                    for assignment in command.removeprefix("export ").split():
                        key, _, value = assignment.partition("=")
                        env[key] = value
                elif line.endswith("&"):
                    log = (tmp_path / f"background-{len(background)}.log").open("wb")
                    background.append(subprocess.Popen(["bash", "-c", f"exec {command.removesuffix('&').strip()}"],
                                                       cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT))
                elif line.startswith("curl "):
                    api_answer = see_them_live(command, tmp_path, env, background)
                    adopted_all(env)
                else:
                    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                                          text=True, timeout=180)
                    shown = done.stdout if done.returncode == 0 else done.stderr
                    assert following is not None and following.lang == "text", f"no documented output for {line}"
                    assert shown.strip() == local(following.text).strip(), (line, done.returncode, done.stderr)
                    assert done.returncode == (2 if "site-draft" in line else 0), (line, done.stderr)
    finally:
        devices.stop()
    assert ran[0].startswith("floorwatch edge discover") and any(r.startswith("curl ") for r in ran)

    # The adopted files hold the drafted entries (id, kind, vendor, address, sensor), zones set by hand.
    draft = yaml.safe_load((tmp_path / "drafts" / "edge-draft.yaml").read_text())
    adopted = {d["id"]: d for d in yaml.safe_load((tmp_path / "edge-f3.yaml").read_text())["devices"]}
    assert set(adopted) == {d["id"] for d in draft["devices"]}
    for entry in draft["devices"]:
        assert {k: v for k, v in entry.items() if k != "zone"}.items() <= adopted[entry["id"]].items()

    # Step 6's documented answer (abridged) against the real one: the same four devices, online, reading.
    documented = json.loads(next(b.text for b in blocks if b.lang == "json"))
    real = {d["id"]: d for d in api_answer}
    assert set(real) == {d["id"] for d in documented} and len(real) == len(PLUGS) + 1
    for device in documented:
        got = real[device["id"]]
        assert {k: got[k] for k in ("kind", "zone", "edge", "online")} == {
            k: device[k] for k in ("kind", "zone", "edge", "online")}
        for metric, value in device["metrics"].items():
            assert got["metrics"][metric] == pytest.approx(value, abs=0.01), (device["id"], metric)
    assert PROBE.lower() in next(iter(k for k in real if "-" in k))
    assert devices.sent > 0


def adopted_all(env: dict[str, str]) -> None:
    """Nothing left over: no unknown device on the floor (the probe box's own LWT is the adopted probe's
    address), no payload the edge could not decode, nothing lost or invalid on the way."""
    api = httpx.Client(base_url=f"http://127.0.0.1:{env['FLOORWATCH_HTTP_PORT']}", timeout=10,
                       headers={"Authorization": f"Bearer {env['FLOORWATCH_ADMIN_TOKEN']}"})
    with api:
        assert api.get("/api/unknown-devices").json() == []
        ingest = api.get("/api/health").json()["ingest"]
        assert ingest["readings"] > 0
        assert {k: ingest[k] for k in ("invalid", "unknown_devices", "lost", "edge_decode_errors")} == {
            "invalid": 0, "unknown_devices": 0, "lost": 0, "edge_decode_errors": 0}
        assert [a["rule"] for a in api.get("/api/alarms?state=open").json()] == []


def see_them_live(command: str, cwd: Path, env: dict[str, str],
                  background: list[subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    """Run the documented curl until the server answers with every device reporting (the server and the
    edge were started in the background a moment ago; under load they take a while)."""
    def answer() -> list[dict[str, Any]] | None:
        for process in background:
            assert process.poll() is None, f"{process.args} exited with {process.returncode}; see {cwd}/*.log"
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=30)
        try:
            body = json.loads(done.stdout)
        except ValueError:
            return None  # not up yet
        reporting = isinstance(body, list) and len(body) == 4 and all(d["online"] and d["metrics"] for d in body)
        return body if reporting else None

    body = wait_until(answer, timeout=120, step=0.5)
    assert body, f"the four devices never all reported; see {cwd}/*.log"
    return list(body)
