"""Whether a machine room that mr.smoke evacuated is clear again (RULES.md §2.5: the machine room is evacuated
at once, its gas or mist suppression may discharge).

The floor's all-clear is the on-site command's call and stands. The machine room is another matter: while
its probe still reads smoke (a latched reading, the smoke of a discharge) or reads nothing (offline) after
its smoke, nobody can say the room is safe to enter. Such a room is *not clear*: whoever is in it and its
duty keep the instruction to leave it, a person badging in gets that instruction, and the all-clear, the
alarm and the retained all-clear notice say so. It is clear again once every probe of the room that had
smoke reads clear and is online (its own sup.probe_offline or, behind a down edge or bridge, its room's
sup.smoke_offline clear), or once a person closed that probe's mr.smoke alarm (the room was
checked). A probe that is only offline, without smoke, holds nothing: that is sup.probe_offline's matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from server.domain.alarms import Alarm
from server.domain.site import Site

SMOKE = "mr.smoke"
OFFLINE = "sup.probe_offline"
ZONE_OFFLINE = "sup.smoke_offline"
"""A probe lost behind a down edge or bridge: one per zone (subject: the zone id), instead of its own OFFLINE."""
NOT_CLEAR_ZH = "{zone}未解除:{why}"
NOT_CLEAR_EN = "Machine room {zone} is not clear: {why}"
WHY_SMOKE = ("探头{probe}仍报烟雾,勿进入机房", "its probe {probe} still reads smoke; keep out of it")
WHY_OFFLINE = ("探头{probe}离线,无法确认,勿进入机房",
               "its probe {probe} is offline, so nobody can tell; keep out of it")


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a machine room is not clear: one probe of it and what it reads."""

    room: str
    probe: str
    reading: str
    """smoke (it still reads smoke) or offline (it reads nothing since its smoke)."""

    def text(self, site: Site) -> tuple[str, str]:
        """(zh, en): "Machine room X is not clear: its probe P still reads smoke; keep out of it"."""
        name = site.zones[self.room].name or self.room
        why_zh, why_en = WHY_SMOKE if self.reading == "smoke" else WHY_OFFLINE
        return (NOT_CLEAR_ZH.format(zone=name, why=why_zh.format(probe=self.probe)),
                NOT_CLEAR_EN.format(zone=name, why=why_en.format(probe=self.probe)))

    def as_dict(self, site: Site) -> dict[str, str]:
        zh, en = self.text(site)
        return {"zone": self.room, "probe": self.probe, "reading": self.reading, "message": en, "message_zh": zh}


def not_clear(site: Site, alarms: Iterable[Alarm]) -> Mapping[str, Hold]:
    """Machine room -> why it is not clear, from the open alarms: a probe's mr.smoke not closed whose
    condition holds (smoke now), or whose probe's sup.probe_offline or its room's sup.smoke_offline (behind a
    down edge or bridge) holds (offline now)."""
    listed = [a for a in alarms if a.is_open]
    offline = {a.subject for a in listed if a.rule == OFFLINE and a.condition_active}
    zones_out = {a.subject for a in listed if a.rule == ZONE_OFFLINE and a.condition_active}
    holds: dict[str, Hold] = {}
    for alarm in sorted(listed, key=lambda a: a.subject):
        device = site.devices.get(alarm.subject)
        if alarm.rule != SMOKE or device is None or not site.is_machine_room(device.zone):
            continue
        if alarm.condition_active:
            holds[device.zone] = Hold(device.zone, device.id, "smoke")
        elif device.id in offline or device.zone in zones_out:
            holds.setdefault(device.zone, Hold(device.zone, device.id, "offline"))
    return holds
