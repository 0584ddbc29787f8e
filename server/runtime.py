"""The composition root: builds every adapter from Settings, wires them, starts and stops them.

Nothing here decides anything; it only connects the parts. The FastAPI app holds one Runtime.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.contract import Severity
from gateway.mqtt import Incoming, MqttClient, MqttSettings
from server.adapters.command_keys import command_signer, result_checker
from server.adapters.hr_file import HrFeed, load_hr
from server.adapters.notify import AppriseSender, Sender
from server.adapters.scheduler import InspectionScheduler, register
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.repository import AlarmRepository, UserRepository
from server.adapters.timeseries import InfluxWriter, SqliteSeriesStore, TimeSeriesWriter
from server.domain import alarms as domain
from server.domain.catalog import CATALOG, Check, ids
from server.domain.findings import Finding, Transition
from server.domain.inspections import OVERDUE_BY_ID, OverdueFinding
from server.domain.policy import Role
from server.domain.power import plan_cut, safety_cut_note
from server.domain.rules import RuleEngine
from server.domain.sequence import SequenceTracker
from server.domain.site import Site
from server.services import redaction
from server.services.alarms import AlarmService
from server.services.commands import CommandService
from server.services.delayed_cuts import DelayedCutService
from server.services.delivery import Serial
from server.services.evacuation import EvacuationService
from server.services.ingest import Ingest
from server.services.inspection_facts import FactsReader
from server.services.inspections import InspectionService
from server.services.lease import LeaseKeeper
from server.services.live import LiveState
from server.services.notify import NotificationService
from server.services.recovery import EffectNotReady, EffectsOutbox, EffectsRecovery, crash_hook, restore_rules
from server.settings import Settings
from server.site_check import load_site

log = logging.getLogger(__name__)


DUTY_RULE_PREFIXES = frozenset(
    spec.family for spec in CATALOG.values() if spec.check is Check.SCHEDULE and spec.section == "2.9"
)
OVERLOAD_RULES = ids(lambda spec: spec.cuts_relay)
FIRE_PAGES = ids(lambda spec: spec.starts_verification)
"""Alarms that start the §3 verification sequence; acknowledging one is the 60 s acknowledgement."""


@contextmanager
def collector_paused(freeze: bool) -> Iterator[None]:
    """For building what lives as long as the runtime (the site, the rule engine's state): millions of
    objects and no garbage at 50,000 devices, so the cyclic collector's passes during the build are
    waste (about half of the engine build's CPU). `freeze`: afterwards, later passes skip them too; each full
    pass of the steady state otherwise walks every device's objects, a per-reading cost that grows with
    the site. Only for a process that keeps this runtime until it exits: frozen objects are never
    collected, so a process starting many runtimes (tests) would keep every stopped one."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        if freeze:
            gc.freeze()


def utc_now() -> datetime:
    return datetime.now(UTC)


def server_filters(site_id: str) -> list[str]:
    """What the server's persistent session subscribes to (also made ahead of it by `floorwatch broker session`)."""
    return [contract.edge_filter(channel, site=site_id) for channel in contract.SERVER_INBOUND]


@dataclass
class Runtime:
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    site: Site = field(init=False)
    broker: EmbeddedBroker | None = None
    mqtt: MqttClient | None = None
    mqtt_settings: MqttSettings | None = None
    series: TimeSeriesWriter = field(init=False)
    alarms: AlarmService = field(init=False)
    repository: AlarmRepository = field(init=False)
    users: UserRepository = field(init=False)
    ingest: Ingest = field(init=False)
    inspections: InspectionService = field(init=False)
    scheduler: InspectionScheduler = field(init=False)
    live: LiveState = field(default_factory=LiveState)
    notify: NotificationService = field(init=False)
    commands: CommandService = field(init=False)
    cuts: DelayedCutService = field(init=False)
    recovery: EffectsRecovery = field(init=False)
    evacuations: EvacuationService = field(init=False)
    sender: Sender = field(default_factory=AppriseSender)
    """How pushes leave (apprise); replaceable for a test that wants to fail a channel on purpose."""
    base_url: str | None = None
    """The dashboard's address for links in messages (default: http://{http_host}:{http_port})."""
    hr: HrFeed | None = None
    hr_warnings: list[str] = field(default_factory=list)
    """What the HR feed says that the site file cannot use (logged with names; counted in health)."""
    _cut_for: set[int | None] = field(default_factory=set)
    """Alarms whose overload cut was already sent (one cut per alarm, however often it re-triggers)."""
    preloaded_site: Site | None = None
    """The site file as the caller already read and checked it (`floorwatch serve`): not parsed twice."""
    owns_process: bool = False
    """The process runs this one runtime until it exits (`floorwatch serve`, the benchmark server): what
    the start builds is frozen out of the cyclic collector (`collector_paused`)."""
    admin_token: str | None = None
    """Set when this start generated the first admin's token (printed once)."""
    started_at: datetime = field(default_factory=utc_now)
    _results: Serial = field(default_factory=lambda: Serial("notify-results"))
    """Delivery outcomes on their way to the rule engine, in order, without a lane thread waiting."""
    lease: LeaseKeeper | None = None
    """The partition lease this worker holds (PostgreSQL, `floorwatch server`/`worker`): every alarm and
    checkpoint commit checks it, and losing it stops ingest and MQTT. None: this process owns it all."""
    lease_lost: threading.Event = field(default_factory=threading.Event)
    _hr_stop: threading.Event = field(default_factory=threading.Event)
    _halted: bool = False
    _halt_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        # A lease lost while starting (on_lost runs on a thread of its own) waits for the start to end,
        # then stops every part it started: none is left running.
        with self._halt_lock:
            self._start()

    def _start(self) -> None:
        given_clock = self.clock
        # One time zone inside the server: UTC (stores without zones, such as SQLite, depend on it).
        self.clock = lambda: given_clock().astimezone(UTC)
        s = self.settings
        if self.lease is not None:
            if self.lease.state != "owner":
                raise RuntimeError("Runtime.start needs the partition's lease acquired first")
            self.lease.on_lost = self._lease_lost
        s.data_dir.mkdir(parents=True, exist_ok=True)
        if self.preloaded_site is not None:
            self.site = self.preloaded_site
        else:
            with collector_paused(self.owns_process):
                self.site = load_site(s.site_file)
        redaction.install(secret for key in self.site.config.contacts for u in self.site.contacts_of(key)
                          for secret in redaction.url_secrets(u))  # contact URLs carry tokens
        for warning in self.site.warnings:
            log.warning("site: %s", warning)

        self.sql = make_engine(s.sql_url())
        migrate(self.sql)
        sessions = session_factory(self.sql)
        self.repository = AlarmRepository(sessions)
        self.users = UserRepository(sessions)
        self._first_admin()

        if s.influx is not None:
            self.series = InfluxWriter(url=s.influx.url, token=s.influx.token.get_secret_value(), org=s.influx.org,
                                       bucket=s.influx.bucket, max_buffer=s.influx.buffer_lines,
                                       hold_s=s.series_hold_s)
        else:
            self.series = SqliteSeriesStore(s.data_dir / "series.sqlite", retention_days=s.series_retention_days,
                                            max_buffer=s.series_buffer_points, hold_s=s.series_hold_s)

        self.alarms = AlarmService(sessions, self.repository.open_alarms())
        if self.lease is not None:
            self.alarms.fence = self.lease.fencer()
        # Every told alarm change is an outbox row until its listeners ran (fault 2, services/recovery.py);
        # rows committed before this instant belong to an earlier process and are dispatched again below.
        self.alarms.outbox = EffectsOutbox(sessions, self.clock)
        self.alarms.after_commit = crash_hook()
        self.recovery = EffectsRecovery(self.alarms.outbox, self.alarms.dispatch, run_serial=self._on_ingest_thread,
                                        started_at=self.clock())
        with collector_paused(self.owns_process):
            engine = RuleEngine(self.site)
            restore_rules(self.repository, engine)
            sequences = SequenceTracker(timedelta(seconds=s.gap_window_s))
            seq_state = self.repository.load_state("sequences")
            if seq_state:
                sequences.restore(seq_state)
        self.ingest = Ingest(self.site, engine, self.alarms, self.series, self.live, clock=self.clock,
                             ack=self._ack, sequences=sequences,
                             max_age=timedelta(seconds=s.reading_max_age_s),
                             max_future=timedelta(seconds=s.reading_max_future_s),
                             on_command_result=self._command_result, tick_s=s.tick_s)
        # Everything a listener uses exists before the first alarm can change (ingest starts below).
        facts = FactsReader(self.site, self.live, sessions, series=self.series, backup_dir=s.data_dir / "backups",
                            flush=lambda: self.series.flush(2.0))
        self.inspections = InspectionService(sessions, self.site, self.clock, facts=facts)
        self.alarms.listeners.append(self._publish_alarm)
        self.alarms.listeners.append(self._inspect_after_clear)
        self.alarms.listeners.append(self._fire_verification)
        self.alarms.listeners.append(self._cut_overload)

        # Response: commands to edges, notifications (outbox + escalation), evacuations.
        # API threads give the engine inputs only through `ingest.call` (it runs them on the ingest thread).
        base_url = self.base_url or f"http://{s.http_host}:{s.http_port}"
        self.commands = CommandService(sessions, self.site, self.clock, self._publish_command, self.ingest.call)
        self.commands.sign = command_signer(s.command_keys_dir)  # per-edge HMAC keys (gateway/signing.py)
        self.commands.check_result = result_checker(s.command_keys_dir)  # and the edges' signed answers
        self.cuts = DelayedCutService(sessions, self.site, self.clock, self.commands, self._current_a,
                                      self._alarm_by_id)
        self.alarms.listeners.append(self.cuts.on_alarm)  # before notify's: the first page names the cut time
        self.notify = NotificationService(
            sessions, self.site, self.clock, self.sender, base_url=base_url,
            # under a lease the id is the worker's own, so a fenced old owner's late result never
            # overwrites the new owner's record of the same row
            worker_id=self.lease.owner if self.lease is not None else s.mqtt_client_id,
            sole_sender=self.lease is not None, open_alarms=self.alarms.open_alarms,
            alarm_by_id=self._alarm_by_id, on_result=self._notify_result,
            notes=self._page_note, commit=self.alarms.commit)
        self.cuts.notify = self.notify  # hold and done follow-ups to the alarm's first-page channels
        self.evacuations = EvacuationService(sessions, self.site, self.clock, self.commands, self.notify,
                                             self._publish_notice, self.ingest.call, base_url)
        self.notify.is_drill = self.evacuations.is_drill_alarm
        self.alarms.listeners.append(self.evacuations.on_alarm)
        self.alarms.listeners.append(self.notify.on_alarm)
        self.evacuations.start_worker()
        self.cuts.start_worker()
        self.ingest.start()
        self.notify.start()

        register("runtime", self.inspections, on_findings=self._overdue_duties)
        self.scheduler = InspectionScheduler(engine=self.sql, name="runtime")
        self.scheduler.start()

        hr_file = s.hr_file or s.site_file.parent / "hr.yaml"
        if s.hr_file is not None or hr_file.exists():
            self.hr = load_hr(hr_file)
            self.hr_warnings = self.hr.unknown_leavers(self.site)
            for warning in self.hr_warnings:
                log.warning("hr: %s", warning)
            self.inspections.training = self.hr.trainings(self.site.tz)
            threading.Thread(target=self._feed_hr, name="hr-feed", daemon=True).start()


        if s.mqtt is None:
            self.broker = EmbeddedBroker(data_dir=s.data_dir / "broker")
            self.broker.start()
            self.mqtt_settings = self.broker.client_settings()
        else:
            self.mqtt_settings = s.mqtt
        self.mqtt = MqttClient(self.mqtt_settings, s.mqtt_client_id, on_message=self._on_message,
                               persistent_session=True, manual_ack=True)
        for topic_filter in server_filters(self.site.id):
            self.mqtt.subscribe(topic_filter)
        # Listeners of transitions committed before a crash run again, before MQTT delivers anything
        # (their publishes wait in the client's queue until it connects).
        self.recovery.start()
        # An evacuation whose start was cut short by a crash gets what it lacks (notice, doors, pushes).
        self.evacuations.resume()
        self.mqtt.start()

    def stop(self) -> None:
        self._halt()
        if self.lease is not None:
            self.lease.release()  # after ingest and MQTT stopped: a standby may take over at once
        self.sql.dispose()

    def _lease_lost(self, reason: str) -> None:
        """Another worker owns the partition (or may soon): disconnect without acknowledging anything, so
        the broker hands every unacknowledged message to the next owner, then stop every other part.
        The database stays open for /api/health, which reports the loss."""
        if self.mqtt is not None:
            self.mqtt.stop()
            log.warning("off the broker after losing the lease: the next owner gets every unacknowledged message")
        try:
            self._halt()
        except Exception:  # lost while still starting: what exists is stopped, nothing commits anyway
            log.exception("stopping after the lease was lost")
        self.lease_lost.set()

    def _halt(self) -> None:
        with self._halt_lock:
            if self._halted:
                return
            self._halted = True
        self._hr_stop.set()
        self.recovery.stop()
        self.scheduler.shutdown()
        self.notify.stop()
        self._results.stop(5.0)
        if self.mqtt is not None:
            self.mqtt.stop()
        self.ingest.stop()
        self.evacuations.stop_worker()
        self.cuts.stop_worker()
        self.series.close()
        if self.broker is not None:
            self.broker.stop()

    def _on_message(self, message: Incoming) -> None:
        """MQTT thread: hand off only (ingest, and the access log that roll call reads)."""
        self.evacuations.submit(message)
        self.ingest.submit(message)

    def _command_result(self, edge: str, result: contract.CommandResult) -> None:
        self.commands.on_result(edge, result)

    def _publish_command(self, topic: str, command: contract.Command) -> None:
        if self.mqtt is not None:
            self.mqtt.publish_payload(topic, command)

    def _publish_notice(self, notice: contract.EvacuationNotice) -> None:
        if self.mqtt is not None:
            self.mqtt.publish_payload(contract.site_topic(self.site.id, contract.SiteChannel.EVACUATION), notice)

    def _alarm_by_id(self, alarm_id: int) -> domain.Alarm | None:
        live = next((a for a in self.alarms.open_alarms() if a.id == alarm_id), None)
        return live if live is not None else self.repository.get(alarm_id)

    def _notify_result(self, channel: str, ok: bool) -> None:
        """Delivery outcomes feed sup.notify_channel (3 consecutive failures of a channel -> major).
        Posted, not waited for: the call queues behind the ingest inbox, which under a flood holds
        seconds of telemetry, and the delivering thread has the next page of that channel to send."""
        self._results.post(lambda: self.ingest.call(
            lambda engine, now: engine.on_notify_result(channel, ok, now), timeout=60))

    def _on_ingest_thread(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the ingest thread, between drains: where alarm listeners normally run."""
        def call(_engine: RuleEngine, _now: datetime) -> list[Finding]:
            fn()
            return []

        self.ingest.call(call, timeout=120)

    def _current_a(self, device: str) -> float | None:
        live = self.live.devices().get(device)
        value = live.metrics.get("current_a") if live is not None else None
        return float(value) if isinstance(value, (int, float)) else None

    def _ack(self, message: Incoming) -> None:
        if self.mqtt is not None:
            self.mqtt.ack(message)

    def _publish_alarm(self, alarm: domain.Alarm) -> None:
        if self.mqtt is None or alarm.id is None:
            return
        change = contract.AlarmChange(
            id=alarm.id, site=alarm.site, rule=alarm.rule, severity=alarm.severity, state=alarm.state.value,
            device=alarm.subject if alarm.subject in self.site.devices else None, zone=alarm.zone,
            ts=self.clock(), value=alarm.value, message=alarm.message)
        self.mqtt.publish_payload(contract.site_topic(alarm.site, contract.SiteChannel.ALARMS, str(alarm.id)), change)

    def _feed_hr(self) -> None:
        """Leavers and approvals to the access rules at start, then hourly (RULES.md: reconcile hourly)."""
        assert self.hr is not None
        tz, site = self.site.tz, self.site
        approvals, leavers = self.hr.approvals(tz), self.hr.leave_times(tz)
        active = self.hr.active_badges(site)
        while True:
            self.ingest.call(lambda engine, now: engine.on_approvals(approvals, now))
            self.ingest.call(lambda engine, now: engine.on_hr_feed(leavers, active, now))
            if self._hr_stop.wait(3600):
                return

    def _cut_overload(self, alarm: domain.Alarm) -> None:
        """A critical overload opens the relays the power-cut policy allows (server/domain/power.py).
        One cut per alarm, also when its transition is dispatched again after a crash (recovery.py)."""
        if (alarm.rule not in OVERLOAD_RULES or alarm.severity is not Severity.CRITICAL
                or alarm.state is not domain.AlarmState.ACTIVE or alarm.id is None or alarm.id in self._cut_for):
            return
        ref = f"alarm {alarm.id}"
        current = self._alarm_by_id(alarm.id)
        if current is None or not current.is_open or not current.condition_active:
            self._cut_for.add(alarm.id)  # dispatched late and the overload is over: cutting now helps nobody
            return
        if any(c["action"] == contract.Action.RELAY_OFF.value for c in self.commands.commands(ref=ref)):
            self._cut_for.add(alarm.id)  # an earlier life of this server already cut for it
            return
        live = self.live.devices()
        currents = {d: float(v.metrics.get("current_a", 0.0)) for d, v in live.items()
                    if isinstance(v.metrics.get("current_a"), (int, float))}
        plan = plan_cut(alarm.rule, alarm.subject, alarm.value, self.site, currents)
        if (plan is None and alarm.rule == "elec.strip_overload" and alarm.raised_at < self.started_at
                and not any(p.id in currents for p in self.site.plugs_of_strip(alarm.subject))):
            # Recovered after a restart before any plug of the strip reported: the plan would be empty.
            raise EffectNotReady(f"no plug current of {alarm.subject} known since the restart")
        self._cut_for.add(alarm.id)
        if plan is not None:
            cut = self.commands.safety_cut(list(plan.devices), plan.reason, ref=ref)
            log.warning("safety cut for alarm %s: %s", alarm.id, ", ".join(cut) or "nothing cuttable")

    def _page_note(self, alarm_id: int) -> tuple[str, str] | None:
        """The line every page of an alarm carries: its delayed cut, or the plugs its overload switched off
        (`_cut_overload` runs before the notification listener, so the first page already says so)."""
        note = self.cuts.note_of(alarm_id)
        if note is not None:
            return note
        cut = [c["device"] for c in self.commands.commands(ref=f"alarm {alarm_id}")
               if c["action"] == contract.Action.RELAY_OFF.value]
        return safety_cut_note(cut) if cut else None

    def _fire_verification(self, alarm: domain.Alarm) -> None:
        """RULES.md §3: acknowledging a fire page stops the 60 s confirmation timer of its zone; closing
        the zone's last fire alarm (a person, with a reason) re-arms the zone."""
        if alarm.zone is None or not alarm.rule.startswith(("fire.", "mr.smoke")):
            return
        zone = alarm.zone
        if alarm.state is domain.AlarmState.ACKNOWLEDGED and alarm.rule in FIRE_PAGES:
            self.ingest.call(lambda engine, now: engine.acknowledge_fire(zone, now))
        elif alarm.state is domain.AlarmState.CLOSED and not any(
            a.zone == zone and a.latching for a in self.alarms.open_alarms()
        ):
            self.ingest.call(lambda engine, now: engine.reset_zone(zone, now))

    def _inspect_after_clear(self, alarm: domain.Alarm) -> None:
        """After an overload, forced door, detector fault or smoke event ends, an inspection is due."""
        if alarm.state in (domain.AlarmState.CLEARED, domain.AlarmState.CLOSED):
            self.inspections.add_triggered(alarm.rule, alarm.subject, alarm.zone, alarm.cleared_at or self.clock())
        if (alarm.state is domain.AlarmState.CLOSED and alarm.severity is Severity.CRITICAL
                and not self.evacuations.was_drill_alarm(alarm)):  # a drill has its report, not a review
            self.inspections.add_review(alarm.rule, alarm.subject, alarm.zone, alarm.closed_at or self.clock())

    def _overdue_duties(self, overdue: Sequence[OverdueFinding]) -> None:
        """Overdue inspections are alarms like any other (RULES.md §2.9); done duties clear theirs."""
        now = self.clock()
        findings = []
        for o in overdue:
            en, zh = o.messages(self.site.tz)
            findings.append(Finding(o.rule, Transition.RAISE, o.severity, o.subject, o.zone, self.site.id, None,
                                    en, now, zh))
        current = {(o.rule, o.subject) for o in overdue}
        findings += [Finding(a.rule, Transition.CLEAR, a.severity, a.subject, a.zone, self.site.id, None,
                             "duty done", now)
                     for a in self.alarms.open_alarms()
                     if (a.rule.split(".")[0] in DUTY_RULE_PREFIXES or a.rule in OVERDUE_BY_ID)
                     and (a.rule, a.subject) not in current]
        self.alarms.commit(findings, now)

    def _first_admin(self) -> None:
        if self.users.count() > 0:
            return
        given = self.settings.admin_token.get_secret_value() if self.settings.admin_token else None
        now = self.clock()
        admin = self.users.save("admin", [Role.ADMIN.value], now)
        if given is not None:
            self.users.add_token(admin.id, given, now, "FLOORWATCH_ADMIN_TOKEN")
        else:
            self.admin_token = self.users.issue_token(admin.id, now, None, "first start")
            # Printed once on the console, never logged: logs travel further than consoles.
            print(f"Floorwatch first start: admin bearer token (shown once): {self.admin_token}", flush=True)
