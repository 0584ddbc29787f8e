"""Three Tasmota plugs and a Tasmota DS18B20 probe on a floor broker, as the walk-through of
docs/devices.md finds them: each keeps its retained LWT `Online`, answers `Status` and `Status 8` on the
default GroupTopic (`cmnd/tasmotas/Status`) as the firmware does, and sends `tele/<topic>/SENSOR`
every `period_s` (its TelePeriod). The payloads are simulators/vendors/tasmota.py's."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.mqtt import Incoming, MqttClient, MqttSettings
from simulators.vendors import tasmota
from simulators.vendors.base import Publication

LOCAL = ZoneInfo("Asia/Shanghai")  # Tasmota prints local time without an offset
PLUGS = {"tasmota_7C2E4F": ("Desk 12 plug", 38.0), "tasmota_7C2E50": ("Desk 13 plug", 61.0),
         "tasmota_7C2E51": ("Printer plug", 5.0)}
"""Tasmota topic -> (DeviceName, watts drawn)."""
PROBE = "tasmota_5D1A20"
PROBE_ID = "3C01D0756611"
PROBE_NAME = "Cabinet probe"


@dataclass
class TasmotaFloor:
    settings: MqttSettings
    period_s: float = 1.0
    sent: int = 0
    """SENSOR messages published (every one at QoS 1)."""
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sensors(self) -> list[Publication]:
        now = datetime.now(LOCAL)
        out = []
        for topic, (_, watts) in PLUGS.items():
            state = tasmota.TasmotaState(channels=[tasmota.ChannelEnergy(power_w=watts, current_a=watts / 220)])
            out.append(tasmota.encode_sensor(topic, state, now))
        out.append(tasmota.encode_probe_sensor(PROBE, {"DS18B20": (PROBE_ID, 24.5)}, now))
        return out

    def _answer(self, message: Incoming) -> None:
        if message.topic != "cmnd/tasmotas/Status":
            return
        sensors = {p.topic.split("/")[1]: p for p in self._sensors()}
        names = {**{t: n for t, (n, _) in PLUGS.items()}, PROBE: PROBE_NAME}
        for topic, name in names.items():
            answer = (tasmota.encode_status(topic, name) if message.payload.strip() == b""
                      else tasmota.encode_status8(topic, sensors[topic]) if message.payload.strip() == b"8" else None)
            if answer is not None:
                self.client.publish(answer.topic, answer.payload, 1, False)

    def start(self) -> TasmotaFloor:
        self.client = MqttClient(self.settings, "sim-tasmota-floor", on_message=self._answer)
        self.client.subscribe("cmnd/tasmotas/Status", 1)
        self.client.start()
        if not self.client.wait_connected(10):
            raise AssertionError("the simulated Tasmota devices cannot reach the floor broker")
        # A `Status` the broker routes before it granted this subscription is never answered.
        if not self.client.wait_subscribed(10):
            raise AssertionError("the simulated Tasmota devices' SUBACK for cmnd/tasmotas/Status")
        for topic in [*PLUGS, PROBE]:
            lwt = tasmota.encode_lwt(topic, True)
            self.client.publish(lwt.topic, lwt.payload, 1, True)
        self.thread = threading.Thread(target=self._run, name="tasmota-floor", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            for item in self._sensors():
                self.client.publish(item.topic, item.payload, 1, False)
                self.sent += 1

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)
        self.client.stop()
