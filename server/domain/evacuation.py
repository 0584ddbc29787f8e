"""Evacuation (pure): the notice's words, roll call from access events, and the drill report.

Roll call (RULES.md §2.2 evac.notice: 安全保障组 gets a headcount from badge data). A person is
*inside* at the notice when their last granted badge event before it was `in`. After the notice a
person is *out* when seen at an egress door (any granted badge or exit at an egress controller) or
badging `out` anywhere; a responder may mark them *safe* by hand. Inside, neither out nor safe:
*unaccounted*. Visitors are listed with their host. Badge numbers never appear: entries carry ids.

Rostered people who never badged (their entry predates the access log, or the reader missed them)
are listed too, as *unknown* ("unknown, on roster"): a responder must find them or mark them safe.
A person's zone is their rostered zone when they are on duty, else the zone of the door they used; one
last seen going in at a machine-room door after the notice, or at most MR_STAY before it, is in that
machine room.

Drill report (drill.*): time from the trigger to the notice, per zone the time until its last person
was accounted for (None while someone is unaccounted), who is unaccounted and for how long (from the
notice until they were accounted for, or until the report's end: the all-clear, or now). On a floor
whose egress doors are released nobody badges out: the roll call is the wardens' marks at the assembly
point, so a rostered person marked safe counts as accounted like a badge-known one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.notify import DRILL_PREFIX
from server.domain.site import Site

EVAC_ZH = "{zones}发生火情,请立即从最近的安全出口有序撤离,勿乘电梯"
EVAC_EN = "Fire in {zones}: leave calmly by the nearest safe exit; do not use the lifts"
MR_EVAC_ZH = "{zone}烟雾报警:立即撤离机房,气体灭火可能启动"
MR_EVAC_EN = "Smoke in machine room {zone}: leave the machine room now, its gas suppression may discharge"
"""mr.smoke's own instruction (RULES.md §2.5: the machine room is evacuated at once), for the people in the
machine room only; the rest of the floor gets the floor's notice (EVAC_*), which names the machine room."""
MR_UNREACHABLE_ZH = "{who}刷卡进入了已疏散的机房{zone},此人无通知渠道:请立即带其撤离"
MR_UNREACHABLE_EN = ("{who} badged in to the evacuated machine room {zone} and has no channel to be told: "
                     "get them out now")
EVAC_MANUAL_ZH = "{floor}紧急疏散:请立即从最近的安全出口有序撤离,勿乘电梯"
EVAC_MANUAL_EN = "Evacuate {floor} now: leave calmly by the nearest safe exit; do not use the lifts"
CLEAR_ZH = "{floor}疏散警报解除"
CLEAR_EN = "All clear on {floor}"
CALL_119_ZH = "立即拨打119"
CALL_119_EN = "Call 119 now"
MR_STAY = timedelta(minutes=30)
"""How long a badge-in at a machine-room door before the notice still places the person in that machine room.
Machine rooms usually let people out without a badge, so an "in" with no later badge says nothing about
where the person is hours on; a check or a swap in there takes minutes, so half an hour keeps whoever
plausibly still is in there in the room (told to leave it), and sends the others to their rostered zone."""
DRILL_ZH = DRILL_PREFIX
DRILL_EN = "[DRILL] "
"""The drill marks (RULES.md §3 drill mode): everything a drill causes starts with them, in both languages."""


def is_drill_text(message_zh: str, message_en: str) -> bool:
    """Whether an alarm's (or notice's) words are a drill's: the engine marks what a drill causes."""
    return message_zh.startswith(DRILL_ZH) or message_en.startswith(DRILL_EN)


def notice_text(site: Site, floor: str, fire_zone: str | None, drill: bool) -> tuple[str, str]:
    """(zh, en) of the evacuation notice; a drill is prefixed 【演练】 and never prompts a 119 call."""
    prefix = DRILL_PREFIX if drill else ""
    floor_name = site.floors[floor].name if floor in site.floors and site.floors[floor].name else floor
    if fire_zone is not None and fire_zone in site.zones:
        name = site.zones[fire_zone].name or fire_zone
        zh, en = EVAC_ZH.format(zones=name), EVAC_EN.format(zones=name)
    else:
        zh, en = EVAC_MANUAL_ZH.format(floor=floor_name), EVAC_MANUAL_EN.format(floor=floor_name)
    if drill:
        en = DRILL_EN + en
    return prefix + zh, en


def machine_room_text(site: Site, zone: str) -> tuple[str, str]:
    """(zh, en) of the instruction to the people in a machine room with smoke (never a drill's: a drill is
    started by a person, not by a probe)."""
    name = site.zones[zone].name or zone
    return MR_EVAC_ZH.format(zone=name), MR_EVAC_EN.format(zone=name)


def unreachable_in_room_text(site: Site, zone: str, person: str) -> tuple[str, str]:
    """(zh, en) to the machine-room duty and the on-site command: someone with no channel (a visitor, a
    contractor), whom nobody can tell to leave, badged in to the evacuated (or not clear) machine room."""
    name = site.zones[zone].name or zone
    who = site.people[person].name if person in site.people else person
    host = site.people[person].host if person in site.people else None
    if host is not None and host in site.people:
        who_zh, who_en = f"{who}({person},访客,接待人{site.people[host].name})", f"{who} ({person}, visitor of {host})"
    else:
        who_zh, who_en = f"{who}({person})", f"{who} ({person})"
    return (MR_UNREACHABLE_ZH.format(who=who_zh, zone=name), MR_UNREACHABLE_EN.format(who=who_en, zone=name))


def clear_text(site: Site, floor: str, drill: bool) -> tuple[str, str]:
    floor_name = site.floors[floor].name if floor in site.floors and site.floors[floor].name else floor
    prefix = DRILL_PREFIX if drill else ""
    return prefix + CLEAR_ZH.format(floor=floor_name), (DRILL_EN if drill else "") + CLEAR_EN.format(
        floor=floor_name)


@dataclass(frozen=True, slots=True)
class Access:
    """One granted badge event (or exit) at a door, by person id; `kind` is its EventType's value."""

    person: str
    door: str
    direction: str | None
    ts: datetime
    kind: str


@dataclass(frozen=True, slots=True)
class EvacuationRecord:
    """One evacuation of a floor as it is stored: `ev-N`, from its start to its all-clear."""

    id: str
    site: str
    floor: str
    zones: tuple[str, ...]
    fire_zone: str | None
    drill: bool
    state: str
    """active, all_clear."""
    trigger: str
    reason: str
    triggered_at: datetime
    issued_at: datetime
    started_by: str
    message_zh: str
    message_en: str
    all_clear_at: datetime | None = None
    all_clear_by: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    person: str
    name: str
    status: str
    """inside (badged in, unaccounted), out, safe, or unknown (on the roster, never badged)."""
    zone: str | None
    last_door: str
    last_seen: datetime
    accounted_at: datetime | None
    is_visitor: bool
    host: str | None
    host_name: str | None

    def as_dict(self) -> dict[str, object]:
        return {"person": self.person, "name": self.name, "status": self.status, "zone": self.zone,
                "last_door": self.last_door, "last_seen": self.last_seen, "accounted_at": self.accounted_at,
                "is_visitor": self.is_visitor, "host": self.host, "host_name": self.host_name}


def roll_call(site: Site, events: Iterable[Access], notice_at: datetime, egress: set[str],
              marks: Mapping[str, datetime], rostered: Mapping[str, str] | None = None) -> list[Entry]:
    """Everyone inside at the notice (or who came in after it, or went out after it), with their status now;
    then everyone in `rostered` (person -> zone, on duty at the notice) not known to have left before the
    notice, as unknown (safe once marked).

    A badge after the notice at an inner door, or one that says "in" at any door, shows the person inside the
    building at that moment; a badge without a direction at an egress door (a request-to-exit, a released
    door) or one that says "out" shows them leaving. A mark counts until the person is seen inside again."""
    rostered = rostered or {}
    before: dict[str, Access] = {}
    after_in: dict[str, Access] = {}
    last_in: dict[str, datetime] = {}
    out_at: dict[str, datetime] = {}
    last: dict[str, Access] = {}
    for ev in sorted(events, key=lambda e: e.ts):
        last[ev.person] = ev
        if ev.ts < notice_at:
            before[ev.person] = ev
            continue
        if ev.direction == "in" or (ev.direction is None and ev.door not in egress):
            after_in[ev.person] = ev
            last_in[ev.person] = ev.ts
            out_at.pop(ev.person, None)
        else:
            out_at.setdefault(ev.person, ev.ts)
            after_in.pop(ev.person, None)
    present = {p for p, ev in before.items() if ev.direction == "in"} | set(after_in) | set(out_at)
    out: list[Entry] = []
    for pid in sorted(present):
        person = site.people.get(pid)
        entry_ev = after_in.get(pid) or before.get(pid) or last[pid]
        door = site.devices.get(entry_ev.door)
        mark = marks.get(pid)
        if mark is not None and (pid not in last_in or last_in[pid] <= mark):
            status, accounted = "safe", mark
        elif pid in out_at:
            status, accounted = "out", out_at[pid]
        else:
            status, accounted = "inside", None
        host = person.host if person else None
        host_name = site.people[host].name if host and host in site.people else None
        # last seen going in to a machine room after the notice or up to MR_STAY before it: in there (told to
        # leave it), whatever their rostered zone
        in_room = (door is not None and entry_ev.direction != "out" and site.is_machine_room(door.zone)
                   and entry_ev.ts >= notice_at - MR_STAY)
        zone = door.zone if door is not None and in_room else rostered.get(pid) or (door.zone if door else None)
        out.append(Entry(pid, person.name if person else pid, status, zone,
                         last[pid].door, last[pid].ts, accounted, bool(person and person.is_visitor), host,
                         host_name))
    for pid in sorted(set(rostered) - present):
        left = before.get(pid)
        if left is not None and left.direction == "out" and pid not in last_in:
            continue  # badged out before the notice and not seen since: not in the building
        person = site.people.get(pid)
        status, accounted = ("safe", marks[pid]) if pid in marks else ("unknown", None)
        out.append(Entry(pid, person.name if person else pid, status, rostered[pid],
                         last[pid].door if pid in last else "", last[pid].ts if pid in last else notice_at,
                         accounted, False, None, None))
    return out


def _clear_s(people: Iterable[Entry], issued_at: datetime) -> dict[str, float | None]:
    """Per zone, seconds from the notice until the last of `people` in it was accounted for (None: one is not)."""
    zones: dict[str, list[datetime | None]] = {}
    for e in people:
        zones.setdefault(e.zone or "?", []).append(e.accounted_at)
    return {zone: None if any(t is None for t in times) else max((t - issued_at).total_seconds()
                                                                  for t in times if t is not None)
            for zone, times in sorted(zones.items())}


def report(triggered_at: datetime, issued_at: datetime, entries: Iterable[Entry],
           until: datetime | None = None) -> dict[str, object]:
    """Drill report: time to notice; per-zone clear time in seconds (`zone_clear_s`: None while anyone of
    the zone is inside or unknown; `zone_known_clear_s`: the same for the people the roll call knows, badged
    or marked, so a drill still measures how fast they left when rostered people were never seen);
    unaccounted people with how long they were (or still are at `until`) unaccounted. Badge-known people and
    rostered people marked safe (the wardens' roll call at the assembly point) are counted in `people`,
    which is always `len(unaccounted) + len(accounted)`; rostered people who never badged and are not marked
    are listed apart (`unknown`, and their number `unknown_on_roster`)."""
    listed = list(entries)
    unknown = [e for e in listed if e.status == "unknown"]
    counted = [e for e in listed if e.status != "unknown"]
    end = until or max((e.last_seen for e in listed), default=issued_at)

    def unaccounted_s(e: Entry) -> float:
        return max(0.0, ((e.accounted_at or end) - issued_at).total_seconds())

    return {
        "time_to_notice_s": (issued_at - triggered_at).total_seconds(),
        "zone_clear_s": _clear_s(listed, issued_at),
        "zone_known_clear_s": _clear_s(counted, issued_at),
        "people": len(counted),
        "unaccounted": [{"person": e.person, "name": e.name, "zone": e.zone, "is_visitor": e.is_visitor,
                         "host": e.host, "unaccounted_s": unaccounted_s(e)}
                        for e in counted if e.status == "inside"],
        "accounted": [{"person": e.person, "name": e.name, "zone": e.zone, "status": e.status,
                            "unaccounted_s": unaccounted_s(e)} for e in counted if e.status != "inside"],
        "unknown": [{"person": e.person, "name": e.name, "zone": e.zone, "is_visitor": e.is_visitor,
                     "host": e.host, "unaccounted_s": unaccounted_s(e)} for e in unknown],
        "unknown_on_roster": len(unknown),
        "until": end,
    }
