"""Signed commands (issue #9, security item 2): the edge executes only commands signed with its key,
whatever the broker lets through.

The uplink here is deliberately the *misconfigured* broker: the embedded Mosquitto with anonymous
access, where anyone may publish on `.../commands` (tests/security/test_commands.py shows the ACL
stopping forgers; these show the edge stopping them by itself). Real Mosquitto brokers (uplink and
floor), the real EdgeAgent, a simulated Shelly plug that switches when told, and, end to end, the real
server process signing what it publishes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.config import ConfigError, parse_config
from gateway import contract, signing
from gateway.broker import EmbeddedBroker
from gateway.contract import Action, Channel, Command, CommandResult
from gateway.mqtt import Incoming, MqttClient
from server.adapters.command_keys import command_signer
from server.cli import main as floorwatch
from tests.edge.conftest import EDGE, SITE, Collector, Devices, edge_config
from tests.support.server import ServerProcess
from tests.support.wait import wait_until

pytestmark = pytest.mark.mosquitto

PLUG, PLUG_RPC = "plug-f3-s001", "shellyplugsg3-a1b2c3/rpc"
PLUG2, PLUG2_RPC = "plug-f3-s002", "shellyplugsg3-d4e5f6/rpc"
COMMANDS = contract.edge_topic(SITE, EDGE, Channel.COMMANDS)


@dataclass
class Keys:
    current: bytes
    previous: bytes
    other_edge: bytes
    """edge-f4's key: valid for that edge, not for this one."""
    current_file: Path
    previous_file: Path


def write_key(path: Path, key: bytes) -> Path:
    path.write_text(signing.format_key(key), encoding="ascii")
    path.chmod(0o600)
    return path


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    current, previous, other = (secrets.token_bytes(32) for _ in range(3))
    return Keys(current, previous, other, write_key(tmp_path / "edge-f3.key", current),
                write_key(tmp_path / "edge-f3.previous.key", previous))


def command(cid: str, *, key: bytes | None = None, device: str = PLUG, action: Action = Action.RELAY_OFF,
            ttl_s: float = 30) -> Command:
    now = datetime.now(UTC)
    cmd = Command(id=cid, device=device, action=action, reason="test", issued_at=now,
                  expires_at=now + timedelta(seconds=ttl_s))
    return signing.signed(cmd, key) if key is not None else cmd


def shelly(devices: Devices, address: str) -> None:
    """A Shelly plug on the floor broker: does what it is told and reports its switch state."""
    def on_rpc(request: bytes) -> None:
        on = json.loads(request)["params"]["on"]
        status = {"id": 0, "output": on, "apower": 0.0, "voltage": 221.0, "current": 0.0}
        devices.publish(f"{address}/status/switch:0", json.dumps(status))

    devices.listen(f"{address}/rpc", on_rpc)


@dataclass
class Floor:
    collector: Collector
    """The server's side of the uplink: the edge's command results."""
    stranger: MqttClient
    """Anyone on the anonymous broker: publishes whatever it likes on the edge's command topic."""
    devices: Devices
    keys: Keys

    def results(self, cid: str) -> list[contract.CommandResult]:
        with self.collector.lock:
            return [r for r in self.collector.results if r.id == cid]

    def result(self, cid: str, timeout: float = 10) -> contract.CommandResult:
        assert wait_until(lambda: self.results(cid), timeout), f"no result for {cid}"
        return self.results(cid)[0]

    def rpcs(self) -> int:
        return len(self.devices.on(PLUG_RPC)) + len(self.devices.on(PLUG2_RPC))

    def settle(self, *commands: Command, via: MqttClient | None = None) -> None:
        """Publish, then a signed marker; return once the marker is answered (the edge handles its
        inbox in order, so everything before it has been handled by then)."""
        for cmd in commands:
            (via or self.stranger).publish_payload(COMMANDS, cmd)
        marker = command(f"marker-{secrets.token_hex(4)}", key=self.keys.current, action=Action.RELAY_ON)
        self.collector.client.publish_payload(COMMANDS, marker)
        assert self.result(marker.id, 15).ok


@pytest.fixture
def signed_floor(mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, keys: Keys,
                 tmp_path: Path) -> Iterator[tuple[Floor, EdgeAgent]]:
    shelly(devices, "shellyplugsg3-a1b2c3")
    shelly(devices, "shellyplugsg3-d4e5f6")
    collector = Collector(mosquitto.client_settings(), "signed-server")
    stranger = MqttClient(mosquitto.client_settings(), "stranger")
    stranger.start()
    assert stranger.wait_connected(10)
    agent = EdgeAgent(edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                                  commands={"confirm_timeout_s": 2, "key_file": str(keys.current_file),
                                            "previous_key_file": str(keys.previous_file)}))
    agent.start()
    assert agent.uplink is not None and agent.uplink.wait_connected(10)
    assert agent.floor is not None and agent.floor.wait_connected(10) and agent.floor.wait_subscribed(10)
    floor_ = Floor(collector, stranger, devices, keys)
    probe = command("probe-0", key=keys.current, action=Action.RELAY_ON)  # the subscription is in place
    assert wait_until(lambda: collector.client.publish_payload(COMMANDS, probe) is not None
                      and floor_.results("probe-0"), 15), "the edge never answered a signed probe"
    yield floor_, agent
    agent.stop(drain_s=0.5)
    stranger.stop()
    collector.stop()


def test_a_signed_command_runs_and_a_signed_replay_is_refused_by_id(
        signed_floor: tuple[Floor, EdgeAgent]) -> None:
    floor, _ = signed_floor
    before = floor.rpcs()
    signed = command("c-signed", key=floor.keys.current)
    floor.settle(signed, via=floor.collector.client)
    result = floor.result("c-signed")
    assert (result.ok, result.error, result.reported and result.reported["relay_on"]) == (True, None, False)
    assert floor.rpcs() == before + 2  # the command and the marker
    # The same signed bytes again (a recorded command replayed): the signature is valid, the id is spent.
    runs = floor.rpcs()
    floor.settle(signed, signed)
    assert len(floor.results("c-signed")) == 1
    assert floor.rpcs() == runs + 1  # only the marker


def test_the_previous_key_is_accepted_during_a_rotation(signed_floor: tuple[Floor, EdgeAgent]) -> None:
    floor, _ = signed_floor
    before = floor.rpcs()
    floor.settle(command("c-old-key", key=floor.keys.previous))
    assert floor.result("c-old-key").ok
    assert floor.rpcs() == before + 2


def test_unsigned_wrong_key_other_edge_and_tampered_commands_are_refused_and_never_run(
        signed_floor: tuple[Floor, EdgeAgent], caplog: pytest.LogCaptureFixture) -> None:
    floor, _ = signed_floor
    keys = floor.keys
    on_plug2 = command("x", key=keys.current, device=PLUG2, action=Action.RELAY_ON)
    forged = {
        "f-unsigned": command("f-unsigned"),
        "f-stranger-key": command("f-stranger-key", key=secrets.token_bytes(32)),
        "f-other-edge": command("f-other-edge", key=keys.other_edge),
        # Signed for PLUG, then pointed at the essential plug: a valid signature over other fields.
        "f-device": command("f-device", key=keys.current).model_copy(update={"device": PLUG2}),
        # Signed as a restore, turned into a cut.
        "f-action": command("f-action", key=keys.current, action=Action.RELAY_ON).model_copy(
            update={"action": Action.RELAY_OFF}),
        "f-expiry": command("f-expiry", key=keys.current).model_copy(
            update={"expires_at": datetime.now(UTC) + timedelta(days=365)}),
        "f-malformed": command("f-malformed").model_copy(update={"sig": "v1:" + "0" * 64}),
        "f-moved-sig": command("f-moved-sig", device=PLUG2, action=Action.RELAY_ON).model_copy(
            update={"sig": on_plug2.sig}),
    }
    before = floor.rpcs()
    with caplog.at_level(logging.DEBUG):
        floor.settle(*forged.values())
        for cid in forged:
            result = floor.result(cid)
            assert (result.ok, result.error) == (False, "bad_signature"), cid
        assert floor.rpcs() == before + 1, "a refused command reached a plug (only the marker may)"
        # Each refusal is logged with the command and the key id it named, never with a key.
        refusals = [r.getMessage() for r in caplog.records if "bad signature" in r.getMessage()]
        assert sorted(m.split()[2] for m in refusals) == sorted(forged)
        assert any(signing.key_id(keys.other_edge) in m for m in refusals)
        everything = "\n".join(r.getMessage() for r in caplog.records)
        for key in (keys.current, keys.previous, keys.other_edge):
            assert key.hex() not in everything
    # A refused command changed nothing on the edge, not even its replay ledger: the server's real
    # command with a forged message's id still runs.
    floor.settle(command("f-unsigned", key=keys.current), via=floor.collector.client)
    assert [r.ok for r in floor.results("f-unsigned")] == [False, True]


def test_a_signed_command_past_its_expiry_is_still_refused_as_expired(signed_floor: tuple[Floor, EdgeAgent]) -> None:
    floor, _ = signed_floor
    before = floor.rpcs()
    floor.settle(command("c-late", key=floor.keys.current, ttl_s=-1), via=floor.collector.client)
    assert (floor.result("c-late").ok, floor.result("c-late").error) == (False, "expired")
    assert floor.rpcs() == before + 1


def test_without_a_key_commands_run_unsigned_and_the_edge_says_so_once(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    shelly(devices, "shellyplugsg3-a1b2c3")
    collector = Collector(mosquitto.client_settings(), "unsigned-server")
    with caplog.at_level(logging.INFO, logger="edge.agent"):
        agent = EdgeAgent(edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite"))
        agent.start()
        try:
            assert agent.uplink is not None and agent.uplink.wait_connected(10)
            # the plug's confirmation arrives on a floor topic: the edge must have its SUBACK first
            assert agent.floor is not None and agent.floor.wait_connected(10) and agent.floor.wait_subscribed(10)
            probe = command("u-1")  # unsigned: the embedded demo's commands
            assert wait_until(lambda: collector.client.publish_payload(COMMANDS, probe) is not None
                              and any(r.id == "u-1" for r in collector.results), 15)
            [result] = [r for r in collector.results if r.id == "u-1"]
            assert result.ok and devices.on(PLUG_RPC)
        finally:
            agent.stop(drain_s=0.5)
            collector.stop()
    assert sum("commands are unsigned" in m for m in caplog.messages) == 1


# -- configuration and the keys command (no services) -------------------------------------------------


def test_a_configured_key_that_cannot_be_used_stops_the_edge_from_starting(tmp_path: Path) -> None:
    base = "site: hq\nedge: edge-f3\ncommands: {%s}\n"
    with pytest.raises(ConfigError, match="previous_key_file needs key_file"):
        parse_config(base % "previous_key_file: old.key", base_dir=tmp_path)
    missing = parse_config(base % "key_file: keys/edge-f3.key", base_dir=tmp_path)
    assert missing.commands.key_file == tmp_path / "keys" / "edge-f3.key"  # relative to the config file
    with pytest.raises(ConfigError, match="cannot read"):
        EdgeAgent(missing)
    (tmp_path / "keys").mkdir()
    write_key(tmp_path / "keys" / "edge-f3.key", b"\x01" * 16)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        EdgeAgent(missing)


def test_a_key_file_others_can_read_is_warned_about_without_its_content(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = secrets.token_bytes(32)
    path = write_key(tmp_path / "edge-f3.key", key)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="edge.commands"):
        agent = EdgeAgent(parse_config(f"site: hq\nedge: edge-f3\ncommands: {{key_file: {path}}}\n"))
    assert agent.command_keys == [key]
    assert any("readable by others" in m and "644" in m for m in caplog.messages)
    assert key.hex() not in "\n".join(caplog.messages)


def test_floorwatch_keys_writes_one_private_key_per_edge_and_keeps_existing_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keys"
    assert floorwatch(["keys", "--edge", "edge-f3", "--edge", "edge-f4", "--out", str(out)]) == 0
    first = {e: signing.parse_key((out / f"{e}.key").read_text()) for e in ("edge-f3", "edge-f4")}
    assert first["edge-f3"] != first["edge-f4"] and all(len(k) == 32 for k in first.values())
    assert {stat.S_IMODE(os.stat(out / f"{e}.key").st_mode) for e in first} == {0o600}
    assert floorwatch(["keys", "--edge", "edge-f3", "--out", str(out)]) == 0
    assert signing.parse_key((out / "edge-f3.key").read_text()) == first["edge-f3"]  # kept
    assert floorwatch(["keys", "--edge", "edge-f3", "--out", str(out), "--force"]) == 0
    assert signing.parse_key((out / "edge-f3.key").read_text()) != first["edge-f3"]  # rotated
    printed = capsys.readouterr().out
    assert signing.key_id(first["edge-f3"]) in printed
    assert all(k.hex() not in printed for k in first.values())
    assert floorwatch(["keys", "--edge", "Bad/Edge", "--out", str(out)]) == 2


def test_the_server_signs_with_each_edges_own_key_and_says_when_it_cannot(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f3, f4 = secrets.token_bytes(32), secrets.token_bytes(32)
    write_key(tmp_path / "edge-f3.key", f3)
    write_key(tmp_path / "edge-f4.key", f4)
    (tmp_path / "edge-f5.key").write_text("too short\n")
    with caplog.at_level(logging.WARNING, logger="server.adapters.command_keys"):
        assert command_signer(None) is None
        sign = command_signer(tmp_path)
        assert sign is not None
        for_f3, for_f4 = sign("edge-f3", command("s-1")), sign("edge-f4", command("s-1"))
        assert signing.verify(for_f3, f3) and not signing.verify(for_f3, f4) and signing.verify(for_f4, f4)
        assert sign("edge-f5", command("s-2")).sig is None  # unusable key: unsigned, and said
        assert sign("edge-f6", command("s-3")).sig is None  # no key at all
    assert sum("published unsigned" in m for m in caplog.messages) == 1
    assert [m.split()[1] for m in caplog.messages if "goes out unsigned" in m] == ["s-2", "s-3"]
    assert all(k.hex() not in m for k in (f3, f4) for m in caplog.messages)


# -- end to end: the real server signs, the real edge runs -------------------------------------------

E2E_SITE = """
site: {id: sg, name: Signed floor, timezone: Asia/Shanghai}
floors: [{id: f1, name: 1F}]
zones:
  - {id: z1, name: Zone 1, floor: f1, kind: office, polygon: [[0, 0], [10, 0], [10, 10], [0, 10]]}
devices:
  - {id: plug-z1-01, kind: smart_plug, zone: z1, edge: edge-sg, rated_a: 10, cuttable: true}
"""


def test_the_servers_commands_arrive_signed_and_run_and_its_key_rotates_without_a_restart(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, tmp_path: Path) -> None:
    """The real server process (FLOORWATCH_COMMAND_KEYS_DIR) cuts and restores a plug through the API;
    the edge holds the new key as current and the old one as previous, as mid-rotation. The server's
    key file is replaced while it runs: old key -> new key (both accepted) -> a key the edge does not
    hold (refused, the plug untouched)."""
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    server_keys = tmp_path / "server-keys"
    server_keys.mkdir()
    write_key(server_keys / "edge-sg.key", old)
    edge_keys = tmp_path / "edge"
    edge_keys.mkdir()
    write_key(edge_keys / "current.key", new)
    write_key(edge_keys / "previous.key", old)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(E2E_SITE, encoding="utf-8")

    shelly(devices, "shelly-z1-01")
    wire: list[Command] = []

    answers: list[CommandResult] = []

    def spy(message: Incoming) -> None:  # what the server and the edge really published
        if message.topic.endswith(Channel.COMMANDS.value):
            wire.append(contract.decode_payload(Command, message.payload))
        else:
            answers.append(contract.decode_payload(CommandResult, message.payload))

    watcher = MqttClient(mosquitto.client_settings(), "command-spy", on_message=spy)
    watcher.subscribe(contract.edge_topic("sg", "edge-sg", Channel.COMMANDS), 1)
    watcher.subscribe(contract.edge_topic("sg", "edge-sg", Channel.COMMAND_RESULT), 1)
    watcher.start()
    assert watcher.wait_connected(10)
    up = mosquitto.client_settings().model_dump(mode="json", exclude_none=True)
    flr = floor.client_settings().model_dump(mode="json", exclude_none=True)
    agent = EdgeAgent(parse_config(json.dumps({
        "site": "sg", "edge": "edge-sg", "uplink": up, "floor_broker": flr,
        "buffer": {"path": str(tmp_path / "edge.sqlite")},
        "commands": {"confirm_timeout_s": 3, "key_file": "edge/current.key", "previous_key_file": "edge/previous.key"},
        "devices": [{"id": "plug-z1-01", "kind": "smart_plug", "zone": "z1", "vendor": "shelly",
                     "address": "shelly-z1-01", "rated_a": 10, "cuttable": True}],
    }), base_dir=tmp_path))
    server = ServerProcess(mosquitto.client_settings(), tmp_path / "server", site_file,
                           env={"FLOORWATCH_COMMAND_KEYS_DIR": str(server_keys)})
    agent.start()
    try:
        started = server.start()
        print(f"server up in {started:.1f} s")

        def relay(on: bool) -> tuple[dict[str, object], float]:
            sent = time.monotonic()
            body = server.api.post("/api/devices/plug-z1-01/relay", json={"on": on, "reason": "signed e2e"})
            assert body.status_code == 202, body.text
            cid = body.json()["id"]

            def row() -> dict[str, object] | None:
                rows = server.api.get("/api/devices/plug-z1-01/commands").json()
                done = [r for r in rows if r["id"] == cid and r["status"] != "sent"]
                return done[0] if done else None

            assert wait_until(row, 20), f"no result for {cid}"
            return row() or {}, time.monotonic() - sent

        assert devices.on("shelly-z1-01/rpc") == []
        cut, t_cut = relay(False)  # signed with the old key: accepted as the edge's previous key
        assert (cut["status"], cut["error"]) == ("ok", None)
        assert [json.loads(p)["params"]["on"] for p in devices.on("shelly-z1-01/rpc")] == [False]
        write_key(server_keys / "edge-sg.key", new)  # rotation, no restart
        restore, t_restore = relay(True)
        assert (restore["status"], restore["error"]) == ("ok", None)
        assert [json.loads(p)["params"]["on"] for p in devices.on("shelly-z1-01/rpc")] == [False, True]
        # Forged answers on the edge's result topic (this broker lets anyone publish): unsigned, and
        # signed with a key the server does not hold. Neither may mark the restore as failed.
        forger = MqttClient(mosquitto.client_settings(), "result-forger")
        forger.start()
        assert forger.wait_connected(10)
        result_topic = contract.edge_topic("sg", "edge-sg", Channel.COMMAND_RESULT)
        forged = CommandResult(id=str(restore["id"]), ok=False, ts=datetime.now(UTC), error="forged",
                               device="plug-z1-01")
        forger.publish_payload(result_topic, forged)
        forger.publish_payload(result_topic, signing.signed(forged, secrets.token_bytes(32)))
        log_file = tmp_path / "server" / "server.log"
        assert wait_until(lambda: log_file.read_text(errors="replace").count("not recorded") >= 2, 20)
        forger.stop()
        rows = server.api.get("/api/devices/plug-z1-01/commands").json()
        assert [(r["status"], r["error"]) for r in rows if r["id"] == restore["id"]] == [("ok", None)]

        write_key(server_keys / "edge-sg.key", secrets.token_bytes(32))  # a key this edge does not hold
        sent = time.monotonic()
        body = server.api.post("/api/devices/plug-z1-01/relay", json={"on": False, "reason": "signed e2e"})
        assert body.status_code == 202, body.text
        cid = body.json()["id"]
        # The edge refuses it, answering with its own signature; the server, holding another key, cannot
        # believe that answer either: the command stays unconfirmed, the plug untouched.
        assert wait_until(lambda: [a for a in answers if a.id == cid], 20), "the edge never answered"
        t_refused = time.monotonic() - sent
        [answer] = [a for a in answers if a.id == cid]
        assert (answer.ok, answer.error) == (False, "bad_signature") and signing.verify(answer, new)
        assert wait_until(lambda: log_file.read_text(errors="replace").count("not recorded") >= 3, 20)
        rows = server.api.get("/api/devices/plug-z1-01/commands").json()
        assert [r["status"] for r in rows if r["id"] == cid] == ["sent"]
        assert len(devices.on("shelly-z1-01/rpc")) == 2, "a command with a foreign signature reached the plug"
        edge_answers = [a for a in answers if a.error != "forged"]
        assert len(edge_answers) == 3, edge_answers
        assert all(signing.verify(a, new) or signing.verify(a, old) for a in edge_answers), "every answer signed"

        assert wait_until(lambda: len(wire) == 3, 10)
        assert [signing.signature_key_id(c.sig) for c in wire[:2]] == [signing.key_id(old), signing.key_id(new)]
        assert signing.verify(wire[0], old) and signing.verify(wire[1], new)
        print(f"API call to edge result: cut {t_cut:.2f} s, restore {t_restore:.2f} s, refusal {t_refused:.2f} s")
        log = (tmp_path / "server" / "server.log").read_text(errors="replace")
        assert old.hex() not in log and new.hex() not in log
    finally:
        agent.stop(drain_s=0.5)
        server.stop()
        watcher.stop()
