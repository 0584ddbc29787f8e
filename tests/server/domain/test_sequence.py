"""De-duplication by (edge, seq) and loss detection by gaps (pure, fake clock)."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from server.domain.sequence import Loss, SequenceTracker, Verdict

T0 = datetime(2026, 11, 29, tzinfo=UTC)


def test_in_order_stream_has_no_gaps_and_replays_are_duplicates() -> None:
    tracker = SequenceTracker()
    assert [tracker.observe("e", s, T0) for s in range(5)] == [Verdict.NEW] * 5
    assert tracker.observe("e", 3, T0) is Verdict.DUPLICATE
    assert tracker.expire(T0 + timedelta(hours=1)) == []


def test_a_gap_that_fills_in_time_is_not_a_loss() -> None:
    tracker = SequenceTracker(gap_window=timedelta(seconds=10))
    tracker.observe("e", 1, T0)
    tracker.observe("e", 4, T0)
    assert tracker.observe("e", 2, T0 + timedelta(seconds=5)) is Verdict.LATE
    assert tracker.observe("e", 3, T0 + timedelta(seconds=6)) is Verdict.LATE
    assert tracker.expire(T0 + timedelta(seconds=30)) == []


def test_a_gap_that_stays_open_is_counted_once_with_its_size() -> None:
    tracker = SequenceTracker(gap_window=timedelta(seconds=10))
    tracker.observe("e", 1, T0)
    tracker.observe("e", 5, T0)
    assert tracker.expire(T0 + timedelta(seconds=9)) == []
    assert tracker.expire(T0 + timedelta(seconds=10)) == [Loss("e", 3, 2, 4)]
    assert tracker.expire(T0 + timedelta(seconds=60)) == []
    assert tracker.streams["e"].lost_total == 3


def test_a_message_declared_lost_that_still_arrives_is_applied_and_uncounted() -> None:
    tracker = SequenceTracker(gap_window=timedelta(seconds=1))
    tracker.observe("e", 1, T0)
    tracker.observe("e", 3, T0)
    tracker.expire(T0 + timedelta(seconds=2))
    assert tracker.observe("e", 2, T0 + timedelta(seconds=3)) is Verdict.LATE
    assert tracker.streams["e"].lost_total == 0
    assert tracker.observe("e", 2, T0 + timedelta(seconds=3)) is Verdict.DUPLICATE


def test_a_reset_edge_starts_a_new_stream() -> None:
    tracker = SequenceTracker()
    for s in range(100, 110):
        tracker.observe("e", s, T0)
    assert tracker.rebase("e", last_seq=-1)
    assert tracker.observe("e", 0, T0) is Verdict.NEW
    assert not tracker.rebase("e", last_seq=0)


def test_snapshot_restore_keeps_duplicates_out_after_a_restart() -> None:
    tracker = SequenceTracker()
    tracker.observe("e", 1, T0)
    tracker.observe("e", 4, T0)
    again = SequenceTracker()
    again.restore(tracker.snapshot())
    assert again.observe("e", 4, T0) is Verdict.DUPLICATE
    assert again.observe("e", 2, T0) is Verdict.LATE


@given(st.permutations(list(range(0, 50))), st.lists(st.integers(0, 49), max_size=20), st.booleans())
def test_every_seq_is_new_exactly_once_whatever_the_order(order: list[int], repeats: list[int],
                                                          restart: bool) -> None:
    """Any order, the first message included, is applied once each (a broker may hand a resumed session's
    queue over with its last messages first), also across a restart from the snapshot."""
    tracker = SequenceTracker(gap_window=timedelta(days=1))
    verdicts = [tracker.observe("e", s, T0) for s in order[:25]]
    if restart:
        again = SequenceTracker(gap_window=timedelta(days=1))
        again.restore(tracker.snapshot())
        tracker = again
    verdicts += [tracker.observe("e", s, T0) for s in [*order[25:], *repeats]]
    assert sum(v is not Verdict.DUPLICATE for v in verdicts) == 50
    assert tracker.expire(T0 + timedelta(days=2)) == []


def test_a_resumed_queue_that_starts_with_its_last_messages_loses_none() -> None:
    """Seen on Mosquitto 2.0.11: a server's first start got a queued session's 98, 99, 100, then 1 to 97."""
    tracker = SequenceTracker()
    verdicts = [tracker.observe("e", s, T0) for s in [98, 99, 100, *range(1, 98), *range(101, 111)]]
    assert verdicts.count(Verdict.DUPLICATE) == 0
    assert tracker.observe("e", 5, T0) is Verdict.DUPLICATE
    assert tracker.expire(T0 + timedelta(hours=1)) == []
