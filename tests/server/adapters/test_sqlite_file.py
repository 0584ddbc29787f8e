"""One reading of a SQLite URL for the engine, the one-process lock and backups: every driver spelling of a
file URL names the file (so the lock holds for `sqlite+pysqlite:///` too), an in-memory URL names none."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.adapters.sql.database import make_engine, sqlite_file
from server.settings import Settings
from server.workers import WorkerRefused, hold_sqlite


@pytest.mark.parametrize(("url", "file"), [
    ("sqlite:///var/fw.sqlite", Path("var/fw.sqlite")),
    ("sqlite:////srv/fw/fw.sqlite", Path("/srv/fw/fw.sqlite")),
    ("sqlite+pysqlite:///var/fw.sqlite", Path("var/fw.sqlite")),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", None),
])
def test_the_file_a_url_names(url: str, file: Path | None) -> None:
    assert sqlite_file(url) == file


def test_a_second_server_on_the_same_file_is_refused_whatever_the_spelling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = hold_sqlite(Settings(database_url=f"sqlite:///{tmp_path}/fw.sqlite", data_dir=tmp_path))
    assert first is not None
    monkeypatch.chdir(tmp_path)
    try:
        for other in (f"sqlite+pysqlite:///{tmp_path}/fw.sqlite", "sqlite:///fw.sqlite"):
            with pytest.raises(WorkerRefused, match="another Floorwatch server uses the SQLite database"):
                hold_sqlite(Settings(database_url=other, data_dir=tmp_path))
    finally:
        first.close()


def test_an_in_memory_database_creates_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_engine("sqlite://").dispose()
    assert list(tmp_path.iterdir()) == []
