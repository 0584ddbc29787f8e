"""The composition root: builds every adapter from Settings, wires them, starts and stops them.

Nothing here decides anything; it only connects the parts (what reacts to an alarm is a service, in the
order `alarm_listeners` gives). The FastAPI app holds one Runtime.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import Incoming, MqttClient, MqttSettings
from server.adapters.command_keys import command_signer, result_checker
from server.adapters.hr_file import HrFeed, load_hr
from server.adapters.notify import AppriseSender
from server.adapters.scheduler import InspectionScheduler, register
from server.adapters.sql.access_log import AccessLogRepository
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.delayed_cuts import DelayedCutRepository
from server.adapters.sql.effects import EffectsRepository
from server.adapters.sql.evacuations import EvacuationRepository
from server.adapters.sql.inspection_facts import InspectionFactsRepository
from server.adapters.sql.inspections import InspectionRepository
from server.adapters.sql.notifications import NotifyRepository
from server.adapters.sql.repository import AlarmRepository, UserRepository
from server.adapters.sql.silences import SilenceRepository
from server.adapters.timeseries import (
    InfluxWriter,
    SeriesHistory,
    SqliteSeriesStore,
    TimeSeriesWriter,
    open_writer,
)
from server.domain.policy import Role
from server.domain.reach import unreachable_warnings
from server.domain.rules import RuleEngine
from server.domain.sequence import SequenceTracker
from server.domain.site import Site
from server.services import redaction
from server.services.access_log import AccessLog
from server.services.alarm_feed import AlarmFeed
from server.services.alarms import AlarmListener, AlarmService
from server.services.channel_outcomes import ChannelOutcomes
from server.services.commands import CommandService
from server.services.delayed_cuts import DelayedCutService
from server.services.duties import OverdueDuties
from server.services.evacuation import EvacuationService, is_drill_alarm
from server.services.fire_verification import FireVerification
from server.services.hr_sync import HrSync
from server.services.ingest import Ingest
from server.services.inspection_facts import FactsReader
from server.services.inspections import InspectionService
from server.services.lease import LeaseKeeper
from server.services.live import LiveState
from server.services.notify import NotificationService
from server.services.overload_cut import OverloadCut
from server.services.page_notes import PageNotes
from server.services.ports import Sender
from server.services.recovery import EffectsOutbox, EffectsRecovery, crash_hook, restore_rules
from server.settings import MQTT_CREDENTIALS, Settings
from server.site_check import load_site

log = logging.getLogger(__name__)


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


HISTORY_BUFFER_POINTS = 10_000
"""Bound of the alarm and inspection history's own writer (alarm changes are rare; this is hours of them)."""


def _series_writer(s: Settings, max_buffer: int, hold_s: float) -> InfluxWriter | SqliteSeriesStore:
    """InfluxDB when configured, else the embedded store in the data folder."""
    influx = s.influx
    return open_writer(influx_url=influx.url if influx else None,
                       token=influx.token.get_secret_value() if influx else "", org=influx.org if influx else "",
                       bucket=influx.bucket if influx else "floorwatch", sqlite_path=s.data_dir / "series.sqlite",
                       retention_days=s.series_retention_days, max_buffer=max_buffer, hold_s=hold_s)


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
    history_series: TimeSeriesWriter = field(init=False)
    """Where alarm changes and inspection counts go (`SeriesHistory`), beside the readings' `series`."""
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
    """The HR feed as read at start; `hr_sync` reads it again at every pass."""
    preloaded_site: Site | None = None
    """The site file as the caller already read and checked it (`floorwatch serve`): not parsed twice."""
    owns_process: bool = False
    """The process runs this one runtime until it exits (`floorwatch serve`, the benchmark server): what
    the start builds is frozen out of the cyclic collector (`collector_paused`)."""
    admin_token: str | None = None
    """Set when this start generated the first admin's token (printed once)."""
    started_at: datetime = field(default_factory=utc_now)
    channel_outcomes: ChannelOutcomes = field(init=False)
    lease: LeaseKeeper | None = None
    """The partition lease this worker holds (PostgreSQL, `floorwatch server`/`worker`): every alarm,
    checkpoint, command, evacuation and delayed-cut commit checks it, and losing it stops ingest and MQTT.
    None: this process owns it all."""
    lease_lost: threading.Event = field(default_factory=threading.Event)
    hr_sync: HrSync | None = None
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
        for warning in [*self.site.warnings, *unreachable_warnings(self.site)]:
            log.warning("site: %s", warning)
        hr_file = s.hr_file or s.site_file.parent / "hr.yaml"
        if s.hr_file is not None or hr_file.exists():
            self.hr = load_hr(hr_file)
            for warning in self.hr.unknown_leavers(self.site):
                log.warning("hr: %s", warning)

        self.sql = make_engine(s.sql_url())
        migrate(self.sql)
        sessions = session_factory(self.sql)
        self.repository = AlarmRepository(sessions)
        self.users = UserRepository(sessions)
        self._first_admin()

        self.series = _series_writer(s, s.influx.buffer_lines if s.influx else s.series_buffer_points,
                                     s.series_hold_s)
        # Alarm changes and inspection counts (the boards' history) have a writer of their own: they never
        # wait in the readings' back-pressure (an acknowledgement during a store outage would) and never
        # push readings out of their bound; a stuck store drops the oldest of them, counted in its stats.
        self.history_series = _series_writer(s, HISTORY_BUFFER_POINTS, 0.0)

        # Every told alarm change is an outbox row until its listeners ran (fault 2, services/recovery.py);
        # rows committed before this instant belong to an earlier process and are dispatched again below.
        outbox = EffectsOutbox(EffectsRepository(sessions), self.clock)
        fence = self.lease.fencer() if self.lease is not None else None
        self.alarms = AlarmService(AlarmWriter(sessions, fence), self.repository.open_alarms(), outbox=outbox,
                                   after_commit=crash_hook(), stored=self.repository.get)
        with collector_paused(self.owns_process):
            engine = RuleEngine(self.site)
            restore_rules(self.repository, engine)
            sequences = SequenceTracker(timedelta(seconds=s.gap_window_s))
            seq_state = self.repository.load_state("sequences")
            if seq_state:
                sequences.restore(seq_state)
        # `mqtt` and `commands` come later (both need what is built here): reached through self at call time.
        self.ingest = Ingest(self.site, engine, self.alarms, self.series, self.live, clock=self.clock,
                             ack=self._ack, sequences=sequences,
                             max_age=timedelta(seconds=s.reading_max_age_s),
                             max_future=timedelta(seconds=s.reading_max_future_s),
                             on_command_result=lambda edge, result: self.commands.on_result(edge, result),
                             on_interlock=lambda edge, event: self.commands.on_interlock(edge, event),
                             tick_s=s.tick_s)
        self.recovery = EffectsRecovery(outbox, self.alarms.dispatch,
                                        run_serial=self.ingest.run_between_drains, started_at=self.clock())
        facts = FactsReader(self.site, self.live, InspectionFactsRepository(sessions), series=self.series,
                            backup_dir=s.data_dir / "backups", flush=lambda: self.series.flush(2.0))
        history = SeriesHistory(self.history_series, self.site.id, self.site.devices.keys(), self.clock)
        self.inspections = InspectionService(InspectionRepository(sessions), self.site, self.clock, facts=facts,
                                             training=self.hr.trainings(self.site.tz) if self.hr else None,
                                             counts=history.counts)

        # Response: commands to edges, notifications (outbox + escalation), evacuations.
        # API threads give the engine inputs only through `ingest.call` (it runs them on the ingest thread).
        base_url = self.base_url or f"http://{s.http_host}:{s.http_port}"
        self.commands = CommandService(CommandRepository(sessions, fence), self.site, self.clock, self._publish,
                                       self.ingest.call,
                                       sign=command_signer(s.command_keys_dir),  # per-edge HMAC keys
                                       check_result=result_checker(s.command_keys_dir))  # the edges' signed answers
        self.channel_outcomes = ChannelOutcomes(self.ingest)
        cut_store = DelayedCutRepository(sessions, fence)
        self.notify = NotificationService(
            NotifyRepository(sessions, fence), self.site, self.clock, self.sender, silences=SilenceRepository(sessions),
            base_url=base_url,
            # under a lease the id is the worker's own, so a fenced old owner's late result never
            # overwrites the new owner's record of the same row
            worker_id=self.lease.owner if self.lease is not None else s.mqtt_client_id,
            sole_sender=self.lease is not None, open_alarms=self.alarms.open_alarms,
            alarm_by_id=self.alarms.by_id, on_result=self.channel_outcomes, is_drill=is_drill_alarm,
            notes=PageNotes(cut_store, self.site, self.commands), commit=self.alarms.commit)
        self.cuts = DelayedCutService(cut_store, self.site, self.clock, self.commands, self.live.current_a,
                                      self.alarms.by_id, notify=self.notify)
        self.inspections.pager = self.notify  # a defect found on inspection is paged (domain/inspections/defects.py)
        self.access_log = AccessLog(AccessLogRepository(sessions), self.site)
        self.evacuations = EvacuationService(
            EvacuationRepository(sessions, fence), self.site, self.clock, self.commands, self.notify,
            lambda notice: self._publish(contract.site_topic(self.site.id, contract.SiteChannel.EVACUATION), notice),
            self.ingest.call, base_url, open_alarms=self.alarms.open_alarms)
        self.access_log.on_recorded = self.evacuations.on_access
        overload_cut = OverloadCut(self.site, self.commands, self.live, self.alarms.by_id, self.started_at)
        # Listeners run in this order after each commit, each on its own (one that fails does not stop the
        # next). The dashboards' MQTT change goes first: it only publishes. The cut listeners come before
        # the notification listener: the first page names the plugs switched off and the delayed cut's
        # time (PageNotes). The evacuation listener, too: a confirmed fire's evacuation has begun when its
        # pages leave. The boards' alarm history goes last: it only buffers a point in its own writer.
        alarm_listeners: tuple[AlarmListener, ...] = (
            AlarmFeed(self.site, self.clock, self._publish).on_alarm,
            self.inspections.on_alarm,
            FireVerification(self.ingest.call, self.alarms.open_alarms).on_alarm,
            overload_cut.on_alarm,
            self.cuts.on_alarm,
            self.evacuations.on_alarm,
            self.notify.on_alarm,
            history.on_alarm,
        )
        # Everything a listener uses exists before the first alarm can change (ingest starts below).
        self.alarms.listeners.extend(alarm_listeners)
        self.access_log.start()
        self.cuts.start_worker()
        self.ingest.start()
        self.notify.start()

        register("runtime", self.inspections, on_findings=OverdueDuties(self.site, self.alarms, self.clock))
        self.scheduler = InspectionScheduler(engine=self.sql, name="runtime")
        self.scheduler.start()

        if self.hr is not None:
            self.hr_sync = HrSync(partial(load_hr, hr_file), self.hr, self.site, self.ingest.call,
                                  on_training=self.inspections.use_training)
            self.hr_sync.start()

        if s.mqtt is None:
            self.broker = EmbeddedBroker(data_dir=s.data_dir / "broker")
            self.broker.start()
            self.mqtt_settings = self.broker.client_settings()
        else:
            self.mqtt_settings = s.mqtt
        self.mqtt = MqttClient(self.mqtt_settings, s.mqtt_client_id, on_message=self._on_message,
                               persistent_session=True, manual_ack=True,
                               credentials_from=MQTT_CREDENTIALS)
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
        if self.hr_sync is not None:
            self.hr_sync.stop()
        self.recovery.stop()
        self.scheduler.shutdown()
        self.notify.stop()
        self.channel_outcomes.stop(5.0)
        if self.mqtt is not None:
            self.mqtt.stop()
        self.ingest.stop()
        self.access_log.stop()
        self.cuts.stop_worker()
        self.series.close()
        self.history_series.close()
        if self.broker is not None:
            self.broker.stop()

    def _on_message(self, message: Incoming) -> None:
        """MQTT thread: hand off only (ingest, and the access log that roll call reads)."""
        self.access_log.submit(message)
        self.ingest.submit(message)

    def _ack(self, message: Incoming) -> bool:
        """Ingest thread, once a checkpoint covers the message. An event batch whose badge events are not in
        the access log yet is not acknowledged (False): ingest asks again at its next checkpoint, and never
        waits for the access log meanwhile."""
        if not self.access_log.recorded(message):
            return False
        if self.mqtt is not None:
            self.mqtt.ack(message)
        return True

    def _publish(self, topic: str, payload: contract.AlarmChange | contract.Command | contract.EvacuationNotice
                 ) -> None:
        """Nothing is published before the MQTT client exists; until it connects, its queue holds what is."""
        if self.mqtt is not None:
            self.mqtt.publish_payload(topic, payload)

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
