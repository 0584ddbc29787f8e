"""The outbox: queued pushes in SQL, claimed under a lease and sent on per-channel lanes (see the package
docstring, server/services/notify/__init__.py, for the delivery guarantees)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.contract import Severity
from server.domain import notify as routing
from server.domain.leases import LeaseLost
from server.domain.notify_records import WITHDRAWN, DeliveryRecord, NotificationRecord
from server.services import delivery
from server.services.notify.push import Push
from server.services.notify.state import NotifyState
from server.services.ports import NotifyTx

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
CLAIM_BATCH = 20
MAX_ATTEMPTS = 8
BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=5)
DELIVERY_THREADS = 8
"""Channels sent to at the same time (each thread mostly waits on a socket)."""
LANE_DEPTH = 4
"""Rows claimed ahead per channel: a stalled channel holds at most this many claims, not the outbox."""
ATTEMPT_TIMEOUT_S = 30.0
"""One send's wall-clock bound, far below LEASE."""
RENEW_AFTER = LEASE / 4
"""A row that waited this long in its lane since its claim renews its lease before its attempt (a
write, so not done for every row: under load the SQL write lock is shared with ingest)."""
NO_CHANNEL = "no_channel"
"""Status (and channel) of a row for a recipient without any channel: recorded, never sent."""


class Outbox(NotifyState):
    def release_own_leases(self) -> int:
        """Re-queue rows this worker id still holds as `sending`: a worker that is only now starting
        cannot be sending them, so they were claimed by its previous life (a crash). Without this, a
        restarted server left those pushes (fire pages, evacuation notices) waiting out the whole LEASE.
        The one row that was in flight at the crash may then be delivered twice (at-least-once)."""
        with self._lock, self.store.transaction() as tx:
            released = tx.requeue_sending(None if self.sole_sender else self.worker_id)
        if released:
            log.warning("re-queued %d pushes this worker had claimed before a restart", released)
        return released

    def enqueue(self, pushes: Sequence[Push]) -> int:
        """Queue pushes made elsewhere (evacuation notices); duplicates by dedupe_key are ignored."""
        with self._lock, self.store.transaction() as tx:
            n = self._queue(tx, pushes, self.clock())
        self.wake()
        return n

    def enqueue_in(self, tx: NotifyTx, pushes: Sequence[Push]) -> int:
        """Queue pushes in another store's transaction on the same database (a completed inspection's defect
        page), so they commit with what made them or not at all; call `wake` after that commit. Without the
        outbox's lock: the caller holds row locks of its own, and a push's dedupe key is unique."""
        return self._queue(tx, pushes, self.clock())

    def withdraw(self, ref: str, reason: str) -> int:
        """What is still to be sent for `ref` (an evacuation's notices and their fallback copies) is not
        sent: those rows are withdrawn, with `reason` in the delivery log. A send already on its way ends
        as it does (recorded), but is neither retried nor copied to the fallback channel."""
        with self._result_lock, self.store.transaction() as tx:
            n = tx.withdraw(ref, reason)
        if n:
            log.info("withdrew %d pushes of %s: %s", n, ref, reason)
        return n

    def withdraw_ended(self) -> int:
        """Withdraw what is still to be sent of every evacuation that is over (its all-clear, or a drill that
        a real evacuation ended), with the reason in the delivery log; returns how many rows. The
        evacuation's own withdrawal at its end can fail (the database briefly down) and its retry lives in
        memory only: this is asked at every claim and before every send of a row with a ref, from the
        evacuation's row, so neither a failure nor a restart lets a "[DRILL]" or "leave now" notice out after
        its evacuation ended."""
        withdrawn = 0
        with self._result_lock, self.store.transaction() as tx:
            for ref, at, by in tx.ended_evacuations():
                when = at.isoformat() if at is not None else "?"
                if n := tx.withdraw(ref, f"not sent: {ref} ended at {when} by {by or '?'}"):
                    log.warning("withdrew %d pushes of %s, which ended at %s: its own withdrawal had not run",
                                n, ref, when)
                    withdrawn += n
        return withdrawn

    def first_page_of(self, alarm_id: int) -> list[tuple[str, str, str | None]]:
        """(recipient, url, suppressed reason) of every channel the alarm's first page (step 0) was queued
        to, so a follow-up about the alarm reaches the same people; empty before that page is queued."""
        rows = self.store.first_page(alarm_id, f"a{alarm_id}/s0/")
        return [(r.recipient, self._urls[r.channel], r.last_error if r.status == "suppressed" else None)
                for r in rows if r.channel in self._urls and r.recipient != routing.FALLBACK]

    def _queue(self, tx: NotifyTx, pushes: Sequence[Push], now: datetime) -> int:
        n = 0
        for p in pushes:
            if p.url == routing.NO_CHANNEL:
                n += self._no_channel(tx, p, now)
                continue
            channel = routing.url_hash(p.url)
            self._urls.setdefault(channel, p.url)
            if tx.has_key(p.dedupe_key):
                continue
            if p.group_key is not None and p.suppressed is None:
                # only a message of the same severity (so the same wait: it leaves no later than this push
                # would alone, and a critical page never waits for a major one) that no worker ever claimed:
                # a claimed row may have reached its receiver already (a crash before its record re-queues
                # it), and its repeat carries the same Idempotency-Key, so a receiver would drop what was
                # folded into it
                pending = tx.groupable(p.group_key, p.severity.value, channel, now - routing.GROUP_WINDOW)
                if pending is not None and self._fold(tx, pending, p):
                    # the folded alarm is remembered by a marker row, so its step is not queued again
                    tx.add(_record(p, channel, "grouped", now, now, f"sent within notification {pending.id}"))
                    n += 1
                    continue
            tx.add(_record(p, channel, "suppressed" if p.suppressed else "queued", now, now + p.hold, p.suppressed))
            n += 1
        return n

    def _fold(self, tx: NotifyTx, pending: NotificationRecord, p: Push) -> bool:
        """Add the push's items to a queued row, unless a worker claimed that row since it was read (the
        claim and this update lock the row: whichever comes second sees the other's commit)."""
        items = [*pending.items, *(i.as_dict() for i in p.items)]
        text = routing.render([_item(i) for i in items], self.base_url)
        return tx.fold(pending.id, items, text.title, text.body)

    def _no_channel(self, tx: NotifyTx, p: Push, now: datetime) -> int:
        """A recipient the site file gives no channel: nothing is sent, and the alarm's log says so."""
        if tx.has_key(p.dedupe_key):
            return 0
        who = p.recipient.removeprefix("person:")
        if p.recipient.startswith("person:") and who not in self.site.people:
            why = f"no channel for {p.recipient}: a card that is not in the site file names nobody to push to"
        else:
            why = f"no channel for {p.recipient}: add '{who}' (or one of its roles) under contacts in the site file"
        tx.add(replace(_record(p, NO_CHANNEL, NO_CHANNEL, now, now, why), group_key=None))
        return 1

    def claim(self, now: datetime, limit: int = CLAIM_BATCH, lanes: Mapping[str, int] | None = None,
              skip_ids: Collection[int] = ()) -> list[int]:
        """Take due rows (queued, or `sending` with a lapsed lease) for this worker, oldest due first.
        `lanes`: rows already in each channel's lane here; a channel gets at most LANE_DEPTH in all.
        `skip_ids`: rows this worker is still sending. Fenced: LeaseLost once another worker owns the site.
        What is left of an evacuation that is over is withdrawn first (`withdraw_ended`), never claimed; when
        that fails the claim goes on (a page held back is worse), and the check before each send asks again."""
        try:
            self.withdraw_ended()
        except Exception as exc:
            log.warning("could not withdraw the notices of ended evacuations before the claim (%s)", exc)
        with self.store.transaction(fenced=True) as tx:
            room: dict[str, int] = {}
            full: list[str] = []
            if lanes is not None:
                room = {ch: LANE_DEPTH - depth for ch, depth in lanes.items()}
                full = [ch for ch, left in room.items() if left <= 0]
            ids: list[int] = []
            skipped = False
            for nid, channel in tx.claimable(now, limit, full, skip_ids):
                if lanes is not None:
                    left = room.get(channel, LANE_DEPTH)
                    if left <= 0:
                        skipped = True  # the channel's lane is full: the row waits for a later pass
                        continue
                    room[channel] = left - 1
                ids.append(nid)
            mine: list[int] = []
            for nid in ids:
                if tx.take(nid, now, now + LEASE, self.worker_id):
                    mine.append(nid)
        if skipped:  # rows of other channels may lie beyond this batch: look again at once
            self.wake()
        return mine

    def deliver(self, now: datetime) -> int:
        """Claim what is due and send it (concurrently, one lane per channel); returns how many were sent
        once every claimed row's attempt is over."""
        done: list[threading.Event] = []
        sent: list[bool] = []
        for claimed in self._claim_lanes(now, None):
            finished = threading.Event()
            done.append(finished)

            def job(claimed: _Claimed = claimed, finished: threading.Event = finished) -> None:
                try:
                    sent.append(self._attempt(claimed) is True)
                finally:
                    finished.set()

            self._submit(claimed, job)
        for finished in done:
            finished.wait()
        return sum(sent)

    def dispatch(self, now: datetime) -> int:
        """The worker's pass: claim what is due and hand it to the lanes without waiting for any send.
        A channel's lane gets at most LANE_DEPTH rows (the rest stay queued for a later pass, their
        leases not yet started); returns how many rows were handed over."""
        claimed = self._claim_lanes(now, self.lanes.depths())
        for one in claimed:
            def job(one: _Claimed = one) -> None:
                self._attempt(one)
                self.wake()  # its end may free a full lane, or have queued a fallback row: look again

            self._submit(one, job)
        return len(claimed)

    def _claim_lanes(self, now: datetime, lanes: Mapping[str, int] | None) -> list[_Claimed]:
        """Claim, then read what each claimed row sends (once: a lane thread needs no SQL before it)."""
        with self._inflight_lock:
            inflight = set(self._inflight)
        ids = self.claim(now, CLAIM_BATCH, lanes, skip_ids=inflight)
        if not ids:
            return []
        at = time.monotonic()
        rows = {r.id: _Claimed(r.id, r.channel, r.title, r.body, r.severity, r.attempts, r.fallback, at, r.ref)
                for r in self.store.notifications(ids)}
        return [rows[nid] for nid in ids if nid in rows]

    def _submit(self, claimed: _Claimed, job: Callable[[], None]) -> None:
        with self._inflight_lock:
            self._inflight.add(claimed.id)

        def run() -> None:
            try:
                job()
            finally:
                with self._inflight_lock:
                    self._inflight.discard(claimed.id)

        self.lanes.submit(claimed.channel, run)

    def _attempt(self, claimed: _Claimed) -> bool | None:
        """One send of a claimed row on a lane thread: True sent, False failed, None no longer ours."""
        nid, channel, title, body = claimed.id, claimed.channel, claimed.title, claimed.body
        severity, attempt, fallback = claimed.severity, claimed.attempts, claimed.fallback
        if self.before_send is not None:
            self.before_send(nid)
        if self.store.fences or time.monotonic() - claimed.at > self.renew_after.total_seconds():
            # Under the site's lease every send checks first that the site and the row are still ours: the
            # next owner re-queues an old owner's claims at its start and sends them itself. Otherwise only
            # a row that waited long in its lane behind a slow channel does: its lease counts again from here.
            try:
                if claimed.ref:
                    self._withdraw_ended(nid)  # its evacuation ended since the claim: withdrawn, so not renewed
                with self.store.transaction(fenced=True) as tx:
                    if not tx.renew(nid, self.worker_id, self.clock() + LEASE):
                        return None  # our lease lapsed, another worker took the row over, or it was withdrawn
            except LeaseLost:
                return None  # another worker owns the site: it sends this row
        elif self._withdrawn(nid, claimed.ref):
            return None  # withdrawn since its claim (an all-clear): it never goes out, its reason is logged
        url = self._urls.get(channel)
        gone = url is None  # queued for a contact the site file no longer has (a demo's last push inbox)
        started = time.perf_counter()
        error: str | None = None
        try:
            if url is None:
                raise RuntimeError(f"channel {channel} is no longer in the site's contacts: undeliverable, "
                                   f"not retried")
            key = f"{self.site.id}-n{nid}"
            send_url = url
            delivery.attempt(lambda: self.sender.send(send_url, title, body, key=key), self.attempt_timeout_s,
                             f"notification {nid}")
        except Exception as exc:
            error = str(exc)[:500] or type(exc).__name__
        ms = (time.perf_counter() - started) * 1000
        done = self.clock()
        with self._result_lock, self.store.transaction() as tx:
            row = tx.notification(nid)
            if row is None or row.claimed_by != self.worker_id or row.status not in ("sending", WITHDRAWN):
                return None  # our lease lapsed and another worker took it over
            row.attempts = attempt + 1
            tx.add_delivery(DeliveryRecord(nid, done, row.attempts, error is None, self.worker_id, error, ms))
            if error is None:
                row.status, row.sent_at, row.lease_until, row.last_error = "sent", done, None, None
            elif row.status == WITHDRAWN:  # withdrawn during its send: no retry, no fallback copy
                row.lease_until = None
            else:
                give_up = gone or row.attempts >= MAX_ATTEMPTS  # no retry can reach a channel that is gone
                row.status = "failed" if give_up else "queued"
                row.last_error, row.lease_until = error, None
                row.next_attempt_at = done + min(BACKOFF_MAX, BACKOFF_FIRST * (2 ** (row.attempts - 1)))
                if severity == Severity.CRITICAL.value and not fallback:
                    self._fallback(tx, row, done)
        if error is not None:
            log.warning("notification %s via %s failed (attempt %d): %s", nid, channel, attempt + 1, error)
        if self.on_result is not None and not fallback and not gone:  # the site's channels are judged, not old ones
            try:
                self.on_result(channel, error is None)
            except Exception:
                log.exception("notify result hook failed")
        return error is None

    def _withdrawn(self, nid: int, ref: str | None) -> bool:
        """Whether a claimed row was withdrawn since its claim: one read just before its send, so a notice
        the all-clear withdrew while it waited in its lane is not sent (the renewal above checks it too).
        A notice of an evacuation that ended is withdrawn here, also when the evacuation's own withdrawal
        failed (`withdraw_ended`). A read that fails sends the row as claimed: held back, a page would wait
        out its lease (LEASE)."""
        if ref and not self._withdraw_ended(nid):
            return False
        try:
            rows = self.store.notifications([nid])
        except Exception as exc:
            log.warning("notification %s: could not read it before its send (%s); sending it as claimed", nid, exc)
            return False
        return not rows or rows[0].status == WITHDRAWN

    def _withdraw_ended(self, nid: int) -> bool:
        """`withdraw_ended` before a send; False when it failed (the database briefly down), logged: the row
        is sent as claimed rather than held back for its lease (LEASE)."""
        try:
            self.withdraw_ended()
        except Exception as exc:
            log.warning("notification %s: could not read it before its send (%s); sending it as claimed", nid, exc)
            return False
        return True

    def _fallback(self, tx: NotifyTx, row: NotificationRecord, now: datetime) -> None:
        items = [_item(i) for i in row.items]
        for url in self.site.contacts_of(routing.FALLBACK):
            text = routing.Text("[备用通道/fallback] " + row.title,
                                "推送未送达,经备用通道发送 (push not delivered: fallback channel)\n" + row.body)
            self._queue(tx, [Push(f"fb/{row.id}/{routing.url_hash(url)}", row.alarm_id, row.ref,
                                       routing.FALLBACK, url, Severity.CRITICAL, text, items,
                                       fallback=True)], now)

    def log_of(self, alarm_id: int | None = None, ref: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        rows = self.store.log(alarm_id, ref, limit)
        by: dict[int, list[dict[str, Any]]] = {}
        for entry in self.store.deliveries([r.id for r in rows]):
            by.setdefault(entry.notification_id, []).append(
                {"at": entry.at, "attempt": entry.attempt, "ok": entry.ok, "worker": entry.worker,
                 "error": entry.error, "ms": round(entry.ms, 1)})
        return [{"id": r.id, "alarm_id": r.alarm_id, "ref": r.ref, "recipient": r.recipient,
                 "channel": r.channel, "severity": r.severity, "status": r.status, "attempts": r.attempts,
                 "created_at": r.created_at, "next_attempt_at": r.next_attempt_at,
                 "sent_at": r.sent_at, "last_error": r.last_error, "fallback": r.fallback,
                 "title": r.title, "body": r.body, "deliveries": by.get(r.id, [])} for r in rows]


@dataclass(frozen=True, slots=True)
class _Claimed:
    """What a lane thread sends for one claimed row, read once after the claim."""

    id: int
    channel: str
    title: str
    body: str
    severity: str
    attempts: int
    fallback: bool
    at: float
    """time.monotonic() of the claim."""
    ref: str | None
    """What it belongs to: an evacuation's notices carry its id."""


def _record(p: Push, channel: str, status: str, now: datetime, next_attempt_at: datetime,
            last_error: str | None) -> NotificationRecord:
    """The outbox row of a push to `channel`."""
    return NotificationRecord(p.dedupe_key, p.alarm_id, p.ref, p.recipient, channel, p.severity.value, p.text.title,
                              p.text.body, [i.as_dict() for i in p.items], p.group_key, p.fallback, status, now,
                              next_attempt_at, last_error=last_error)


def _item(data: dict[str, Any]) -> routing.Item:
    return routing.Item(int(data["alarm_id"]), str(data["rule"]), str(data["severity"]), str(data["zone"]),
                        str(data["zone_name"]), str(data["device"]), str(data["value"]), str(data["message"]),
                        str(data["message_zh"]), str(data.get("at", "")))
