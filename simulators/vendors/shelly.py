"""Shelly Gen2/Gen3 smart plug (Plus Plug S and alike): the Switch component over MQTT.

Sources (Shelly API documentation, Gen2+):
- Switch status object (id, source, output, apower, voltage, freq, current, aenergy{total, by_minute,
  minute_ts}, temperature{tC, tF}) and Switch.Set / Switch.Toggle / Switch.GetStatus:
  https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch
- MQTT: full component status on `<topic_prefix>/status/<component:id>` (status_ntf), RPC channel on
  `<topic_prefix>/rpc`, notifications on `<topic_prefix>/events/rpc` (rpc_ntf), `<topic_prefix>/online`
  true/false (retained, the Last Will gives false):
  https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Mqtt
  https://shelly-api-docs.shelly.cloud/gen2/General/RPCChannels#mqtt
- NotifyStatus frame {src, dst, method, params{ts, "switch:0": {...changed}}}:
  https://shelly-api-docs.shelly.cloud/gen2/General/Notifications
- Request/response frames {id, src, method, params} -> {id, src, dst, result|error}; the device answers on
  `<src>/rpc`: https://shelly-api-docs.shelly.cloud/gen2/General/RPCProtocol
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.vendors.base import Publication, dumps, parse_json_object

# JSON-RPC error codes used by Shelly OS (RPCProtocol page: -103 invalid argument, 404 no handler).
ERR_INVALID_ARGUMENT = -103
ERR_NO_HANDLER = 404


@dataclass(slots=True)
class SwitchState:
    """The measured and commanded state of switch:0."""

    output: bool = True
    apower: float = 0.0
    voltage: float = 220.0
    current: float = 0.0
    freq: float = 50.0
    total_wh: float = 0.0
    by_minute_mwh: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    minute_ts: int = 0
    temp_c: float = 35.0
    source: str = "init"


def status_object(state: SwitchState, switch_id: int = 0) -> dict[str, Any]:
    """The Switch status object, key for key as in the documentation's example."""
    return {
        "id": switch_id,
        "source": state.source,
        "output": state.output,
        "apower": round(state.apower, 1),
        "voltage": round(state.voltage, 1),
        "freq": round(state.freq, 1),
        "current": round(state.current, 3),
        "aenergy": {
            "total": round(state.total_wh, 3),
            "by_minute": [round(v, 3) for v in state.by_minute_mwh],
            "minute_ts": state.minute_ts,
        },
        "temperature": {"tC": round(state.temp_c, 1), "tF": round(state.temp_c * 9 / 5 + 32, 1)},
    }


class ShellyTopics:
    """The topics of one device with MQTT topic_prefix `prefix` (by default the device id)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.status = f"{prefix}/status/switch:0"
        self.events = f"{prefix}/events/rpc"
        self.online = f"{prefix}/online"
        self.rpc = f"{prefix}/rpc"


def encode_status(prefix: str, state: SwitchState) -> Publication:
    return Publication(ShellyTopics(prefix).status, dumps(status_object(state)), qos=1)


def encode_notify_status(prefix: str, state: SwitchState, ts: float, changed: list[str] | None = None) -> Publication:
    """NotifyStatus on `<prefix>/events/rpc`; `changed` limits switch:0 to those keys (the doc allows it)."""
    full = status_object(state)
    body = full if changed is None else {"id": full["id"], **{k: full[k] for k in changed if k in full}}
    frame = {
        "src": prefix,
        "dst": f"{prefix}/events",
        "method": "NotifyStatus",
        "params": {"ts": round(ts, 2), "switch:0": body},
    }
    return Publication(ShellyTopics(prefix).events, dumps(frame), qos=1)


def encode_online(prefix: str, online: bool) -> Publication:
    return Publication(ShellyTopics(prefix).online, b"true" if online else b"false", qos=1, retain=True)


@dataclass(frozen=True, slots=True)
class RpcOutcome:
    """What an RPC request did: the reply to send, and whether the relay changed."""

    reply: Publication | None
    changed: bool


def handle_rpc(prefix: str, state: SwitchState, payload: bytes) -> RpcOutcome:
    """Apply a JSON-RPC request received on `<prefix>/rpc`; the reply goes to `<src>/rpc`."""
    frame = parse_json_object(payload)
    if frame is None or not isinstance(frame.get("src"), str) or "method" not in frame:
        return RpcOutcome(None, False)  # a frame without src cannot be answered; Shelly drops it
    src: str = frame["src"]
    req_id = frame.get("id", 0)
    method = frame.get("method")
    params = frame.get("params") or {}

    def reply(body: dict[str, Any]) -> Publication:
        return Publication(f"{src}/rpc", dumps({"id": req_id, "src": prefix, "dst": src, **body}), qos=1)

    def error(code: int, message: str) -> RpcOutcome:
        return RpcOutcome(reply({"error": {"code": code, "message": message}}), False)

    is_switch = method in ("Switch.Set", "Switch.Toggle", "Switch.GetStatus")
    if is_switch and (not isinstance(params, dict) or params.get("id") != 0):
        return error(ERR_INVALID_ARGUMENT, "id: switch:0 is the only switch")
    if method == "Switch.Set":
        on = params.get("on")
        if not isinstance(on, bool):
            return error(ERR_INVALID_ARGUMENT, "on: boolean required")
        was_on = state.output
        state.output = on
        state.source = "MQTT"
        return RpcOutcome(reply({"result": {"was_on": was_on}}), was_on != on)
    if method == "Switch.Toggle":
        was_on = state.output
        state.output = not was_on
        state.source = "MQTT"
        return RpcOutcome(reply({"result": {"was_on": was_on}}), True)
    if method == "Switch.GetStatus":
        return RpcOutcome(reply({"result": status_object(state)}), False)
    return error(ERR_NO_HANDLER, f"No handler for {method}")


# -- Gen1 (https://shelly-api-docs.shelly.cloud/gen1/#shelly-plug-plugs-mqtt and #mqtt-support) ------------
GEN1_ROOT = "shellies"


def encode_gen1_announce(device_id: str, model: str, mac: str, ip: str,
                         fw_ver: str = "20230913-112003/v1.14.0-gcb84623") -> Publication:
    """`shellies/announce`, sent on connect and in answer to `shellies/command` `announce`."""
    body = {"id": device_id, "model": model, "mac": mac, "ip": ip, "new_fw": False, "fw_ver": fw_ver}
    return Publication(f"{GEN1_ROOT}/announce", dumps(body), qos=1)


def encode_gen1_online(device_id: str, online: bool) -> Publication:
    return Publication(f"{GEN1_ROOT}/{device_id}/online", b"true" if online else b"false", qos=1, retain=True)


def encode_gen1_relay(device_id: str, relay: int, on: bool, power_w: float, energy_wmin: int) -> list[Publication]:
    """Relay state (`on`/`off`), power in W and the energy counter in watt-minutes."""
    base = f"{GEN1_ROOT}/{device_id}/relay/{relay}"
    return [Publication(base, b"on" if on else b"off", qos=1),
            Publication(f"{base}/power", f"{power_w:.2f}".encode(), qos=1),
            Publication(f"{base}/energy", str(energy_wmin).encode(), qos=1)]
