"""Delivery outcomes feed sup.notify_channel (3 consecutive failures of a channel -> major)."""

from __future__ import annotations

from server.services.delivery import Serial
from server.services.ingest import Ingest


class ChannelOutcomes:
    """Posted, not waited for: the call queues behind the ingest inbox, which under a flood holds seconds of
    telemetry, and the delivering thread has the next page of that channel to send."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self._results = Serial("notify-results")
        """Outcomes on their way to the rule engine, in order, without a lane thread waiting."""

    def __call__(self, channel: str, ok: bool) -> None:
        self._results.post(lambda: self.ingest.call(
            lambda engine, now: engine.on_notify_result(channel, ok, now), timeout=60))

    def stop(self, timeout: float) -> None:
        self._results.stop(timeout)
