"""The pure parts of the edge, driven by a fake clock: interlocks, supervision, batching, command
tracking, and the SQLite outbox (a real file in tmp_path)."""

from __future__ import annotations

import errno
import itertools
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.batching import Batcher, is_urgent
from edge.commands import CommandTracker, RateLimitedLog
from edge.config import DeviceConfig, PlugOverloadConfig, SmokeSirenConfig
from edge.interlocks import PlugOverloadInterlock, SmokeSirenInterlock, Sound
from edge.outbox import Outbox, OutboxUnavailable, is_file_problem
from edge.supervision import Supervisor
from gateway.contract import Action, Command, Event, EventType, Reading

TS = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def plug(id: str, **kw: object) -> DeviceConfig:
    return DeviceConfig.model_validate({"id": id, "kind": "smart_plug", "zone": "z", "vendor": "shelly",
                                        "address": id, "rated_a": 10, **kw})


# -- plug overload ----------------------------------------------------------------------------------

def overload(hold_s: float = 10, **cfg: object) -> PlugOverloadInterlock:
    devices = [plug("cut", cuttable=True), plug("essential", essential=True), plug("plain")]
    return PlugOverloadInterlock(PlugOverloadConfig(hold_s=hold_s, **cfg), devices)  # type: ignore[arg-type]


def test_overload_trips_after_hold_at_125_percent() -> None:
    lock = overload()
    assert lock.observe("cut", {"current_a": 12.5}, now=0.0) is None
    assert lock.observe("cut", {"current_a": 13.0}, now=9.9) is None
    trip = lock.observe("cut", {"current_a": 13.1}, now=10.0)
    assert trip is not None and trip.device == "cut" and trip.limit_a == 12.5 and trip.held_s == 10.0
    assert lock.observe("cut", {"current_a": 13.1}, now=11.0) is None  # once per episode


def test_overload_below_limit_or_dip_resets() -> None:
    lock = overload()
    lock.observe("cut", {"current_a": 12.49}, now=0.0)
    assert lock.tick(100.0) == []
    lock.observe("cut", {"current_a": 13.0}, now=0.0)
    lock.observe("cut", {"current_a": 11.0}, now=5.0)  # dipped: the hold starts again
    lock.observe("cut", {"current_a": 13.0}, now=6.0)
    assert lock.tick(15.9) == []
    assert [t.device for t in lock.tick(16.0)] == ["cut"]


def test_overload_trips_on_tick_when_the_plug_goes_quiet() -> None:
    # Shelly reports on change only: a steady overload sends one message and then nothing.
    lock = overload()
    lock.observe("cut", {"current_a": 14.0, "relay_on": True}, now=0.0)
    assert lock.next_deadline() == 10.0
    assert lock.tick(9.0) == [] and len(lock.tick(10.0)) == 1


def test_overload_never_touches_essential_or_uncuttable_plugs() -> None:
    lock = overload()
    for device in ("essential", "plain", "unknown"):
        assert lock.observe(device, {"current_a": 50.0}, now=0.0) is None
    assert lock.tick(1000.0) == []


def test_overload_rearms_when_relay_reported_off_and_can_be_disabled() -> None:
    lock = overload(hold_s=0)
    assert lock.observe("cut", {"current_a": 20.0}, now=0.0) is not None
    lock.observe("cut", {"relay_on": False, "current_a": 0.0}, now=1.0)
    assert lock.observe("cut", {"current_a": 20.0}, now=2.0) is not None
    assert overload(enabled=False).observe("cut", {"current_a": 99.0}, now=0.0) is None


# -- smoke siren ------------------------------------------------------------------------------------

def test_smoke_sounds_the_siren_once_then_again_after_its_duration() -> None:
    devices = [DeviceConfig.model_validate({"id": "smoke-1", "kind": "smoke_detector", "zone": "z",
                                            "vendor": "zigbee2mqtt", "address": "s1", "siren": "siren-1"}),
               DeviceConfig.model_validate({"id": "siren-1", "kind": "siren", "zone": "z",
                                            "vendor": "zigbee2mqtt", "address": "x"})]
    lock = SmokeSirenInterlock(SmokeSirenConfig(duration_s=300), devices)
    assert lock.observe("smoke-1", {"smoke": False}, 0.0) == []
    assert lock.observe("smoke-1", {"smoke": True}, 1.0) == [Sound("siren-1", "smoke-1")]
    assert lock.observe("smoke-1", {"smoke": True}, 2.0) == []
    assert lock.tick(300.0) == [] and lock.tick(301.0) == [Sound("siren-1", "smoke-1")]
    assert lock.observe("smoke-1", {"smoke": False}, 302.0) == [] and lock.tick(10_000.0) == []
    disabled = SmokeSirenInterlock(SmokeSirenConfig(enabled=False), devices)
    assert disabled.observe("smoke-1", {"smoke": True}, 0) == []


# -- supervision ------------------------------------------------------------------------------------

def test_supervisor_silence_and_return() -> None:
    devices = [plug("p1", reporting_interval_s=10), plug("p2")]
    sup = Supervisor(devices, silent_after_intervals=3, now=0.0)
    assert sup.tick(29.0) == []
    [change] = sup.tick(30.0)
    assert (change.device, change.type) == ("p1", EventType.DEVICE_OFFLINE)
    assert "silent for 30 s" in change.detail
    assert sup.tick(100.0) == []  # reported once
    back = sup.seen("p1", 101.0)
    assert back is not None and back.type is EventType.DEVICE_ONLINE
    assert sup.seen("p1", 102.0) is None


def test_supervisor_vendor_availability() -> None:
    sup = Supervisor([plug("p1"), plug("p2")], silent_after_intervals=3, now=0.0)
    assert sup.availability("p1", True, 0.0, "lwt") is None  # retained Online at start-up is no news
    change = sup.availability("p2", False, 0.0, "lwt")
    assert change is not None and change.type is EventType.DEVICE_OFFLINE  # Offline at start-up is news
    assert sup.availability("p2", False, 1.0, "lwt") is None
    back = sup.availability("p2", True, 2.0, "lwt")
    assert back is not None and back.type is EventType.DEVICE_ONLINE


# -- batching ---------------------------------------------------------------------------------------

def reading(n: int) -> Reading:
    return Reading(device=f"d{n}", ts=TS, metrics={"power_w": float(n)})


def test_batcher_size_and_age() -> None:
    batcher = Batcher(max_readings=3, max_age_s=0.5)
    assert batcher.deadline() is None and not batcher.due(100.0)
    assert not batcher.add_reading(reading(1), 10.0)
    assert not batcher.add_reading(reading(2), 10.2)
    assert batcher.add_reading(reading(3), 10.3)  # full
    [segment] = batcher.take()
    assert [r.device for r in segment.readings] == ["d1", "d2", "d3"] and segment.events == []
    batcher.add_reading(reading(4), 20.0)
    assert batcher.deadline() == 20.5 and not batcher.due(20.49) and batcher.due(20.5)


def sent_order(batcher: Batcher) -> list[tuple[str, str, str]]:
    """(device, kind, tag) in the order the agent puts a flush on the wire: per segment, events then readings."""
    out: list[tuple[str, str, str]] = []
    for segment in batcher.take():
        out += [(e.device, "event", e.type.value) for e in segment.events]
        out += [(r.device, "reading", str(r.metrics)) for r in segment.readings]
    return out


def test_batcher_keeps_a_grant_before_the_door_state_that_follows_it() -> None:
    batcher = Batcher(max_readings=200, max_age_s=0.5)
    door = "door-1"
    batcher.add_reading(Reading(device="p1", ts=TS, metrics={"power_w": 1.0}), 0.0)
    batcher.add_reading(Reading(device=door, ts=TS, metrics={"door_open": False}), 0.0)
    batcher.add_event(Event(device=door, ts=TS, type=EventType.ACCESS_GRANTED, badge="B1"), 0.1)
    batcher.add_event(Event(device=door, ts=TS, type=EventType.DOOR_OPENED), 0.2)
    batcher.add_reading(Reading(device=door, ts=TS, metrics={"door_open": True}), 0.2)
    batcher.add_reading(Reading(device="p1", ts=TS, metrics={"power_w": 2.0}), 0.3)
    order = [item for item in sent_order(batcher) if item[0] == door]
    assert order == [
        (door, "reading", "{'door_open': False}"),
        (door, "event", "access_granted"),
        (door, "event", "door_opened"),
        (door, "reading", "{'door_open': True}"),
    ]


def test_batcher_keeps_every_devices_order_in_few_messages() -> None:
    rng = random.Random(13)
    for _ in range(200):
        batcher = Batcher(max_readings=10_000, max_age_s=0.5)
        given: dict[str, list[tuple[str, str]]] = {}
        for n in range(rng.randint(1, 60)):
            device = f"d{rng.randint(1, 5)}"
            if rng.random() < 0.3:
                batcher.add_event(Event(device=device, ts=TS, type=EventType.DOOR_OPENED, detail=str(n)), 0.0)
                given.setdefault(device, []).append(("event", str(n)))
            else:
                batcher.add_reading(Reading(device=device, ts=TS, metrics={"n": n}), 0.0)
                given.setdefault(device, []).append(("reading", str({"n": n})))
        segments = len(batcher.segments)
        sent: dict[str, list[tuple[str, str]]] = {}
        for segment in batcher.take():
            for e in segment.events:
                sent.setdefault(e.device, []).append(("event", str(e.detail)))
            for r in segment.readings:
                sent.setdefault(r.device, []).append(("reading", str(r.metrics)))
        assert sent == given
        # A new segment only where a device's event follows its own reading in the same flush.
        switches = sum(1 for items in given.values() for a, b in itertools.pairwise(items)
                       if a[0] == "reading" and b[0] == "event")
        assert segments <= 1 + switches


def test_life_safety_events_are_urgent() -> None:
    for kind in (EventType.DETECTOR_ALARM, EventType.MANUAL_CALL_POINT, EventType.DOOR_FORCED,
                 EventType.WATER_LEAK, EventType.TAMPER, EventType.DETECTOR_FAULT,
                 EventType.INTERLOCK_TRIPPED):
        assert is_urgent(Event(device="d", ts=TS, type=kind))
    for kind in (EventType.ACCESS_GRANTED, EventType.DEVICE_OFFLINE, EventType.DETECTOR_CLEAR):
        assert not is_urgent(Event(device="d", ts=TS, type=kind))


# -- command tracking -------------------------------------------------------------------------------

def test_tracker_confirms_on_the_expected_state_only() -> None:
    tracker = CommandTracker(timeout_s=5)
    command = Command(id="c-1", device="p1", action=Action.RELAY_OFF, issued_at=TS, expires_at=TS)
    tracker.expect(command, now=0.0)
    assert tracker.observe(Reading(device="p1", ts=TS, metrics={"relay_on": True, "power_w": 90.0})) == []
    [(confirmed, metrics)] = tracker.observe(Reading(device="p1", ts=TS, metrics={"relay_on": False}))
    assert confirmed.id == "c-1" and metrics == {"relay_on": False}
    assert tracker.expired(100.0) == []


def test_tracker_times_out_with_the_last_report() -> None:
    tracker = CommandTracker(timeout_s=5)
    siren_on = Command(id="c-2", device="s1", action=Action.SIREN_ON, issued_at=TS, expires_at=TS)
    tracker.expect(siren_on, now=0.0)
    tracker.observe(Reading(device="s1", ts=TS, metrics={"battery_pct": 80}))
    assert tracker.deadline() == 5.0 and tracker.expired(4.9) == []
    [late] = tracker.expired(5.0)
    assert late.command.id == "c-2" and late.last == {"battery_pct": 80} and len(tracker) == 0


def test_rate_limited_log() -> None:
    limiter = RateLimitedLog(60)
    assert limiter.allow("d1", 0.0) and not limiter.allow("d1", 30.0) and limiter.allow("d2", 30.0)
    assert limiter.allow("d1", 60.0) and limiter.take_suppressed("d1") == 1


# -- outbox -----------------------------------------------------------------------------------------

def row(seq: int) -> tuple[str, bytes, int, bool]:
    return ("t", f"m{seq}".encode(), 1, False)


def test_outbox_order_seq_and_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite", max_messages=100)
    seqs = [box.append_with_seq(row) for _ in range(5)]
    box.append("t/result", b"r", 1, False)
    assert seqs == [0, 1, 2, 3, 4] and len(box) == 6
    rows = box.after(0, 100)
    assert [r.seq for r in rows] == [0, 1, 2, 3, 4, None] and rows[0].payload == b"m0"
    box.remove([rows[0].id, rows[1].id, 9999])
    assert len(box) == 4 and [r.seq for r in box.after(0, 2)] == [2, 3]
    box.close()


def test_outbox_seq_survives_restart(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite", max_messages=100)
    for _ in range(3):
        box.append_with_seq(row)
    box.remove([r.id for r in box.after(0, 100)])  # all acknowledged: the queue is empty
    box.close()
    again = Outbox(tmp_path / "b.sqlite", max_messages=100)
    assert len(again) == 0 and again.append_with_seq(row) == 3 and again.last_seq == 3
    again.close()


def test_outbox_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite", max_messages=10)
    for _ in range(25):
        box.append_with_seq(row)
    assert len(box) == 10 and [r.seq for r in box.after(0, 100)] == list(range(15, 25))
    assert box.take_dropped() == 15 and box.take_dropped() == 0 and box.dropped_total == 15
    box.close()


def test_command_ledger(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite", max_messages=10)
    assert box.remember_command("c-1", 1.0) and not box.remember_command("c-1", 2.0)
    box.close()
    again = Outbox(tmp_path / "b.sqlite", max_messages=10)
    assert not again.remember_command("c-1", 3.0)  # a replay after a restart is still a replay
    again.forget_commands_before(10.0)
    assert again.remember_command("c-1", 11.0)
    again.close()


def _sqlite_error(code: int) -> sqlite3.Error:
    exc = sqlite3.OperationalError("as SQLite raises it")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]  # set by SQLite on the errors it raises
    return exc


def test_only_a_wrong_path_or_file_of_the_buffer_is_a_problem_of_the_file(tmp_path: Path) -> None:
    """Exit 2 (never restarted) for these; a locked file, a full disk or an I/O error may pass (exit 1)."""
    for code in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EROFS, errno.EISDIR):
        assert is_file_problem(OSError(code, "x")), errno.errorcode[code]
    for code in (errno.ENOSPC, errno.EIO, errno.EMFILE):
        assert not is_file_problem(OSError(code, "x")), errno.errorcode[code]
    assert is_file_problem(_sqlite_error(sqlite3.SQLITE_NOTADB))
    assert is_file_problem(_sqlite_error(sqlite3.SQLITE_READONLY_DIRECTORY))  # an extended code of READONLY
    for code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_IOERR_WRITE):
        assert not is_file_problem(_sqlite_error(code)), code
    # As raised: a folder given as the buffer file.
    with pytest.raises(OutboxUnavailable) as refused:
        Outbox(tmp_path, max_messages=10)
    assert refused.value.file_problem and "give a file" in str(refused.value)
