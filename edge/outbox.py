"""The store-and-forward queue: every outgoing message is written here first and deleted only when
the broker has acknowledged it, so a dead uplink, a broker restart or an agent crash loses nothing
below the bound.

One SQLite file holds:
- `outbox`: messages in the order they were made (`id`), with their contract `seq` when they have
  one (telemetry and event batches; command results have none);
- `meta`: the next `seq`, so that `seq` keeps rising across restarts (the server de-duplicates by
  `(edge, seq)`: going back to 0 would make it drop fresh data as replays);
- `commands`: ids of commands already handled, so a replayed command is refused even after a restart.

WAL with synchronous=NORMAL: a crash of the agent loses nothing committed; a power cut can lose the
last few hundred milliseconds, which is the price of not fsyncing every batch on an SD card.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    seq: int | None
    topic: str
    payload: bytes
    qos: int
    retain: bool


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, handled_at REAL NOT NULL);
"""


# A wrong path or permission: the file (or its folder) must change, restarting cannot help. EEXIST: a
# folder of the path is a file; EPERM: what EACCES is on some file systems.
_PATH_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR,
                          errno.EEXIST})
# SQLite's names for the same (cannot open the path, read-only, permission) and a file that is not one.
_PATH_SQLITE_CODES = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM,
                                sqlite3.SQLITE_NOTADB})


def is_file_problem(exc: OSError | sqlite3.Error) -> bool:
    """Does opening the buffer fail because of its path or file (fix the file) rather than something passing
    (database is locked, disk full, I/O error: a restart may succeed)?"""
    if isinstance(exc, OSError):
        return exc.errno in _PATH_ERRNOS
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _PATH_SQLITE_CODES  # the primary code of an extended one


class OutboxUnavailable(OSError):
    """The buffer file cannot be made or opened. `file_problem`: its path or file is wrong (a folder this user
    may not write, a path under a file, not a database); otherwise something that may pass (locked, disk full)."""

    def __init__(self, message: str, *, file_problem: bool) -> None:
        super().__init__(message)
        self.file_problem = file_problem


class Outbox:
    """Not thread-safe by design: the agent's worker thread is its only user (a lock guards misuse)."""

    def __init__(self, path: Path | str, max_messages: int) -> None:
        self.path = Path(path)
        self.max_messages = max_messages
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
            top = self._db.execute("SELECT MAX(seq) FROM outbox").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if is_file_problem(exc):
                raise OutboxUnavailable(f"cannot open the buffer {self.path} ({reason}): give a file in a folder "
                                        "the edge's user may write", file_problem=True) from None
            raise OutboxUnavailable(f"cannot open the buffer {self.path} ({reason}): not a problem of the file; "
                                    "free disk space, check the disk or stop what holds the file, then start "
                                    "again", file_problem=False) from None
        self._lock = threading.Lock()
        # Both, in case the meta row was lost: never hand out a seq that is already queued.
        self._next_seq = max(row[0] if row else 0, (top + 1) if top is not None else 0)
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        self.dropped_total = 0
        self._dropped_unreported = 0

    # -- writing -----------------------------------------------------------------------------------

    def append_with_seq(
        self, build: Callable[[int], tuple[str, bytes, int, bool]], *, trim: bool = True
    ) -> int:
        """Allocate the next seq, build the message with it, store both in one transaction; returns seq.

        `trim=False` lets one message exceed the bound: the buffer_overflow report itself must not push
        out another message (which would need another report, and so on)."""
        with self._lock:
            seq = self._next_seq
            topic, payload, qos, retain = build(seq)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO outbox (seq, topic, payload, qos, retain) VALUES (?,?,?,?,?)",
                                 (seq, topic, payload, qos, int(retain)))
                self._db.execute("INSERT INTO meta (key, value) VALUES ('next_seq', ?) "
                                 "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (seq + 1,))
                if trim:
                    self._trim()
                else:
                    self._count += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._next_seq = seq + 1
            return seq

    def append(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """A message without a seq (command results)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO outbox (seq, topic, payload, qos, retain) VALUES (NULL,?,?,?,?)",
                    (topic, payload, qos, int(retain)))
                self._trim()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _trim(self) -> None:
        """Inside a transaction: count the new row and drop the oldest beyond the bound."""
        self._count += 1
        excess = self._count - self.max_messages
        if excess > 0:
            self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
            self._count -= excess
            self.dropped_total += excess
            self._dropped_unreported += excess

    def take_dropped(self) -> int:
        """Messages dropped at the bound since the last call (for the buffer_overflow event)."""
        dropped, self._dropped_unreported = self._dropped_unreported, 0
        return dropped

    # -- reading and acknowledging -----------------------------------------------------------------

    def after(self, after_id: int, limit: int) -> list[Row]:
        """Queued messages with id > after_id, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, seq, topic, payload, qos, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit)).fetchall()
        return [Row(r[0], r[1], r[2], bytes(r[3]), r[4], bool(r[5])) for r in rows]

    def remove(self, ids: Iterable[int]) -> None:
        """Forget acknowledged messages (ids already dropped at the bound are ignored)."""
        ids = list(ids)
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                removed = 0
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    removed += self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._count -= removed

    def __len__(self) -> int:
        return self._count

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def last_seq(self) -> int | None:
        """The highest seq ever made (sent or still queued), None before the first."""
        return self._next_seq - 1 if self._next_seq > 0 else None

    # -- command ledger ----------------------------------------------------------------------------

    def remember_command(self, command_id: str, at: float) -> bool:
        """Record a command id; False when it was handled before (a replay)."""
        with self._lock:
            cursor = self._db.execute("INSERT OR IGNORE INTO commands (id, handled_at) VALUES (?, ?)",
                                      (command_id, at))
            return cursor.rowcount == 1

    def forget_commands_before(self, at: float) -> None:
        """Prune the ledger; commands older than their expiry are refused as expired anyway."""
        with self._lock:
            self._db.execute("DELETE FROM commands WHERE handled_at < ?", (at,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
