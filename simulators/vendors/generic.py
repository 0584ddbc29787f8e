"""Floorwatch's generic JSON profile for devices with no common standard: door access controllers,
machine-room probes and manual call points (CONTRACT.md §2: "a documented generic JSON profile of ours").

The profile's owner is the edge (edge/drivers/GENERIC_PROFILE.md, announced by edge/drivers/generic.py);
until that page exists this encoder follows the profile as agreed with the edge engineer:

- `access/<controller>/event`   {"ts","type":"badge","badge","result":"granted|denied","direction":"in|out"}
                               {"ts","type":"door_forced"} | {"ts","type":"door_held_open","held_s"}
                               {"ts","type":"request_to_exit"} | {"ts","type":"tamper"}
- `access/<controller>/state`   {"door":"open|closed","lock":"locked|unlocked"}      (also the heartbeat)
- `access/<controller>/cmd`     {"id","action":"release|secure","reason"} -> controller publishes its state
- `<root>/<name>/availability`  {"state":"online|offline"}  (retained; the adapter's MQTT Will is offline)
- `probe/<name>/state`          {"temperature_c","humidity_pct","water_leak","smoke"}  (any subset)
- `callpoint/<name>/state`      {"activated": bool}

The simulator brief's first draft used shorter names (`forced`, `held_open`, `rex`; `temperature`,
`humidity`, `leak`); `LEGACY_EVENT_NAMES` maps them for anyone holding old captures.
Times are RFC 3339 UTC with milliseconds, as in the canonical contract.
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


def encode_badge(controller: str, when: datetime, badge: str, result: Result, direction: Direction) -> Publication:
    body = {"ts": rfc3339_ms(when), "type": "badge", "badge": badge, "result": result, "direction": direction}
    return Publication(event_topic(controller), dumps(body), qos=1)


def encode_door_event(controller: str, when: datetime, kind: DoorEvent, held_s: float | None = None) -> Publication:
    body: dict[str, Any] = {"ts": rfc3339_ms(when), "type": kind}
    if held_s is not None:
        body["held_s"] = round(held_s)
    return Publication(event_topic(controller), dumps(body), qos=1)


def encode_door_state(controller: str, state: DoorState) -> Publication:
    body = {"door": "open" if state.door_open else "closed", "lock": "locked" if state.locked else "unlocked"}
    return Publication(state_topic(controller), dumps(body), qos=1)


def encode_availability(root: str, name: str, online: bool) -> Publication:
    body = {"state": "online" if online else "offline"}
    return Publication(availability_topic(root, name), dumps(body), qos=1, retain=True)


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
    return Publication(probe_topic(name), dumps(probe_object(state)), qos=1)


def encode_callpoint(name: str, activated: bool) -> Publication:
    return Publication(callpoint_topic(name), dumps({"activated": activated}), qos=1)
