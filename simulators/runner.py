"""Run a scenario on the virtual floor: background behaviour plus the timeline, on a simulated clock.

`--speed 10` runs ten simulated seconds per wall second; `--speed 0` runs as fast as possible. Commands
from the edge (relay off, door release, siren) are obeyed as they arrive, on the simulated clock.

The injected log (JSON) is a pure function of (floor, scenario, seed, speed) as long as nothing sends
commands: it lists every injected message with its simulated time, the expected and forbidden alarms,
and a SHA-256 over every published message (background included) in order. Commands received and what
the devices answered are listed separately under `commands` (they depend on the system under test).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from simulators import scenario as sc
from simulators.model import Floor
from simulators.operator import OperatorError
from simulators.scenario import scenario_path
from simulators.transport import Transport
from simulators.vendors import generic, zigbee2mqtt
from simulators.vendors.base import Publication, rfc3339_ms
from simulators.world import (
    AccessController,
    Agenda,
    CallPoint,
    Event,
    PlugLoad,
    Probe,
    ShellyPlug,
    TasmotaDevice,
    VirtualDevice,
    World,
    ZigbeeDevice,
)

HEAT_REPORT_S = 15.0
"""While a sensor is heating, it reports on change (Aqara: >= 0.5 degC), here every 15 s."""
WALK_TO_ASSEMBLY_S = (60.0, 180.0)
"""From leaving the floor to a warden's mark at the assembly point (stairs, then the check-in)."""
STAY_INSIDE = 2
"""People who do not leave during an evacuation (a drill's findings: still inside, never marked)."""
MISSED_AT_ASSEMBLY = 3
"""People who leave but whom the wardens never mark (unaccounted until someone finds them)."""
FULL_ROLL_CALL_BELOW = 20
"""A floor with fewer people on it all leave and are all marked (a small test floor stays exact)."""
ASSEMBLY_NOTE = "集合点点名 / checked in at the assembly point"


class StepError(RuntimeError):
    """A timeline step that cannot act on its target (e.g. a badge at a door with no reader)."""


Performer = Callable[[str], object]
"""Does an operator step's request through the server (`simulators.operator.OperatorApi.perform`);
raises `OperatorError` when it cannot."""


@dataclass
class RunLog:
    injections: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    """The wardens' roll-call marks during an evacuation (done through the server's API, like operator steps)."""
    counts: Counter[str] = field(default_factory=Counter)
    digest: Any = field(default_factory=hashlib.sha256)
    messages: int = 0


class ScenarioRun:
    def __init__(
        self,
        scenario: sc.Scenario,
        floor: Floor,
        transport: Transport,
        *,
        seed: int | None = None,
        speed: float = 10.0,
        operator: Performer | None = None,
        source: str | None = None,
    ) -> None:
        """`operator`: performs the scenario's operator steps; None (a dry run) only lists them.
        `source`: the scenario's file, for messages (default: the file its name stands for)."""
        self.scenario = scenario
        self.operator = operator
        self.source = source or str(scenario_path(scenario.name))
        self.floor = floor
        self.transport = transport
        self.seed = scenario.seed if seed is None else seed
        self.speed = speed
        self.world = World(floor, self.seed, scenario.start, incidents=scenario.background.incidents)
        self.agenda = Agenda()
        self.log = RunLog()
        self.active: set[str] = set()
        self._entry: dict[int, dict[str, Any]] = {}
        self._wall0 = 0.0
        self._stop = threading.Event()
        self._routes: dict[str, VirtualDevice] = {}
        self._tasmota: dict[str, VirtualDevice] = {}

    # ---- scope -----------------------------------------------------------------------------------

    def _scope(self) -> set[str]:
        """Physical device keys that run: the background scope plus everything the scenario touches."""
        world, floor, bg = self.world, self.floor, self.scenario.background
        ids: set[str] = set()
        if bg.scope == "floor":
            ids |= set(floor.devices)
        elif bg.scope == "zones":
            ids |= {d.id for d in floor.devices.values() if d.zone in bg.zones}
        zones: set[str] = set()
        for step in self.scenario.timeline:
            device = getattr(step, "device", None)
            if device in floor.devices:
                ids.add(device)
                spec = floor.devices[device]
                if spec.strip:  # the strip meter and its other plugs show the effect
                    ids |= {spec.strip, *(p.id for p in floor.plugs_of_strip(spec.strip))}
            if isinstance(step, sc.AddStrip):
                ids |= {step.upstream, *(p.id for p in floor.plugs_of_strip(step.upstream))}
            if isinstance(step, sc.AcFailure | sc.AcRestore):
                zones.add(step.zone)
            if isinstance(step, sc.Evacuate):
                zones |= {z.id for z in floor.zones.values() if z.floor == step.floor}
        for expectation in [*self.scenario.expect, *self.scenario.forbid]:
            if expectation.subject in floor.devices:
                ids.add(expectation.subject)
            elif expectation.subject in floor.zones:
                zones.add(expectation.subject)
        ids |= {d.id for d in floor.devices.values() if d.zone in zones}
        return {world.owner[i].key for i in ids if i in world.owner}

    # ---- running ---------------------------------------------------------------------------------

    def run(self, t0_monotonic: float | None = None) -> dict[str, Any]:
        """`t0_monotonic`: the `time.monotonic()` instant that is t = 0 (default: once the agenda is built).
        A caller whose system under test reads the same accelerated clock passes the instant that clock
        reads the scenario's start, so setting up (seconds on a loaded machine) does not put the two apart;
        what is already due then is sent at once."""
        world = self.world
        self.active = self._scope()
        for key in sorted(self.active):
            device = world.devices[key]
            self._route(device)
            self.agenda.add(0.0, device.birth)
            phase = world.rng("phase", key).uniform(0.0, device.interval_s)
            self.agenda.add(phase, self._periodic(device))
        self.transport.listen(sorted(self._routes))  # before any device is born: no command is missed
        self._schedule_traffic()
        if self.scenario.background.incidents:
            self._schedule_incidents()
        for step in self.scenario.timeline:
            self.agenda.add(
                step.at,
                self._step_action(step),
                tag=step.name or f"step-{step.at:g}",
                detail={"action": step.action, "target": self._target(step)},
            )
        self._wall0 = time.monotonic() if t0_monotonic is None else t0_monotonic
        end = self.scenario.duration
        while len(self.agenda) and (self.agenda.peek_t() or 0.0) <= end and not self._stop.is_set():
            event = self.agenda.pop()
            self._wait_until(event.t)
            world.t = event.t
            self._emit(event.action(), event)
        self._wait_until(end)
        return self._result()

    def stop(self) -> None:
        """End a run from another thread before its scenario's end: `run` returns what it did so far."""
        self._stop.set()

    def _periodic(self, device: VirtualDevice) -> Callable[[], list[Publication]]:
        def report() -> list[Publication]:
            out = device.tick_report()
            self.agenda.add(self.world.t + device.interval_s, report)
            return out

        return report

    def _schedule_traffic(self) -> None:
        """Badge in/out at each floor's main egress door at arrivals and departures (background)."""
        mains: dict[str, AccessController] = {}
        for spec in self.floor.devices.values():
            if spec.kind == "door_controller" and spec.door_type == "egress":
                owner = self.world.owner.get(spec.id)
                floor_id = self.floor.zones[spec.zone].floor if spec.zone in self.floor.zones else ""
                if isinstance(owner, AccessController) and owner.key in self.active and floor_id not in mains:
                    mains[floor_id] = owner
        for when, person_id, direction, floor_id in self.world.traffic(0.0, self.scenario.duration):
            door = mains.get(floor_id)
            person = self.floor.people.get(person_id)
            if door is None or person is None or person.badge is None:
                continue
            badge = person.badge
            self.agenda.add(when, self._badge_action(door, badge, "granted", direction, 4.0))

    def _schedule_incidents(self) -> None:
        """Demo mode: kettles, heaters and stairwell traffic from `World.schedule_incidents` (background)."""
        for when, kind, device_id, watts, duration in self.world.schedule_incidents(0.0, self.scenario.duration):
            device = self.world.owner.get(device_id)
            if device is None or device.key not in self.active:
                continue
            if kind == "stairs" and isinstance(device, ZigbeeDevice):
                self.agenda.add(when, partial(self._contact, device, False))
                self.agenda.add(when + duration, partial(self._contact, device, True))
            elif kind != "stairs":
                load = self.world.plug_loads[device_id]
                label = f"{kind}-{when:.0f}"
                self.agenda.add(when, partial(self._appliance, device, load, label, watts))
                self.agenda.add(when + duration, partial(self._appliance, device, load, label, None))

    @staticmethod
    def _contact(device: ZigbeeDevice, closed: bool) -> list[Publication]:
        device.state.contact = closed
        return device.changed()

    @staticmethod
    def _appliance(device: VirtualDevice, load: PlugLoad, label: str, watts: float | None) -> list[Publication]:
        if watts is None:
            load.appliances.pop(label, None)
        else:
            load.appliances[label] = watts
        return device.tick_report() if isinstance(device, ShellyPlug) else []

    def _wait_until(self, t: float) -> None:
        """Hold the simulated clock to the wall clock (at `speed`), obeying commands meanwhile."""
        if self.speed <= 0:
            self._drain(block_s=0.0)
            return
        while True:
            remaining = self._wall0 + t / self.speed - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                self._drain(block_s=0.0)
                return
            self._drain(block_s=min(remaining, 0.05))

    def _drain(self, block_s: float) -> None:
        commands = self.transport.commands
        try:
            topic, payload = commands.get(timeout=block_s) if block_s > 0 else commands.get_nowait()
        except queue.Empty:
            return
        while True:
            self._command(topic, payload)
            try:
                topic, payload = commands.get_nowait()
            except queue.Empty:
                return

    def _command(self, topic: str, payload: bytes) -> None:
        device = self._routes.get(topic)
        if device is None and topic.startswith("cmnd/"):
            device = self._tasmota.get(topic.split("/")[1])
        if device is None:
            return  # not ours (or our own reply on <src>/rpc)
        if self.speed > 0:  # the command arrives "now" on the simulated clock, between events
            now_t = (time.monotonic() - self._wall0) * self.speed
            self.world.t = max(self.world.t, min(now_t, self.agenda.peek_t() or now_t))
        replies = device.handle(topic, payload)
        entry = {
            "t": round(self.world.t, 3),
            "at": rfc3339_ms(self.world.now),
            "topic": topic,
            "payload": payload.decode("utf-8", "replace"),
            "device": device.key,
            "replies": [_message(p) for p in replies],
        }
        self.log.commands.append(entry)
        for pub in replies:
            self.transport.publish(pub)

    def _route(self, device: VirtualDevice) -> None:
        for topic_filter in device.command_filters():
            if topic_filter.startswith("cmnd/"):
                self._tasmota[device.key] = device
            else:
                self._routes[topic_filter] = device

    def _emit(self, pubs: list[Publication], event: Event) -> None:
        log = self.log
        for pub in pubs:
            self.transport.publish(pub)
            log.digest.update(pub.topic.encode() + b"\0" + pub.payload + (b"\1" if pub.retain else b"\0"))
            log.messages += 1
            log.counts[
                pub.topic.split("/")[0]
                if pub.topic.startswith(("tele/", "stat/", "zigbee2mqtt/", "access/", "probe/", "callpoint/"))
                else "shelly"
            ] += 1
        if event.tag is None:
            return
        entry = {
            "t": round(event.t, 3),
            "at": rfc3339_ms(self.world.now),
            "step": event.tag,
            **event.detail,
            "messages": [_message(p) for p in pubs],
        }
        log.injections.append(entry)

    # ---- timeline steps --------------------------------------------------------------------------

    @staticmethod
    def _target(step: Any) -> str | None:
        for name in ("device", "zone", "floor", "topic"):
            value = getattr(step, name, None)
            if value is not None:
                return str(value)
        return None

    def _device(self, device_id: str) -> VirtualDevice:
        owner = self.world.owner.get(device_id) or self.world.devices.get(device_id)
        if owner is None:
            raise StepError(f"no virtual device for {device_id!r}")
        return owner

    def _follow(self, t: float, action: Callable[[], list[Publication]], tag: str, what: str) -> None:
        self.agenda.add(t, action, tag=tag, detail={"action": what})

    def _step_action(self, step: Any) -> Callable[[], list[Publication]]:
        return lambda: self._do(step)

    def _do(self, step: Any) -> list[Publication]:  # one branch per step kind, flat on purpose
        world = self.world
        t = world.t
        tag = step.name or f"step-{step.at:g}"
        if isinstance(step, sc.ApplianceOn | sc.ApplianceOff | sc.SeatLoad):
            load = world.plug_loads[step.device]
            if isinstance(step, sc.ApplianceOn):
                load.appliances[step.label] = step.watts
            elif isinstance(step, sc.ApplianceOff):
                if step.label is None:
                    load.appliances.clear()
                else:
                    load.appliances.pop(step.label, None)
            else:
                load.override_w = step.watts
            device = self._device(step.device)
            # A Shelly publishes its status when apower changes; a Tasmota outlet waits for TelePeriod.
            return device.tick_report() if isinstance(device, ShellyPlug) else []
        if isinstance(step, sc.AddStrip):
            device = world.add_unregistered_strip(step.topic, step.upstream, step.watts)
            self.active.add(device.key)
            self._route(device)
            self.agenda.add(t + 1.0, self._periodic(device))
            return device.birth()
        if isinstance(step, sc.Smoke | sc.Leak):
            device = self._device(step.device)
            if isinstance(device, ZigbeeDevice):
                if isinstance(step, sc.Smoke):
                    device.state.smoke = step.active
                else:
                    device.state.water_leak = step.active
                return device.changed()
            if isinstance(device, Probe):
                if isinstance(step, sc.Smoke):
                    device.smoke = step.active
                else:
                    device.leak = step.active
                return device.changed()
            raise StepError(f"{step.device}: {step.action} needs a Zigbee2MQTT sensor or a probe")
        if isinstance(step, sc.Heat | sc.SetTemperature | sc.Flap):
            device = self._device(step.device)
            if not isinstance(device, ZigbeeDevice):
                raise StepError(f"{step.device}: {step.action} needs a Zigbee2MQTT temperature sensor")
            if isinstance(step, sc.Heat):
                device.heat = (t, device.temperature(), step.to_c, step.rate_c_per_min / 60.0)
                rise_s = abs(step.to_c - device.heat[1]) / device.heat[3]
                for k in range(1, int(rise_s // HEAT_REPORT_S) + 2):
                    self._follow(t + k * HEAT_REPORT_S, device.changed, tag, "heat_report")
                return device.changed()
            if isinstance(step, sc.SetTemperature):
                device.fixed_temp = step.value
                device.heat = None
                return device.changed()
            return self._flap(device, step, tag)
        if isinstance(step, sc.AcFailure):
            env = world.mr(step.zone)
            probe_rng = world.rng("ac", step.zone)
            env._from_c = env.temperature(t, probe_rng)
            env.failed_at, env.restored_at = t, None
            env.target_c, env.tau_s = step.target_c, step.tau_min * 60
            return []
        if isinstance(step, sc.AcRestore):
            world.mr(step.zone).restored_at = t
            return []
        if isinstance(step, sc.Badge):
            return self._badge(step, tag)
        if isinstance(step, sc.DoorOpen | sc.DoorForced | sc.RequestToExit):
            return self._door(step, tag)
        if isinstance(step, sc.Silence):
            device = self._device(step.device)
            device.silent = True
            will = device.will() if step.availability else None
            return [will] if will is not None else []
        if isinstance(step, sc.Resume):
            device = self._device(step.device)
            device.silent = False
            return [*device.birth(), *device.tick_report()]
        if isinstance(step, sc.Battery):
            device = self._device(step.device)
            device.battery = step.pct
            return device.tick_report()
        if isinstance(step, sc.CallPoint):
            device = self._device(step.device)
            if not isinstance(device, CallPoint):
                raise StepError(f"{step.device}: not a manual call point")
            device.activated = step.activated
            return device.report()
        if isinstance(step, sc.Evacuate):
            return self._evacuate(step, tag)
        if isinstance(step, sc.Operator):
            self._operate(step, tag)
            return []
        raise StepError(f"unhandled step {step.action}")

    def _operate(self, step: sc.Operator, tag: str) -> None:
        if self.operator is None:
            return
        try:
            self.operator(step.request)
        except OperatorError as exc:
            raise StepError(
                f"{self.source}: timeline step {tag!r} at {step.at:g} s "
                f"({step.request}) could not be done: {exc}. The scenario stopped there: fix the step or "
                "the site, or the server settings, and run it again"
            ) from None

    def _flap(self, device: ZigbeeDevice, step: sc.Flap, tag: str) -> list[Publication]:
        t = self.world.t
        for k in range(step.count * 2):
            high = k % 2 == 0

            def swing(high: bool = high) -> list[Publication]:
                device.fixed_temp = step.high if high else None
                if step.drop:
                    device.silent = not high
                    return device.report() if high else [device.will()]
                return device.changed()

            self._follow(t + k * step.period / 2, swing, tag, "flap_high" if high else "flap_low")

        def settle() -> list[Publication]:
            device.fixed_temp, device.silent = None, False
            return [*device.birth(), *device.changed()] if step.drop else device.changed()

        self._follow(t + step.count * step.period, settle, tag, "flap_end")
        return []

    def _decide(self, door: AccessController, person_id: str | None, badge: str) -> tuple[str, str | None]:
        """What a controller with a synced card list answers, and why (RULES.md §2.4 inputs)."""
        person = self.floor.people.get(person_id) if person_id else self.floor.person_by_badge(badge)
        now = self.world.now
        if person is None:
            return "denied", "unknown_card"
        left = self.floor.leavers.get(person.id)
        if left is not None and now >= left:
            return "denied", "revoked"
        if person.is_visitor:
            window = self.floor.visitor_approvals.get(person.id)
            if window is None or not window[0] <= now <= window[1]:
                return "denied", "outside_approval"
        if door.spec.door_type == "machine_room" and not person.mr_access:
            return "denied", "no_access_to_door"
        return "granted", None

    def _badge_action(
        self,
        door: AccessController,
        badge: str,
        result: str,
        direction: str,
        open_s: float,
        tag: str | None = None,
        reason: str | None = None,
    ) -> Callable[[], list[Publication]]:
        def act() -> list[Publication]:
            if door.silent:
                return []
            out = [generic.encode_badge(door.key, self.world.now, badge, result, direction, reason)]  # type: ignore[arg-type]
            if result == "granted" and open_s > 0:
                door.door.locked = False
                out += door.set_door(True)
                close = lambda: [] if door.silent else door.set_door(False)  # noqa: E731
                if tag is None:
                    self.agenda.add(self.world.t + open_s, close)
                else:
                    self._follow(self.world.t + open_s, close, tag, "door_closed")
            return out

        return act

    def _badge(self, step: sc.Badge, tag: str) -> list[Publication]:
        door = self._device(step.device)
        if not isinstance(door, AccessController):
            raise StepError(f"{step.device}: no card reader (not a generic access controller)")
        person = self.floor.people.get(step.person) if step.person else None
        badge = step.badge or (person.badge if person else None)
        if badge is None:
            raise StepError(f"{step.person}: has no badge")
        result, reason = (step.result, None) if step.result else self._decide(door, step.person, badge)
        return self._badge_action(door, badge, result, step.direction, step.open, tag, reason)()

    def _door(self, step: sc.DoorOpen | sc.DoorForced | sc.RequestToExit, tag: str) -> list[Publication]:
        device = self._device(step.device)
        t = self.world.t
        if isinstance(device, ZigbeeDevice):  # a fire door with a contact sensor only
            device.state.contact = False

            def shut() -> list[Publication]:
                device.state.contact = True
                return device.changed()

            self._follow(t + step.open, shut, tag, "door_closed")
            return device.changed()
        if not isinstance(device, AccessController):
            raise StepError(f"{step.device}: not a door")
        out: list[Publication] = []
        if isinstance(step, sc.DoorForced):
            device.door.door_open = True  # the lock stays engaged: the frame gave way
            out += [
                generic.encode_door_event(device.key, self.world.now, "door_forced"),
                generic.encode_door_state(device.key, device.door),
            ]
        elif isinstance(step, sc.RequestToExit):
            out.append(generic.encode_door_event(device.key, self.world.now, "request_to_exit"))
            device.door.locked = False
            out += device.set_door(True)
        else:
            device.door.locked = False
            out += device.set_door(True)
            if step.open > step.held_after:
                held_after = step.held_after
                self._follow(
                    t + held_after,
                    lambda: [
                        generic.encode_door_event(device.key, self.world.now, "door_held_open", held_s=held_after)
                    ],
                    tag,
                    "door_held_open",
                )
        self._follow(t + step.open, lambda: [] if device.silent else device.set_door(False), tag, "door_closed")
        return out

    def _evacuate(self, step: sc.Evacuate, tag: str) -> list[Publication]:
        """Everyone on the floor by the roster leaves by request-to-exit at an egress door, spread over
        `over` (released doors: nobody badges), except `STAY_INSIDE` people who stay. At the assembly
        point the wardens mark each arrival safe through the API (`mark_safe`), `WALK_TO_ASSEMBLY_S`
        after they left, except `MISSED_AT_ASSEMBLY` whom they never find: the roll call ends realistic."""
        world, floor = self.world, self.floor
        doors = [
            world.owner[d.id]
            for d in floor.devices.values()
            if d.kind == "door_controller"
            and d.door_type == "egress"
            and d.zone in floor.zones
            and floor.zones[d.zone].floor == step.floor
            and isinstance(world.owner.get(d.id), AccessController)
        ]
        if not doors:
            raise StepError(f"floor {step.floor}: no egress door controller")
        rng = world.rng("evacuate", step.floor, tag)
        people = world.present(step.floor, world.t)
        rng.shuffle(people)
        stay, missed = (STAY_INSIDE, MISSED_AT_ASSEMBLY) if len(people) >= FULL_ROLL_CALL_BELOW else (0, 0)
        leaving = people[stay:]
        missed_people = set(leaving[:missed])
        t = world.t
        for k, person in enumerate(leaving):
            door = doors[k % len(doors)]
            when = t + rng.uniform(0, step.over)

            def leave(door: VirtualDevice = door) -> list[Publication]:
                assert isinstance(door, AccessController)
                out = [generic.encode_door_event(door.key, self.world.now, "request_to_exit")]
                door.door.door_open = True
                out.append(generic.encode_door_state(door.key, door.door))
                return out

            self._follow(when, leave, tag, "request_to_exit")
            if person not in missed_people:
                self.agenda.add(when + rng.uniform(*WALK_TO_ASSEMBLY_S), partial(self._mark_safe, person, tag))
        for door in doors:
            assert isinstance(door, AccessController)
            self._follow(t + step.over + 5, partial(door.set_door, False), tag, "door_closed")
        return []

    def _mark_safe(self, person: str, tag: str) -> list[Publication]:
        """A warden marks one person safe on the newest evacuation's roll call, as on the live page."""
        request = f"POST /api/evacuations/{{evacuation}}/roll-call/{person} " + json.dumps({"note": ASSEMBLY_NOTE})
        self.log.marks.append({"t": round(self.world.t, 3), "at": rfc3339_ms(self.world.now), "person": person,
                               "performed": self.operator is not None})
        if self.operator is not None:
            try:
                self.operator(request)
            except OperatorError as exc:
                raise StepError(
                    f"{self.source}: step {tag!r}: the wardens' mark of {person} at {self.world.t:g} s could not "
                    f"be done: {exc}. The scenario stopped there: check that {person} is in the server's site "
                    "file and that the token may mark people safe (a shift lead or above)"
                ) from None
        return []

    # ---- result ----------------------------------------------------------------------------------

    def _result(self) -> dict[str, Any]:
        scenario = self.scenario
        expected = []
        for item in scenario.expect:
            step = scenario.step_named(item.after) if item.after else None
            base = step.at if step is not None else 0.0
            expected.append(
                {
                    "rule": item.rule,
                    "subject": item.subject,
                    "severity": item.severity,
                    "after": item.after,
                    "from_t": base,
                    "deadline_t": base + item.within,
                    "deadline_at": rfc3339_ms(self.world.at(base + item.within)),
                    "occurrences": item.occurrences,
                }
            )
        forbidden = [{"rule": f.rule, "subject": f.subject} for f in scenario.forbid]
        operator = [
            {"t": s.at, "at": rfc3339_ms(self.world.at(s.at)), "step": s.name, "request": s.request,
             "performed": self.operator is not None}
            for s in scenario.timeline
            if isinstance(s, sc.Operator)
        ]
        return {
            "scenario": scenario.name,
            "title": scenario.title,
            "seed": self.seed,
            "floor": self.floor.directory.name,
            "site": self.floor.site_id,
            "start": rfc3339_ms(scenario.start),
            "end": rfc3339_ms(self.world.at(scenario.duration)),
            "duration_s": scenario.duration,
            "speed": self.speed,
            "devices_running": len(self.active),
            "expected_alarms": expected,
            "forbidden_alarms": forbidden,
            "expected_cuts": list(scenario.expect_cut),
            "operator_steps": operator,
            "roll_call_marks": self.log.marks,
            "injections": self.log.injections,
            "published": {
                "messages": self.log.messages,
                "by_dialect": dict(sorted(self.log.counts.items())),
                "sha256": self.log.digest.hexdigest(),
            },
            "commands": self.log.commands,
        }


def _message(pub: Publication) -> dict[str, Any]:
    out: dict[str, Any] = {"topic": pub.topic, "payload": pub.text()}
    if pub.retain:
        out["retain"] = True
    return out


def dump_log(result: dict[str, Any]) -> str:
    """The injected log as text: stable key order and formatting, so equal runs are equal bytes."""
    return json.dumps(result, ensure_ascii=False, indent=1, sort_keys=False) + "\n"


__all__ = ["ScenarioRun", "StepError", "TasmotaDevice", "dump_log", "zigbee2mqtt"]
