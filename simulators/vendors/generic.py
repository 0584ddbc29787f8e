"""Floorwatch's generic JSON profile (v1) for devices with no common standard: door access controllers,
machine-room probes and manual call points (contract-v1.md §2: "a documented generic JSON profile of ours").

Written from the profile's documentation, edge/drivers/GENERIC_PROFILE.md (not from the edge's decoder):
- `access/<name>/event`  (QoS 1, never retained)  {"type":"badge","result":"granted|denied","badge",
                          "direction":"in|out","reason" (denied only)} | {"type":"door_forced"} |
                          {"type":"door_held_open","held_s"} | {"type":"request_to_exit"} | {"type":"tamper"}
- `access/<name>/state`  (retained)  {"door":"open|closed","lock":"locked|unlocked"}; after every change and
                          at least every reporting interval
- `access/<name>/cmd`    (from the edge)  {"id","action":"release|secure","reason"}: release holds the door
                          unlocked until secure; the controller confirms by publishing its state
- `<root>/<name>/availability` (retained)  online / offline (the adapter's MQTT Will is offline)
- `probe/<name>/state`   (retained)  any of temperature_c, humidity_pct, co_ppm, smoke_obscuration_pct,
                          battery_pct, water_leak, smoke, tamper, battery_low, detector_fault
- `callpoint/<name>/state` (retained)  {"activated": bool}
The profile says a `ts` field is ignored by the edge; the simulated adapter sends one anyway (RFC 3339 UTC
with milliseconds) so that captures read well. The simulator brief's first draft used shorter names
(`forced`, `held_open`, `rex`; `temperature`, `humidity`, `leak`): `LEGACY_EVENT_NAMES` maps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from simulators.vendors.base import Publication, dumps, parse_json_object, rfc3339_ms

Direction = Literal["in", "out"]
Result = Literal["granted", "denied"]
DoorEvent = Literal["door_forced", "door_held_open", "request_to_exit", "tamper"]
LEGACY_EVENT_NAMES: dict[str, DoorEvent] = {
    "forced": "door_forced",
    "held_open": "door_held_open",
    "rex": "request_to_exit",
}


def event_topic(controller: str) -> str:
    return f"access/{controller}/event"


def state_topic(controller: str) -> str:
    return f"access/{controller}/state"


def command_topic(controller: str) -> str:
    return f"access/{controller}/cmd"


def probe_topic(name: str) -> str:
    return f"probe/{name}/state"


def callpoint_topic(name: str) -> str:
    return f"callpoint/{name}/state"


def availability_topic(root: str, name: str) -> str:
    return f"{root}/{name}/availability"


@dataclass(slots=True)
class DoorState:
    door_open: bool = False
    locked: bool = True


def encode_badge(
    controller: str, when: datetime, badge: str, result: Result, direction: Direction, reason: str | None = None
) -> Publication:
    body: dict[str, Any] = {
        "ts": rfc3339_ms(when),
        "type": "badge",
        "badge": badge,
        "result": result,
        "direction": direction,
    }
    if result == "denied" and reason:
        body["reason"] = reason
    return Publication(event_topic(controller), dumps(body), qos=1)


def encode_door_event(controller: str, when: datetime, kind: DoorEvent, held_s: float | None = None) -> Publication:
    body: dict[str, Any] = {"ts": rfc3339_ms(when), "type": kind}
    if held_s is not None:
        body["held_s"] = round(held_s)
    return Publication(event_topic(controller), dumps(body), qos=1)


def encode_door_state(controller: str, state: DoorState) -> Publication:
    body = {"door": "open" if state.door_open else "closed", "lock": "locked" if state.locked else "unlocked"}
    return Publication(state_topic(controller), dumps(body), qos=1, retain=True)


def encode_availability(root: str, name: str, online: bool) -> Publication:
    return Publication(availability_topic(root, name), b"online" if online else b"offline", qos=1, retain=True)


def handle_door_command(controller: str, state: DoorState, payload: bytes) -> tuple[list[Publication], bool]:
    """`release` unlocks (fire release, remote open), `secure` locks again; anything else is ignored."""
    body = parse_json_object(payload)
    action = body.get("action") if body else None
    if action not in ("release", "secure"):
        return [], False
    locked = action == "secure"
    changed = locked != state.locked
    state.locked = locked
    return [encode_door_state(controller, state)], changed


@dataclass(slots=True)
class ProbeState:
    temperature: float = 23.0
    humidity: float = 45.0
    leak: bool = False
    smoke: bool = False


def probe_object(state: ProbeState) -> dict[str, Any]:
    return {
        "temperature_c": round(state.temperature, 2),
        "humidity_pct": round(state.humidity, 1),
        "water_leak": state.leak,
        "smoke": state.smoke,
    }


def encode_probe(name: str, state: ProbeState) -> Publication:
    return Publication(probe_topic(name), dumps(probe_object(state)), qos=1, retain=True)


def encode_callpoint(name: str, activated: bool) -> Publication:
    return Publication(callpoint_topic(name), dumps({"activated": activated}), qos=1, retain=True)
