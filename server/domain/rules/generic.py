"""Rules that are only "metric -> thresholds -> fixed severities": run from their catalog `Gauge`.

A gauge with one stage keeps a `One` (a single `Threshold`) and says the stage's severity while it is
active; a gauge with several keeps a `Levels` (a `Staged`): the worst active stage, never lowered until
every stage has cleared. The finding's value is the raw metric (the current in A for a ratio of the
rating). The engine builds one `GaugeRule` for every catalog rule that declares a gauge.

`TamperRule` is the other rule that is only a signal and a fixed severity, the device's tamper flag: the
door and the sensor tamper rules are it with their own ids, kinds and words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from gateway.contract import Event, EventType, Severity
from server.domain.catalog import CATALOG, RuleSpec, Stage
from server.domain.rules.base import Ctx, DeviceState, Rule
from server.domain.rules.blocks import Staged, Threshold


@dataclass(slots=True)
class One:
    """State of a rule that needs a single threshold; a state that keeps more beside it extends this one, so
    its next look is still the threshold's."""

    t: Threshold
    STATE: ClassVar[tuple[str, ...]] = ("t",)

    def due(self) -> datetime | None:
        return self.t.due()


@dataclass(slots=True)
class Levels:
    """State of a rule with staged severity."""

    s: Staged
    STATE: ClassVar[tuple[str, ...]] = ("s",)

    def due(self) -> datetime | None:
        return self.s.due()


class GaugeRule(Rule):
    """Base of the rules `gauge_rule` makes; `spec` is the rule's catalog declaration."""

    spec: ClassVar[RuleSpec]

    def _threshold(self, dev: DeviceState, stage: Stage, rising: bool) -> Threshold:
        def p(name: str) -> float:
            return dev.p(self.id, name)

        return Threshold(
            p(stage.on), p(stage.off), p(stage.hold), p(stage.clear_hold), rising=rising, strict=stage.strict
        )

    def new_state(self, dev: DeviceState) -> One | Levels:
        gauge = self.spec.gauge
        assert gauge is not None  # gauge_rule only builds rules that declare one
        if len(gauge.stages) == 1:
            return One(self._threshold(dev, gauge.stages[0], gauge.rising))
        return Levels(
            Staged(
                [self._threshold(dev, stage, gauge.rising) for stage in gauge.stages],
                [stage.severity for stage in gauge.stages],
            )
        )

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        gauge = self.spec.gauge
        assert gauge is not None
        raw = dev.last.get(gauge.metric)
        value = raw / dev.device.rating_a if gauge.of_rating and raw is not None else raw
        st: One | Levels = dev.state[self.id]
        level: Severity | None
        if isinstance(st, One):
            st.t.step(value, now)
            level = gauge.stages[0].severity if st.t.active else None
        else:
            level = st.s.step(value, now)
        self.set(ctx, dev, level, now, raw)


def gauge_rule(rule: str) -> GaugeRule:
    """The rule that runs `rule`'s catalog gauge."""
    declared = CATALOG[rule]
    gauge = declared.gauge
    if gauge is None:
        raise ValueError(f"{rule} declares no gauge in the rule catalog")
    device_kinds, metric = gauge.kinds, gauge.metric

    class Gauged(GaugeRule):
        spec = declared
        id = declared.id
        kinds = device_kinds
        metrics = frozenset({metric})
        message = declared.message
        message_zh = declared.message_zh

    Gauged.__name__ = Gauged.__qualname__ = f"Gauge[{rule}]"
    return Gauged()


def gauge_rules() -> tuple[GaugeRule, ...]:
    """One rule per catalog declaration with a gauge, in catalog order."""
    return tuple(gauge_rule(rule) for rule, spec in CATALOG.items() if spec.gauge is not None)


class TamperRule(Rule):
    """Major while the device reports its tamper (or removed) flag. A tamper event sets the flag; only a reading
    clears it."""

    metrics = frozenset({"tamper"})
    events = frozenset({EventType.TAMPER})

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        self.set(ctx, dev, Severity.MAJOR if dev.flag("tamper") else None, now)

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        self.flag_event(ctx, dev, now, "tamper", True)
