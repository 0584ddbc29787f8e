"""Zigbee2MQTT: device state on `zigbee2mqtt/<friendly_name>`, availability, and `/set` for sirens.

Sources (Zigbee2MQTT documentation):
- Device state is one JSON object per message on `zigbee2mqtt/FRIENDLY_NAME`; writable exposes are set
  on `zigbee2mqtt/FRIENDLY_NAME/set`: https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html
- Availability on `zigbee2mqtt/FRIENDLY_NAME/availability`, retained, {"state":"online"|"offline"} when
  legacy_availability_payload is false (the default since 2.0):
  https://www.zigbee2mqtt.io/guide/configuration/device-availability.html
- Exposes of the modelled devices (each page lists the published properties):
  smoke      HEIMAN HS1SA  (smoke, battery_low, battery, linkquality)
             https://www.zigbee2mqtt.io/devices/HS1SA.html
  temp/RH    Aqara WSDCGQ11LM (battery, temperature, humidity, pressure, voltage, linkquality)
             https://www.zigbee2mqtt.io/devices/WSDCGQ11LM.html
  leak       Aqara SJCGQ11LM (battery, water_leak, battery_low, voltage, temperature, linkquality)
             https://www.zigbee2mqtt.io/devices/SJCGQ11LM.html
  contact    Aqara MCCGQ11LM (battery, contact [true = closed], temperature, voltage, linkquality)
             https://www.zigbee2mqtt.io/devices/MCCGQ11LM.html
  siren      Heiman HS2WD-E (battery, max_duration; `warning` is write-only:
             {"warning":{"mode":"emergency"|"stop","strobe":bool,"duration":s}})
             https://www.zigbee2mqtt.io/devices/HS2WD-E.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators.vendors.base import Publication, dumps, parse_json_object

BASE = "zigbee2mqtt"

MODELS: dict[str, tuple[str, ...]] = {
    # role -> (model, published properties in the order used here); the model is informational
    "smoke": ("HS1SA", "battery", "battery_low", "linkquality", "smoke"),
    "temp_humidity": (
        "WSDCGQ11LM",
        "battery",
        "humidity",
        "linkquality",
        "pressure",
        "temperature",
        "voltage",
    ),
    "leak": ("SJCGQ11LM", "battery", "battery_low", "linkquality", "temperature", "voltage", "water_leak"),
    "contact": ("MCCGQ11LM", "battery", "contact", "linkquality", "temperature", "voltage"),
    "siren": ("HS2WD-E", "battery", "linkquality", "max_duration"),
}


def state_topic(name: str) -> str:
    return f"{BASE}/{name}"


def set_topic(name: str) -> str:
    return f"{BASE}/{name}/set"


def availability_topic(name: str) -> str:
    return f"{BASE}/{name}/availability"


@dataclass(slots=True)
class ZigbeeState:
    """Everything any modelled device may publish; `role` picks the subset a real one sends."""

    role: str
    battery: float = 100.0
    linkquality: int = 120
    smoke: bool = False
    temperature: float = 24.0
    humidity: float = 50.0
    pressure: float = 1012.0
    water_leak: bool = False
    contact: bool = True
    max_duration: int = 240
    siren_on: bool = False

    @property
    def battery_low(self) -> bool:
        return self.battery < 15  # HEIMAN/Aqara set the IAS battery_low bit around 2.6-2.7 V

    @property
    def voltage_mv(self) -> int:
        return round(2600 + self.battery * 5.0)  # CR2032 / CR1632: ~3.1 V full, ~2.6 V empty


def state_object(state: ZigbeeState) -> dict[str, Any]:
    values: dict[str, Any] = {
        "battery": round(state.battery),
        "battery_low": state.battery_low,
        "linkquality": state.linkquality,
        "smoke": state.smoke,
        "temperature": round(state.temperature, 2),
        "humidity": round(state.humidity, 2),
        "pressure": round(state.pressure, 1),
        "voltage": state.voltage_mv,
        "water_leak": state.water_leak,
        "contact": state.contact,
        "max_duration": state.max_duration,
    }
    return {key: values[key] for key in MODELS[state.role][1:]}


def encode_state(name: str, state: ZigbeeState) -> Publication:
    return Publication(state_topic(name), dumps(state_object(state)))


def encode_availability(name: str, online: bool) -> Publication:
    return Publication(
        availability_topic(name), dumps({"state": "online" if online else "offline"}), qos=1, retain=True
    )


def handle_set(name: str, state: ZigbeeState, payload: bytes) -> tuple[list[Publication], bool]:
    """A siren's `/set`: `warning` starts or stops it (not echoed: it is write-only); `max_duration`
    is stored and republished. Returns (publications, whether the siren changed)."""
    body = parse_json_object(payload)
    if body is None or state.role != "siren":
        return [], False
    changed = False
    out: list[Publication] = []
    warning = body.get("warning")
    if isinstance(warning, dict):
        on = warning.get("mode", "emergency") != "stop" and warning.get("duration", 1) != 0
        changed = on != state.siren_on
        state.siren_on = on
    if isinstance(body.get("max_duration"), int):
        state.max_duration = int(body["max_duration"])
        out.append(encode_state(name, state))
    return out, changed


def encode_bridge_state(online: bool, base: str = BASE, legacy: bool = False) -> Publication:
    """`<base>/bridge/state`, retained: {"state":"online"} (text `online` in the legacy form); the
    bridge's Last Will says offline: https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html"""
    word = "online" if online else "offline"
    payload = word.encode() if legacy else dumps({"state": word})
    return Publication(f"{base}/bridge/state", payload, qos=1, retain=True)


def encode_bridge_devices(devices: dict[str, tuple[str, str]], base: str = BASE) -> Publication:
    """`<base>/bridge/devices`, retained: the coordinator and each device {friendly_name: (ieee, role)} with
    its definition's exposes (same page, "zigbee2mqtt/bridge/devices")."""
    entries: list[dict[str, Any]] = [{"ieee_address": "0x00124b0021c5a3f1", "type": "Coordinator",
                                      "friendly_name": "Coordinator", "supported": True, "definition": None}]
    for name, (ieee, role) in devices.items():
        model, *properties = MODELS[role]
        binary = ("smoke", "water_leak", "contact", "battery_low")
        exposes: list[dict[str, Any]] = [{"type": "binary" if p in binary else "numeric", "name": p, "property": p,
                                          "access": 1} for p in properties]
        if role == "siren":
            exposes.append({"type": "composite", "name": "warning", "property": "warning", "access": 2,
                            "features": [{"type": "enum", "name": "mode", "property": "mode", "access": 2}]})
        entries.append({"ieee_address": ieee, "type": "EndDevice", "friendly_name": name, "supported": True,
                        "definition": {"model": model, "vendor": "Heiman" if model.startswith("HS") else "Aqara",
                                       "description": role, "exposes": exposes}})
    return Publication(f"{base}/bridge/devices", dumps(entries), qos=1, retain=True)
