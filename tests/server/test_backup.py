"""Backups and restore (server/backup.py) on SQLite and on a real PostgreSQL (a scratch database made
and dropped by the test): alarms, their audit trail and every other table come back identical; the
manifest is right; a tampered archive is refused; a SQLite backup taken while writers commit is a
consistent snapshot."""

from __future__ import annotations

import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from gateway.contract import Severity
from server import cli
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.repository import AlarmRepository
from server.backup import BackupError, backup, read_manifest, restore, verify
from server.domain.findings import Finding, Transition
from server.services.alarms import AlarmService
from server.settings import Settings

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "data")
        return
    base: str = request.getfixturevalue("postgres_url")
    name = f"fw_backup_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    yield Settings(data_dir=tmp_path / "data", database_url=url)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def alarm_service(settings: Settings) -> AlarmService:
    engine = make_engine(settings.sql_url())
    migrate(engine)
    sessions = session_factory(engine)
    return AlarmService(AlarmWriter(sessions), AlarmRepository(sessions).open_alarms())


def finding(subject: str, transition: Transition = Transition.RAISE, at: datetime = T0) -> Finding:
    return Finding("elec.strip_overload", transition, Severity.MAJOR, subject, "z1", "hq", 11.0,
                   "strip over its rating 电源过载", at)


def populate(settings: Settings, n: int = 20) -> AlarmService:
    service = alarm_service(settings)
    for i in range(n):
        [alarm] = service.commit([finding(f"strip-{i}", at=T0 + timedelta(minutes=i))], T0 + timedelta(minutes=i))
        if i % 3 == 0:
            assert alarm.id is not None
            service.acknowledge(alarm.id, "ops@example", f"looked at {i}", T0 + timedelta(minutes=i, seconds=30))
        if i % 4 == 0:
            service.commit([finding(f"strip-{i}", Transition.CLEAR)], T0 + timedelta(minutes=i, seconds=45))
    return service


def everything(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    engine = create_engine(settings.sql_url())
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            rows = {}
            for table in sorted(inspector.get_table_names()):
                keys = inspector.get_pk_constraint(table)["constrained_columns"] or \
                    [c["name"] for c in inspector.get_columns(table)]
                order = ", ".join(f'"{k}"' for k in keys)
                rows[table] = [tuple(r) for r in connection.execute(text(f'SELECT * FROM "{table}" ORDER BY {order}'))]
            return rows
    finally:
        engine.dispose()


def test_backup_and_restore_bring_alarms_and_audit_back_identical(settings: Settings, tmp_path: Path) -> None:
    populate(settings)
    before = everything(settings)
    assert len(before["alarms"]) == 20 and len(before["alarm_audit"]) > 20
    archive = backup(settings, tmp_path / "backups")
    manifest = read_manifest(archive)
    assert manifest["kind"] == ("sqlite" if settings.database_url is None else "postgresql")
    assert manifest["schema_revision"] == ",".join(sorted(r[0] for r in before["alembic_version"]))
    assert {t: n for t, n in manifest["counts"].items() if t in before} == {t: len(r) for t, r in before.items()}
    # Damage: lose the audit trail, change an alarm, add one that did not exist at backup time.
    engine = create_engine(settings.sql_url())
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alarm_audit"))
        connection.execute(text("UPDATE alarms SET message = 'tampered'"))
    engine.dispose()
    alarm_service(settings).commit([finding("strip-new", at=T0 + timedelta(hours=2))], T0 + timedelta(hours=2))
    assert everything(settings) != before
    restore(settings, archive)
    assert everything(settings) == before


def test_cli_backup_and_restore(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    populate(settings, 5)
    before = everything(settings)
    monkeypatch.setenv("FLOORWATCH_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("FLOORWATCH_DATABASE_URL", settings.database_url)
    assert cli.main(["backup", "--out", str(tmp_path / "out")]) == 0
    [archive] = (tmp_path / "out").glob("floorwatch-backup-*.tar.gz")
    engine = create_engine(settings.sql_url())
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alarm_audit"))
    engine.dispose()
    assert cli.main(["restore", "--yes", str(archive)]) == 0
    assert everything(settings) == before
    out = capsys.readouterr().out
    assert "verified" in out and "restored" in out


def test_cli_backup_without_out_writes_where_the_it_inspection_looks(settings: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    populate(settings, 2)
    monkeypatch.setenv("FLOORWATCH_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("FLOORWATCH_DATABASE_URL", settings.database_url)
    assert cli.main(["backup"]) == 0
    assert len(list((settings.data_dir / "backups").glob("floorwatch-backup-*.tar.gz"))) == 1


def test_a_tampered_archive_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    populate(settings, 3)
    archive = backup(settings, tmp_path / "backups")
    forged = tmp_path / "forged.tar.gz"
    work = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    db = work / "floorwatch.sqlite"
    data = bytearray(db.read_bytes())
    data[-100] ^= 0xFF
    db.write_bytes(bytes(data))
    with tarfile.open(forged, "w:gz") as tar:
        for name in ("manifest.json", "floorwatch.sqlite"):
            tar.add(work / name, arcname=name)
    with pytest.raises(BackupError, match="checksum"):
        verify(forged)
    before = everything(settings)
    with pytest.raises(BackupError):
        restore(settings, forged)
    assert everything(settings) == before  # nothing was touched


def test_sqlite_backup_while_writers_commit_is_consistent(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    service = populate(settings, 5)
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        i = 0
        while not stop.is_set():
            service.commit([finding(f"live-{i}", at=T0 + timedelta(seconds=i))], T0 + timedelta(seconds=i))
            i += 1
            written[0] = i

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        archives = []
        for n in range(5):
            # Wait (bounded) for writers to have made progress, so each backup races real commits.
            target, give_up = n * 10 + 10, time.monotonic() + 30
            while written[0] < target and thread.is_alive() and time.monotonic() < give_up:
                stop.wait(0.01)
            archives.append(backup(settings, tmp_path / "backups"))
    finally:
        stop.set()
        thread.join(10)
    counts = []
    for archive in archives:
        manifest = verify(archive)  # the snapshot holds exactly what its manifest says, integrity ok
        alarms, audit = manifest["counts"]["alarms"], manifest["counts"]["alarm_audit"]
        counts.append(alarms)
        restore(Settings(data_dir=tmp_path / f"r-{alarms}"), archive)
        rows = everything(Settings(data_dir=tmp_path / f"r-{alarms}"))
        # Every alarm in the snapshot has its audit trail (one transaction wrote both).
        alarm_ids = {r[0] for r in rows["alarms"]}
        audited = {r[1] for r in rows["alarm_audit"]}
        assert alarm_ids <= audited and len(rows["alarm_audit"]) == audit
    assert counts == sorted(counts) and counts[-1] > counts[0] >= 5
