"""What every part of the notification service reads: set once by `NotificationService.__init__`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from server.domain import alarms as domain
from server.domain.site import Site
from server.services import delivery
from server.services.notify.push import Commit, NotifyResult
from server.services.ports import NotifyStore, Sender, SilenceStore


class NotifyState:
    """The attributes the parts share (escalation, digest, silences, outbox); no behaviour."""

    store: NotifyStore
    sole_sender: bool
    site: Site
    clock: Callable[[], datetime]
    sender: Sender
    silence_store: SilenceStore
    base_url: str
    worker_id: str
    open_alarms: Callable[[], Sequence[domain.Alarm]]
    alarm_by_id: Callable[[int], domain.Alarm | None]
    on_result: NotifyResult | None
    is_drill: Callable[[domain.Alarm], bool]
    poll_s: float
    before_send: Callable[[int], None] | None
    notes: Callable[[int], tuple[str, str] | None]
    commit: Commit | None
    attempt_timeout_s: float
    renew_after: timedelta
    lanes: delivery.Lanes
    _promote: list[domain.Alarm]
    _digest_done: date | None
    _urls: dict[str, str]
    _wake: threading.Event
    _stop: threading.Event
    _thread: threading.Thread | None
    _lock: threading.Lock
    _inflight: set[int]
    _inflight_lock: threading.Lock
    _result_lock: threading.Lock

    def wake(self) -> None:
        self._wake.set()
