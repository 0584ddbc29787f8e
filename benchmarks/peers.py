"""The ceiling and the peer, fed the same messages on the same broker as the server:

- `mosquitto_sub` (C): subscribes QoS 1 and exits after N messages (`-C N`); its rate is the most a
  subscriber of this broker receives on this machine;
- Node-RED from npm (`npm install --prefix benchmarks/.node-red node-red`, never committed): a flow
  mqtt in (QoS 1) -> json -> a threshold switch (power_w of the first reading > 2000 W) -> a counter,
  whose count an `http in` endpoint returns.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from gateway.broker import free_port, wait_listening

HERE = Path(__file__).resolve().parent
NODE_RED_DIR = HERE / ".node-red"
NODE_RED_BIN = NODE_RED_DIR / "node_modules" / ".bin" / "node-red"


def mosquitto_sub_start(port: int, topic: str, count: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    proc = subprocess.Popen([binary, "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-q", "1", "-t", topic,
                             "-C", str(count), "-i", f"bench-sub-{os.getpid()}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.7)  # connect and SUBACK: mosquitto_sub gives no ready signal without its debug output
    return proc


def node_red_available() -> str | None:
    """None when Node-RED is installed, else why not."""
    if not shutil.which("node"):
        return "node is not installed"
    if not NODE_RED_BIN.exists():
        return f"Node-RED is not installed: run `npm install --prefix {NODE_RED_DIR} node-red`"
    return None


def install_node_red(timeout_s: float = 300) -> str | None:
    """Install Node-RED from the npm registry into benchmarks/.node-red; None on success, else why not."""
    if node_red_available() is None:
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    NODE_RED_DIR.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([npm, "install", "--prefix", str(NODE_RED_DIR), "node-red", "--no-audit", "--no-fund"],
                              capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return "npm install node-red timed out"
    if done.returncode != 0:
        return "npm install node-red failed: " + done.stderr.decode(errors="replace")[-300:]
    return node_red_available()


def _flow(broker_port: int, topic: str) -> list[dict[str, object]]:
    counter = (
        "const n = (global.get('n') || 0) + 1; global.set('n', n);"
        "if (msg.hot) { global.set('hot', (global.get('hot') || 0) + 1); }"
        "if (n === 1) { global.set('first', Date.now()); } global.set('last', Date.now()); return null;"
    )
    return [
        {"id": "b0000001", "type": "tab", "label": "bench"},
        {"id": "b0000002", "type": "mqtt-broker", "name": "bench", "broker": "127.0.0.1", "port": str(broker_port),
         "clientid": "bench-node-red", "autoConnect": True, "usetls": False, "protocolVersion": "5",
         "keepalive": "60", "cleansession": True},
        {"id": "b0000003", "type": "mqtt in", "z": "b0000001", "topic": topic, "qos": "1", "datatype": "buffer",
         "broker": "b0000002", "nl": False, "rap": False, "inputs": 0, "wires": [["b0000004"]]},
        {"id": "b0000004", "type": "json", "z": "b0000001", "property": "payload", "action": "obj", "pretty": False,
         "wires": [["b0000005"]]},
        {"id": "b0000005", "type": "switch", "z": "b0000001", "property": "payload.readings[0].metrics.power_w",
         "propertyType": "msg", "rules": [{"t": "gt", "v": "2000", "vt": "num"}, {"t": "else"}],
         "checkall": "false", "outputs": 2, "wires": [["b0000006"], ["b0000007"]]},
        {"id": "b0000006", "type": "change", "z": "b0000001",
         "rules": [{"t": "set", "p": "hot", "pt": "msg", "to": "true", "tot": "bool"}], "wires": [["b0000007"]]},
        {"id": "b0000007", "type": "function", "z": "b0000001", "func": counter, "outputs": 1, "wires": [[]]},
        {"id": "b0000008", "type": "http in", "z": "b0000001", "url": "/count", "method": "get",
         "wires": [["b0000009"]]},
        {"id": "b0000009", "type": "function", "z": "b0000001", "outputs": 1, "wires": [["b000000a"]],
         "func": "msg.payload = {n: global.get('n') || 0, hot: global.get('hot') || 0,"
                 " first: global.get('first') || 0, last: global.get('last') || 0}; return msg;"},
        {"id": "b000000a", "type": "http response", "z": "b0000001", "statusCode": "200", "wires": []},
    ]


class NodeRed:
    def __init__(self, broker_port: int, topic: str, workdir: Path) -> None:
        self.port = free_port()
        self.user_dir = workdir / "node-red-user"
        self.user_dir.mkdir(parents=True, exist_ok=True)
        (self.user_dir / "flows.json").write_text(json.dumps(_flow(broker_port, topic)))
        (self.user_dir / "settings.js").write_text(
            "module.exports = { uiHost: '127.0.0.1', flowFile: 'flows.json', httpAdminRoot: false,"
            " logging: { console: { level: 'warn' } }, editorTheme: { tours: false } };\n")
        log = (workdir / "node-red.log").open("wb")
        self.proc = subprocess.Popen(
            [str(NODE_RED_BIN), "--userDir", str(self.user_dir), "--port", str(self.port),
             "--settings", str(self.user_dir / "settings.js"), str(self.user_dir / "flows.json")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        if not wait_listening("127.0.0.1", self.port, timeout):
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.count()
                time.sleep(1.5)  # the mqtt in node connects and subscribes after the HTTP side is up
                return True
            except OSError:
                time.sleep(0.2)
        return False

    def count(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/count", timeout=5) as resp:
            data: dict[str, int] = json.loads(resp.read())
            return data

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.proc.kill()
