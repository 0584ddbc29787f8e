"""One simulator per floor on a broker (simulators/presence.py), against a real Mosquitto.

A demo's own simulator announces itself; `floorwatch simulate` of the same floor beside it is refused
(before it publishes anything) and says how to run the demo without its simulator. The announcement
goes when its simulator stops cleanly or its connection drops (its Last Will)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.broker import EmbeddedBroker
from gateway.mqtt import Incoming, MqttClient
from simulators import cli, presence
from simulators.transport import MqttTransport
from tests.support.wait import wait_until

pytestmark = pytest.mark.mosquitto


def demo_simulator(broker: EmbeddedBroker) -> MqttTransport:
    """As server/demo.py's player connects for strip-overload."""
    return MqttTransport(broker.client_settings(), client_id="floorwatch-demo-strip-overload",
                         announce=("demo", "strip-overload"))


def test_simulate_beside_a_demos_simulator_is_refused_before_it_publishes(
        mosquitto: EmbeddedBroker, capsys: pytest.CaptureFixture[str]) -> None:
    device_messages: list[str] = []
    watcher = MqttClient(mosquitto.client_settings(), "watch-devices",
                         on_message=lambda m: device_messages.append(m.topic))
    for topic_filter in ("access/#", "zigbee2mqtt/#", "tele/#", "callpoint/#", "+/status/#"):
        watcher.subscribe(topic_filter)
    watcher.start()
    assert watcher.wait_subscribed(10)
    demo = demo_simulator(mosquitto)
    try:
        live = presence.running_on(mosquitto.client_settings(), "demo")
        assert live is not None and live["scenario"] == "strip-overload", live
        code = cli.main(["--scenario", "fire-drill", "--broker", f"127.0.0.1:{mosquitto.port}", "--server",
                         "http://127.0.0.1:9", "--token", "t", "--speed", "0"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "a simulator is already playing strip-overload on floor demo" in err
        assert "floorwatch-demo-strip-overload" in err and "--scenario none" in err
        assert "elec.relay_mismatch" in err and "Traceback" not in err
        assert device_messages == [], "the refused run published nothing"
        # another floor on the same broker is not this one's business
        assert presence.running_on(mosquitto.client_settings(), "other-floor") is None
    finally:
        demo.close()
        watcher.stop()
    assert presence.running_on(mosquitto.client_settings(), "demo") is None, "a clean stop clears it"


def test_a_simulator_that_dies_leaves_no_announcement(mosquitto: EmbeddedBroker) -> None:
    demo = demo_simulator(mosquitto)
    cleared: list[Incoming] = []
    watcher = MqttClient(mosquitto.client_settings(), "watch-presence",
                         on_message=lambda m: cleared.append(m) if not m.payload else None)
    watcher.subscribe(presence.topic("demo"))
    watcher.start()
    try:
        assert watcher.wait_subscribed(10)
        assert presence.running_on(mosquitto.client_settings(), "demo") is not None
        demo.client.kill()  # as a crash: no DISCONNECT, the broker sends the Will at once
        assert wait_until(lambda: bool(cleared), 10), "the Last Will cleared the announcement"
        assert presence.running_on(mosquitto.client_settings(), "demo") is None
    finally:
        watcher.stop()


def test_simulate_on_a_free_floor_announces_itself_while_it_runs_and_clears_it(mosquitto: EmbeddedBroker,
                                                                                tmp_path: Path) -> None:
    seen: list[bytes] = []
    watcher = MqttClient(mosquitto.client_settings(), "watch-presence", on_message=lambda m: seen.append(m.payload))
    watcher.subscribe(presence.topic("demo"))
    watcher.start()
    try:
        assert watcher.wait_subscribed(10)
        code = cli.main(["--scenario", "strip-overload", "--broker", f"127.0.0.1:{mosquitto.port}", "--speed", "0",
                         "--out", str(tmp_path / "log.json")])
        assert code == 0
        assert wait_until(lambda: len(seen) >= 2, 10), seen
    finally:
        watcher.stop()
    assert json.loads(seen[0])["scenario"] == "strip-overload" and seen[-1] == b""
    assert presence.running_on(mosquitto.client_settings(), "demo") is None


def test_of_two_simulators_that_both_found_the_floor_free_only_the_first_to_announce_plays(
        mosquitto: EmbeddedBroker) -> None:
    """Two `floorwatch simulate` started at the same moment both read no announcement before either makes
    one: the broker's order of their announcements decides, the second is refused with who plays, and the
    first keeps its connection and its announcement."""
    settings = mosquitto.client_settings()
    assert presence.running_on(settings, "demo") is None and presence.running_on(settings, "demo") is None
    first = MqttTransport(settings, client_id="floorwatch-sim-strip-overload-1", announce=("demo", "strip-overload"))
    try:
        with pytest.raises(presence.FloorTaken) as refused:
            MqttTransport(settings, client_id="floorwatch-sim-fire-drill-2", announce=("demo", "fire-drill"))
        assert refused.value.live["client_id"] == "floorwatch-sim-strip-overload-1", refused.value.live
        assert first.client.connected
        live = presence.running_on(settings, "demo")
        assert live is not None and live["client_id"] == "floorwatch-sim-strip-overload-1", live
    finally:
        first.close()
    assert presence.running_on(settings, "demo") is None


def test_two_simulate_commands_started_together_one_plays_and_the_other_says_why_not(
        mosquitto: EmbeddedBroker, tmp_path: Path) -> None:
    """The real command twice at once on one broker and floor: never both (their client ids differ, so
    neither takes the other's session over); the refused one exits 2 naming the one that plays."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "simulators", "--scenario", "strip-overload", "--broker",
               f"127.0.0.1:{mosquitto.port}", "--speed", "1"]
    runs = [subprocess.Popen([*command, "--out", str(tmp_path / f"log-{i}.json")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            for i in range(2)]
    try:
        assert wait_until(lambda: any(r.poll() is not None for r in runs), 60), "neither was refused"
        refused = next(r for r in runs if r.poll() is not None)
        playing = next(r for r in runs if r is not refused)
        _, err = refused.communicate(timeout=10)
        assert refused.returncode == 2, err
        assert "a simulator is already playing strip-overload on floor demo" in err and "Traceback" not in err
        assert playing.poll() is None, "the first one plays on"
        live = presence.running_on(mosquitto.client_settings(), "demo")
        assert live is not None and live["pid"] == playing.pid, live
        assert live["client_id"] in err
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
            run.communicate(timeout=10)


def test_a_refused_claim_leaves_no_stale_announcement_when_the_winner_stopped_meanwhile(
        mosquitto: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refused simulator leaves just as the one that plays stops cleanly: whatever the order, nothing
    of either stays behind (a stale announcement, with no Last Will to clear it, refused every later run
    and the demo on that floor until someone cleared the broker's retained message by hand)."""
    settings = mosquitto.client_settings()
    first = MqttTransport(settings, client_id="floorwatch-sim-strip-overload-1", announce=("demo", "strip-overload"))
    original = MqttClient.stop

    def winner_stops_first(self: MqttClient, *args: object, **kwargs: object) -> None:
        if self.client_id == "floorwatch-sim-fire-drill-2":
            first.close()  # the winner's clean stop lands between the loser's look and its leaving
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(MqttClient, "stop", winner_stops_first)
    with pytest.raises(presence.FloorTaken) as refused:
        MqttTransport(settings, client_id="floorwatch-sim-fire-drill-2", announce=("demo", "fire-drill"))
    monkeypatch.undo()
    assert refused.value.live["client_id"] == "floorwatch-sim-strip-overload-1", refused.value.live
    assert presence.running_on(settings, "demo") is None, "no stale announcement locks the floor"
    # and the floor is free for the next run
    after = MqttTransport(settings, client_id="floorwatch-sim-fire-drill-3", announce=("demo", "fire-drill"))
    try:
        live = presence.running_on(settings, "demo")
        assert live is not None and live["client_id"] == "floorwatch-sim-fire-drill-3", live
    finally:
        after.close()
    assert presence.running_on(settings, "demo") is None
