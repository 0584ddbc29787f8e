"""Notifications: escalation timers and an outbox in SQL, delivered by a worker thread with apprise.

Flow. `on_alarm` (an AlarmService listener, after the alarm's commit) opens an `escalations` row for
a new alarm (due now), marks it acknowledged, or stops it. `tick(now)` runs every escalation row that
is due: in ONE transaction it queues the step's pushes as `notifications` rows and moves the row to
its next due time. A crash before that commit redoes the step after restart; after it, the step is
done. Every queued row has a unique `dedupe_key` (alarm, step or repeat number, recipient, channel),
so a step is never queued twice. Timers are due times in SQL, not in-memory timers: a restart neither
drops nor repeats a step.

Delivery. The worker's pass (`dispatch`) claims due rows with a lease (status `sending`,
`lease_until`, `claimed_by`) in one short transaction and hands each to its channel's lane
(server/services/delivery.py): up to DELIVERY_THREADS channels send at once, one channel's rows go
out one after another in claim order, and the worker never waits for a send, so a slow channel holds
neither the others nor the escalation timers. A lane thread renews the row's lease if it waited long
in its lane, sends with apprise (bounded by ATTEMPT_TIMEOUT_S), and marks the row `sent` only after apprise
returned, only if the lease is still ours. A failure is retried with exponential backoff (5 s, 10 s,
20 s ... capped at 5 min; `failed` after MAX_ATTEMPTS). Every attempt is a `notification_log` row.
`deliver(now)` does the same and waits for the claimed rows' attempts (tests, a one-shot worker).

At-least-once, bounded. A worker killed between claim and send leaves the row `sending`; when the
lease runs out (LEASE) another worker claims and sends it: nothing is lost, and nothing was sent twice.
A worker killed after apprise returned but before its `sent` commit (a window of one SQL commit,
milliseconds) causes one duplicate message for that row when the lease runs out; that is the only
duplicate, at most one per crash per row in flight: one per channel, at most DELIVERY_THREADS. The
lease (LEASE, renewed when a row waited RENEW_AFTER in its lane) is far longer than one attempt
(ATTEMPT_TIMEOUT_S), so two live workers never send the same row.

Fallback (sup.notify_channel): a critical push that fails is re-queued at once to the site's
`fallback` contacts; a critical alarm not acknowledged within 60 s pages the fallback channel through
the escalation plan. Each delivery outcome is fed to the rule engine (`on_notify_result`) so that
3 consecutive failures of one channel raise sup.notify_channel.

§4 beyond paging. A warning still raised 24 h after its raise becomes minor: the escalation row's
step (`Step.promote`) commits a RAISE at the new severity through `commit` (the AlarmService), which
the alarm's audit records as an automatic escalation ("escalate", by system); the row stays due until
the alarm's change comes back through `on_alarm`, so a crash in between redoes it. Minor alarms are
never paged one by one: `send_digest(now)` queues, once per local day after DIGEST_AT, ONE message per
supervisor on duty listing every minor alarm unacknowledged for 24 h or more. The day it last ran is
kept in the `state` table in the same transaction as the queued rows (dedupe key digest/<day>/...):
a restart neither sends a day's digest twice nor skips it (a server down at DIGEST_AT sends it when
it is back).
"""

from server.services.notify.digest import DIGEST_STATE
from server.services.notify.outbox import (
    ATTEMPT_TIMEOUT_S,
    BACKOFF_FIRST,
    BACKOFF_MAX,
    CLAIM_BATCH,
    DELIVERY_THREADS,
    LANE_DEPTH,
    LEASE,
    MAX_ATTEMPTS,
    NO_CHANNEL,
    RENEW_AFTER,
)
from server.services.notify.push import Commit, NotifyResult, Push, info_of
from server.services.notify.service import NotificationService

__all__ = [
    "ATTEMPT_TIMEOUT_S", "BACKOFF_FIRST", "BACKOFF_MAX", "CLAIM_BATCH", "DELIVERY_THREADS", "DIGEST_STATE",
    "LANE_DEPTH", "LEASE", "MAX_ATTEMPTS", "NO_CHANNEL", "RENEW_AFTER", "Commit", "NotificationService",
    "NotifyResult", "Push", "info_of",
]
