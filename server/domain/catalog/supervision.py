"""RULES.md §2.7 supervision and plausibility (`sup.*`, `sensor.*`),
and the server's own supervision: one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.contract import Severity
from server.domain.catalog.spec import (
    IN_MACHINE_ROOM,
    AlarmDoc,
    Check,
    Measure,
    Param,
    Place,
    RuleSpec,
    Worse,
    paged_at_any_severity,
)

OFFLINE_PARAMS: Mapping[str, Param] = MappingProxyType({"offline_s": Param(200, "s")})
"""Silent this long is offline: NFPA 72's trouble deadline, shared by the devices aligned with smoke detectors."""


def silent_device(
    rule: str,
    section: str,
    title: str,
    title_zh: str,
    severities: tuple[Severity, ...],
    source: str,
    *paged: str,
    doc: AlarmDoc,
    life_safety: bool = False,
    raised_in: Mapping[str, tuple[Place, ...]] | None = None,
) -> RuleSpec:
    """A device that watches over life safety, offline after `OFFLINE_PARAMS`: its silence degrades a
    life-safety function; `paged` are paged at any severity."""
    return RuleSpec(
        rule,
        section,
        title,
        title_zh,
        severities,
        source,
        Check.READINGS,
        params=OFFLINE_PARAMS,
        life_safety=life_safety,
        pages=paged_at_any_severity(*paged),
        degrades_life_safety=True,
        device_offline=True,
        doc=doc,
        raised_in=raised_in or {},
    )


def _server_watch(rule: str, title: str, title_zh: str, *, doc: AlarmDoc) -> RuleSpec:
    """A loss in the server's own pipeline: IT and the supervisor are paged."""
    return RuleSpec(
        rule,
        "2.7",
        title,
        title_zh,
        (Severity.MAJOR,),
        "",
        Check.SERVER,
        pages=paged_at_any_severity("it", "supervisor"),
        measure=Measure(""),
        doc=doc,
    )


RULES: tuple[RuleSpec, ...] = (
    silent_device(
        "sup.smoke_offline",
        "2.7",
        "Smoke detector offline",
        "烟感离线",
        (Severity.MAJOR, Severity.CRITICAL),
        (
            "NFPA 72 trouble within 200 s (**unverified**, §8); GB 4717: wired-loop fault shown within 100 s [R11]; "
            "GB 26875.1: fire, supervisory and fault signals transmitted within 10 s [R12]"
        ),
        "shift_lead",
        "facilities",
        life_safety=True,
        doc=AlarmDoc(
            subject="smoke_detector id; the zone id when its edge is offline (one per zone)",
            zone="the zone",
            ends="the detector (or the edge) reports again",
            severity="major; critical when its zone or an adjacent one is in alarm",
        ),
    ),
    RuleSpec(
        "sup.smoke_offline_lpwan",
        "2.7",
        "Battery smoke detector missed heartbeats",
        "无线烟感心跳丢失",
        (Severity.MAJOR, Severity.CRITICAL),
        (
            "UFGS radio transmitters: automatic test signal at least once per 24 h [R30]; GB/T 45839-2025 now covers "
            "networking of standalone alarms [R13]"
        ),
        Check.READINGS,
        params={
            "extra_s": Param(300, "s"),
            "max_heartbeat_s": Param(3600, "s"),
        },
        site_wide=frozenset(["max_heartbeat_s"]),
        life_safety=True,
        pages=paged_at_any_severity("shift_lead", "facilities"),
        degrades_life_safety=True,
        device_offline=True,
        doc=AlarmDoc(
            subject="smoke_detector id (`heartbeat_s` > 60)",
            zone="the detector's zone",
            ends="the detector reports again",
            severity="major; critical when its zone or an adjacent one is in alarm",
        ),
    ),
    silent_device(
        "sup.probe_offline",
        "2.7",
        "Machine-room probe offline",
        "机房探头离线",
        (Severity.MAJOR,),
        "Aligned with sup.smoke_offline",
        "mr_duty",
        life_safety=True,  # the probe carries the machine room's smoke (mr.smoke): offline, the room is blind
        raised_in=IN_MACHINE_ROOM,
        doc=AlarmDoc(
            subject="mr_probe id",
            zone="the probe's zone (its machine room)",
            ends="the probe reports again",
        ),
    ),
    RuleSpec(
        "sup.sensor_offline",
        "2.7",
        "Device offline",
        "设备离线",
        (Severity.MINOR,),
        "N-missed-heartbeats pattern (e.g., telecare device: 4 h heartbeat, failure after 18 missed) [R30]",
        Check.READINGS,
        params={
            "intervals": Param(3, "count"),
            "min_s": Param(900, "s"),
        },
        device_offline=True,
        doc=AlarmDoc(
            subject="device id (every other kind)",
            zone="the device's zone",
            ends="the device reports again",
        ),
    ),
    RuleSpec(
        "sup.gateway_offline",
        "2.7",
        "Edge gateway offline",
        "边缘网关离线",
        (Severity.MAJOR,),
        "—",
        Check.READINGS,
        params={
            "fraction": Param(0.5, "fraction"),
            "window_s": Param(60, "s"),
        },
        site_wide=frozenset(["fraction", "window_s"]),
        pages=paged_at_any_severity("facilities", "shift_lead"),
        measure=Measure(""),
        doc=AlarmDoc(
            subject="edge id",
            zone="none",
            ends="the edge reports online or any of its devices reports (the still silent ones: one alarm each)",
        ),
    ),
    RuleSpec(
        "sup.notify_channel",
        "2.7",
        "Push channel failing",
        "推送通道故障",
        (Severity.MAJOR,),
        'S24 ("确保应急处置信息畅通", keep emergency information flowing)',
        Check.READINGS,
        params={
            "failures": Param(3, "count"),
        },
        site_wide=frozenset(["failures"]),
        pages=paged_at_any_severity("it", "supervisor"),
        measure=Measure(""),
        doc=AlarmDoc(
            subject="the channel: `<scheme>:<hash of the URL>` (never the URL, which holds tokens)",
            zone="none",
            ends="the channel delivers again",
        ),
    ),
    RuleSpec(
        "sensor.temp_sentinel",
        "2.7",
        "Temperature sensor fault value",
        "温度传感器故障值",
        (Severity.MINOR,),
        "DS18B20 power-on reset +85 °C [R29]; DallasTemperature error codes [R29]",
        Check.READINGS,
        params={
            "power_on_c": Param(85.0, "°C"),
            "indoor_min_c": Param(-40.0, "°C"),
        },
        measure=Measure("°C", Worse.EITHER),
        doc=AlarmDoc(
            subject="temp_sensor or mr_probe id",
            zone="the device's zone",
            ends="a plausible reading",
        ),
    ),
    RuleSpec(
        "sensor.temp_jump",
        "2.7",
        "Temperature jump (suspected sensor fault)",
        "温度突变(疑似传感器故障)",
        (Severity.MAJOR,),
        (
            "Fire-driven rise at a room sensor is normally a few °C/min (A1 rate-of-rise algorithm switches at 4 "
            "°C/min [R9])"
        ),
        Check.READINGS,
        params={
            "jump_c": Param(15, "°C"),
            "max_gap_s": Param(60, "s"),
            "neighbour_c": Param(2, "°C"),
        },
        measure=Measure("°C", Worse.EITHER),
        doc=AlarmDoc(
            subject="temp_sensor or mr_probe id",
            zone="the device's zone",
            ends="a person marks it checked, or smoke corroborates it (then `fire.heat_alarm`)",
        ),
    ),
    RuleSpec(
        "sensor.temp_out_of_range",
        "2.7",
        "Temperature outside the sensor's range",
        "温度超出传感器量程",
        (Severity.MAJOR,),
        "Range failure = fault [R29]",
        Check.READINGS,
        measure=Measure("°C", Worse.EITHER),
        doc=AlarmDoc(
            subject="temp_sensor or mr_probe id (outside `range_c`)",
            zone="the device's zone",
            ends="back in range",
        ),
    ),
    RuleSpec(
        "sensor.stuck",
        "2.7",
        "Sensor value stuck",
        "传感器读数不变",
        (Severity.MINOR,),
        "Building-analytics rule: an invariant point means a failed sensor (15-min delay in an HVAC context) [R29]",
        Check.READINGS,
        params={
            "temp_s": Param(21600, "s"),
            "voltage_s": Param(86400, "s"),
            "lsb": Param(0.01, "metric's unit"),
        },
        doc=AlarmDoc(
            subject="temp_sensor, mr_probe or smart_plug id",
            zone="the device's zone",
            ends="the value moves",
        ),
    ),
    RuleSpec(
        "sensor.rh_implausible",
        "2.7",
        "Implausible humidity",
        "湿度读数不合理",
        (Severity.MINOR,),
        "—",
        Check.READINGS,
        params={
            "high_pct": Param(99, "% RH"),
            "hold_s": Param(3600, "s"),
        },
        measure=Measure("% RH", Worse.EITHER),
        doc=AlarmDoc(
            subject="temp_sensor or mr_probe id",
            zone="the device's zone",
            ends="RH plausible again",
        ),
    ),
    RuleSpec(
        "sensor.tamper",
        "2.7",
        "Device tampered with",
        "设备被拆动",
        (Severity.MAJOR,),
        "EN 54-5 head-removal fault [R9]",
        Check.READINGS,
        pages=paged_at_any_severity("facilities", "shift_lead"),
        doc=AlarmDoc(
            subject="device id (not a smoke detector or door, which have their own rules)",
            zone="the device's zone",
            ends="the tamper flag goes away",
        ),
    ),
    _server_watch(
        "sup.message_loss",
        "Messages lost from an edge",
        "边缘网关消息丢失",
        doc=AlarmDoc(
            subject="edge id (value: messages lost)",
            zone="none",
            ends="a person closes it",
            severity="major, one-off",
        ),
    ),
    _server_watch(
        "sup.series_dropped",
        "Time-series points dropped",
        "时序数据丢弃",
        doc=AlarmDoc(
            subject="`timeseries` (value: time-series points dropped so far)",
            zone="none",
            ends="the store writes again and the buffer has room (docs/reliability.md §6.1.1)",
        ),
    ),
)
