"""Floorwatch's generic JSON profile for devices with no common standard: door access controllers,
machine-room probes and manual call points (CONTRACT.md §2: "a documented generic JSON profile of ours").

Written to the profile as specified in the simulator brief, pending edge/drivers/GENERIC_PROFILE.md:
- `access/<controller>/event`  {"ts","type":"badge","badge","result":"granted|denied","direction":"in|out"}
                              {"ts","type":"forced"} | {"ts","type":"held_open"} | {"ts","type":"rex"}
- `access/<controller>/state`  {"door":"open|closed","lock":"locked|unlocked"}   (also the heartbeat)
- `access/<controller>/cmd`    {"action":"release|secure"}  (the controller answers with its new state)
- `probe/<name>/state`         {"temperature","humidity","leak","smoke"}
- `callpoint/<name>/event`     {"ts","type":"pressed"|"reset"}   (ours: manual call points, see README)
- `callpoint/<name>/state`     {"pressed": bool}                   (heartbeat)
Times are RFC 3339 UTC with milliseconds, as in the canonical contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from simulators.vendors.base import Publication, dumps, parse_json_object, rfc3339_ms

Direction = Literal["in", "out"]
Result = Literal["granted", "denied"]


def event_topic(controller: str) -> str:
    return f"access/{controller}/event"


def state_topic(controller: str) -> str:
    return f"access/{controller}/state"


def command_topic(controller: str) -> str:
    return f"access/{controller}/cmd"


def probe_topic(name: str) -> str:
    return f"probe/{name}/state"


@dataclass(slots=True)
class DoorState:
    door_open: bool = False
    locked: bool = True


def encode_badge(
    controller: str, when: datetime, badge: str, result: Result, direction: Direction
) -> Publication:
    body = {"ts": rfc3339_ms(when), "type": "badge", "badge": badge, "result": result, "direction": direction}
    return Publication(event_topic(controller), dumps(body), qos=1)


def encode_door_event(
    controller: str, when: datetime, kind: Literal["forced", "held_open", "rex"]
) -> Publication:
    return Publication(event_topic(controller), dumps({"ts": rfc3339_ms(when), "type": kind}), qos=1)


def encode_door_state(controller: str, state: DoorState) -> Publication:
    body = {"door": "open" if state.door_open else "closed", "lock": "locked" if state.locked else "unlocked"}
    return Publication(state_topic(controller), dumps(body), qos=1)


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
        "temperature": round(state.temperature, 2),
        "humidity": round(state.humidity, 1),
        "leak": state.leak,
        "smoke": state.smoke,
    }


def encode_probe(name: str, state: ProbeState) -> Publication:
    return Publication(probe_topic(name), dumps(probe_object(state)), qos=1)


def encode_callpoint_event(name: str, when: datetime, pressed: bool) -> Publication:
    body = {"ts": rfc3339_ms(when), "type": "pressed" if pressed else "reset"}
    return Publication(f"callpoint/{name}/event", dumps(body), qos=1)


def encode_callpoint_state(name: str, pressed: bool) -> Publication:
    return Publication(f"callpoint/{name}/state", dumps({"pressed": pressed}), qos=1)
