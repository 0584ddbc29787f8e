"""The Floorwatch wire contract, version 1: topics, payload models, QoS and retain, limits, codec.

This module is the only place that knows a canonical topic string or payload shape. Edge agents,
the server, simulators and tests import from here; nothing else builds a `floorwatch/v1/...` string.

Payload models tolerate unknown fields of the same major version (a newer edge may add a field);
configuration models elsewhere forbid unknown keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    ValidationError,
)

VERSION: Final = 1
ROOT: Final = "floorwatch/v1"
MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_BATCH_ITEMS: Final = 1000
MAX_METRICS_PER_READING: Final = 64

ID_RE: Final = re.compile(r"^[a-z0-9-]{1,64}$")
# Site-level topic words that therefore cannot be edge ids (see `site_topic`).
RESERVED_EDGE_IDS: Final = frozenset({"notices", "alarms"})


# --------------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC datetime: a validation error, not a crash
        raise ValueError("time is out of range once converted to UTC") from None


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-29T03:00:05.120Z``."""
    value = value.astimezone(UTC)
    # Not strftime: glibc's %Y does not pad years before 1000, which the decoder then rejects.
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond // 1000:03d}Z")


UtcTime = Annotated[
    AwareDatetime,
    AfterValidator(_utc),
    PlainSerializer(format_time, return_type=str, when_used="json"),
]
"""A timezone-aware instant, normalised to UTC; a naive time is rejected (it has no meaning on a wire)."""

Id = Annotated[str, Field(pattern=ID_RE.pattern)]
"""Site and edge ids: they are topic segments, so lower-case letters, digits and hyphens only."""

DeviceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
"""Stable device ids assigned in the edge configuration (not the vendor's name)."""

MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

FiniteNumber = Annotated[float, Field(allow_inf_nan=False, strict=True)]
# Booleans first: in strict mode `true` is never read as 1, and "12" (a string) is never read as 12.
MetricValue = StrictBool | StrictInt | FiniteNumber
Seq = Annotated[int, Field(ge=0, le=2**53 - 1, strict=True)]

class DeviceKind(StrEnum):
    """The kinds of device the edge configuration and the site model both speak of."""

    SMART_PLUG = "smart_plug"
    STRIP_METER = "strip_meter"
    SMOKE_DETECTOR = "smoke_detector"
    TEMP_SENSOR = "temp_sensor"
    DOOR_CONTROLLER = "door_controller"
    MR_PROBE = "mr_probe"
    LEAK_SENSOR = "leak_sensor"
    SIREN = "siren"
    MANUAL_CALL_POINT = "manual_call_point"


KNOWN_METRICS: Final = frozenset(
    {
        "power_w", "current_a", "voltage_v", "energy_wh", "power_factor", "relay_on", "device_temp_c",
        "temperature_c", "humidity_pct", "smoke", "smoke_obscuration_pct", "co_ppm", "water_leak",
        "door_open", "tamper", "battery_pct", "rssi_dbm",
        # Additions within v1 (additive, see docs/contract.md): door lock read-back, detector flags.
        "door_locked", "battery_low", "detector_fault", "siren_on",
    }
)
"""Metrics the rules understand. Unknown metrics are stored, not rejected."""


class _Payload(BaseModel):
    """Base of every wire payload: unknown fields from the same major version are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


M = TypeVar("M", bound=_Payload)


# --------------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------------


class Reading(_Payload):
    device: DeviceId
    ts: UtcTime
    metrics: dict[MetricName, MetricValue] = Field(min_length=1, max_length=MAX_METRICS_PER_READING)


class _Batch(_Payload):
    """The envelope telemetry and event batches share: `(edge, seq)` is the de-duplication key, and one
    edge's telemetry and events draw their `seq` from one counter (contract-v1.md)."""

    v: Literal[1] = 1
    edge: Id
    seq: Seq
    sent_at: UtcTime


class TelemetryBatch(_Batch):
    readings: list[Reading] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class EventType(StrEnum):
    ACCESS_GRANTED = "access_granted"
    ACCESS_DENIED = "access_denied"
    DOOR_FORCED = "door_forced"
    DOOR_HELD_OPEN = "door_held_open"
    DOOR_CLOSED = "door_closed"
    MANUAL_CALL_POINT = "manual_call_point"
    DETECTOR_ALARM = "detector_alarm"
    DETECTOR_CLEAR = "detector_clear"
    DETECTOR_FAULT = "detector_fault"
    TAMPER = "tamper"
    INTERLOCK_TRIPPED = "interlock_tripped"
    BUFFER_OVERFLOW = "buffer_overflow"
    # Additions within v1 (additive): door state and lock read-back, request-to-exit, and the edge's
    # own supervision of devices that fall silent or come back.
    DOOR_OPENED = "door_opened"
    DOOR_LOCKED = "door_locked"
    DOOR_UNLOCKED = "door_unlocked"
    REQUEST_TO_EXIT = "request_to_exit"
    DEVICE_OFFLINE = "device_offline"
    DEVICE_ONLINE = "device_online"
    WATER_LEAK = "water_leak"
    WATER_LEAK_CLEAR = "water_leak_clear"
    # A device that is in no configuration announced itself on the floor broker (ad-hoc wiring, S02).
    UNKNOWN_DEVICE = "unknown_device"
    # A Zigbee2MQTT bridge (coordinator) went offline / came back: `device` is one configured device behind
    # it, `detail` JSON {"bridge": base topic, "devices": [ids]} (split over several events when long),
    # `count` the number of devices behind it. The server raises one supervision alarm per bridge.
    BRIDGE_OFFLINE = "bridge_offline"
    BRIDGE_ONLINE = "bridge_online"
    # A vendor payload the edge could not decode (rate-limited per device): `detail` is JSON
    # {"topic", "reason", "payload": its first bytes}, `count` the ones suppressed before it. The server
    # keeps it with its dead letters.
    DECODE_ERROR = "decode_error"


LIFE_SAFETY_EVENTS: Final = frozenset(
    {
        EventType.MANUAL_CALL_POINT, EventType.DETECTOR_ALARM, EventType.DETECTOR_FAULT,
        EventType.DOOR_FORCED, EventType.WATER_LEAK, EventType.TAMPER,
    }
)
"""Events an edge sends at once, never held back by batching."""


class Event(_Payload):
    device: DeviceId
    ts: UtcTime
    type: EventType
    badge: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    direction: Literal["in", "out"] | None = None
    count: Annotated[int, Field(ge=0, strict=True)] | None = None
    """How many: messages dropped for `buffer_overflow`, for example."""
    detail: Annotated[str, Field(max_length=500)] | None = None


class EventBatch(_Batch):
    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class EdgeState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class EdgeStatus(_Payload):
    v: Literal[1] = 1
    edge: Id
    state: EdgeState
    ts: UtcTime
    version: Annotated[str, Field(max_length=64)] = ""
    buffered: Annotated[int, Field(ge=0)] = 0
    decode_errors: Annotated[int, Field(ge=0)] = 0
    """Vendor payloads the edge could not decode since it started."""
    last_seq: Seq | None = None
    """The highest seq the edge has sent; lets the server see a gap at the tail of a stream."""


class Action(StrEnum):
    RELAY_OFF = "relay_off"
    RELAY_ON = "relay_on"
    DOOR_RELEASE = "door_release"
    DOOR_SECURE = "door_secure"
    SIREN_ON = "siren_on"
    SIREN_OFF = "siren_off"


class Command(_Payload):
    v: Literal[1] = 1
    id: Annotated[str, Field(min_length=1, max_length=64)]
    device: DeviceId
    action: Action
    reason: Annotated[str, Field(max_length=500)] = ""
    issued_at: UtcTime
    expires_at: UtcTime
    sig: Annotated[str, Field(max_length=200)] | None = None
    """HMAC signature `v1:<key_id>:<hex>` over the other fields (gateway/signing.py); addition within v1."""

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class CommandResult(_Payload):
    v: Literal[1] = 1
    id: Annotated[str, Field(min_length=1, max_length=64)]
    ok: bool
    ts: UtcTime
    error: Annotated[str, Field(max_length=500)] | None = None
    device: DeviceId | None = None
    reported: dict[MetricName, MetricValue] | None = None
    """What the device reported back after the command (e.g. relay_on=false), when it did."""
    sig: Annotated[str, Field(max_length=200)] | None = None
    """The edge's HMAC over the result with its command key (gateway/signing.py), when it holds one."""


class EvacuationState(StrEnum):
    ACTIVE = "active"
    ALL_CLEAR = "all_clear"


class Message(_Payload):
    zh: str
    en: str


class EvacuationNotice(_Payload):
    v: Literal[1] = 1
    id: Annotated[str, Field(min_length=1, max_length=64)]
    site: Id
    zones: list[Annotated[str, Field(min_length=1, max_length=64)]]
    state: EvacuationState
    drill: bool = False
    reason: Annotated[str, Field(max_length=500)] = ""
    issued_at: UtcTime
    message: Message


class Severity(StrEnum):
    WARNING = "warning"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class AlarmChange(_Payload):
    v: Literal[1] = 1
    id: int
    site: Id
    rule: str
    severity: Severity
    state: str
    device: str | None = None
    zone: str | None = None
    ts: UtcTime
    value: float | None = None
    message: str = ""
    message_zh: str = ""
    unit: str = ""
    """The unit of `value` and `peak` ("" for a count or none)."""
    raised_value: float | None = None
    """The value the alarm was raised at."""
    peak: float | None = None
    """The worst value as of this change."""


# --------------------------------------------------------------------------------------------------
# Topics: one table says which model, QoS and retain flag each channel carries
# --------------------------------------------------------------------------------------------------


class Channel(StrEnum):
    """Per-edge channels: ``floorwatch/v1/{site}/{edge}/{channel}``."""

    TELEMETRY = "telemetry"
    EVENTS = "events"
    STATUS = "status"
    COMMANDS = "commands"
    COMMAND_RESULT = "commands/result"


class SiteChannel(StrEnum):
    """Per-site channels: ``floorwatch/v1/{site}/{channel}[/{key}]``."""

    EVACUATION = "notices/evacuation"
    ALARMS = "alarms"


@dataclass(frozen=True, slots=True)
class Delivery:
    model: type[_Payload]
    qos: int
    retain: bool


DELIVERY: Final[Mapping[Channel | SiteChannel, Delivery]] = {
    Channel.TELEMETRY: Delivery(TelemetryBatch, 1, False),
    Channel.EVENTS: Delivery(EventBatch, 1, False),
    Channel.STATUS: Delivery(EdgeStatus, 1, True),
    Channel.COMMANDS: Delivery(Command, 1, False),
    Channel.COMMAND_RESULT: Delivery(CommandResult, 1, False),
    SiteChannel.EVACUATION: Delivery(EvacuationNotice, 1, True),
    SiteChannel.ALARMS: Delivery(AlarmChange, 1, False),
}


class ContractError(ValueError):
    """A topic or payload that does not follow the contract; the message says why."""


def _check_id(kind: str, value: str) -> None:
    if not ID_RE.match(value):
        raise ContractError(f"{kind} id {value!r} must match [a-z0-9-]{{1,64}}")


def edge_topic(site: str, edge: str, channel: Channel) -> str:
    _check_id("site", site)
    _check_id("edge", edge)
    if edge in RESERVED_EDGE_IDS:
        raise ContractError(f"edge id {edge!r} is reserved for site-level topics")
    return f"{ROOT}/{site}/{edge}/{channel.value}"


def site_topic(site: str, channel: SiteChannel, key: str | None = None) -> str:
    _check_id("site", site)
    if channel is SiteChannel.ALARMS:
        if key is None:
            raise ContractError("an alarm topic needs the alarm id")
        return f"{ROOT}/{site}/alarms/{key}"
    return f"{ROOT}/{site}/{channel.value}"


def edge_filter(channel: Channel, site: str = "+", edge: str = "+") -> str:
    """A subscription filter for one channel of every (or one) site and edge."""
    return f"{ROOT}/{site}/{edge}/{channel.value}"


def site_filter(channel: SiteChannel, site: str = "+") -> str:
    suffix = "/+" if channel is SiteChannel.ALARMS else ""
    return f"{ROOT}/{site}/{channel.value}{suffix}"


SERVER_INBOUND: Final = (Channel.TELEMETRY, Channel.EVENTS, Channel.STATUS, Channel.COMMAND_RESULT)
"""The channels the server consumes from edges."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where a canonical message came from, parsed out of its topic."""

    site: str
    channel: Channel | SiteChannel
    edge: str | None = None
    key: str | None = None


def parse_topic(topic: str) -> Route:
    """Parse any canonical topic; raises ContractError naming what is wrong."""
    prefix = ROOT + "/"
    if not topic.startswith(prefix):
        raise ContractError(f"topic {topic!r} is not under {ROOT}/")
    parts = topic[len(prefix):].split("/")
    if len(parts) < 2:
        raise ContractError(f"topic {topic!r} has no channel")
    site = parts[0]
    _check_id("site", site)
    rest = "/".join(parts[1:])
    if rest == SiteChannel.EVACUATION.value:
        return Route(site, SiteChannel.EVACUATION)
    if parts[1] == "alarms":
        if len(parts) != 3 or not parts[2]:
            raise ContractError(f"topic {topic!r}: alarm topics are {ROOT}/<site>/alarms/<id>")
        return Route(site, SiteChannel.ALARMS, key=parts[2])
    edge = parts[1]
    _check_id("edge", edge)
    tail = "/".join(parts[2:])
    try:
        channel = Channel(tail)
    except ValueError:
        raise ContractError(f"topic {topic!r}: unknown channel {tail!r}") from None
    return Route(site, channel, edge=edge)


# --------------------------------------------------------------------------------------------------
# Codec
# --------------------------------------------------------------------------------------------------


def encode(payload: _Payload) -> bytes:
    """The bytes to publish. Fields left at None are omitted to keep messages small."""
    data = payload.model_dump_json(exclude_none=True).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload is {len(data)} bytes, over the {MAX_PAYLOAD_BYTES} byte limit")
    return data


def describe(error: ValidationError, limit: int = 3) -> str:
    """A short, human reason from a pydantic error: the paths and messages of the first few problems."""
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def decode_payload(model: type[M], payload: bytes) -> M:
    """Validate one payload against its model; ContractError with a readable reason otherwise."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} byte limit")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise ContractError(describe(exc)) from None


def decode(topic: str, payload: bytes) -> tuple[Route, _Payload]:
    """Parse the topic and validate the payload with the model the topic names."""
    route = parse_topic(topic)
    message = decode_payload(DELIVERY[route.channel].model, payload)
    payload_edge = getattr(message, "edge", route.edge)
    if route.edge is not None and payload_edge != route.edge:
        raise ContractError(f"payload edge {payload_edge!r} does not match topic edge {route.edge!r}")
    return route, message


@dataclass(frozen=True, slots=True)
class Rejected:
    """One item of a batch that failed validation, with where it was and why."""

    index: int
    reason: str
    raw: Any


B = TypeVar("B", TelemetryBatch, EventBatch)


@dataclass(frozen=True, slots=True)
class PartialBatch(Generic[B]):
    """A batch whose envelope is valid, with the items that validated and those that did not."""

    batch: B | None
    """None when no item was valid (the envelope's edge and seq are still known)."""
    edge: str
    seq: int
    rejected: list[Rejected]


_ITEMS: Final[dict[type[_Payload], tuple[str, type[_Payload]]]] = {
    TelemetryBatch: ("readings", Reading),
    EventBatch: ("events", Event),
}


def decode_batch(model: type[B], payload: bytes) -> PartialBatch[B]:
    """Decode a telemetry or event batch, keeping the valid items when some are bad.

    The fast path validates the whole batch at once. Only when that fails does it look item by item,
    so that one bad reading never costs the valid readings beside it (contract-v1.md §4). An envelope
    that is itself bad (no edge, no seq, too many items, not JSON) raises ContractError.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} byte limit")
    try:
        batch = model.model_validate_json(payload)
        return PartialBatch(batch, batch.edge, batch.seq, [])
    except ValidationError as whole_error:
        field, item_model = _ITEMS[model]
        try:
            raw = json.loads(payload)
        except ValueError as exc:
            raise ContractError(f"not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ContractError("payload: must be a JSON object") from None
        items = raw.get(field)
        if not isinstance(items, list) or not items or len(items) > MAX_BATCH_ITEMS:
            raise ContractError(describe(whole_error)) from None
        good: list[Any] = []
        rejected: list[Rejected] = []
        for index, item in enumerate(items):
            try:
                good.append(item_model.model_validate(item))
            except ValidationError as exc:
                rejected.append(Rejected(index, f"{field}.{index}: {describe(exc)}", item))
        envelope = {k: v for k, v in raw.items() if k != field}
        try:
            # Validate the envelope with a stand-in item so that its own errors are reported.
            checked = model.model_validate({**envelope, field: good or [_PLACEHOLDER[model]]})
        except ValidationError as exc:
            raise ContractError(describe(exc)) from None
        batch_out = checked if good else None
        return PartialBatch(batch_out, checked.edge, checked.seq, rejected)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PLACEHOLDER: Final[dict[type[_Payload], _Payload]] = {
    TelemetryBatch: Reading(device="placeholder", ts=_EPOCH, metrics={"placeholder": 0}),
    EventBatch: Event(device="placeholder", ts=_EPOCH, type=EventType.TAMPER),
}


# --------------------------------------------------------------------------------------------------
# JSON Schema for firmware written in other languages
# --------------------------------------------------------------------------------------------------

PAYLOAD_MODELS: Final[dict[str, type[_Payload]]] = {
    model.__name__: model
    for model in (TelemetryBatch, EventBatch, EdgeStatus, Command, CommandResult, EvacuationNotice, AlarmChange)
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of every payload, keyed by model name, as the wire carries it."""
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in PAYLOAD_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://floorwatch.dev/schemas/v{VERSION}/{name}.json"
        schemas[name] = schema
    return schemas
