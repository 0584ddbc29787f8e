"""Per-edge sequence tracking: de-duplication by (edge, seq) and loss detection by gaps.

Every message an edge sends carries `seq`, one higher than the one before (telemetry and events
share it). A QoS 1 redelivery or a replay from the edge's disk buffer repeats a seq: it is a
duplicate and is applied once. A seq that jumps ahead leaves a gap; messages may still arrive out of
order (a replay racing live traffic), so a gap is only declared lost once it has stayed open for
`gap_window`. Loss is never silent: the caller raises `sup.message_loss` naming the edge and count.

An edge that was reset (a new box, a wiped buffer) starts again from a low seq. It says so in its
retained status (`last_seq` lower than what we hold); `rebase` then starts a new stream instead of
treating everything it sends as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

MAX_OPEN_GAPS = 100_000
"""Missing seqs remembered per edge; beyond this, the oldest are declared lost at once (bounded memory)."""
MAX_BEFORE_FIRST = 10_000
"""Seqs below a new stream's first one remembered per edge (to apply each once); beyond this, the oldest
are forgotten."""


class Verdict(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    LATE = "late"
    """Fills a gap that was still open: new, and out of order."""


@dataclass(slots=True)
class Stream:
    """What we know of one edge's sequence."""

    next_seq: int | None = None
    """The seq we expect next; None before the first message."""
    missing: dict[int, datetime] = field(default_factory=dict)
    """Open gaps: seq -> when we first noticed it missing."""
    lost_total: int = 0
    duplicates_total: int = 0
    declared_lost: dict[int, None] = field(default_factory=dict)
    """Recently declared lost (bounded, oldest first): if one still turns up, it is applied, not dropped."""
    first_seq: int | None = None
    """The first seq of a stream this server began from nothing. What lies below it was never seen here
    (a broker may hand a resumed session's queue over out of order): new when it comes, never a gap."""
    before_first: dict[int, None] = field(default_factory=dict)
    """Seqs below `first_seq` already seen (bounded, oldest first): a second copy is a duplicate."""


@dataclass(frozen=True, slots=True)
class Loss:
    edge: str
    count: int
    first_seq: int
    last_seq: int


class SequenceTracker:
    def __init__(self, gap_window: timedelta = timedelta(seconds=10)) -> None:
        self.gap_window = gap_window
        self.streams: dict[str, Stream] = {}

    def observe(self, edge: str, seq: int, now: datetime) -> Verdict:
        stream = self.streams.get(edge)
        if stream is None:
            stream = self.streams[edge] = Stream()
        expected = stream.next_seq
        if expected is None:
            stream.next_seq, stream.first_seq = seq + 1, seq
            return Verdict.NEW
        if seq == expected:
            stream.next_seq = seq + 1
            return Verdict.NEW
        if seq > expected:
            for missing in range(expected, seq):
                stream.missing[missing] = now
            stream.next_seq = seq + 1
            self._bound(stream, edge)
            return Verdict.NEW
        if stream.missing.pop(seq, None) is not None:
            return Verdict.LATE
        if seq in stream.declared_lost:
            del stream.declared_lost[seq]
            stream.lost_total -= 1
            return Verdict.LATE
        if stream.first_seq is not None and seq < stream.first_seq and seq not in stream.before_first:
            stream.before_first[seq] = None
            while len(stream.before_first) > MAX_BEFORE_FIRST:
                del stream.before_first[next(iter(stream.before_first))]
            return Verdict.LATE
        stream.duplicates_total += 1
        return Verdict.DUPLICATE

    def expire(self, now: datetime) -> list[Loss]:
        """Declare lost every gap open for longer than the window; one Loss per edge with gaps."""
        losses: list[Loss] = []
        for edge, stream in self.streams.items():
            stale = [seq for seq, since in stream.missing.items() if now - since >= self.gap_window]
            if stale:
                for seq in stale:
                    del stream.missing[seq]
                    stream.declared_lost[seq] = None
                while len(stream.declared_lost) > MAX_OPEN_GAPS:
                    del stream.declared_lost[next(iter(stream.declared_lost))]
                stream.lost_total += len(stale)
                losses.append(Loss(edge, len(stale), min(stale), max(stale)))
        return losses

    def rebase(self, edge: str, last_seq: int) -> bool:
        """Start a new stream when the edge reports a last seq below ours (it was reset); True if so."""
        stream = self.streams.get(edge)
        if stream is None or stream.next_seq is None or last_seq + 1 >= stream.next_seq:
            return False
        self.streams[edge] = Stream(next_seq=last_seq + 1, lost_total=stream.lost_total,
                                    duplicates_total=stream.duplicates_total)
        return True

    def _bound(self, stream: Stream, edge: str) -> None:
        if len(stream.missing) > MAX_OPEN_GAPS:
            overflow = sorted(stream.missing)[: len(stream.missing) - MAX_OPEN_GAPS]
            for seq in overflow:
                del stream.missing[seq]
            stream.lost_total += len(overflow)

    # -- persistence (JSON-able), so that a restart neither re-applies nor forgets ---------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            edge: {"next_seq": s.next_seq, "lost_total": s.lost_total, "duplicates_total": s.duplicates_total,
                   "missing": {str(k): v.isoformat() for k, v in s.missing.items()},
                   "first_seq": s.first_seq, "before_first": list(s.before_first)}
            for edge, s in self.streams.items()
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.streams = {
            edge: Stream(next_seq=data["next_seq"], lost_total=data["lost_total"],
                         duplicates_total=data.get("duplicates_total", 0),
                         missing={int(k): datetime.fromisoformat(v) for k, v in data["missing"].items()},
                         first_seq=data.get("first_seq"),
                         before_first=dict.fromkeys(data.get("before_first", ())))
            for edge, data in state.items()
        }
