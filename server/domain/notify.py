"""Who gets told what, when, and in which words (pure; RULES.md §0.3, §4, §5, §2.7 sup.notify_channel).

Routing. `recipients(alarm, site, at, level)` answers with recipient keys: a role name ("supervisor"),
or "person:<id>" for the shift lead on duty in the alarm's zone (当日领班, resolved through the roster,
never the wall clock). `channels(key, site)` turns a key into apprise URLs from the site file's
`contacts` (person id first, then the role). The supervisor is the one rostered on the alarm's floor
when the roster names one (else every supervisor, through the role). The contacts key `fallback` is
the sup.notify_channel fallback (SMS/voice gateway); it is used when a critical push failed or was not
acknowledged in 60 s.

Who gets the first page is the catalog's Action column, rule by rule (`OWNERS`, RULES.md §2), on top
of §4's first-notified row where §4 names people for a whole severity. The plan (§4), per severity, as
a list of `Step`s with their delay from the raise:

    critical  t=0     lead + supervisor + safety_officer (+ mr_duty in a machine room) + the rule's own
                      (e.g. mr.leak: + facilities, logistics and emergency command; door release:
                      + security_evacuation; for fire.confirmed, fire.manual_report and mr.smoke the
                      evacuation message pages emergency command and its groups once, with their tasks)
              t=60 s  not acknowledged: fallback channel + emergency_command + on_site_command
              repeat  every 60 s to the first recipients until acknowledged
    major     t=0     the rule's own (else the lead; in a machine room mr_duty stands for the lead)
              t=5 min not acknowledged: supervisor (unless already paged)
              t=30 min acknowledged but not resolved: supervisor (unless already paged)
              t=4 h   not resolved and a life-safety function is degraded: on_site_command
              repeat  every 15 min until acknowledged
    minor     no page of its own: once a day (DIGEST_AT local time) the supervisor on duty gets ONE
              digest listing every minor alarm unacknowledged for 24 h or more (`digest`); the next
              day's digest lists those still unacknowledged (the §4 "repeat: daily digest")
              t=7 d   acknowledged but not resolved: supervisor
    warning   t=0     the owner the rule names (door.held_open on the floor: at 120 s open, if still open)
              t=24 h  still raised: becomes minor (`Step.promote`)

The first page (step 0 at t=0) goes out even when the condition cleared before it was queued: the
alarm was raised (the machine-room entry notice raises and clears at once). A recipient with no
channel in the site file gets a `Delivery` with an empty url: the service records it as not
deliverable, so a missing contact shows in the alarm's delivery log instead of vanishing.

A page about an alarm with a pending delayed cut (elec.high_power_appliance, RULES.md §2.1) carries
the cut's line ("relay OFF at 14:03:10 unless the shift lead holds the cut", `AlarmInfo.note`) and is
never held for grouping: the warning must come before the cut.

Grouping: alarms that are not life-safety share a group key (rule, floor). A critical alarm's page is
never held: it only joins a message of its group that is already due and not yet sent. Any other page
waits at most GROUP_WAIT (5 s) for its group, and the alarms of the same key, severity and channel that
arrive meanwhile are folded into it; one arriving after that message left opens the next (a follow-up),
held GROUP_WAIT again. A storm of 50 overloads on one floor within 25 s is a handful of messages, each
listing several. Life-safety alarms (fire, evacuation, door release, machine-room smoke or leak) are
never grouped.

Inhibition: an open fire.confirmed in a zone suppresses separate pushes for that zone's smoke and heat
alarms (the fire page already says it); an offline edge (sup.gateway_offline) suppresses the offline
pushes of its own devices. Only while the inhibiting alarm's condition holds: a latched fire.confirmed
whose fire is over, not yet closed, holds back nothing. Silences (`Silence`) suppress matching pushes
until their end time, but never life-safety alarms (RULES.md §0.5-3: never suppress a smoke alarm), and a
security alarm (`SECURITY_RULES`) only when the silence names its rule or its subject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from gateway.contract import Severity
from server.domain.catalog import ANY_SEVERITY, CATALOG, Check, ids, with_unit
from server.domain.findings import SEVERITY_RANK
from server.domain.rule_titles import LIFE_SAFETY_RULES
from server.domain.site import Site

FALLBACK = "fallback"
LEAD = "shift_lead"
SUPERVISOR = "supervisor"
SAFETY = "safety_officer"
MR_DUTY = "mr_duty"
FACILITIES = "facilities"
"""设备管理 / 物业 / 后勤 (HVAC): the site's facilities role."""
ZONE_CHANNEL = "zone_channel"
"""The alarm zone's own channels (contacts key `zone:<id>`, e.g. the zone's WeCom group bot)."""
SEAT_OPERATOR = "seat_operator"
"""The operator rostered now at the alarm's seat (its plug's seat): told together with the lead."""
STRIP_OPERATORS = "strip_operators"
"""The operators rostered now at the seats of the plugs on the alarm's strip (elec.strip_load_high)."""
ENTRANT = "entrant"
"""The person the alarm is about (its subject): the one who badged into the machine room."""
ANY = ANY_SEVERITY
NO_CHANNEL = ""
"""The url of a `Delivery` to a recipient that has no channel in the site file (nothing is sent)."""

# Emergency command and its four groups (RULES.md §5): role name -> (zh, en) task on a confirmed fire.
GROUPS: dict[str, tuple[str, str]] = {
    "emergency_command": ("应急指挥部:决定响应级别(≥II级),协调处置,批准解除警报",
                          "Emergency command: set the response level (>= II), coordinate, approve the all-clear"),
    "on_site_command": ("现场指挥组:组织现场处置,立即向应急指挥部报告",
                        "On-site command group: direct the on-site response, report to command at once"),
    "security_evacuation": ("安全保障组:确认疏散门已释放,按门禁名单清点人数,关注无人陪同访客",
                            "Security and evacuation group: check egress doors are released, run the badge "
                            "headcount, watch for unescorted visitors"),
    "information_reporting": ("信息报送组:立即拨打119,记录事件时间线,向上级报告",
                              "Information reporting group: call 119 now, keep the incident timeline, report up"),
    "logistics": ("后勤保障组:准备灭火器材与物资,联系物业维修",
                  "Logistics group: bring extinguishers and supplies, call facilities"),
}
GROUP_FALLBACK_ROLE = {"security_evacuation": "safety_officer"}
"""A group with no members in the site file is paged through this role instead."""

OWNERS: dict[str, dict[str, tuple[str, ...]]] = {
    rule: dict(spec.pages) for rule, spec in CATALOG.items() if spec.pages
}
"""The roles the catalog's Action (§2.9: Notify) column names for each rule, by severity (ANY: every
severity), as the rule catalog declares them. Minor alarms are never paged one by one (the daily
digest), so minor owners are not listed; rules without an entry take §4's first-notified row (the lead,
or mr_duty in a machine room). Role names are the site file's: `facilities` (设备管理/物业/后勤), `it`,
`hr`, `manager` (经理), `department_head` (部门负责人), `reception`, `logistics` (后勤保障组),
`security_evacuation` (安全保障组)."""
NOT_RAISED: frozenset[str] = frozenset(rule for rule in OWNERS if CATALOG[rule].check is Check.NOT_RAISED)
"""Rules of OWNERS that the server does not raise (yet): the catalog's §2.8 IT controls and the external
report deadline have no check here. Their routing stays so the catalog's paging table is complete; every
other OWNERS key is a rule the server raises (tests/web/test_rule_titles.py)."""
WARNING_DELAY = {rule: spec.push_delay for rule, spec in CATALOG.items() if spec.push_delay is not None}
"""A warning whose push the catalog times later than its raise: door.held_open is raised at 30 s open,
and the floor's lead is pushed "if open > 120 s"."""

COMMAND_RULES = ids(lambda spec: spec.convenes_command)
"""Critical rules that convene emergency command (§4 table, critical row)."""
EVACUATING_RULES = ids(lambda spec: spec.evacuates)
"""Rules that always start an evacuation (the engine sets evac.notice with them). The evacuation's own
message (services/evacuation.py) is the one page of emergency command and its groups, with each group's
task, and of everyone on the floor: these alarms do not page the groups again at t=0, and evac.notice
is not paged as an alarm at all (one message per recipient per event)."""
ROSTERED_ROLES = ("supervisor",)
"""Roles paged as the person(s) on duty on the alarm's floor when the roster has any, else as the role."""
DEGRADED_RULES = ids(lambda spec: spec.degrades_life_safety)
"""Major rules whose unresolved alarm means a life-safety function is degraded (§4: 4 h -> 现场指挥组)."""
FIRE_DETECTION_RULES = ids(lambda spec: spec.inhibited_by_fire)
OFFLINE_RULES = ids(lambda spec: spec.device_offline)
SECURITY_RULES = ids(lambda spec: spec.security)
"""Intrusion and access alarms (a door forced, a revoked badge used): only a silence that names them mutes them."""

REPEAT: dict[Severity, timedelta | None] = {
    Severity.CRITICAL: timedelta(seconds=60),
    Severity.MAJOR: timedelta(minutes=15),
    Severity.MINOR: None,
    Severity.WARNING: None,
}
"""Re-notify interval while unacknowledged (§4 last column; minor goes to the daily digest)."""
WARNING_PERSISTS = timedelta(hours=24)
"""§4 warning row: still raised after this long, a warning becomes minor."""
DIGEST_AFTER = timedelta(hours=24)
"""§4 minor row: unacknowledged this long, a minor alarm goes into the supervisor's daily digest."""
DIGEST_AT = time(9, 0)
"""Local time of the daily digest (ours: the morning, when the day shift's supervisor is on duty)."""
GROUP_WAIT = timedelta(seconds=5)
"""The longest a non-critical page waits for its group (docs/response.md: why 5 s)."""
GROUP_WINDOW = timedelta(seconds=60)
MAX_SILENCE = timedelta(hours=12)
"""The longest a silence lasts: one shift at most, so the next shift never inherits a mute it did not set
(docs/response.md: silences)."""
DRILL_PREFIX = "【演练】"
SEVERITY_ZH = {Severity.CRITICAL: "紧急", Severity.MAJOR: "重要", Severity.MINOR: "一般", Severity.WARNING: "提示"}


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """What routing needs to know of an alarm (built from `domain.alarms.Alarm` by the service)."""

    id: int
    rule: str
    severity: Severity
    subject: str
    zone: str | None
    site: str
    value: float | None
    message: str
    message_zh: str = ""
    drill: bool = False
    note: tuple[str, str] | None = None
    """A line every page of this alarm carries (zh, en): the delayed cut's time, or who held it."""
    raised_at: datetime | None = None
    """When the alarm was last raised (`Alarm.latest_raise`: its escalation or its return, else its first
    raise): a page says it, since a ladder's step comes minutes later and must not read as a new alarm's."""


class When:
    """Conditions of an escalation step."""

    ALWAYS = "always"
    RAISED = "raised"
    """The first page: the alarm was raised, even if its condition cleared before the page was queued."""
    UNACKED = "unacked"
    UNRESOLVED = "unresolved"
    UNRESOLVED_DEGRADED = "unresolved_degraded"
    ACKED_UNRESOLVED = "acked_unresolved"
    PERSISTS = "persists"


@dataclass(frozen=True, slots=True)
class Step:
    after: timedelta
    recipients: tuple[str, ...]
    when: str = When.ALWAYS
    fallback: bool = False
    """Also send through the fallback channel (sup.notify_channel)."""
    skip_if_paged: tuple[str, ...] = ()
    """Recipients already paged by an earlier step are not paged again by this one."""
    promote: Severity | None = None
    """The alarm becomes this severity (an automatic escalation) when the step applies."""


@dataclass(frozen=True, slots=True)
class Silence:
    """Suppress pushes of matching alarms until `ends_at`. Empty matchers match anything."""

    ends_at: datetime
    rule: str = ""
    zone: str = ""
    subject: str = ""
    by: str = ""
    reason: str = ""

    def matches(self, alarm: AlarmInfo, now: datetime) -> bool:
        return (now < self.ends_at and (not self.rule or alarm.rule == self.rule or alarm.rule.startswith(
            self.rule.rstrip("*"))) and (not self.zone or alarm.zone == self.zone)
            and (not self.subject or alarm.subject == self.subject))

    def names(self, alarm: AlarmInfo) -> bool:
        """Whether it names the alarm's own rule (not a prefix) or its subject (the door, the badge's holder)."""
        return alarm.rule == self.rule or (bool(self.subject) and alarm.subject == self.subject)


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    """An open alarm, for inhibition: rule, subject and zone."""

    rule: str
    subject: str
    zone: str | None


def is_life_safety(rule: str) -> bool:
    """Never grouped, held or silenced: the one list of server/domain/rule_titles.py (the live page's too)."""
    return rule in LIFE_SAFETY_RULES


def _mr(site: Site, zone: str | None) -> bool:
    return zone is not None and zone in site.zones and site.is_machine_room(zone)


def owners(rule: str, severity: Severity) -> tuple[str, ...] | None:
    """The recipient keys the catalog's Action column names for `rule` at `severity`, or None."""
    table = OWNERS.get(rule)
    return None if table is None else table.get(severity.value, table.get(ANY))


def first_page(alarm: AlarmInfo, site: Site) -> tuple[str, ...]:
    """Recipient keys of an alarm's first page: §4's first-notified row and the rule's own (`OWNERS`)."""
    mr = _mr(site, alarm.zone)
    named = owners(alarm.rule, alarm.severity)
    if alarm.severity is Severity.CRITICAL:  # §4: every critical pages these together
        keys = [LEAD, SUPERVISOR, SAFETY, *([MR_DUTY] if mr else []), *(named or ())]
    else:  # §4: "领班 (or 机房值班 for MR items)"
        keys = [MR_DUTY if k == LEAD and mr else k for k in (named or (LEAD,))]
    if alarm.severity in (Severity.CRITICAL, Severity.MAJOR):
        keys.append(ZONE_CHANNEL)
    return tuple(dict.fromkeys(keys))


def plan(alarm: AlarmInfo, site: Site) -> list[Step]:
    """The escalation steps of one alarm (§4 table), first step at t=0."""
    if alarm.rule == "evac.notice":
        return []  # the evacuation service's message is its page (see EVACUATING_RULES)
    if alarm.severity is Severity.MINOR:
        # unacknowledged at 24 h: the daily digest (`digest`), not a page of its own
        return [Step(timedelta(days=7), (SUPERVISOR,), When.ACKED_UNRESOLVED)]
    first = first_page(alarm, site)
    if alarm.severity is Severity.CRITICAL:
        return [Step(timedelta(0), first, When.RAISED),
                Step(timedelta(seconds=60), ("emergency_command", "on_site_command"), When.UNACKED, fallback=True,
                     skip_if_paged=first)]
    if alarm.severity is Severity.MAJOR:
        steps = [Step(timedelta(0), first, When.RAISED),
                 Step(timedelta(minutes=5), (SUPERVISOR,), When.UNACKED, skip_if_paged=(SUPERVISOR,)),
                 Step(timedelta(minutes=30), (SUPERVISOR,), When.UNRESOLVED, skip_if_paged=(SUPERVISOR,))]
        if alarm.rule in DEGRADED_RULES:
            steps.append(Step(timedelta(hours=4), ("on_site_command",), When.UNRESOLVED_DEGRADED))
        return steps
    if alarm.severity is Severity.WARNING:
        delay = WARNING_DELAY.get(alarm.rule)
        return [Step(delay, first) if delay is not None else Step(timedelta(0), first, When.RAISED),
                Step(WARNING_PERSISTS, (), When.PERSISTS, promote=Severity.MINOR)]
    return []


def step_applies(step: Step, acked: bool, resolved: bool) -> bool:
    if step.when == When.RAISED:
        return True
    if resolved:
        return False
    if step.when == When.UNACKED:
        return not acked
    if step.when == When.ACKED_UNRESOLVED:
        return acked
    return True


def resolve(key: str, alarm: AlarmInfo, site: Site, at: datetime) -> list[str]:
    """A recipient key -> concrete recipients: the lead on duty in the zone, or a role (or its fallback)."""
    if key == LEAD:
        lead = site.shift_lead(alarm.zone, at) if alarm.zone in site.zones else None
        if lead is not None:
            return [f"person:{lead.id}"]
        return [LEAD]  # nobody rostered as lead: every shift lead is paged (a lead is always on duty)
    if key == ZONE_CHANNEL:
        return [f"zone:{alarm.zone}"] if alarm.zone is not None and site.contacts_of(f"zone:{alarm.zone}") else []
    if key == SEAT_OPERATOR:  # nobody rostered at the seat: nobody (never every operator on the floor)
        device = site.devices.get(alarm.subject)
        entry = site.on_duty_at_seat(device.seat, at) if device is not None and device.seat else None
        return [f"person:{entry.person}"] if entry is not None else []
    if key == STRIP_OPERATORS:  # the seats of the strip's plugs; nobody rostered there: nobody
        seats = [p.seat for p in site.plugs_of_strip(alarm.subject) if p.seat]
        entries = [site.on_duty_at_seat(seat, at) for seat in seats]
        return list(dict.fromkeys(f"person:{e.person}" for e in entries if e is not None))
    if key == ENTRANT:  # an unknown card's subject is a hash: it shows as a recipient without a channel
        return [f"person:{alarm.subject}"]
    if key in GROUP_FALLBACK_ROLE and not site.people_with_role(key) and not site.contacts_of(key):
        return [GROUP_FALLBACK_ROLE[key]]
    if key in ROSTERED_ROLES and alarm.zone in site.zones:
        on_duty = on_duty_with_role(key, site, site.zones[alarm.zone].floor, at)
        if on_duty:
            return [f"person:{p}" for p in on_duty]
    return [key]


def on_duty_with_role(role: str, site: Site, floor: str, at: datetime) -> list[str]:
    """Person ids holding `role` and rostered anywhere on `floor` at `at` (e.g. the supervisor on duty)."""
    holders = {p.id for p in site.people_with_role(role)}
    return sorted({e.person for z in site.zones_on_floor(floor) for e in site.on_duty_in_zone(z.id, at)
                   if e.person in holders})


def channels(recipient: str, site: Site, zone: str | None = None, severity: Severity | None = None) -> list[str]:
    """Apprise URLs of one recipient: a person's own contacts, else those of their roles; a role's
    contacts plus its members' own contacts. With an alarm's zone and severity, a channel scoped in the
    site file (`zones`, `min_severity`) is left out where they don't match. Duplicates removed, order kept."""
    def of(key: str) -> list[str]:
        return [c.url for c in site.contact_channels(key)
                if (zone is None or not c.zones or zone in c.zones)
                and (severity is None or SEVERITY_RANK[severity] >= SEVERITY_RANK[Severity(c.min_severity)])]

    out: list[str] = []
    if recipient.startswith("person:"):
        pid = recipient.split(":", 1)[1]
        out += of(pid)
        if not site.contacts_of(pid) and pid in site.people:  # no channel of their own: their roles'
            for role in site.people[pid].roles:
                out += of(role)
    else:
        out += of(recipient)
        for person in site.people_with_role(recipient):
            out += of(person.id)
    return list(dict.fromkeys(out))


def url_hash(url: str) -> str:
    """A channel's identity for logs and rows: never the URL itself (it may hold tokens)."""
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}:{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def inhibited(alarm: AlarmInfo, open_alarms: Iterable[OpenAlarm], site: Site) -> str | None:
    """Why a push for `alarm` is suppressed by another open alarm, or None."""
    opened = list(open_alarms)
    if alarm.rule in FIRE_DETECTION_RULES and alarm.zone is not None and any(
            o.rule == "fire.confirmed" and o.subject == alarm.zone for o in opened):
        return f"fire.confirmed is open in {alarm.zone}"
    if alarm.rule in OFFLINE_RULES:
        device = site.devices.get(alarm.subject)
        if device is not None and any(o.rule == "sup.gateway_offline" and o.subject == device.edge
                                      for o in opened):
            return f"edge {device.edge} is offline"
    return None


class SilenceRefused(ValueError):
    """A silence that may not be set; the message names the field and what to do."""


def check_silence(ends_at: datetime, now: datetime) -> None:
    """Refuse a silence that has already ended or lasts longer than `MAX_SILENCE`."""
    if ends_at <= now:
        raise SilenceRefused(f"ends_at {ends_at.isoformat()} is not in the future: give an end after "
                             f"{now.isoformat()}")
    if ends_at - now > MAX_SILENCE:
        hours = MAX_SILENCE // timedelta(hours=1)
        raise SilenceRefused(f"ends_at may be at most {hours} h ahead (until {(now + MAX_SILENCE).isoformat()}): "
                             f"set a new silence when this one ends")


def silence_end(ends_at: datetime, set_at: datetime) -> datetime:
    """When a silence set at `set_at` ends: its own end, but never later than `MAX_SILENCE` after it was set
    (a silence stored before the bound existed ends there too)."""
    return min(ends_at, set_at + MAX_SILENCE)


def silenced(alarm: AlarmInfo, silences: Iterable[Silence], now: datetime) -> Silence | None:
    """The silence that holds back `alarm`'s pushes: never for a life-safety or critical alarm, and for a
    security alarm only one that names it (a silence "for the night" is set for noise, not for a break-in)."""
    if is_life_safety(alarm.rule) or alarm.severity is Severity.CRITICAL:
        return None
    security = alarm.rule in SECURITY_RULES
    return next((s for s in silences if s.matches(alarm, now) and (not security or s.names(alarm))), None)


def group_wait(alarm: AlarmInfo) -> timedelta:
    """How long a page of `alarm` waits for its group: never for a critical or life-safety alarm."""
    return timedelta(0) if alarm.severity is Severity.CRITICAL or is_life_safety(alarm.rule) else GROUP_WAIT


def group_key(alarm: AlarmInfo, site: Site) -> str | None:
    """Key under which pushes are folded into one message, or None for never-held alarms."""
    if is_life_safety(alarm.rule) or alarm.note is not None:
        return None  # never held: life safety, or a page that announces a cut at a set time
    floor = site.zones[alarm.zone].floor if alarm.zone in site.zones else alarm.site
    return f"{alarm.rule}@{floor}"


# -- words --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class Item:
    """One alarm line of a message (a grouped message lists several)."""

    alarm_id: int
    rule: str
    severity: str
    zone: str
    zone_name: str
    device: str
    value: str
    message: str
    message_zh: str
    at: str = ""
    """The raise time at the site's local time (HH:MM:SS), "" when not known."""

    def as_dict(self) -> dict[str, str | int]:
        return {"alarm_id": self.alarm_id, "rule": self.rule, "severity": self.severity, "zone": self.zone,
                "zone_name": self.zone_name, "device": self.device, "value": self.value,
                "message": self.message, "message_zh": self.message_zh, "at": self.at}


def item(alarm: AlarmInfo, site: Site) -> Item:
    zone = alarm.zone or ""
    zone_name = site.zones[zone].name if zone in site.zones and site.zones[zone].name else zone
    device = alarm.subject if alarm.subject in site.devices else ""
    value = with_unit(alarm.rule, alarm.value)
    message, message_zh = alarm.message, alarm.message_zh or alarm.message
    if alarm.note is not None:
        message_zh, message = f"{message_zh};{alarm.note[0]}", f"{message}; {alarm.note[1]}"
    at = alarm.raised_at.astimezone(site.tz).strftime("%H:%M:%S") if alarm.raised_at is not None else ""
    return Item(alarm.id, alarm.rule, alarm.severity.value, zone, zone_name, device, value, message, message_zh, at)


def render(items: Sequence[Item], base_url: str, *, drill: bool = False, escalation: str = "",
           extra_zh: str = "", extra_en: str = "") -> Text:
    """Chinese first, then English; every line names zone, device, value, raise time, rule and links the alarm."""
    prefix = DRILL_PREFIX if drill else ""
    first = items[0]
    sev = Severity(first.severity)
    if len(items) == 1:
        title = f"{prefix}[{SEVERITY_ZH[sev]}/{sev.value}] {first.rule} {first.zone_name}"
    else:
        title = f"{prefix}[{SEVERITY_ZH[sev]}/{sev.value}] {len(items)}× {first.rule} {first.zone_name}"
    lines: list[str] = []
    if escalation:
        lines.append(escalation)
    for it in items:
        lines += _lines(it, base_url, prefix)
    if extra_zh:
        lines.append(extra_zh if extra_zh.startswith(DRILL_PREFIX) else prefix + extra_zh)
    if extra_en:
        lines.append(extra_en)
    return Text(title, "\n".join(lines))


def _lines(it: Item, base_url: str, prefix: str = "") -> list[str]:
    """One alarm in two lines, Chinese then English, with zone, device, value, raise time, rule and its link."""
    link = f"{base_url.rstrip('/')}/#alarm={it.alarm_id}"
    zh = it.message_zh or it.message
    zh = zh if zh.startswith(DRILL_PREFIX) else prefix + zh
    # An alarm of no zone (a leaver's badge, an edge) says so rather than leaving the field blank.
    at_zh, at_en = (f"|时间 {it.at}", f" | at {it.at}") if it.at else ("", "")
    return [f"{zh}|区域 {it.zone_name or '无'}|设备 {it.device or '-'}|数值 {it.value or '-'}{at_zh}|规则 {it.rule}",
            f"{it.message} | zone {it.zone or 'none'} | device {it.device or '-'} | value {it.value or '-'}{at_en} | "
            f"rule {it.rule} | {link}"]


def group_tasks(rule: str, drill: bool) -> dict[str, tuple[str, str]]:
    """Tasks of the emergency command groups for this rule; the 119 prompt is dropped in a drill."""
    if rule not in COMMAND_RULES:
        return {}
    tasks = dict(GROUPS)
    if drill:
        tasks["information_reporting"] = ("信息报送组:记录演练时间线,演练不对外报警",
                                          "Information reporting group: keep the drill timeline; a drill makes "
                                          "no external call")
    return tasks


@dataclass(slots=True)
class Delivery:
    """One push to make now: who, through which URL, what (built by `page`)."""

    recipient: str
    url: str
    text: Text
    fallback: bool = False
    group: str | None = None
    items: list[Item] = field(default_factory=list)


def page(alarm: AlarmInfo, site: Site, keys: Sequence[str], at: datetime, base_url: str, *,
         fallback: bool = False, escalation: str = "", already: Iterable[str] = ()) -> list[Delivery]:
    """Pushes for one escalation step: recipients resolved through the roster, one per channel URL."""
    it = item(alarm, site)
    seen = set(already)
    out: list[Delivery] = []
    urls: set[str] = set()
    # a group's task is given once, with its first page; escalations and repeats only remind
    tasks = group_tasks(alarm.rule, alarm.drill) if not escalation else {}
    for key in keys:
        for recipient in resolve(key, alarm, site, at):
            if recipient in seen:
                continue
            seen.add(recipient)
            task = tasks.get(key)
            text = render([it], base_url, drill=alarm.drill, escalation=escalation,
                          extra_zh=task[0] if task else "", extra_en=task[1] if task else "")
            found = channels(recipient, site, alarm.zone, alarm.severity)
            if not found:  # nothing to send through: the service records it, so the gap shows
                out.append(Delivery(recipient, NO_CHANNEL, text, items=[it]))
            for url in found:
                if url in urls:
                    continue
                urls.add(url)
                out.append(Delivery(recipient, url, text, group=group_key(alarm, site), items=[it]))
    if fallback:
        for url in site.contacts_of(FALLBACK):
            if url not in urls:
                urls.add(url)
                text = render([it], base_url, drill=alarm.drill, escalation="未确认/未送达:备用通道 "
                              "(not acknowledged or not delivered: fallback channel)")
                out.append(Delivery(FALLBACK, url, text, fallback=True, items=[it]))
    return out


# -- §4: warning -> minor, and the supervisor's daily digest of minor alarms ----------------------------


def digest_day(now: datetime, tz: tzinfo) -> date:
    """The local day whose digest is the latest one due at `now` (today after DIGEST_AT, else yesterday)."""
    local = now.astimezone(tz)
    return local.date() if local.time() >= DIGEST_AT else local.date() - timedelta(days=1)


def in_digest(minor_since: datetime, acked: bool, now: datetime) -> bool:
    """A minor alarm goes into the digest when unacknowledged for DIGEST_AFTER (24 h) or more."""
    return not acked and now - minor_since >= DIGEST_AFTER


def digest(alarms: Sequence[AlarmInfo], site: Site, at: datetime, base_url: str, day: date) -> list[Delivery]:
    """ONE message per supervisor (the one on duty on each alarm's floor, from the roster, else the
    role) listing every alarm of theirs, instead of one page per alarm."""
    mine: dict[str, list[Item]] = {}
    for alarm in sorted(alarms, key=lambda a: a.id):
        for recipient in resolve("supervisor", alarm, site, at):
            mine.setdefault(recipient, []).append(item(alarm, site))
    out: list[Delivery] = []
    for recipient, items in mine.items():
        text = render_digest(items, base_url, day)
        for url in channels(recipient, site):
            out.append(Delivery(recipient, url, text, items=items))
    return out


def render_digest(items: Sequence[Item], base_url: str, day: date) -> Text:
    title = (f"[{SEVERITY_ZH[Severity.MINOR]}/minor] 每日汇总 daily digest {day.isoformat()}: "
             f"{len(items)} 条超过24小时未确认 (unacknowledged for 24 h)")
    lines = [f"以下一般告警超过24小时未确认,请处理并确认 (these minor alarms have not been acknowledged for "
             f"24 h or more: please deal with and acknowledge them) — {len(items)}"]
    for it in items:
        lines += _lines(it, base_url)
    return Text(title, "\n".join(lines))
