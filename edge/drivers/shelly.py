"""Shelly Gen2/Gen3/Gen4 plugs and relays (Plus Plug S, Plug S Gen3, 1PM, Pro 4PM ...) over MQTT.

Device layer (the `address` is the device's MQTT topic prefix, by default its id such as
`shellyplugsg3-a1b2c3`; `channel` is the switch id, 0 when omitted):

- `<prefix>/status/switch:<n>`   full Switch status ("Generic status update over MQTT" on):
  output, apower (W), voltage (V), current (A), aenergy.total (Wh), temperature.tC
- `<prefix>/events/rpc`          NotifyStatus with the changed part of one or more components
  ("RPC status notifications over MQTT", on by default), also NotifyEvent (ignored)
- `<prefix>/online`              `true` / `false` (the device's Last Will)
- `<prefix>/rpc`                 JSON-RPC requests; the answer goes to `<src>/rpc`

See https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch and
https://shelly-api-docs.shelly.cloud/gen2/General/Notifications .
"""

from __future__ import annotations

import itertools
import json
import logging
from datetime import datetime
from typing import Any, ClassVar

from edge.config import DeviceConfig, Kind, Vendor
from edge.drivers.base import (
    DecodeError,
    Driver,
    Item,
    Metrics,
    boolean,
    event,
    json_object,
    number,
    reading,
    utcnow,
)
from gateway.contract import Action, Command, EventType

log = logging.getLogger(__name__)

_ACTIONS = frozenset({Action.RELAY_OFF, Action.RELAY_ON})
_KINDS = frozenset({Kind.SMART_PLUG, Kind.STRIP_METER})


def switch_metrics(status: dict[str, Any], device: str) -> Metrics:
    """Canonical metrics from a (possibly partial) Switch status object."""
    metrics: Metrics = {}
    if "output" in status:
        metrics["relay_on"] = boolean(status["output"], "output", device)
    for field, metric in (("apower", "power_w"), ("voltage", "voltage_v"), ("current", "current_a"),
                          ("pf", "power_factor")):
        if status.get(field) is not None:
            metrics[metric] = number(status[field], field, device)
    energy = status.get("aenergy")
    if isinstance(energy, dict) and energy.get("total") is not None:
        metrics["energy_wh"] = number(energy["total"], "aenergy.total", device)
    temperature = status.get("temperature")
    if isinstance(temperature, dict) and temperature.get("tC") is not None:
        metrics["device_temp_c"] = number(temperature["tC"], "temperature.tC", device)
    errors = status.get("errors")
    if isinstance(errors, list):
        # Shelly reports "overpower", "overvoltage", "overtemp" here when it protected itself.
        metrics["device_fault"] = bool(errors)
    return metrics


class ShellyDriver(Driver):
    vendor: ClassVar[Vendor] = Vendor.SHELLY

    def __init__(self, devices: Any, *, client_id: str = "floorwatch-edge") -> None:
        super().__init__(devices, client_id=client_id)
        # prefix -> {switch id -> device}
        self._by_prefix: dict[str, dict[int, DeviceConfig]] = {}
        for device in self.devices:
            self._by_prefix.setdefault(device.address, {})[device.channel or 0] = device
        self._rpc_ids = itertools.count(1)

    def topic_filters(self) -> list[str]:
        filters: list[str] = ["+/online"] if self.discover else []
        for prefix, channels in self._by_prefix.items():
            filters += [f"{prefix}/status/switch:{n}" for n in sorted(channels)]
            filters += [f"{prefix}/events/rpc"] if self.discover else [f"{prefix}/events/rpc", f"{prefix}/online"]
        if self._by_prefix:
            filters.append(f"{self.client_id}/rpc")  # answers to our Switch.Set requests
        return filters

    def devices_at(self, topic: str) -> list[str]:
        prefix = topic.split("/", 1)[0]
        return [d.id for d in self._by_prefix.get(prefix, {}).values()]

    def announced(self, topic: str, payload: bytes) -> str | None:
        # A Gen2+ device publishes `<topic prefix>/online` true when it connects (retained).
        prefix, _, rest = topic.partition("/")
        if rest != "online" or prefix in self._by_prefix:
            return None
        return prefix if payload.strip().lower() == b"true" else None

    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        ts = now or utcnow()
        if topic == f"{self.client_id}/rpc":
            return self._decode_rpc_answer(payload)
        prefix, _, rest = topic.partition("/")
        channels = self._by_prefix.get(prefix)
        if channels is None:
            return []
        if rest.startswith("status/switch:"):
            try:
                switch_id = int(rest.removeprefix("status/switch:"))
            except ValueError:
                return []
            device = channels.get(switch_id)
            if device is None:
                return []
            return reading(device.id, ts, switch_metrics(json_object(payload, device.id), device.id))
        if rest == "events/rpc":
            return self._decode_notification(channels, payload, ts)
        if rest == "online":
            text = payload.decode("utf-8", "replace").strip().lower()
            if text not in ("true", "false"):
                first = next(iter(channels.values())).id
                raise DecodeError("online payload is neither true nor false", first)
            kind = EventType.DEVICE_ONLINE if text == "true" else EventType.DEVICE_OFFLINE
            return [event(d.id, ts, kind, detail="shelly online topic") for d in channels.values()]
        return []

    def _decode_notification(
        self, channels: dict[int, DeviceConfig], payload: bytes, ts: datetime
    ) -> list[Item]:
        first = next(iter(channels.values())).id
        frame = json_object(payload, first)
        if frame.get("method") != "NotifyStatus":
            return []  # NotifyEvent, NotifyFullStatus of other components: nothing we measure
        params = frame.get("params")
        if not isinstance(params, dict):
            raise DecodeError("NotifyStatus without params", first)
        items: list[Item] = []
        for switch_id, device in channels.items():
            status = params.get(f"switch:{switch_id}")
            if isinstance(status, dict):
                items += reading(device.id, ts, switch_metrics(status, device.id))
        return items

    def _decode_rpc_answer(self, payload: bytes) -> list[Item]:
        frame = json_object(payload, None)
        if isinstance(frame.get("error"), dict):
            # The state report that follows (or its absence) decides the command's result.
            log.warning("Shelly %s refused an RPC request: %s", frame.get("src"),
                        frame["error"].get("message"))
        return []

    def encode(self, command: Command) -> tuple[str, bytes]:
        device = self._target(command, _KINDS, _ACTIONS)
        request = {
            "id": next(self._rpc_ids),
            "src": self.client_id,
            "method": "Switch.Set",
            "params": {"id": device.channel or 0, "on": command.action is Action.RELAY_ON},
        }
        return f"{device.address}/rpc", json.dumps(request).encode()
