"""esp-rfid (https://github.com/esprfid/esp-rfid) door controllers: an ESP8266 with an RFID reader
(MFRC522, PN532, Wiegand, RDM6300) and a lock relay, which decides itself whether a card opens the door.

Device layer (the `address` is the MQTT topic set in its settings):

- `<topic>/send` (1.x; `<topic>` itself in 0.8) JSON messages, and `<topic>/tag` for access in its "Home
  Assistant" MQTT mode ({"uid", "username", "access", "time"}: no type, no isKnown); the ones read here:
  {"type": "access", "time": unix s, "isKnown": "true"|"false", "access": "Always"|"Admin"|
   "Disabled"|"Expired"|"Denied"..., "username": ..., "uid": card}:
  granted when the card is known and its access is Always or Admin, denied otherwise;
  {"type": "heartbeat", "uptime": s, ...} ("hearthbeat", sic, from old builds, every 1800 s): the controller
  is alive. It is the controller's only periodic
  message (every "heartbeat interval" of its MQTT settings), so it goes upstream as a reading
  (`uptime_s`, or `heartbeat: true` from firmware that sends no uptime): the server supervises an egress
  door by what it hears (door.egress_controller_offline after 200 s), and an availability event that
  repeats the known state never leaves the edge;
  an access with a blank uid (" ", user "Button" or "MQTT") is the exit button or a remote `opendoor`:
  request_to_exit, not a card;
  other types (boot, INFO, user list ...) carry nothing we measure.
- no command: opening doors stays with the controller and the building's fire interface.

Badge numbers go upstream in events and never into a log (DecodeError reasons name fields only).
See esprfid/esp-rfid issues #173 and #407 for the payloads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from edge.config import DeviceConfig, Vendor
from edge.drivers.base import (
    DecodeError,
    Driver,
    Item,
    Metrics,
    UnsupportedCommand,
    event,
    json_object,
    reading,
    utcnow,
)
from gateway.contract import Command, EventType

_GRANTING = frozenset({"Always", "Admin"})
HEARTBEAT_TYPES = frozenset({"heartbeat", "hearthbeat"})
"""The alive message's type: old builds spell it "hearthbeat" (and send it every 1800 s, not settable)."""


class EspRfidDriver(Driver):
    vendor: ClassVar[Vendor] = Vendor.ESP_RFID

    def __init__(self, devices: Any, *, client_id: str = "floorwatch-edge") -> None:
        super().__init__(devices, client_id=client_id)
        self._by_topic: dict[str, DeviceConfig] = {}
        self._ha_topics: set[str] = set()
        for device in self.devices:
            self._by_topic[device.address] = device
            self._by_topic[f"{device.address}/send"] = device
            self._by_topic[f"{device.address}/tag"] = device
            self._ha_topics.add(f"{device.address}/tag")

    def topic_filters(self) -> list[str]:
        return sorted(self._by_topic)

    def devices_at(self, topic: str) -> list[str]:
        device = self._by_topic.get(topic)
        return [device.id] if device else []

    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        ts = now or utcnow()
        device = self._by_topic.get(topic)
        if device is None:
            return []
        data = json_object(payload, device.id)
        if topic in self._ha_topics and "type" not in data:
            # "Home Assistant" MQTT mode: the access message without type and isKnown (an unknown card's
            # access is "Denied", a known card's its access type).
            data = {**data, "type": "access", "isKnown": "false" if data.get("access") == "Denied" else "true"}
        kind = data.get("type")
        if isinstance(kind, str) and kind in HEARTBEAT_TYPES:  # a list or an object is no type at all
            uptime = data.get("uptime")
            alive: Metrics = ({"uptime_s": uptime} if isinstance(uptime, int) and not isinstance(uptime, bool)
                              and uptime >= 0 else {"heartbeat": True})
            return reading(device.id, ts, alive)
        if kind != "access":
            return []
        known = data.get("isKnown")
        if known not in ("true", "false", True, False):
            raise DecodeError("access message: isKnown must be true or false", device.id)
        uid = data.get("uid")
        if isinstance(uid, str) and uid.strip() == "" and known in ("true", True):
            # The controller's exit button and its MQTT `opendoor` log an access with uid " " and user "Button"
            # or "MQTT": a door opened without a card, not a card called " ".
            by = data.get("username")
            return [event(device.id, ts, EventType.REQUEST_TO_EXIT,
                          detail=f"esp-rfid: opened by {by[:20] if isinstance(by, str) else 'its button'}")]
        if not isinstance(uid, str) or not 1 <= len(uid.strip()) <= 64:
            raise DecodeError("access message: uid must be a string of 1 to 64 characters", device.id)
        raw = data.get("access")
        access = raw if isinstance(raw, str) else "?"
        granted = known in ("true", True) and access in _GRANTING
        return [event(device.id, ts, EventType.ACCESS_GRANTED if granted else EventType.ACCESS_DENIED,
                      badge=uid, detail=f"esp-rfid: {'known' if known in ('true', True) else 'unknown'} card, "
                                        f"access {access[:40]}")]

    def encode(self, command: Command) -> tuple[str, bytes]:
        raise UnsupportedCommand(f"esp-rfid controllers take no {command.action.value} from Floorwatch")
