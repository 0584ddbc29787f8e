"""Commands, evacuations and delayed cuts under a partition lease (issue 15, fencing): once another worker
took the lease, the old owner's next such write is rolled back by the lease's fence, nothing is published
and the lease is lost, before any renewal noticed. Real PostgreSQL (the lease row and the fence's UPDATE),
the real LeaseKeeper; the MQTT publish is a list, since the order (commit, then publish) is what is tested.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from gateway import contract
from gateway.contract import Severity
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.delayed_cuts import DelayedCutRepository
from server.adapters.sql.evacuations import EvacuationRepository
from server.adapters.sql.leases import LeaseStore
from server.adapters.sql.response_models import CommandRow, CutHoldRow, DelayedCutRow, EvacuationRow
from server.domain.leases import LeaseLost
from server.services.alarms import AlarmService
from server.services.commands import CommandService
from server.services.delayed_cuts import DelayedCutService
from server.services.evacuation import EvacuationService
from server.services.lease import LeaseKeeper
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import by_id, raise_alarm


def count(sessions: sessionmaker[Session], row: type[CommandRow | EvacuationRow | CutHoldRow]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(row)) or 0


def test_a_worker_whose_lease_was_taken_sends_no_command_starts_no_evacuation_and_holds_no_cut(
    postgres_schema: str, tmp_path: Path,
) -> None:
    engine = make_engine(postgres_schema)
    migrate(engine)
    sessions = session_factory(engine)
    keeper = LeaseKeeper(LeaseStore(engine), "r1", "a", ttl_s=300, renew_s=100, site_hash="h")
    lost = threading.Event()
    keeper.on_lost = lambda _reason: lost.set()
    try:
        assert keeper.acquire() is not None
        fence = keeper.fencer()
        site = make_site(site_yaml(2525, 8080), tmp_path)
        clock = FakeClock(T0)
        sent: list[tuple[str, contract.Command]] = []
        notices: list[contract.EvacuationNotice] = []
        commands = CommandService(CommandRepository(sessions, fence), site, clock,
                                  lambda topic, c: sent.append((topic, c)))
        evacuations = EvacuationService(EvacuationRepository(sessions, fence), site, clock, commands, None,
                                        notices.append, None)
        alarms = AlarmService(AlarmWriter(sessions, fence), [])
        cuts = DelayedCutService(DelayedCutRepository(sessions, fence), site, clock, commands, lambda _d: None,
                                 by_id(alarms))
        alarms.listeners.append(cuts.on_alarm)

        # while it owns the lease, the fence lets a command through: committed, then published
        commands.relay("plug-z1-pc", False, "smells hot", "lead", {"shift_lead"})
        assert count(sessions, CommandRow) == 1 and len(sent) == 1
        kettle = raise_alarm(alarms, "elec.high_power_appliance", "plug-z1-kettle", "z1", Severity.MAJOR, clock())
        with sessions() as session:
            scheduled = session.get(DelayedCutRow, kettle.id)
            assert scheduled is not None and scheduled.status == "pending"

        # another worker takes the lease (a newer epoch); this keeper's renewals have not run
        with engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET owner = 'b', epoch = epoch + 1,"
                                    " expires_at = clock_timestamp() + interval '1 hour'"))
        assert keeper.state == "owner"

        with pytest.raises(LeaseLost, match="epoch 1 of a is no longer valid"):
            commands.relay("plug-z1-kettle", False, "smells hot", "lead", {"shift_lead"})
        assert keeper.state == "lost" and lost.wait(5), "the lease-lost path did not start"
        assert keeper.lost_reason is not None and keeper.lost_reason.startswith("a commit found the lease taken")
        with pytest.raises(LeaseLost):
            evacuations.start("f1", "z1", drill=False, trigger="manual", reason="smoke seen", who="sup")
        with pytest.raises(LeaseLost):
            commands.safety_cut(["plug-z1-kettle"], "fire.confirmed critical: z1")
        with pytest.raises(LeaseLost):
            cuts.hold("plug-z1-kettle", "lead", "kettle is needed", None)
        with pytest.raises(LeaseLost):  # the delayed cut falls due: not cut, still pending for the next owner
            cuts.run_due(clock.advance(timedelta(minutes=5)))
        with sessions() as session:
            due = session.get(DelayedCutRow, kettle.id)
            assert due is not None and due.status == "pending", due and due.status

        assert count(sessions, CommandRow) == 1, "a fenced command was committed"
        assert count(sessions, EvacuationRow) == 0, "a fenced evacuation was committed"
        assert count(sessions, CutHoldRow) == 0, "a fenced hold was committed"
        assert len(sent) == 1 and notices == [], "something was published after the lease was taken"
    finally:
        engine.dispose()
