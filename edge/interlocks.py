"""Local interlocks: safety actions the edge takes by itself, so they work with the uplink down.

Pure classes: they take readings and the time (`now`, seconds on a monotonic clock) and return what to
do; the agent carries it out (publishes the vendor command, sends `interlock_tripped`). Tests drive
them with a fake clock.

- Plug overload: a plug drawing >= ratio x rated_a (default 125 %) for hold_s (default 10 s) is switched
  off, but only plugs marked `cuttable` and never `essential` ones (RULES.md power-cut policy: auto-cut
  only non-essential end loads; the 125 % / 10 s pair is elec.strip_overload's critical threshold).
  Shelly reports on change only, so a steady overload produces no new messages: `tick()` trips on the
  last known value too.
- Smoke siren: a smoke alarm sounds the detector's configured siren at once, and again every
  `duration_s` while the smoke persists (the siren's own timer stops it). The edge never silences a
  siren by itself: only a person does (RULES.md 0.5.3, never suppress a smoke alarm).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edge.config import DeviceConfig, Kind, PlugOverloadConfig, SmokeSirenConfig


@dataclass(frozen=True, slots=True)
class Trip:
    """Switch `device` off: it drew `current_a` (limit `limit_a`) for `held_s` seconds."""

    device: str
    current_a: float
    limit_a: float
    held_s: float

    def describe(self) -> str:
        return (f"{self.current_a:.2f} A >= {self.limit_a:.2f} A for {self.held_s:.0f} s; "
                "relay switched off by the edge")


@dataclass(slots=True)
class _PlugState:
    limit_a: float
    over_since: float | None = None
    current_a: float = 0.0
    tripped: bool = False


class PlugOverloadInterlock:
    def __init__(self, config: PlugOverloadConfig, devices: Iterable[DeviceConfig]) -> None:
        self.config = config
        self._plugs: dict[str, _PlugState] = {}
        if config.enabled:
            for device in devices:
                if (device.kind is Kind.SMART_PLUG and device.cuttable and not device.essential
                        and device.rated_a is not None):
                    self._plugs[device.id] = _PlugState(limit_a=device.rated_a * config.ratio)

    def watches(self, device: str) -> bool:
        return device in self._plugs

    def observe(self, device: str, metrics: Mapping[str, bool | int | float], now: float) -> Trip | None:
        state = self._plugs.get(device)
        if state is None:
            return None
        if metrics.get("relay_on") is False:
            # Off is off, whoever did it: re-arm for the next time it is switched on.
            state.over_since, state.tripped, state.current_a = None, False, 0.0
            return None
        current = metrics.get("current_a")
        if isinstance(current, bool) or not isinstance(current, int | float):
            return self._check(device, state, now)
        state.current_a = float(current)
        if current >= state.limit_a:
            if state.over_since is None:
                state.over_since = now
        else:
            state.over_since = None
            state.tripped = False
        return self._check(device, state, now)

    def tick(self, now: float) -> list[Trip]:
        trips = [self._check(device, state, now) for device, state in self._plugs.items()]
        return [t for t in trips if t is not None]

    def _check(self, device: str, state: _PlugState, now: float) -> Trip | None:
        if state.tripped or state.over_since is None:
            return None
        held = now - state.over_since
        if held < self.config.hold_s:
            return None
        state.tripped = True  # once per overload episode; re-armed when the current falls or relay opens
        return Trip(device, state.current_a, state.limit_a, held)

    def next_deadline(self) -> float | None:
        deadlines = [s.over_since + self.config.hold_s for s in self._plugs.values()
                     if s.over_since is not None and not s.tripped]
        return min(deadlines) if deadlines else None


@dataclass(frozen=True, slots=True)
class Sound:
    """Sound `siren` because detector `detector` sees smoke."""

    siren: str
    detector: str


class SmokeSirenInterlock:
    def __init__(self, config: SmokeSirenConfig, devices: Iterable[DeviceConfig]) -> None:
        self.config = config
        self._sirens: dict[str, str] = {}
        if config.enabled:
            self._sirens = {d.id: d.siren for d in devices if d.siren is not None}
        self._smoke: dict[str, float] = {}  # detector -> when its siren was last sounded

    def observe(self, device: str, metrics: Mapping[str, bool | int | float], now: float) -> list[Sound]:
        siren = self._sirens.get(device)
        smoke = metrics.get("smoke")
        if siren is None or not isinstance(smoke, bool):
            return []
        if not smoke:
            self._smoke.pop(device, None)
            return []
        if device in self._smoke:
            return []
        self._smoke[device] = now
        return [Sound(siren, device)]

    def tick(self, now: float) -> list[Sound]:
        """Re-sound sirens whose own timer has run out while the smoke persists."""
        sounds = []
        for detector, since in self._smoke.items():
            if now - since >= self.config.duration_s:
                self._smoke[detector] = now
                sounds.append(Sound(self._sirens[detector], detector))
        return sounds
