"""The daily digest of minor alarms (§4): once per local day after DIGEST_AT, one message per supervisor."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from gateway.contract import Severity
from server.adapters.sql.models import EngineStateRow
from server.adapters.sql.repository import _aware, save_state
from server.adapters.sql.response_models import EscalationRow
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
        with self._lock, self.sessions.begin() as session:
            state = session.get(EngineStateRow, DIGEST_STATE)
            if state is not None and str(state.state.get("day", "")) >= day.isoformat():
                self._digest_done = day
                return 0
            minor = [a for a in self.open_alarms() if a.id is not None and a.severity is Severity.MINOR]
            since = {r.alarm_id: _aware(r.raised_at) for r in session.scalars(select(EscalationRow).where(
                EscalationRow.alarm_id.in_([a.id for a in minor]),
                EscalationRow.severity == Severity.MINOR.value)).all()} if minor else {}
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
            queued = self._queue(session, pushes, now)
            save_state(session, DIGEST_STATE, {"day": day.isoformat(), "at": now.isoformat(),
                                               "alarms": [i.id for i in infos]}, now)
        self._digest_done = day
        if infos:
            log.info("daily digest %s: %d minor alarms, %d pushes", day, len(infos), queued)
        return queued
