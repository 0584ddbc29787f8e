"""What the fuzzers exercise, shared by the hypothesis tests (tests/fuzz) and the atheris harness
(fuzz/harness.py): a fleet with every device kind of every vendor, the topics each driver answers,
the words the drivers look for, and the invariants checked on every input.

Invariants:
- a driver's `decode` returns a list of contract `Reading`/`Event` objects (which re-validate and
  encode inside a contract batch) or raises `DecodeError`; anything else is a bug;
- the contract decoder (`decode`, `decode_batch`, `parse_topic`) returns contract payloads or raises
  `ContractError`.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.config import VENDOR_KINDS, DeviceConfig, Kind, Vendor
from edge.drivers import DRIVERS, DecodeError, Driver
from gateway import contract

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
DRIVER_DIR = Path(__file__).resolve().parent.parent / "edge" / "drivers"


def fleet() -> list[DeviceConfig]:
    """Every kind each vendor supports, with channels where the vendor numbers them."""
    devices: list[DeviceConfig] = []
    for vendor, kinds in VENDOR_KINDS.items():
        for kind in sorted(kinds):
            base = f"{vendor.value}-{kind.value}".replace("_", "-")
            channels: list[int | None] = [None]
            if vendor is Vendor.SHELLY:
                channels = [0, 1]
            elif vendor is Vendor.TASMOTA and kind is Kind.SMART_PLUG:
                channels = [1, 2]
            for channel in channels:
                suffix = "" if channel is None else f"-o{channel}"
                data: dict[str, Any] = {"id": f"{base}{suffix}", "kind": kind, "zone": "z1", "vendor": vendor,
                                        "address": base, "channel": channel}
                if kind in (Kind.SMART_PLUG, Kind.STRIP_METER):
                    data["rated_a"] = 10
                if vendor is Vendor.TASMOTA and kind in (Kind.TEMP_SENSOR, Kind.MR_PROBE, Kind.DOOR_CONTROLLER):
                    data["sensor"] = {Kind.TEMP_SENSOR: "DS18B20-1", Kind.MR_PROBE: "AM2301"}.get(kind, "PN532")
                devices.append(DeviceConfig.model_validate(data))
    # Firmware setups other than the defaults: a Shelly Gen1, a Tasmota FullTopic with StateText 0/1, a
    # second Zigbee2MQTT bridge.
    devices += [
        DeviceConfig.model_validate({"id": "shelly-gen1", "kind": Kind.SMART_PLUG, "zone": "z1", "vendor": "shelly",
                                     "address": "shellyplug-s-040bad", "gen": 1, "rated_a": 10}),
        DeviceConfig.model_validate({"id": "tasmota-custom", "kind": Kind.SMART_PLUG, "zone": "z1",
                                     "vendor": "tasmota", "address": "printer", "rated_a": 10,
                                     "full_topic": "fhem/%topic%/%prefix%/", "state_text": ["0", "1"]}),
        DeviceConfig.model_validate({"id": "z2m-second", "kind": Kind.SMOKE_DETECTOR, "zone": "z1",
                                     "vendor": "zigbee2mqtt", "address": "smoke", "base_topic": "zigbee-f4"}),
    ]
    return devices


FLEET = fleet()
VENDORS: list[Vendor] = list(DRIVERS)


def make_driver(vendor: Vendor) -> Driver:
    return DRIVERS[vendor](FLEET, client_id="floorwatch-edge")


def driver_topics(driver: Driver) -> list[str]:
    """Concrete topics the driver subscribes to (wildcards filled in with the leaves it knows)."""
    topics: list[str] = []
    for topic_filter in driver.topic_filters():
        if topic_filter.endswith("/+"):
            stem = topic_filter[:-2]
            topics += [f"{stem}/{leaf}" for leaf in ("POWER", "POWER1", "POWER2", "POWER9", "RESULT", "STATUS8",
                                                     "STATUS10", "STATUS11", "temperature", "humidity")]
        elif topic_filter.endswith("/#"):
            stem = topic_filter[:-2]
            topics += [f"{stem}/{leaf}" for leaf in ("0", "0/power", "0/energy", "1", "0/command")]
        else:
            topics.append(topic_filter)
    return topics


def _string_literals() -> list[str]:
    words: set[str] = set()
    for path in sorted(DRIVER_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and 0 < len(node.value) <= 40 \
                    and "\n" not in node.value and " " not in node.value:
                words.add(node.value)
    return sorted(words)


KEYS: list[str] = _string_literals()
"""Every short string literal in the drivers: the JSON keys and values they look for."""

CONTRACT_TOPICS: list[str] = [
    *(contract.edge_topic("hq", "edge-f3", channel) for channel in contract.Channel),
    contract.site_topic("hq", contract.SiteChannel.EVACUATION),
    contract.site_topic("hq", contract.SiteChannel.ALARMS, "17"),
]


def check_driver(driver: Driver, topic: str, payload: bytes) -> list[Any]:
    """Decode and check the invariants; AssertionError (or the unexpected exception) on a bug."""
    try:
        items = driver.decode(topic, payload, NOW)
    except DecodeError as exc:
        assert isinstance(exc.reason, str)
        return []
    assert isinstance(items, list), f"decode returned {type(items).__name__}"
    readings = []
    events = []
    for item in items:
        assert type(item) in (contract.Reading, contract.Event), f"decode returned a {type(item).__name__}"
        # Each item must survive the wire: encode in a batch and decode back to the same thing.
        if isinstance(item, contract.Reading):
            readings.append(item)
        else:
            events.append(item)
    if readings:
        batch = contract.TelemetryBatch(edge="edge-f3", seq=1, sent_at=NOW, readings=readings)
        _, back = contract.decode(contract.edge_topic("hq", "edge-f3", contract.Channel.TELEMETRY),
                                  contract.encode(batch))
        assert back == batch
    if events:
        batch_e = contract.EventBatch(edge="edge-f3", seq=1, sent_at=NOW, events=events)
        _, back_e = contract.decode(contract.edge_topic("hq", "edge-f3", contract.Channel.EVENTS),
                                    contract.encode(batch_e))
        assert back_e == batch_e
    return items


def check_contract(topic: str, payload: bytes) -> None:
    """The contract decoder: a contract payload or ContractError, nothing else."""
    try:
        route, message = contract.decode(topic, payload)
    except contract.ContractError:
        pass
    else:
        assert isinstance(message, contract.DELIVERY[route.channel].model)
        assert contract.decode(topic, contract.encode(message))[1] == message
    for model in (contract.TelemetryBatch, contract.EventBatch):
        try:
            partial = contract.decode_batch(model, payload)
        except contract.ContractError:
            continue
        assert partial.batch is None or isinstance(partial.batch, model)
        assert all(isinstance(r, contract.Rejected) for r in partial.rejected)
