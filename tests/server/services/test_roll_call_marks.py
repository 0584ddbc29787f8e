"""A warden's mark on the roll call, on the real stores: it counts until the person is seen inside again, and
after that a new mark is the one that counts (the first one cannot keep someone who went back in "safe")."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from server.adapters.sql.database import session_factory
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.test_access_log_repeats import badges, owner


def test_a_person_marked_safe_who_goes_back_in_is_inside_until_marked_again(engine: Engine, tmp_path: Path) -> None:
    sessions = session_factory(engine)
    site = make_site(site_yaml(2525, 8080), tmp_path)
    clock = FakeClock(T0)
    access, evacuations = owner(sessions, site, clock)
    access.record(badges(1, ("B11", "door-z1-exit", "in", T0 - timedelta(hours=1))))
    ev = evacuations.start("f1", "z1", drill=True, trigger="manual", reason="drill", who="sup")["id"]

    def status() -> tuple[str, object]:
        line = next(e for e in evacuations.roll_call(ev) if e.person == "p-op1")
        return line.status, line.accounted_at

    clock.advance(timedelta(minutes=2))
    evacuations.mark_safe(ev, "p-op1", "lead", "at the assembly point")
    first = clock()
    assert status() == ("safe", first)
    clock.advance(timedelta(minutes=1))
    evacuations.mark_safe(ev, "p-op1", "lead2", "seen again")  # marked twice: the first time stands
    assert status() == ("safe", first)

    clock.advance(timedelta(minutes=2))
    access.record(badges(2, ("B11", "door-z1-exit", "in", clock())))  # went back in for their bag
    assert status() == ("inside", None)

    clock.advance(timedelta(minutes=1))
    evacuations.mark_safe(ev, "p-op1", "lead", "out again")
    assert status() == ("safe", clock())
