"""The edge agent's configuration: one YAML file, validated with pydantic.

Unknown keys are errors (a typo such as `rated_amps:` must not silently become "no rating"), and
every error names the file, the line and the field, because the person reading it is standing in
a machine room with a laptop, not reading a traceback.

Shape (simulators and the server read the same file):

    site: hq
    edge: edge-f3
    uplink: {host: 127.0.0.1, port: 1883}        # gateway.mqtt.MqttSettings fields
    floor_broker: {host: 127.0.0.1, port: 1883}  # where the devices publish
    buffer: {path: var/edge-f3-buffer.sqlite, max_messages: 100000}
    batch: {max_readings: 200, max_age_ms: 500}
    supervision: {silent_after_intervals: 3}
    interlocks: {plug_overload: {enabled: true, ratio: 1.25, hold_s: 10}, smoke_siren: {enabled: true}}
    commands: {confirm_timeout_s: 5, key_file: keys/edge-f3.key}  # key: only signed commands run
    devices:
      - {id: plug-f3-s001, kind: smart_plug, zone: f3-z1, vendor: shelly, address: shellyplugsg3-a1b2c3,
         rated_a: 10, cuttable: true}
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway import contract
from gateway.mqtt import MqttSettings
from gateway.yamlfile import YamlDoc, YamlFileError, parse_yaml, read_yaml, validate


class ConfigError(YamlFileError):
    """The configuration is invalid; `problems` (and `str()`) list each as `file:line: field: message`."""


Kind = contract.DeviceKind
"""Device kinds, shared with the server's site model (gateway.contract)."""


class Vendor(StrEnum):
    SHELLY = "shelly"
    TASMOTA = "tasmota"
    ZIGBEE2MQTT = "zigbee2mqtt"
    GENERIC = "generic"
    ESP_RFID = "esp-rfid"


# Which device kinds each dialect can speak for (a Shelly plug cannot be a smoke detector).
VENDOR_KINDS: dict[Vendor, frozenset[Kind]] = {
    Vendor.SHELLY: frozenset({Kind.SMART_PLUG, Kind.STRIP_METER, Kind.TEMP_SENSOR}),
    Vendor.TASMOTA: frozenset({Kind.SMART_PLUG, Kind.STRIP_METER, Kind.TEMP_SENSOR, Kind.MR_PROBE,
                               Kind.DOOR_CONTROLLER}),
    Vendor.ZIGBEE2MQTT: frozenset({
        Kind.SMOKE_DETECTOR, Kind.TEMP_SENSOR, Kind.LEAK_SENSOR, Kind.SIREN, Kind.DOOR_CONTROLLER,
        Kind.MR_PROBE,
    }),
    Vendor.GENERIC: frozenset({
        Kind.DOOR_CONTROLLER, Kind.MR_PROBE, Kind.MANUAL_CALL_POINT, Kind.SMOKE_DETECTOR, Kind.LEAK_SENSOR,
        Kind.TEMP_SENSOR,
    }),
    Vendor.ESP_RFID: frozenset({Kind.DOOR_CONTROLLER}),
}
TASMOTA_READERS = ("RDM6300", "PN532", "Wiegand")
"""Tasmota RFID reader drivers whose SENSOR object carries the card's UID."""

METERED_KINDS = frozenset({Kind.SMART_PLUG, Kind.STRIP_METER})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BufferConfig(_Strict):
    path: Path = Path("var/edge-buffer.sqlite")
    """SQLite file of the store-and-forward queue; relative paths are relative to the config file."""
    max_messages: int = Field(100_000, ge=10, le=50_000_000)
    """Bound of the queue in messages (each is a batch); the oldest are dropped beyond it."""


class BatchConfig(_Strict):
    max_readings: int = Field(200, ge=1, le=contract.MAX_BATCH_ITEMS)
    max_age_ms: int = Field(500, ge=1, le=60_000)


class SupervisionConfig(_Strict):
    silent_after_intervals: float = Field(3, gt=0, le=1000)
    """A device with `reporting_interval_s` that sends nothing for this many intervals is offline."""
    status_interval_s: float = Field(30, gt=0, le=3600)
    """How often the retained EdgeStatus is refreshed (also whenever the uplink connects)."""
    report_unknown_devices: bool = True
    """Report a device that announces itself on the floor broker but is in no configuration (a private
    metering strip, an unregistered plug: ad-hoc wiring, elec.strip_cascade). Turn off only where several
    edges share one floor broker, since each would report the others' devices."""


class PlugOverloadConfig(_Strict):
    enabled: bool = True
    ratio: float = Field(1.25, gt=1.0, le=10)
    hold_s: float = Field(10, ge=0, le=3600)


class SmokeSirenConfig(_Strict):
    enabled: bool = True
    duration_s: int = Field(300, ge=1, le=3600)
    """How long the siren sounds per trigger (the siren's own timer: it stops even if the edge dies)."""


class InterlocksConfig(_Strict):
    plug_overload: PlugOverloadConfig = PlugOverloadConfig()
    smoke_siren: SmokeSirenConfig = SmokeSirenConfig()


class CommandsConfig(_Strict):
    confirm_timeout_s: float = Field(5, gt=0, le=120)
    """How long to wait for the device's own state report before answering `no confirmation`."""
    key_file: Path | None = None
    """This edge's command key (hex, from `floorwatch keys`, mode 600). Set: only commands signed with it
    (or `previous_key_file`) run; the rest are answered `bad_signature`. Unset: commands are unsigned and
    the broker's ACL is the only check (the embedded demo on loopback). Relative to the config file."""
    previous_key_file: Path | None = None
    """The key before the last rotation, accepted as well until the server signs with the new one."""

    @model_validator(mode="after")
    def _check(self) -> CommandsConfig:
        if self.previous_key_file is not None and self.key_file is None:
            raise ValueError("previous_key_file needs key_file (the current key)")
        return self


DeviceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
TopicPart = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^#+/\x00]+$")]
TASMOTA_FULL_TOPIC = "%prefix%/%topic%/"
Z2M_BASE_TOPIC = "zigbee2mqtt"


def check_full_topic(value: str) -> str:
    """Tasmota's FullTopic: %prefix% and %topic% once each, other levels literal, ending in "/"."""
    if not value.endswith("/"):
        raise ValueError(f"full_topic {value!r} must end with '/' as in Tasmota (e.g. %prefix%/%topic%/)")
    levels = value[:-1].split("/")
    for token in ("%prefix%", "%topic%"):
        if levels.count(token) != 1:
            raise ValueError(f"full_topic {value!r} needs {token} exactly once, as a level of its own")
    for level in levels:
        if level not in ("%prefix%", "%topic%") and ("%" in level or not level or "+" in level or "#" in level):
            raise ValueError(f"full_topic {value!r}: level {level!r} is not supported; use %prefix%, %topic% "
                             "and fixed names (set %hostname%/%id% to the topic in Tasmota instead)")
    return value


class TasmotaPrefixes(_Strict):
    """Tasmota's Prefix1..3 (commands, status, telemetry)."""

    cmnd: TopicPart = "cmnd"
    stat: TopicPart = "stat"
    tele: TopicPart = "tele"


class TasmotaDialect(_Strict):
    full_topic: str = TASMOTA_FULL_TOPIC
    prefixes: TasmotaPrefixes = TasmotaPrefixes()
    state_text: tuple[TopicPart, TopicPart] = ("OFF", "ON")
    """Tasmota's StateText1 (off) and StateText2 (on)."""

    @model_validator(mode="after")
    def _check(self) -> TasmotaDialect:
        check_full_topic(self.full_topic)
        return self


class Zigbee2MqttDialect(_Strict):
    base_topic: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^#+\x00]+$")] = Z2M_BASE_TOPIC


class DialectsConfig(_Strict):
    """Edge-wide firmware settings; a device may override each for itself (several bridges, one broker)."""

    tasmota: TasmotaDialect = TasmotaDialect()
    zigbee2mqtt: Zigbee2MqttDialect = Zigbee2MqttDialect()


Z2M_SUFFIXES = ("availability", "set", "get")
"""Zigbee2MQTT's own levels after a friendly name (<name>/availability, <name>/set[/<attribute>], <name>/get)."""


def check_friendly_name(name: str) -> None:
    """A Zigbee2MQTT friendly name the bridge publishes under as itself: any number of levels, but not one
    that starts or ends with '/', lies under the bridge's own topics, or ends with one of its suffixes
    (its topics would be another device's: `x/availability` is where `x` says it is online)."""
    if name.startswith("/") or name.endswith("/"):
        raise ValueError(f"a Zigbee2MQTT friendly name cannot start or end with '/' (got {name!r})")
    if name == "bridge" or name.startswith("bridge/"):
        raise ValueError(f"{name!r} lies under the bridge's own topics (<base>/bridge/...); give the device's "
                         "friendly_name as Zigbee2MQTT shows it")
    last = name.rsplit("/", 1)[-1]
    if "/" in name and last in Z2M_SUFFIXES:
        raise ValueError(f"address is the friendly name alone, without Zigbee2MQTT's /{last} (got {name!r}: "
                         f"write {name.rsplit('/', 1)[0]!r})")


class DeviceConfig(_Strict):
    id: DeviceId
    kind: Kind
    zone: Annotated[str, Field(min_length=1, max_length=64)]
    vendor: Vendor
    address: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^#+\x00]+$")]
    """The vendor's own name: Shelly topic prefix, Tasmota topic, Zigbee2MQTT friendly name, generic name."""
    channel: Annotated[int, Field(ge=0, le=64)] | None = None
    """Vendor numbering: Shelly switch id (from 0), Tasmota POWER index (from 1). None = whole device."""
    rated_a: Annotated[float, Field(gt=0, le=125)] | None = None
    cuttable: bool = False
    """May the edge switch this plug off by itself (local overload interlock)?"""
    essential: bool = False
    """Never cut locally (PC, phone, door controller, network); wins over `cuttable`."""
    strip: DeviceId | None = None
    """The strip meter this plug is fed from (topology)."""
    siren: DeviceId | None = None
    """For smoke detectors: the local siren the edge sounds on alarm, even with the uplink down."""
    door_type: Annotated[str, Field(pattern=r"^(egress|office|machine_room|fire_door)$")] | None = None
    reporting_interval_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] | None = None
    """Expected interval between reports; silence for `silent_after_intervals` of them means offline."""
    full_topic: str | None = None
    """Tasmota: the device's FullTopic (default from `dialects.tasmota`)."""
    prefixes: TasmotaPrefixes | None = None
    """Tasmota: Prefix1..3 (default from `dialects.tasmota`)."""
    state_text: tuple[TopicPart, TopicPart] | None = None
    """Tasmota: StateText1 and StateText2, the words for off and on (default OFF, ON)."""
    sensor: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """Tasmota temperature probe: the sensor's JSON name (AM2301, SHT3X, BME280, DS18B20-2) or a DS18B20 Id."""
    base_topic: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^#+\x00]+$")] | None = None
    """Zigbee2MQTT: the bridge's base topic (default from `dialects.zigbee2mqtt`)."""
    gen: Annotated[int, Field(ge=1, le=4)] | None = None
    """Shelly: 1 for Gen1 firmware (`shellies/<address>/relay/<n>`), else Gen2+ RPC (the default)."""

    @property
    def tasmota(self) -> TasmotaDialect:
        """This device's Tasmota topic settings, defaults filled in."""
        return TasmotaDialect(full_topic=self.full_topic or TASMOTA_FULL_TOPIC,
                              prefixes=self.prefixes or TasmotaPrefixes(),
                              state_text=self.state_text or ("OFF", "ON"))

    @model_validator(mode="after")
    def _check(self) -> DeviceConfig:
        only = {"full_topic": Vendor.TASMOTA, "prefixes": Vendor.TASMOTA, "state_text": Vendor.TASMOTA,
                "sensor": Vendor.TASMOTA, "base_topic": Vendor.ZIGBEE2MQTT, "gen": Vendor.SHELLY}
        for name, vendor in only.items():
            if getattr(self, name) is not None and self.vendor is not vendor:
                raise ValueError(f"{name} applies to {vendor.value} devices, not {self.vendor.value}")
        if self.full_topic is not None:
            check_full_topic(self.full_topic)
        if self.state_text is not None and self.state_text[0] == self.state_text[1]:
            raise ValueError("state_text: the off and on words must differ")
        if self.vendor is Vendor.TASMOTA and self.kind in (Kind.TEMP_SENSOR, Kind.MR_PROBE) and not self.sensor:
            raise ValueError("a Tasmota temperature probe needs sensor: its JSON name (AM2301, SHT3X, "
                             "DS18B20-1, ...) or its DS18B20 Id, as shown in tele/<topic>/SENSOR")
        if self.vendor is Vendor.TASMOTA and self.kind is Kind.DOOR_CONTROLLER and self.sensor not in TASMOTA_READERS:
            raise ValueError(f"a Tasmota door controller is an RFID reader: sensor must be one of "
                             f"{', '.join(TASMOTA_READERS)}")
        if self.sensor is not None and self.kind not in (Kind.TEMP_SENSOR, Kind.MR_PROBE, Kind.DOOR_CONTROLLER):
            raise ValueError("sensor applies to Tasmota temp_sensor, mr_probe and door_controller devices")
        if self.vendor is Vendor.ZIGBEE2MQTT:
            check_friendly_name(self.address)
        if self.vendor is Vendor.SHELLY and self.gen == 1 and "/" in self.address:
            raise ValueError("a Shelly Gen1 address is its device id (shellyplug-s-040BAD), without '/'")
        if self.kind not in VENDOR_KINDS[self.vendor]:
            allowed = ", ".join(sorted(VENDOR_KINDS[self.vendor]))
            raise ValueError(f"vendor {self.vendor.value} cannot be a {self.kind.value} (only {allowed})")
        if self.cuttable and self.essential:
            raise ValueError("a device cannot be both cuttable and essential")
        if self.cuttable and self.kind is not Kind.SMART_PLUG:
            raise ValueError("only smart plugs can be cuttable")
        if self.rated_a is not None and self.kind not in METERED_KINDS:
            raise ValueError(f"rated_a applies to smart plugs and strip meters, not {self.kind.value}")
        if self.cuttable and self.rated_a is None:
            raise ValueError("a cuttable plug needs rated_a (the local overload interlock compares with it)")
        if self.siren is not None and self.kind not in (Kind.SMOKE_DETECTOR, Kind.MR_PROBE):
            raise ValueError("siren applies to smoke detectors and machine-room probes")
        if self.door_type is not None and self.kind is not Kind.DOOR_CONTROLLER:
            raise ValueError("door_type applies to door controllers")
        return self


class EdgeConfig(_Strict):
    site: contract.Id
    edge: contract.Id
    uplink: MqttSettings = MqttSettings()
    floor_broker: MqttSettings = MqttSettings()
    buffer: BufferConfig = BufferConfig()
    batch: BatchConfig = BatchConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    interlocks: InterlocksConfig = InterlocksConfig()
    commands: CommandsConfig = CommandsConfig()
    dialects: DialectsConfig = DialectsConfig()
    """Applied to every device of the vendor that does not set its own (see `parse_config`)."""
    devices: list[DeviceConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _dialects(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("devices"), list):
            data = {**data, "devices": [dict(d) if isinstance(d, dict) else d for d in data["devices"]]}
            _apply_dialects(data)
        return data

    def cross_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(location, message) of what no single key can say: reserved ids, duplicate ids and addresses,
        references to devices that are not configured. Each is placed on the line of the key at fault."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.edge in contract.RESERVED_EDGE_IDS:
            problems.append((("edge",), f"edge id {self.edge!r} is reserved; choose another"))
        by_id: dict[str, DeviceConfig] = {}
        seen_addresses: dict[tuple[str, str, str, int | None, str | None], str] = {}
        for i, device in enumerate(self.devices):
            if device.id in by_id:
                problems.append((("devices", i, "id"), f"device id {device.id!r} is used twice; ids are unique"))
            by_id[device.id] = device
            key = (device.vendor.value, device.base_topic or "", device.address, device.channel, device.sensor)
            if key in seen_addresses and device.kind is not Kind.STRIP_METER:
                other = seen_addresses[key]
                problems.append((("devices", i, "address"), f"devices {other!r} and {device.id!r} have the same "
                                 "vendor address; give each its own channel or sensor"))
            seen_addresses.setdefault(key, device.id)
        for i, device in enumerate(self.devices):
            if device.strip is not None:
                strip = by_id.get(device.strip)
                if strip is None or strip.kind is not Kind.STRIP_METER:
                    problems.append((("devices", i, "strip"), f"{device.strip!r} is not a configured strip_meter; "
                                     "add it under devices or fix the id"))
            if device.siren is not None:
                siren = by_id.get(device.siren)
                if siren is None or siren.kind is not Kind.SIREN:
                    problems.append((("devices", i, "siren"), f"{device.siren!r} is not a configured siren; add "
                                     "it under devices or fix the id"))
        return problems

    def device(self, device_id: str) -> DeviceConfig | None:
        return next((d for d in self.devices if d.id == device_id), None)


# --------------------------------------------------------------------------------------------------
# Loading with line numbers
# --------------------------------------------------------------------------------------------------


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None) -> EdgeConfig:
    """Validate YAML text; raises ConfigError naming `source`, the line and the field of each problem."""
    try:
        doc = parse_yaml(text, source, "the file must be a mapping with site, edge, devices, ...")
    except YamlFileError as exc:
        raise ConfigError(exc.problems) from None
    return config_from_doc(doc, base_dir)


def config_from_doc(doc: YamlDoc, base_dir: Path | None = None) -> EdgeConfig:
    """Validate a parsed edge file: schema errors and the cross-checks of what is valid, all at once."""
    if "edge" not in doc.data and set(doc.data) & {"floors", "zones", "people", "shifts", "roster"}:
        # The site file given for the edge's: one line, not one "unknown key" per section of it.
        raise ConfigError([doc.message((), "this is a site file (floors:, zones:, people: ...), not an edge agent's "
                                           "file: give the edge's file, the one with edge:, uplink:, floor_broker:")])
    checked = validate(doc, EdgeConfig, ("devices",), stand_ins={"site": "x", "edge": "x"})
    if checked.value is not None:
        for loc, message in checked.value.cross_problems():
            if not checked.about_dropped(message):
                doc.add(checked.place(loc), message)
    if doc.problems or checked.value is None:
        raise ConfigError(doc.problems)
    config = checked.value
    if base_dir is not None and not config.buffer.path.is_absolute():
        buffer = config.buffer.model_copy(update={"path": base_dir / config.buffer.path})
        config = config.model_copy(update={"buffer": buffer})
    if base_dir is not None:
        keys = {name: base_dir / path for name in ("key_file", "previous_key_file")
                if (path := getattr(config.commands, name)) is not None and not path.is_absolute()}
        if keys:
            config = config.model_copy(update={"commands": config.commands.model_copy(update=keys)})
        links = {link: _relative_tls(getattr(config, link), base_dir) for link in ("uplink", "floor_broker")}
        config = config.model_copy(update=links)
    return config


TLS_FILES = ("ca_file", "cert_file", "key_file")


def _relative_tls(settings: MqttSettings, base_dir: Path) -> MqttSettings:
    """A link's TLS files relative to the config file's folder, as the buffer and the command keys are (a
    service's working directory is not the folder of its file)."""
    update = {name: str(base_dir / value) for name in TLS_FILES
              if (value := getattr(settings, name)) is not None and not Path(value).is_absolute()}
    return settings.model_copy(update=update) if update else settings


def unreadable_tls_files(config: EdgeConfig) -> list[tuple[tuple[str, str], str]]:
    """(location, message) of each TLS file of the two links that this process cannot read: the agent
    would stop at its first connection with a traceback."""
    problems: list[tuple[tuple[str, str], str]] = []
    for link in ("uplink", "floor_broker"):
        settings: MqttSettings = getattr(config, link)
        for name in TLS_FILES:
            value = getattr(settings, name)
            if value is None:
                continue
            path = Path(value)
            if not path.is_file() or not os.access(path, os.R_OK):
                why = "no such file" if not path.exists() else "not a readable file"
                problems.append(((link, name), f"{path}: {why}; give the file's path (relative to this file's "
                                               "folder, or absolute) or remove the key"))
    return problems


_DIALECT_KEYS = {Vendor.TASMOTA.value: ("full_topic", "prefixes", "state_text"),
                 Vendor.ZIGBEE2MQTT.value: ("base_topic",)}


def _apply_dialects(data: dict[str, Any]) -> None:
    """Copy the edge-wide `dialects` settings into each device of the vendor that has none of its own,
    so that a driver reads one device's whole layout from the device. Malformed blocks are left for the
    validation to report with their line."""
    dialects, devices = data.get("dialects"), data.get("devices")
    if not isinstance(dialects, dict) or not isinstance(devices, list):
        return
    for device in devices:
        if not isinstance(device, dict):
            continue
        block = dialects.get(device.get("vendor"))
        if isinstance(block, dict):
            for key in _DIALECT_KEYS.get(str(device.get("vendor")), ()):
                if key in block and key not in device:
                    device[key] = block[key]


def config_message(path: str | Path, loc: tuple[str | int, ...], text: str) -> str:
    """`file:line: field: text` for a problem found after loading (e.g. while starting the agent)."""
    return read_yaml(path, "the file must be a mapping with site, edge, devices, ...").message(loc, text)


def load_config(path: str | Path) -> EdgeConfig:
    """Read and validate one YAML file. Relative buffer paths are taken relative to the file's folder."""
    path = Path(path)
    try:
        doc = read_yaml(path, "the file must be a mapping with site, edge, devices, ...")
    except YamlFileError as exc:
        raise ConfigError(exc.problems) from None
    return config_from_doc(doc, base_dir=path.resolve().parent)
