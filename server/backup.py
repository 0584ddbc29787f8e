"""Backups of the server's database, and restore.

    floorwatch backup [--out DIR]      write DIR/floorwatch-backup-<UTC time>.tar.gz, verified
                                       (default DIR: <data dir>/backups, read by the IT inspection)
    floorwatch restore ARCHIVE [--yes] verify the archive, ask (unless --yes), keep a safety backup of the
                                       database it replaces in <data dir>/pre-restore, then restore

Configured like the server (FLOORWATCH_* environment variables, `server.settings.Settings`). With
nothing configured and no database in the default data folder, the demo's (`var/demo/server`) is used.

- SQLite (the embedded default): the sqlite3 online backup API, so a backup taken while the server
  runs is a consistent snapshot (WAL included). The embedded series store (`series.sqlite` in the data
  folder) is backed up the same way when it exists and InfluxDB is not configured.
- PostgreSQL: `pg_dump -Fc` (custom format) and `pg_restore --clean --if-exists --no-owner
  --single-transaction`. The client tools must be at least the server's major version.

The archive is a .tar.gz holding `manifest.json` and the database file(s). The manifest records when,
what kind of database, the Alembic schema revision, row counts per table and each file's SHA-256 and
size. After writing, the archive is read back: checksums are compared and the snapshot itself is
opened (SQLite: integrity check and recount; PostgreSQL: `pg_restore --list`). A restore verifies the
archive first and, after restoring, that every table has the manifest's row count.

Restore over a live server is not supported: stop the server, restore, start it.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from server.adapters.sql.database import sqlite_file
from server.settings import Settings

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "floorwatch.sqlite"
SERIES_FILE = "series.sqlite"
PG_FILE = "floorwatch.pgdump"


class BackupError(RuntimeError):
    """A backup or restore that could not be made or did not verify; the message says why."""


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    path = sqlite_file(url)
    if path is None:
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return path


def _libpq(url: str) -> tuple[str, str | None]:
    """A libpq connection URI for pg_dump/pg_restore, and the schema named by `search_path`, if any."""
    parsed = make_url(url)
    options = parsed.query.get("options")
    option_text = " ".join(options) if isinstance(options, tuple) else (options or "")
    schema = None
    for part in option_text.split():
        if part.startswith("-csearch_path="):
            schema = part.split("=", 1)[1].split(",")[0].strip() or None
    plain = parsed.set(drivername="postgresql")
    return plain.render_as_string(hide_password=False), schema


def _run(command: list[str], what: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL client tools are needed)") from None
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def _revision(rows: Iterable[str]) -> str | None:
    """The Alembic revision(s): one normally; several (comma-joined, sorted) when the tree has branches."""
    found = sorted(rows)
    return ",".join(found) if found else None


def _sqlite_counts(path: Path) -> tuple[str | None, dict[str, int]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        counts = {name: int(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}
        revision = None
        if "alembic_version" in names:
            revision = _revision(row[0] for row in connection.execute("SELECT version_num FROM alembic_version"))
        return revision, counts
    finally:
        connection.close()


def _sqlite_check(path: Path) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()
    if result != "ok":
        raise BackupError(f"{path.name}: integrity check says {result}")


def _sqlite_copy(source: Path, target: Path) -> None:
    """The online backup API: a consistent copy even while other connections write."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst, pages=1024)
    finally:
        dst.close()
        src.close()


def _sql_counts(url: str) -> tuple[str | None, dict[str, int]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = sorted(inspect(connection).get_table_names())
            counts = {name: int(connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
                      for name in names}
            revision = None
            if "alembic_version" in names:
                revision = _revision(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
            return revision, counts
    finally:
        engine.dispose()


def _snapshot_dir_counts(kind: str, folder: Path) -> tuple[str | None, dict[str, int]]:
    if kind == "sqlite":
        _sqlite_check(folder / SQLITE_FILE)
        return _sqlite_counts(folder / SQLITE_FILE)
    raise AssertionError(kind)


# --------------------------------------------------------------------------------------------------
# Backup
# --------------------------------------------------------------------------------------------------


def backup(settings: Settings, dest_dir: Path | str) -> Path:
    """Write a verified backup archive into `dest_dir` and return its path."""
    url = settings.sql_url()
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="floorwatch-backup-") as work_name:
        work = Path(work_name)
        files: list[str] = []
        manifest: dict[str, Any] = {"format": FORMAT, "created_at": created.isoformat(), "software": "floorwatch"}
        if _is_sqlite(url):
            source = _sqlite_path(url)
            if not source.exists():
                raise BackupError(f"no database at {source}")
            _sqlite_copy(source, work / SQLITE_FILE)
            files.append(SQLITE_FILE)
            # Counts come from the snapshot itself, so they describe exactly what the archive holds.
            revision, counts = _sqlite_counts(work / SQLITE_FILE)
            manifest.update(kind="sqlite")
            series = settings.data_dir / SERIES_FILE
            if settings.influx is None and series.exists():
                _sqlite_copy(series, work / SERIES_FILE)
                files.append(SERIES_FILE)
                manifest["series_counts"] = _sqlite_counts(work / SERIES_FILE)[1]
        else:
            libpq, schema = _libpq(url)
            command = ["pg_dump", "-Fc", "--no-owner", f"--dbname={libpq}", f"--file={work / PG_FILE}"]
            if schema:
                command.append(f"--schema={schema}")
            # pg_dump reads one snapshot; the counts come from the dump itself, not the live database.
            _run(command, "pg_dump")
            files.append(PG_FILE)
            revision, counts = _pg_dump_counts(work / PG_FILE)
            manifest.update(kind="postgresql", schema=schema)
        manifest.update(
            schema_revision=revision,
            counts=counts,
            files={name: {"sha256": _sha256(work / name), "bytes": (work / name).stat().st_size} for name in files},
        )
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        archive = dest / f"floorwatch-backup-{created.strftime('%Y%m%dT%H%M%S%fZ')}.tar.gz"
        partial = archive.with_suffix(".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for name in (MANIFEST, *files):
                tar.add(work / name, arcname=name)
        try:
            verify(partial)
        except Exception:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(archive)
        return archive


def _pg_dump_counts(dump: Path) -> tuple[str | None, dict[str, int]]:
    """Row counts and schema revision of what a custom-format dump holds, read from its COPY blocks
    (`pg_restore --data-only` to SQL): no database is needed to check a dump."""
    sql = _run(["pg_restore", "--data-only", "--file=-", str(dump)], "pg_restore (count)")
    counts: dict[str, int] = {}
    revisions: list[str] = []
    table: str | None = None
    for line in sql.splitlines():
        if table is None:
            if line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
                name = line.split()[1].split("(")[0]
                table = name.split(".")[-1].strip('"')
                counts[table] = 0
            continue
        if line == "\\.":
            table = None
            continue
        counts[table] += 1
        if table == "alembic_version":
            revisions.append(line.strip())
    # Tables with no rows have no COPY block in some versions: list them from the TOC.
    for entry in _run(["pg_restore", "--list", str(dump)], "pg_restore --list").splitlines():
        parts = entry.split()
        if len(parts) >= 6 and parts[3] == "TABLE" and parts[4] != "DATA":
            counts.setdefault(parts[5], 0)
    return _revision(revisions), dict(sorted(counts.items()))


# --------------------------------------------------------------------------------------------------
# Verify and restore
# --------------------------------------------------------------------------------------------------


def read_manifest(archive: Path | str) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise BackupError(f"{archive}: no {MANIFEST}")
            manifest: dict[str, Any] = json.load(io.TextIOWrapper(member, encoding="utf-8"))
    except (tarfile.TarError, KeyError, ValueError, EOFError) as exc:
        raise BackupError(f"{archive}: not a Floorwatch backup archive ({exc}); give a "
                          f"floorwatch-backup-*.tar.gz written by `floorwatch backup`") from None
    except OSError as exc:
        raise BackupError(f"{archive}: cannot read it ({exc.strerror})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: unknown backup format {manifest.get('format')!r}")
    return manifest


def _extract(archive: Path, work: Path) -> dict[str, Any]:
    manifest = read_manifest(archive)
    with tarfile.open(archive, "r:gz") as tar:
        names = set(tar.getnames())
        expected = {MANIFEST, *manifest["files"]}
        if names != expected:
            raise BackupError(f"{archive}: members {sorted(names)} do not match the manifest {sorted(expected)}")
        tar.extractall(work, filter="data")
    for name, info in manifest["files"].items():
        if _sha256(work / name) != info["sha256"] or (work / name).stat().st_size != info["bytes"]:
            raise BackupError(f"{archive}: {name} does not match its checksum in the manifest")
    return manifest


def verify(archive: Path | str) -> dict[str, Any]:
    """Read the archive back: checksums, and the snapshot opens and holds the manifest's counts."""
    archive = Path(archive)
    with tempfile.TemporaryDirectory(prefix="floorwatch-verify-") as work_name:
        work = Path(work_name)
        manifest = _extract(archive, work)
        if manifest["kind"] == "sqlite":
            revision, counts = _snapshot_dir_counts("sqlite", work)
            if SERIES_FILE in manifest["files"]:
                _sqlite_check(work / SERIES_FILE)
        else:
            _run(["pg_restore", "--list", str(work / PG_FILE)], "pg_restore --list")
            revision, counts = _pg_dump_counts(work / PG_FILE)
        if counts != manifest["counts"] or revision != manifest["schema_revision"]:
            raise BackupError(f"{archive}: the snapshot does not hold what the manifest says")
    return manifest


def restore(settings: Settings, archive: Path | str) -> dict[str, Any]:
    """Restore a verified archive over the configured database (stop the server first)."""
    archive = Path(archive)
    url = settings.sql_url()
    with tempfile.TemporaryDirectory(prefix="floorwatch-restore-") as work_name:
        work = Path(work_name)
        manifest = _extract(archive, work)
        if manifest["kind"] == "sqlite":
            if not _is_sqlite(url):
                raise BackupError("this is a SQLite backup but the configured database is not SQLite")
            target = _sqlite_path(url)
            target.parent.mkdir(parents=True, exist_ok=True)
            _sqlite_check(work / SQLITE_FILE)
            _sqlite_copy(work / SQLITE_FILE, target)
            if SERIES_FILE in manifest["files"]:
                _sqlite_copy(work / SERIES_FILE, settings.data_dir / SERIES_FILE)
        else:
            if _is_sqlite(url):
                raise BackupError("this is a PostgreSQL backup but the configured database is SQLite")
            libpq, schema = _libpq(url)
            if schema and schema != manifest.get("schema"):
                raise BackupError(f"backup of schema {manifest.get('schema')!r}, configured schema {schema!r}")
            _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                  f"--dbname={libpq}", str(work / PG_FILE)], "pg_restore")
        revision, counts = _sql_counts(url)
        counts = {name: n for name, n in counts.items() if name in manifest["counts"]}
        if counts != manifest["counts"] or revision != manifest["schema_revision"]:
            raise BackupError(f"after restore the database holds {counts} (revision {revision}), "
                              f"the backup {manifest['counts']} (revision {manifest['schema_revision']})")
    return manifest


# --------------------------------------------------------------------------------------------------
# Command line (delegated from `floorwatch backup` and `floorwatch restore`)
# --------------------------------------------------------------------------------------------------


DEMO_DATA_DIR = Path("var/demo/server")
"""Where `floorwatch demo` (default --data-dir var/demo) keeps the server's stores."""
SAFETY_DIR = "pre-restore"


class _Usage(Exception):
    """A bad argument or setting (exit code 2)."""


P = ParamSpec("P")


def _usage_exits_2(prog: str) -> Callable[[Callable[P, int]], Callable[P, int]]:
    """A command whose `_Usage` is printed as `prog: <what to fix>` on stderr, exit code 2 (no traceback)."""

    def wrap(command: Callable[P, int]) -> Callable[P, int]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> int:
            try:
                return command(*args, **kwargs)
            except _Usage as exc:
                print(f"{prog}: {exc}", file=sys.stderr)
                return 2

        return run

    return wrap


def resolve_settings(environ: Mapping[str, str] | None = None) -> tuple[Settings, str]:
    """The server's settings, and a note when the demo's database is used because nothing is configured.

    With neither FLOORWATCH_DATA_DIR nor FLOORWATCH_DATABASE_URL set and no database in the default
    data folder, the demo's (`var/demo/server`) is the one there is."""
    from server.cli import UsageError, load_settings

    env = os.environ if environ is None else environ
    try:
        settings = load_settings(Settings)
    except UsageError as exc:
        raise _Usage(str(exc)) from None
    configured = any(env.get(name) for name in ("FLOORWATCH_DATA_DIR", "FLOORWATCH_DATABASE_URL"))
    url = settings.sql_url()
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        backend = ""
    if backend not in ("sqlite", "postgresql"):
        raise _Usage(f"FLOORWATCH_DATABASE_URL {url!r}: give sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    if configured or not _is_sqlite(url) or _sqlite_path(url).exists():
        return settings, ""
    if (DEMO_DATA_DIR / SQLITE_FILE).exists():
        return settings.model_copy(update={"data_dir": DEMO_DATA_DIR}), (
            f"nothing configured and no database at {_sqlite_path(url)}: using the demo's, "
            f"{DEMO_DATA_DIR / SQLITE_FILE} (set FLOORWATCH_DATA_DIR or FLOORWATCH_DATABASE_URL to choose)")
    return settings, ""


def _where(settings: Settings) -> str:
    url = settings.sql_url()
    return str(_sqlite_path(url)) if _is_sqlite(url) else make_url(url).render_as_string(hide_password=True)


def _not_found_hint(settings: Settings) -> str:
    return (f"it looks at {_where(settings)} (FLOORWATCH_DATA_DIR={settings.data_dir}, or FLOORWATCH_DATABASE_URL); "
            f"a demo's data is in <its --data-dir>/server, e.g. FLOORWATCH_DATA_DIR={DEMO_DATA_DIR}")


@_usage_exits_2("floorwatch backup")
def backup_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="floorwatch backup", description="Back up the server's database.")
    parser.add_argument("--out", help="folder to write the archive into (default: <data dir>/backups, "
                                      "where the daily IT inspection looks for the last backup)")
    args = parser.parse_args(argv)
    settings, note = resolve_settings()
    if note:
        print(note)
    out = Path(args.out) if args.out else settings.data_dir / "backups"
    if out.exists() and not out.is_dir():
        raise _Usage(f"--out {out} is a file; give a folder")
    url = settings.sql_url()
    if _is_sqlite(url) and not _sqlite_path(url).exists():
        print(f"backup failed: no database; {_not_found_hint(settings)}", file=sys.stderr)
        return 1
    try:
        archive = backup(settings, out)
    except OSError as exc:
        raise _Usage(f"--out {out}: {exc.strerror}") from None
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    manifest = read_manifest(archive)
    print(f"wrote {archive} ({manifest['kind']}, revision {manifest['schema_revision']}, "
          f"{sum(manifest['counts'].values())} rows in {len(manifest['counts'])} tables), verified")
    return 0


def _current(settings: Settings) -> tuple[int, str] | None:
    """Rows in the configured database and when it last changed (SQLite), or None when there is none."""
    url = settings.sql_url()
    if _is_sqlite(url):
        path = _sqlite_path(url)
        if not path.exists():
            return None
        changed = datetime.fromtimestamp(max(p.stat().st_mtime for p in path.parent.glob(path.name + "*")), UTC)
        return sum(_sqlite_counts(path)[1].values()), f"last changed {changed.isoformat(timespec='seconds')}"
    counts = _sql_counts(url)[1]
    return (sum(counts.values()), "") if counts else None


@_usage_exits_2("floorwatch restore")
def restore_main(argv: list[str] | None = None, ask: Callable[[str], str] = input) -> int:
    parser = argparse.ArgumentParser(
        prog="floorwatch restore",
        description="Restore a backup over the configured database (server stopped). What it replaces is "
                    "first backed up into <data dir>/pre-restore.")
    parser.add_argument("archive")
    parser.add_argument("--yes", action="store_true", help="do not ask before replacing an existing database")
    args = parser.parse_args(argv)
    archive = Path(args.archive)
    if not archive.is_file():
        raise _Usage(f"{archive}: no such file; give a floorwatch-backup-*.tar.gz")
    try:
        manifest = read_manifest(archive)
    except BackupError as exc:
        raise _Usage(str(exc)) from None
    settings, note = resolve_settings()
    if note:
        print(note)
    try:
        current = _current(settings)
        if current is not None:
            rows, changed = current
            print(f"{_where(settings)} holds {rows} rows{f' ({changed})' if changed else ''}; the backup "
                  f"{archive.name} was taken {manifest['created_at']} and holds {sum(manifest['counts'].values())}.")
            if not args.yes:
                try:
                    answer = ask("Replace the database with the backup (a safety copy is made first)? [y/N] ")
                except (EOFError, OSError):  # no terminal to ask on: the answer is no
                    answer = ""
                if answer.strip().lower() not in ("y", "yes"):
                    print("not restored (answer y, or pass --yes)")
                    return 1
            safety = backup(settings, settings.data_dir / SAFETY_DIR)
            print(f"safety copy of the database being replaced: {safety}")
        manifest = restore(settings, archive)
    except BackupError as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.archive} (taken {manifest['created_at']}, revision {manifest['schema_revision']}, "
          f"{sum(manifest['counts'].values())} rows), counts verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(backup_main())


__all__ = ["BackupError", "backup", "backup_main", "read_manifest", "restore", "restore_main", "verify"]
