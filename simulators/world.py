"""The virtual floor in motion: device behaviour on a simulated clock, speaking vendor dialects.

Every random draw comes from a `random.Random` seeded by (run seed, device id, purpose), so a run is a
pure function of the floor, the scenario and the seed, whatever order devices are visited in.

Behaviour (quiet by default, so that a scenario's expected alarms are the only ones it causes):
- seat plugs: PC + monitor + phone by occupancy from the roster (50-400 W; standby 2-8 W when away),
  arrival a few minutes before the shift, departure a few minutes after it;
- printers: 15-25 W idle, 400-900 W bursts of 30-90 s while the zone is staffed;
- strip meters: the sum of their registered plugs plus anything unregistered plugged into them;
- office temperature and humidity by time of day; machine room under air conditioning (the compressor
  cycles), drifting towards ~38 degC with a time constant of 25 min when the AC fails;
- batteries drain slowly; door traffic (badge in/out at the main door) at shift changes;
- with `incidents: true` (demo mode): kettles and heaters on spare plugs, radio drop-outs, fire-door use.
"""

from __future__ import annotations

import heapq
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simulators.model import DeviceSpec, Floor
from simulators.vendors import generic, shelly, tasmota, zigbee2mqtt
from simulators.vendors.base import Publication

MAINS_V = 221.0


class World:
    """Clock, environment and the virtual devices of one floor."""

    def __init__(self, floor: Floor, seed: int, start: datetime, *, incidents: bool = False) -> None:
        self.floor = floor
        self.seed = seed
        self.start = start
        self.t = 0.0
        self.incidents = incidents
        self.local_tz = floor.tz
        self.extra_strip_load: dict[str, dict[str, float]] = {}
        """strip id -> label -> W of unregistered loads (daisy-chained strips, private appliances)."""
        self.mr_env: dict[str, MachineRoomEnv] = {}
        self._occupancy = self._occupancy_windows()
        self._zone_seats: dict[str, set[str]] = {}
        for spec in floor.devices.values():
            if spec.seat:
                self._zone_seats.setdefault(spec.zone, set()).add(spec.seat)
        self.devices: dict[str, VirtualDevice] = {}
        self.owner: dict[str, VirtualDevice] = {}
        """device id (from the floor files) -> the virtual device that speaks for it."""
        self._build()

    # ---- clock and randomness --------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def at(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def rng(self, *key: object) -> random.Random:
        return random.Random(":".join(str(k) for k in (self.seed, *key)))

    # ---- occupancy -------------------------------------------------------------------------------

    def _occupancy_windows(self) -> dict[str, list[tuple[float, float, str]]]:
        """seat -> [(arrive_t, leave_t, person)] relative to the run start, from the roster."""
        windows: dict[str, list[tuple[float, float, str]]] = {}
        for duty, begin, end in self.floor.duty_windows(self.start - timedelta(days=1), self.start + timedelta(days=2)):
            if duty.seat is None:
                continue
            arrive, leave = self._stay(duty.person, begin, end)
            windows.setdefault(duty.seat, []).append((arrive, leave, duty.person))
        return windows

    def _stay(self, person: str, begin: datetime, end: datetime) -> tuple[float, float]:
        """(arrive_t, leave_t) of one duty: a few minutes before its shift until a few minutes after it."""
        rng = self.rng("arrive", person, begin.isoformat())
        arrive = (begin - self.start).total_seconds() - rng.uniform(300, 1200)
        leave = (end - self.start).total_seconds() + rng.uniform(0, 900)
        return arrive, leave

    def occupied(self, seat: str | None, t: float) -> bool:
        if seat is None:
            return False
        return any(a <= t < b for a, b, _ in self._occupancy.get(seat, ()))

    def zone_staffed(self, zone: str, t: float) -> bool:
        return any(self.occupied(seat, t) for seat in self._zone_seats.get(zone, ()))

    def traffic(self, t0: float, t1: float) -> Iterable[tuple[float, str, str, str]]:
        """Background door traffic in [t0, t1): (t, person, direction, floor) at arrivals and departures."""
        floors = {z.id: z.floor for z in self.floor.zones.values()}
        for duty, begin, end in self.floor.duty_windows(self.at(t0) - timedelta(days=1), self.at(t1)):
            arrive, leave = self._stay(duty.person, begin, end)
            for when, direction in ((arrive, "in"), (leave, "out")):
                if t0 <= when < t1:
                    yield when, duty.person, direction, floors.get(duty.zone, "")

    def present(self, floor_id: str, t: float) -> list[str]:
        """Who is on the floor at t by the roster (seated or not), sorted: the people an evacuation moves."""
        floors = {z.id: z.floor for z in self.floor.zones.values()}
        here: set[str] = set()
        for duty, begin, end in self.floor.duty_windows(self.at(t) - timedelta(days=1), self.at(t)):
            arrive, leave = self._stay(duty.person, begin, end)
            if floors.get(duty.zone) == floor_id and arrive <= t < leave:
                here.add(duty.person)
        return sorted(here)

    # ---- environment -----------------------------------------------------------------------------

    def mains_v(self, t: float, rng: random.Random) -> float:
        hour = (self.at(t).astimezone(self.local_tz).hour + 0.0) / 24
        return MAINS_V + 2.5 * math.sin(2 * math.pi * (hour - 0.3)) + rng.gauss(0, 0.4)

    def office_temp(self, zone: str, t: float) -> float:
        local = self.at(t).astimezone(self.local_tz)
        hour = local.hour + local.minute / 60
        offset = (sum(map(ord, zone)) % 7) / 10  # zones differ a little, stably
        return 23.2 + offset + 0.8 * math.sin(2 * math.pi * (hour - 9) / 24)

    def office_rh(self, zone: str, t: float) -> float:
        return 46.0 + 4.0 * math.sin(2 * math.pi * (t / 86400.0)) + (sum(map(ord, zone)) % 5)

    def mr(self, zone: str) -> MachineRoomEnv:
        if zone not in self.mr_env:
            self.mr_env[zone] = MachineRoomEnv()
        return self.mr_env[zone]

    # ---- building the devices --------------------------------------------------------------------

    def _build(self) -> None:
        tasmota_groups: dict[str, list[DeviceSpec]] = {}
        for spec in self.floor.devices.values():
            if spec.vendor == "tasmota":
                tasmota_groups.setdefault(spec.address, []).append(spec)
        plug_loads: dict[str, PlugLoad] = {}
        for spec in self.floor.devices.values():
            if spec.kind == "smart_plug":
                plug_loads[spec.id] = PlugLoad(self, spec)
        self.plug_loads = plug_loads
        for spec in self.floor.devices.values():
            if spec.vendor == "tasmota":
                continue
            device = self._device_for(spec)
            if device is not None:
                self._register(device, [spec])
        for topic, specs in tasmota_groups.items():
            device = TasmotaDevice(self, topic, specs)
            self._register(device, specs)

    def _device_for(self, spec: DeviceSpec) -> VirtualDevice | None:
        if spec.vendor == "shelly" and spec.kind == "smart_plug":
            return ShellyPlug(self, spec, self.plug_loads[spec.id])
        if spec.vendor == "zigbee2mqtt":
            return ZigbeeDevice(self, spec)
        if spec.vendor == "generic":
            if spec.kind == "door_controller":
                return AccessController(self, spec)
            if spec.kind == "manual_call_point":
                return CallPoint(self, spec)
            return Probe(self, spec)
        return None

    def _register(self, device: VirtualDevice, specs: list[DeviceSpec]) -> None:
        self.devices[device.key] = device
        for spec in specs:
            self.owner[spec.id] = device

    def add_unregistered_strip(self, topic: str, upstream: str, watts: float) -> VirtualDevice:
        """A strip that is on no register, plugged into `upstream` (daisy chain): it appears on the
        floor broker as an unknown Tasmota meter and its load shows on the upstream strip only."""
        spec = DeviceSpec(
            id=topic,
            kind="strip_meter",
            zone=self.floor.devices[upstream].zone,
            vendor="tasmota",
            address=topic,
            reporting_interval_s=10,
        )
        device = TasmotaDevice(self, topic, [spec], fixed_load_w=watts)
        self.devices[device.key] = device
        self.extra_strip_load.setdefault(upstream, {})[topic] = watts
        return device

    def strip_power(self, strip_id: str, t: float) -> tuple[float, float]:
        """(active power W, apparent power VA) through a strip: its registered plugs plus anything
        unregistered plugged into it (arithmetic sum of apparent powers: the loads' phase angles are close)."""
        p = s = 0.0
        for plug in self.floor.plugs_of_strip(strip_id):
            load = self.plug_loads[plug.id]
            watts = load.power(t)
            pf = load.power_factor(t)
            p += watts
            s += watts / pf if pf > 0 else 0.0
        for watts in self.extra_strip_load.get(strip_id, {}).values():
            p += watts
            s += watts / 0.9
        return p, s

    def schedule_incidents(self, t0: float, t1: float) -> list[tuple[float, str, str, float, float]]:
        """Demo mode: (t, kind, device id, watts, duration) of kettles and heaters on spare plugs while
        their strip's seats are staffed, and fire-door passages; a few per hour on a 200-seat floor."""
        out: list[tuple[float, str, str, float, float]] = []
        for spec in self.floor.devices.values():
            if spec.kind == "smart_plug" and spec.plug_class == "non_essential":
                rng = self.rng("incident", spec.id)
                t = t0 + rng.expovariate(1 / 14400)  # one every ~4 h per spare socket
                while t < t1:
                    if self.occupied(spec.seat, t):
                        kind = "kettle" if rng.random() < 0.7 else "heater"
                        watts = rng.uniform(1500, 2000) if kind == "kettle" else rng.uniform(1000, 2000)
                        minutes = rng.uniform(2, 4) if kind == "kettle" else rng.uniform(10, 40)
                        out.append((t, kind, spec.id, watts, minutes * 60))
                    t += rng.expovariate(1 / 14400)
            elif spec.kind == "door_controller" and spec.door_type == "fire_door":
                rng = self.rng("incident", spec.id)
                t = t0 + rng.expovariate(1 / 1200)  # someone takes the stairs every ~20 min
                while t < t1:
                    out.append((t, "stairs", spec.id, 0.0, rng.uniform(3, 8)))
                    t += rng.expovariate(1 / 1200)
        return sorted(out)


# --------------------------------------------------------------------------------------------------
# Physical models
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class MachineRoomEnv:
    """Inlet temperature under precision air conditioning; first-order drift when it fails."""

    failed_at: float | None = None
    restored_at: float | None = None
    target_c: float = 38.0
    tau_s: float = 25 * 60
    base_c: float = 22.5
    leak: bool = False
    smoke: bool = False
    _from_c: float = 22.5

    def temperature(self, t: float, rng: random.Random) -> float:
        cycling = 0.4 * math.sin(2 * math.pi * t / 720.0)  # compressor duty cycle, ~12 min
        if self.failed_at is not None and t >= self.failed_at and (self.restored_at is None or t < self.restored_at):
            start = self._from_c
            value = self.target_c - (self.target_c - start) * math.exp(-(t - self.failed_at) / self.tau_s)
            return value + rng.gauss(0, 0.05)
        if self.restored_at is not None and self.failed_at is not None and t >= self.restored_at:
            peak = self.target_c - (self.target_c - self._from_c) * math.exp(
                -(self.restored_at - self.failed_at) / self.tau_s
            )
            value = self.base_c + (peak - self.base_c) * math.exp(-(t - self.restored_at) / (8 * 60))
            return value + cycling * (1 - math.exp(-(t - self.restored_at) / 600)) + rng.gauss(0, 0.05)
        return self.base_c + cycling + rng.gauss(0, 0.05)

    def humidity(self, t: float, temp_c: float, rng: random.Random) -> float:
        # Constant absolute humidity: RH falls ~6 %/degC as the room warms (Magnus approximation).
        return max(5.0, 45.0 * math.exp(-0.062 * (temp_c - self.base_c)) + rng.gauss(0, 0.3))


class PlugLoad:
    """What is plugged into one smart plug (or one outlet of a metered strip)."""

    def __init__(self, world: World, spec: DeviceSpec) -> None:
        self.world = world
        self.spec = spec
        self.rng = world.rng("load", spec.id)
        self.pc_w = self.rng.uniform(110, 230)  # desktop + monitor + phone when in use (RULES.md [R28])
        self.standby_w = self.rng.uniform(2, 8)
        self.appliances: dict[str, float] = {}
        self.override_w: float | None = None
        self.relay_on = True
        self.powered = True
        self._t: float | None = None
        self._p = 0.0
        self._printing_until = -1.0

    def _base(self, t: float) -> float:
        cls = self.spec.plug_class
        if cls == "printer":
            if t < self._printing_until:
                return self.rng.uniform(500, 900)
            if self.world.zone_staffed(self.spec.zone, t) and self.rng.random() < 0.012:
                self._printing_until = t + self.rng.uniform(30, 90)
                return self.rng.uniform(500, 900)
            return self.rng.uniform(15, 25)
        if cls in ("non_essential", "unknown"):
            return self.rng.uniform(0.5, 2.0)  # phone charger or nothing
        if self.world.occupied(self.spec.seat, t):
            burst = 60.0 if self.rng.random() < 0.08 else 0.0  # CPU bursts
            return self.pc_w * self.rng.uniform(0.9, 1.1) + burst
        return self.standby_w

    def power(self, t: float) -> float:
        if not (self.relay_on and self.powered):
            return 0.0
        if self._t != t:
            base = self.override_w if self.override_w is not None else self._base(t)
            self._p = base + sum(self.appliances.values())
            self._t = t
        return self._p

    def power_factor(self, t: float) -> float:
        p = self.power(t)
        if p <= 0:
            return 0.0
        resistive = sum(self.appliances.values())
        electronic = max(p - resistive, 0.0)
        pf_e = 0.93 if electronic > 20 else 0.45  # active PFC supplies vs standby trickle
        return (resistive + electronic) / (resistive + electronic / pf_e)


# --------------------------------------------------------------------------------------------------
# Virtual devices
# --------------------------------------------------------------------------------------------------


class VirtualDevice(ABC):
    """One physical device on the floor broker. Subclasses speak one vendor dialect."""

    vendor = "generic"

    def __init__(self, world: World, key: str, specs: list[DeviceSpec], interval_s: float) -> None:
        self.world = world
        self.key = key
        self.specs = specs
        self.interval_s = interval_s
        self.silent = False
        """Not publishing at all (radio gone, battery dead, unplugged)."""
        self.rng = world.rng("device", key)
        self.battery = self.rng.uniform(55, 100)
        self.last_report_t: float | None = None

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.specs]

    @property
    def spec(self) -> DeviceSpec:
        return self.specs[0]

    @abstractmethod
    def availability(self, online: bool) -> Publication:
        """Its availability message in its vendor's dialect (retained)."""

    def birth(self) -> list[Publication]:
        """What the device says when it connects (availability, retained)."""
        return [self.availability(True)]

    def will(self) -> Publication:
        """What the broker publishes for it when its connection dies."""
        return self.availability(False)

    def report(self) -> list[Publication]:
        """Its periodic message(s)."""
        return []

    def command_filters(self) -> list[str]:
        return []

    def handle(self, topic: str, payload: bytes) -> list[Publication]:
        return []

    def tick_report(self) -> list[Publication]:
        if self.silent:
            return []
        if self.world.incidents and self.rng.random() < 0.003:
            return []  # a lost radio frame
        self.battery = max(0.0, self.battery - 0.4 * self.interval_s / 86400)
        out = self.report()
        self.last_report_t = self.world.t
        return out


class ShellyPlug(VirtualDevice):
    vendor = "shelly"

    def __init__(self, world: World, spec: DeviceSpec, load: PlugLoad) -> None:
        super().__init__(world, spec.address, [spec], spec.interval_s)
        self.load = load
        self.state = shelly.SwitchState(temp_c=self.rng.uniform(32, 40))
        self.state.total_wh = self.rng.uniform(2_000, 60_000)
        self._energy_t = 0.0
        self._minute_mwh = 0.0

    def _measure(self) -> None:
        t = self.world.t
        v = self.world.mains_v(t, self.rng)
        p = self.load.power(t)
        pf = self.load.power_factor(t)
        dt = max(t - self._energy_t, 0.0)
        self._energy_t = t
        energy_wh = p * dt / 3600
        self.state.total_wh += energy_wh
        minute_ts = int(self.world.now.timestamp()) // 60 * 60
        if minute_ts != self.state.minute_ts:
            self.state.by_minute_mwh = [self._minute_mwh, *self.state.by_minute_mwh[:2]]
            self._minute_mwh = 0.0
            self.state.minute_ts = minute_ts
        self._minute_mwh += energy_wh * 1000
        self.state.output = self.load.relay_on
        self.state.apower = p
        self.state.voltage = v
        self.state.current = p / (v * pf) if pf > 0 else 0.0
        self.state.temp_c += (32 + p / 120 - self.state.temp_c) * 0.1  # the relay warms with load

    def availability(self, online: bool) -> Publication:
        return shelly.encode_online(self.key, online)

    def report(self) -> list[Publication]:
        self._measure()
        return [shelly.encode_status(self.key, self.state)]

    def command_filters(self) -> list[str]:
        return [shelly.ShellyTopics(self.key).rpc]

    def handle(self, topic: str, payload: bytes) -> list[Publication]:
        if self.silent:
            return []
        outcome = shelly.handle_rpc(self.key, self.state, payload)
        self.load.relay_on = self.state.output
        out = [outcome.reply] if outcome.reply else []
        if outcome.changed:
            # The relay clicks first, then the device notifies and publishes its full status.
            self._measure()
            ts = self.world.now.timestamp()
            out.append(shelly.encode_notify_status(self.key, self.state, ts, ["output", "source", "apower", "current"]))
            out.append(shelly.encode_status(self.key, self.state))
        return out


class TasmotaDevice(VirtualDevice):
    """A Tasmota meter: a metering plug in front of a strip (one channel, the strip's total), or a
    metered multi-outlet strip (one channel per registered outlet; the strip meter is their sum)."""

    vendor = "tasmota"

    def __init__(self, world: World, topic: str, specs: list[DeviceSpec], fixed_load_w: float | None = None) -> None:
        interval = min(s.interval_s for s in specs)
        super().__init__(world, topic, specs, interval)
        outlets = sorted((s for s in specs if s.channel), key=lambda s: s.channel or 0)
        self.outlets = outlets
        self.strip = next((s for s in specs if s.kind == "strip_meter"), None)
        self.fixed_load_w = fixed_load_w
        n = max(len(outlets), 1)
        self.state = tasmota.TasmotaState(channels=[tasmota.ChannelEnergy() for _ in range(n)])
        for chan in self.state.channels:
            chan.total_kwh = self.rng.uniform(20, 800)
            chan.yesterday_kwh = self.rng.uniform(0.5, 4.0)
        self.state.uptime_s = int(self.rng.uniform(3600, 40 * 86400))
        self._energy_t = 0.0
        self._reports = 0

    def _channel_power(self, index: int, t: float) -> tuple[float, float]:
        if self.outlets:
            load = self.world.plug_loads[self.outlets[index].id]
            load.relay_on = self.state.channels[index].relay_on
            return load.power(t), load.power_factor(t)
        if not self.state.channels[0].relay_on:
            return 0.0, 0.0
        if self.fixed_load_w is not None:
            return self.fixed_load_w * self.rng.uniform(0.97, 1.03), 0.9
        if self.strip is not None:
            p, apparent = self.world.strip_power(self.strip.id, t)
            return p, (p / apparent if apparent > 0 else 0.0)
        return 0.0, 0.0

    def _measure(self) -> None:
        t = self.world.t
        v = self.world.mains_v(t, self.rng)
        dt = max(t - self._energy_t, 0.0)
        self._energy_t = t
        self.state.voltage_v = v
        self.state.uptime_s += int(dt)
        for i, chan in enumerate(self.state.channels):
            p, pf = self._channel_power(i, t)
            chan.power_w = p
            chan.power_factor = pf or 0.95
            chan.current_a = p / (v * pf) if pf > 0 else 0.0
            chan.period_wh = p * dt / 3600
            chan.today_kwh += chan.period_wh / 1000
            chan.total_kwh += chan.period_wh / 1000

    def local_now(self) -> datetime:
        return self.world.now.astimezone(self.world.local_tz)

    def availability(self, online: bool) -> Publication:
        return tasmota.encode_lwt(self.key, online)

    def report(self) -> list[Publication]:
        self._measure()
        self._reports += 1
        out = [tasmota.encode_sensor(self.key, self.state, self.local_now())]
        if self._reports % 6 == 1:  # STATE is mostly Wifi and uptime: every sixth TelePeriod is plenty here
            out.append(tasmota.encode_state(self.key, self.state, self.local_now()))
        return out

    def command_filters(self) -> list[str]:
        return [tasmota.TasmotaTopics(self.key).command_filter]

    def handle(self, topic: str, payload: bytes) -> list[Publication]:
        if self.silent:
            return []
        replies, changed = tasmota.handle_command(self.key, self.state, topic, payload)
        for i, outlet in enumerate(self.outlets):
            self.world.plug_loads[outlet.id].relay_on = self.state.channels[i].relay_on
        if changed and not self.outlets and self.strip is not None:
            # A meter in front of a strip cuts the whole strip: the plugs behind it lose power.
            on = self.state.channels[0].relay_on
            for plug in self.world.floor.plugs_of_strip(self.strip.id):
                self.world.plug_loads[plug.id].powered = on
                owner = self.world.owner.get(plug.id)
                if owner is not None and owner is not self:
                    owner.silent = not on
                    if on:
                        replies += owner.birth()
                    else:
                        replies.append(owner.will())
        if changed:
            self._measure()
            replies.append(tasmota.encode_sensor(self.key, self.state, self.local_now()))
        return replies


ROLE_OF_KIND = {
    "smoke_detector": "smoke",
    "temp_sensor": "temp_humidity",
    "leak_sensor": "leak",
    "door_controller": "contact",
    "siren": "siren",
    "mr_probe": "temp_humidity",
}


class ZigbeeDevice(VirtualDevice):
    vendor = "zigbee2mqtt"

    def __init__(self, world: World, spec: DeviceSpec) -> None:
        super().__init__(world, spec.address, [spec], spec.interval_s)
        self.state = zigbee2mqtt.ZigbeeState(role=ROLE_OF_KIND.get(spec.kind, "temp_humidity"))
        self.state.linkquality = int(self.rng.uniform(60, 200))
        self.temp_offset = self.rng.gauss(0, 0.3)
        self.heat: tuple[float, float, float, float] | None = None
        """(t0, from_c, to_c, rate_c_per_s): a fire or hot spot heating this sensor."""
        self.fixed_temp: float | None = None

    def temperature(self) -> float:
        t = self.world.t
        if self.heat is not None:
            t0, from_c, to_c, rate = self.heat
            return min(to_c, from_c + rate * (t - t0)) if to_c >= from_c else max(to_c, from_c - rate * (t - t0))
        if self.fixed_temp is not None:
            return self.fixed_temp
        zone = self.spec.zone
        if self.world.floor.zone_kind(zone) == "machine_room":
            return self.world.mr(zone).temperature(t, self.rng) + self.temp_offset
        return self.world.office_temp(zone, t) + self.temp_offset + self.rng.gauss(0, 0.05)

    def _sample(self) -> None:
        self.state.battery = self.battery
        self.state.temperature = self.temperature()
        self.state.humidity = self.world.office_rh(self.spec.zone, self.world.t) + self.rng.gauss(0, 0.4)
        self.state.pressure = 1012.0 + self.rng.gauss(0, 0.3)
        if self.world.incidents:
            self.state.linkquality = max(5, min(255, self.state.linkquality + int(self.rng.gauss(0, 6))))

    def availability(self, online: bool) -> Publication:
        return zigbee2mqtt.encode_availability(self.key, online)

    def report(self) -> list[Publication]:
        self._sample()
        return [zigbee2mqtt.encode_state(self.key, self.state)]

    def changed(self) -> list[Publication]:
        """A state change is reported at once (IAS zone status / attribute report), not at the heartbeat."""
        return [] if self.silent else self.report()

    def command_filters(self) -> list[str]:
        return [zigbee2mqtt.set_topic(self.key)] if self.state.role == "siren" else []

    def handle(self, topic: str, payload: bytes) -> list[Publication]:
        if self.silent:
            return []
        out, _changed = zigbee2mqtt.handle_set(self.key, self.state, payload)
        return out


class AccessController(VirtualDevice):
    def __init__(self, world: World, spec: DeviceSpec) -> None:
        super().__init__(world, spec.address, [spec], spec.interval_s)
        self.door = generic.DoorState()
        self.released = False

    def availability(self, online: bool) -> Publication:
        return generic.encode_availability("access", self.key, online)

    def birth(self) -> list[Publication]:
        return [*super().birth(), generic.encode_door_state(self.key, self.door)]

    def report(self) -> list[Publication]:
        return [generic.encode_door_state(self.key, self.door)]

    def command_filters(self) -> list[str]:
        return [generic.command_topic(self.key)]

    def handle(self, topic: str, payload: bytes) -> list[Publication]:
        if self.silent:
            return []
        out, _changed = generic.handle_door_command(self.key, self.door, payload)
        self.released = not self.door.locked
        return out

    def set_door(self, door_open: bool) -> list[Publication]:
        self.door.door_open = door_open
        if not door_open and not self.released:
            self.door.locked = True
        return [generic.encode_door_state(self.key, self.door)]


class Probe(VirtualDevice):
    def __init__(self, world: World, spec: DeviceSpec) -> None:
        super().__init__(world, spec.address, [spec], spec.interval_s)
        self.state = generic.ProbeState()
        self.offset = self.rng.gauss(0, 0.2)
        self.leak = False
        self.smoke = False

    def _sample(self) -> None:
        zone = self.spec.zone
        env = self.world.mr(zone)
        temp = env.temperature(self.world.t, self.rng) + self.offset
        self.state.temperature = temp
        self.state.humidity = env.humidity(self.world.t, temp, self.rng)
        self.state.leak = self.leak
        self.state.smoke = self.smoke

    def availability(self, online: bool) -> Publication:
        return generic.encode_availability("probe", self.key, online)

    def report(self) -> list[Publication]:
        self._sample()
        return [generic.encode_probe(self.key, self.state)]

    def changed(self) -> list[Publication]:
        return [] if self.silent else self.report()


class CallPoint(VirtualDevice):
    def __init__(self, world: World, spec: DeviceSpec) -> None:
        super().__init__(world, spec.address, [spec], spec.interval_s)
        self.activated = False

    def availability(self, online: bool) -> Publication:
        return generic.encode_availability("callpoint", self.key, online)

    def report(self) -> list[Publication]:
        return [generic.encode_callpoint(self.key, self.activated)]


# --------------------------------------------------------------------------------------------------
# A deterministic event queue on the simulated clock
# --------------------------------------------------------------------------------------------------


@dataclass(order=True, slots=True)
class Event:
    t: float
    seq: int
    action: Callable[[], list[Publication]] = field(compare=False)
    tag: str | None = field(default=None, compare=False)
    """Scenario step name for injections; None for background behaviour."""
    detail: dict[str, Any] = field(default_factory=dict, compare=False)


class Agenda:
    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0

    def add(
        self,
        t: float,
        action: Callable[[], list[Publication]],
        tag: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self._seq += 1
        heapq.heappush(self._heap, Event(t, self._seq, action, tag, detail or {}))

    def peek_t(self) -> float | None:
        return self._heap[0].t if self._heap else None

    def pop(self) -> Event:
        return heapq.heappop(self._heap)

    def __len__(self) -> int:
        return len(self._heap)
