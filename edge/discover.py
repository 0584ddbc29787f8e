"""`floorwatch edge discover --floor-broker URL [--seconds 60] [--out DIR]`: listen to what devices announce
on a floor broker, print a table (vendor, model, suggested kind, address) and write draft edge and site
YAML for a person to complete (zones, ratings, which plugs may be cut).

What is read (passively, plus the Shelly Gen1 `announce` request that those devices answer):
- Tasmota (default FullTopic): `tele/<topic>/LWT` Online, `tele/<topic>/INFO1` (Module),
  `stat/<topic>/STATUS` (DeviceName), and `tele/<topic>/SENSOR` or `stat/<topic>/STATUS8` (ENERGY: a plug
  or a strip meter; every object with a Temperature: a probe); it asks with `Status` and `Status 8` on
  the default GroupTopic `tasmotas`;
- Shelly Gen1: `shellies/announce` {"id", "model", ...} and `shellies/<id>/online`; Gen2+:
  `<prefix>/online` true;
- Zigbee2MQTT: `<base>/bridge/devices` (the retained device list with each definition's exposes),
  whatever the base topic.

Nothing is sent to the server; nothing is configured: the drafts are for a person to read.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from edge.config import Kind, Vendor
from gateway.mqtt import Incoming, MqttClient, MqttSettings

FILTERS = ("tele/+/LWT", "tele/+/INFO1", "tele/+/SENSOR", "stat/+/STATUS", "stat/+/STATUS8", "shellies/announce",
           "shellies/+/online", "+/online", "+/bridge/devices")
ASK = (("cmnd/tasmotas/Status", b""), ("cmnd/tasmotas/Status", b"8"), ("shellies/command", b"announce"))
"""Read-only requests devices answer on the topics above: Tasmota's default GroupTopic `tasmotas` with
`Status` (module, name) and `Status 8` (sensors), and Shelly Gen1's `announce`."""
MAX_FOUND = 5000
"""A floor broker full of strangers still costs bounded memory."""

# Zigbee2MQTT exposed property -> kind, strongest first (a smoke detector also reports temperature).
_Z2M_KINDS = (("smoke", Kind.SMOKE_DETECTOR), ("water_leak", Kind.LEAK_SENSOR), ("warning", Kind.SIREN),
              ("contact", Kind.DOOR_CONTROLLER), ("temperature", Kind.TEMP_SENSOR))
# Shelly Gen1 model codes (the `type` of /shelly, the `model` of announce) that are H&T sensors.
_SHELLY_HT = ("SHHT-1",)


@dataclass(slots=True)
class Found:
    vendor: Vendor
    address: str
    model: str = "?"
    kind: Kind | None = None
    sensor: str | None = None
    base_topic: str | None = None
    gen: int | None = None
    seen_on: str = ""

    def key(self) -> tuple[str, str, str, str]:
        return (self.vendor.value, self.base_topic or "", self.address, self.sensor or "")

    def device_id(self) -> str:
        raw = "-".join(p for p in (self.address, self.sensor) if p)
        cleaned = re.sub(r"[^a-z0-9._-]+", "-", raw.lower()).strip("-._")
        return (cleaned or "device")[:64]

    def edge_entry(self) -> dict[str, Any]:
        """This device as an entry of the edge file's `devices:` (zone `unassigned` until a person sets it)."""
        kind = self.kind.value if self.kind else "?"
        device: dict[str, Any] = {"id": self.device_id(), "kind": kind, "zone": "unassigned",
                                  "vendor": self.vendor.value, "address": self.address}
        if self.sensor:
            device["sensor"] = self.sensor
        if self.gen == 1:
            device["gen"] = 1
        if self.base_topic and self.base_topic != "zigbee2mqtt":
            device["base_topic"] = self.base_topic
        return device

    def site_entry(self, edge: str) -> dict[str, Any]:
        """This device as an entry of the site file's `devices:`."""
        return {"id": self.device_id(), "kind": self.kind.value if self.kind else "?", "zone": "unassigned",
                "edge": edge}


@dataclass
class Discovery:
    """What has been heard so far; `observe` takes one message (pure, no I/O)."""

    found: dict[tuple[str, str, str, str], Found] = field(default_factory=dict)
    ignored: int = 0
    """Messages on our topics that could not be read (not JSON, unexpected shape)."""

    def _add(self, item: Found) -> Found:
        existing = self.found.get(item.key())
        if existing is not None:
            for name in ("model", "kind", "gen", "base_topic"):
                value = getattr(item, name)
                if value not in (None, "?") and getattr(existing, name) in (None, "?"):
                    setattr(existing, name, value)
            return existing
        if len(self.found) < MAX_FOUND:
            self.found[item.key()] = item
        return item

    def observe(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        try:
            if len(parts) == 3 and (parts[0] == "tele" or (parts[0] == "stat" and parts[2].startswith("STATUS"))):
                self._tasmota(parts[1], parts[2], payload, topic)
            elif topic == "shellies/announce":
                self._shelly_announce(payload, topic)
            elif len(parts) == 3 and parts[0] == "shellies" and parts[2] == "online":
                if payload.strip() == b"true":
                    model = "H&T" if parts[1].lower().startswith("shellyht") else "?"
                    kind = Kind.TEMP_SENSOR if model == "H&T" else Kind.SMART_PLUG
                    self._add(Found(Vendor.SHELLY, parts[1], model, kind, gen=1, seen_on=topic))
            elif len(parts) == 2 and parts[1] == "online":
                if payload.strip() == b"true":
                    ht = "ht" in parts[0].lower().split("-")[0]
                    kind = Kind.TEMP_SENSOR if ht else Kind.SMART_PLUG
                    self._add(Found(Vendor.SHELLY, parts[0], parts[0].split("-")[0], kind, seen_on=topic))
            elif len(parts) >= 3 and parts[-2:] == ["bridge", "devices"]:
                self._z2m_devices("/".join(parts[:-2]), payload, topic)
        except (ValueError, TypeError, AttributeError, KeyError):
            self.ignored += 1

    def _tasmota(self, name: str, suffix: str, payload: bytes, topic: str) -> None:
        if suffix not in ("LWT", "INFO1", "STATUS", "STATUS8", "SENSOR"):
            return

        def found(model: str = "?", kind: Kind | None = None, sensor: str | None = None) -> None:
            self._add(Found(Vendor.TASMOTA, name, model, kind, sensor=sensor, seen_on=topic))

        if suffix == "LWT":
            if payload.strip() == b"Online":
                found()
            return
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        if suffix == "INFO1":
            info = data.get("Info1", data)
            module = info.get("Module") if isinstance(info, dict) else None
            if isinstance(module, str):
                found(module)
            return
        if suffix == "STATUS":
            device_name = _section(data, "Status", suffix).get("DeviceName")
            found(device_name if isinstance(device_name, str) else "?")
            return
        if suffix == "STATUS8":
            data = _section(data, "StatusSNS", suffix)
        # SENSOR: what it measures decides the kind.
        energy = data.get("ENERGY")
        if isinstance(energy, dict):
            multi = any(isinstance(energy.get(k), list) and len(energy[k]) > 1 for k in ("Power", "Current"))
            found(kind=Kind.STRIP_METER if multi else Kind.SMART_PLUG)
        for key, value in data.items():
            if isinstance(value, dict) and "Temperature" in value and key != "ANALOG":
                sensor = value.get("Id") if isinstance(value.get("Id"), str) else key
                found(key.split("-")[0], Kind.TEMP_SENSOR, sensor)

    def _shelly_announce(self, payload: bytes, topic: str) -> None:
        data = json.loads(payload)
        address = data.get("id") if isinstance(data, dict) else None
        if not isinstance(address, str) or not address:
            raise ValueError("announce without id")
        model = data.get("model") if isinstance(data.get("model"), str) else "?"
        ht = model in _SHELLY_HT or address.lower().startswith("shellyht")
        self._add(Found(Vendor.SHELLY, address, model, Kind.TEMP_SENSOR if ht else Kind.SMART_PLUG, gen=1,
                        seen_on=topic))

    def _z2m_devices(self, base: str, payload: bytes, topic: str) -> None:
        devices = json.loads(payload)
        if not isinstance(devices, list):
            raise ValueError("bridge/devices is not a list")
        for entry in devices:
            if not isinstance(entry, dict) or entry.get("type") == "Coordinator":
                continue
            name = entry.get("friendly_name")
            if not isinstance(name, str) or not name:
                continue
            raw = entry.get("definition")
            definition: dict[str, Any] = raw if isinstance(raw, dict) else {}
            properties = set(_properties(definition.get("exposes", [])))
            kind = next((k for prop, k in _Z2M_KINDS if prop in properties), None)
            model = " ".join(str(definition.get(k)) for k in ("vendor", "model") if definition.get(k)) or "?"
            self._add(Found(Vendor.ZIGBEE2MQTT, name, model, kind, base_topic=base, seen_on=topic))

    # -- output --------------------------------------------------------------------------------------

    def rows(self) -> list[Found]:
        return sorted(self.found.values(), key=lambda f: f.key())

    def table(self) -> str:
        lines = [("vendor", "model", "suggested kind", "address")]
        for f in self.rows():
            where = f.address + (f" ({f.sensor})" if f.sensor else "")
            if f.base_topic and f.base_topic != "zigbee2mqtt":
                where = f"{f.base_topic}/{where}"
            vendor = f.vendor.value + (" gen1" if f.gen == 1 else "")
            lines.append((vendor, f.model, f.kind.value if f.kind else "? (not a kind Floorwatch reads)", where))
        widths = [max(len(row[i]) for row in lines) for i in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                         for row in lines)

    def edge_yaml(self, site: str, edge: str, broker: MqttSettings) -> str:
        devices = [f.edge_entry() for f in self.rows() if f.kind is not None]
        data = {"site": site, "edge": edge, "floor_broker": {"host": broker.host, "port": broker.port},
                "devices": devices}
        header = ("# Draft written by `floorwatch edge discover`: set each device's zone, rated_a for plugs and\n"
                  "# strips (and cuttable/essential), reporting_interval_s, then check with --check.\n")
        return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def site_yaml(self, edge: str) -> str:
        devices = [f.site_entry(edge) for f in self.rows() if f.kind is not None]
        header = ("# Draft device entries for the site file (server/domain/site.py): move them under `devices:`,\n"
                  "# set zones, ratings, seats and door types.\n")
        return header + yaml.safe_dump({"devices": devices}, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True, slots=True)
class Announcement:
    """What an edge says about a device that announced itself but is in no configuration (its
    `unknown_device` event's detail, see edge/agent.py)."""

    vendor: Vendor
    address: str
    topic: str


_ANNOUNCED = re.compile(r"(?P<vendor>[a-z0-9-]+) device (?P<address>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") "
                        r"announced itself on (?P<topic>[^;]*); it is in no configuration")


def parse_announcement(text: str) -> Announcement | None:
    """The vendor, exact address and topic in an `unknown_device` detail (or a message quoting it)."""
    match = _ANNOUNCED.search(text)
    if match is None:
        return None
    try:
        vendor = Vendor(match["vendor"])
        address = ast.literal_eval(match["address"])
    except (ValueError, SyntaxError):
        return None
    return Announcement(vendor, address, match["topic"]) if isinstance(address, str) and address else None


ONLINE = {Vendor.TASMOTA: b"Online", Vendor.SHELLY: b"true"}
"""The announcement payload each vendor's online topic carries (what the edge reacted to)."""
_GUESS = {Vendor.TASMOTA: Kind.SMART_PLUG, Vendor.SHELLY: Kind.SMART_PLUG}
"""The kind to draft when the announcement does not say: what unknown Tasmota or Shelly devices on a floor
usually are (a plug or a private strip, elec.strip_cascade); the draft says to check it."""


def _z2m_base(announcement: Announcement) -> str | None:
    """The bridge's base topic of a Zigbee2MQTT `<base>/<friendly name>/availability`: what precedes the
    (known) name, however many levels either has; None for the default base and other vendors."""
    tail = f"/{announcement.address}/availability"
    if announcement.vendor is not Vendor.ZIGBEE2MQTT or not announcement.topic.endswith(tail):
        return None
    base = announcement.topic[:-len(tail)]
    return base if base and base != "zigbee2mqtt" else None


def adoption_drafts(announcement: Announcement, edge: str) -> tuple[str, str, bool]:
    """(edge YAML entry, site YAML entry, kind guessed) to paste under `devices:` to adopt one device.
    Reads the announcement topic as `floorwatch edge discover` does, so the entries are the drafts
    discover would write for it; a kind the topic cannot tell is guessed from the vendor and flagged."""
    discovery = Discovery()
    discovery.observe(announcement.topic, ONLINE.get(announcement.vendor, b"online"))
    heard = [f for f in discovery.rows() if f.vendor is announcement.vendor and f.address == announcement.address]
    found = heard[0] if heard else Found(announcement.vendor, announcement.address, seen_on=announcement.topic,
                                         base_topic=_z2m_base(announcement))
    guessed = found.kind is None
    if guessed:
        found.kind = _GUESS.get(found.vendor, Kind.TEMP_SENSOR if found.vendor is Vendor.ZIGBEE2MQTT else None)
    if found.kind is None:  # a generic or esp-rfid name without a kind of its own: a door controller
        found.kind = Kind.DOOR_CONTROLLER
    edge_entry = yaml.safe_dump([found.edge_entry()], sort_keys=False, allow_unicode=True, default_flow_style=None,
                                width=1_000)
    site_entry = yaml.safe_dump([found.site_entry(edge)], sort_keys=False, allow_unicode=True, default_flow_style=None,
                                width=1_000)
    return edge_entry, site_entry, guessed


def _section(data: dict[str, Any], key: str, message: str) -> dict[str, Any]:
    """The object a Tasmota reply nests its content under (`Status` in STATUS, `StatusSNS` in STATUS8)."""
    section = data.get(key)
    if not isinstance(section, dict):
        raise ValueError(f"{message} without {key}")
    return section


def _properties(exposes: Any) -> list[str]:
    """Every `property` in a Zigbee2MQTT exposes list, features included."""
    out: list[str] = []
    if isinstance(exposes, list):
        for item in exposes:
            if isinstance(item, dict):
                if isinstance(item.get("property"), str):
                    out.append(item["property"])
                out += _properties(item.get("features"))
    return out


def broker_settings(url: str) -> MqttSettings:
    """`mqtt://[user[:password]@]host[:port]` (or `mqtts://`) as MqttSettings; a clear error otherwise."""
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "mqtts", "tcp") or not parsed.hostname:
        raise ValueError(f"--floor-broker {url!r}: expected mqtt://host[:port] (or mqtts://)")
    try:
        port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
    except ValueError:
        raise ValueError(f"--floor-broker {url!r}: the port is not a number") from None
    data: dict[str, Any] = {"host": parsed.hostname, "port": port, "tls": parsed.scheme == "mqtts"}
    if parsed.username:
        data["username"] = parsed.username
    if parsed.password:
        data["password"] = parsed.password
    return MqttSettings.model_validate(data)


def listen(settings: MqttSettings, seconds: float, *, ask: bool = True) -> Discovery:
    """Subscribe to the announcement topics for `seconds` (retained announcements arrive at once)."""
    discovery = Discovery()
    lock = threading.Lock()

    def on_message(message: Incoming) -> None:
        with lock:
            discovery.observe(message.topic, message.payload)

    # a client id of its own: two runs started in the same second would take each other's session over
    client = MqttClient(settings, f"floorwatch-discover-{uuid.uuid4().hex[:12]}", on_message=on_message)
    for topic_filter in FILTERS:
        client.subscribe(topic_filter, 0)
    client.start()
    if not client.wait_connected(10):
        client.stop()
        raise ConnectionError(f"cannot connect to the floor broker {settings.host}:{settings.port}")
    if ask:
        for topic, payload in ASK:
            client.publish(topic, payload, 0, False)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    client.stop()
    return discovery


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="floorwatch edge discover",
                                     description="List the devices announcing themselves on a floor broker.")
    parser.add_argument("--floor-broker", required=True, metavar="URL", help="mqtt://host[:port]")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to listen (default 60)")
    parser.add_argument("--out", type=Path, default=None, help="folder for edge-draft.yaml and site-draft.yaml")
    parser.add_argument("--site", default="site", help="site id for the draft")
    parser.add_argument("--edge", default="edge-1", help="edge id for the drafts")
    parser.add_argument("--passive", action="store_true",
                        help="only listen: do not ask Tasmota (Status) and Shelly Gen1 (announce) devices")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 3600:
        print("--seconds must be between 0 and 3600", file=sys.stderr)
        return 2
    try:
        settings = broker_settings(args.floor_broker)
        discovery = listen(settings, args.seconds, ask=not args.passive)
    except (ValueError, ConnectionError) as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    print(discovery.table())
    print(f"{len(discovery.found)} device(s) heard in {args.seconds:g} s"
          + (f"; {discovery.ignored} unreadable announcement(s)" if discovery.ignored else ""))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "edge-draft.yaml").write_text(discovery.edge_yaml(args.site, args.edge, settings))
        (args.out / "site-draft.yaml").write_text(discovery.site_yaml(args.edge))
        print(f"drafts written to {args.out / 'edge-draft.yaml'} and {args.out / 'site-draft.yaml'}")
    return 0
