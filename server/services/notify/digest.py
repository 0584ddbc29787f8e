"""The daily digest of minor alarms (§4): once per local day after DIGEST_AT, one message per supervisor."""

from __future__ import annotations

import logging
from datetime import datetime

from gateway.contract import Severity
from server.domain import alarms as domain
from server.domain import notify as routing
from server.services.notify.outbox import Outbox
from server.services.notify.push import Push, info_of
from server.services.notify.silences import Silences

log = logging.getLogger(__name__)

DIGEST_STATE = "notify.digest"
UNACKED = (domain.AlarmState.ACTIVE, domain.AlarmState.CLEARED_UNACKED)


class Digest(Silences, Outbox):
    def send_digest(self, now: datetime) -> int:
        """Queue the day's digest if it is due and not yet done; returns how many pushes were queued."""
        day = routing.digest_day(now, self.site.tz)
        if self._digest_done == day:
            return 0  # the common case, without a transaction every second
        with self._lock, self.store.transaction() as tx:
            state = tx.state(DIGEST_STATE)
            if state is not None and str(state.get("day", "")) >= day.isoformat():
                self._digest_done = day
                return 0
            minor = [a for a in self.open_alarms() if a.id is not None and a.severity is Severity.MINOR]
            since = tx.escalations_since([a.id for a in minor if a.id is not None],
                                         Severity.MINOR.value) if minor else {}
            silences = self._silences()
            infos: list[routing.AlarmInfo] = []
            for alarm in minor:
                assert alarm.id is not None
                info = info_of(alarm, self.is_drill(alarm))
                if routing.in_digest(since.get(alarm.id) or alarm.raised_at, alarm.state not in UNACKED, now) \
                        and routing.silenced(info, silences, now) is None:
                    infos.append(info)
            pushes = [Push(f"digest/{day.isoformat()}/{d.recipient}/{routing.url_hash(d.url)}", None,
                           f"digest:{day.isoformat()}", d.recipient, d.url, Severity.MINOR, d.text, d.items)
                      for d in routing.digest(infos, self.site, now, self.base_url, day)]
            queued = self._queue(tx, pushes, now)
            tx.save_state(DIGEST_STATE, {"day": day.isoformat(), "at": now.isoformat(),
                                         "alarms": [i.id for i in infos]}, now)
        self._digest_done = day
        if infos:
            log.info("daily digest %s: %d minor alarms, %d pushes", day, len(infos), queued)
        return queued
