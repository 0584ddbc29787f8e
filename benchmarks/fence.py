"""How long a page's pre-send check waits under the site's lease while ingest commits.

    python -m benchmarks.fence --sql postgresql+psycopg://postgres@127.0.0.1:5432/DB [--rows 0,300,3000]

Under a lease (several workers) every fenced transaction checks the lease row in PostgreSQL
(`server.adapters.sql.leases.fence`), and the outbox runs one short fenced transaction before each
send (`NotificationService._attempt`). A check holds the lease row's lock until its transaction
commits, so the pre-send check can wait for whatever fenced transaction holds it: the ingest commit
of alarms and the rule engine's checkpoint, first of all.

Real parts: a PostgreSQL schema of its own (dropped at the end), the real LeaseKeeper, `fenced_session()` and
the outbox's store. An ingest thread commits back to back through `fenced_session()`, each transaction
inserting `--rows` rows into a scratch table (a checkpoint of that many changed rows); meanwhile the
main thread runs `--sends` pre-send checks (`NotifyRepository.transaction(fenced=True)`), one every
`--every-ms`, and times each. Prints one JSON line per row count: the ingest commit's median, and the
pre-send check's p50, p99 and max in milliseconds. `--rows 0`: the check beside empty commits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from typing import Any

from sqlalchemy import Engine, text

from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.leases import LeaseStore
from server.adapters.sql.notifications import NotifyRepository
from server.adapters.sql.unit_of_work import fenced_session
from server.services.lease import LeaseKeeper


def _schema_url(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def run(engine: Engine, rows: int, sends: int, every_s: float) -> dict[str, Any]:
    sessions = session_factory(engine)
    keeper = LeaseKeeper(LeaseStore(engine), "bench", "bench-worker", ttl_s=300, renew_s=100, site_hash="h")
    if keeper.acquire(threading.Event()) is None:
        raise SystemExit("the bench did not get the lease: is another bench running on this schema?")
    fence = keeper.fencer()
    outbox = NotifyRepository(sessions, fence)
    stop = threading.Event()
    commits: list[float] = []

    def ingest() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            with fenced_session(sessions, fence) as session:
                session.execute(text("INSERT INTO bench_checkpoint (v) SELECT md5(g::text) "
                                     "FROM generate_series(1, :n) g"), {"n": rows})
            commits.append(time.perf_counter() - started)

    thread = threading.Thread(target=ingest, name="bench-ingest")
    thread.start()
    waits: list[float] = []
    try:
        time.sleep(0.5)
        for _ in range(sends):
            started = time.perf_counter()
            with outbox.transaction(fenced=True):
                pass
            waits.append((time.perf_counter() - started) * 1000)
            time.sleep(every_s)
    finally:
        stop.set()
        thread.join()
        keeper.release()
    if not commits:
        raise SystemExit("the ingest thread committed nothing: see its error above")
    q = statistics.quantiles(waits, n=100, method="inclusive")
    return {"rows_per_commit": rows, "ingest_commit_median_ms": round(statistics.median(commits) * 1000, 1),
            "presend_p50_ms": round(q[49], 2), "presend_p99_ms": round(q[98], 2),
            "presend_max_ms": round(max(waits), 2), "sends": sends}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fence", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sql", required=True, help="a PostgreSQL URL; the bench uses a schema of its own")
    parser.add_argument("--rows", default="0,300,3000", help="rows per ingest commit, comma-separated")
    parser.add_argument("--sends", type=int, default=300, help="pre-send checks per row count")
    parser.add_argument("--every-ms", type=float, default=7.0, help="pause between two pre-send checks")
    args = parser.parse_args(argv)
    if args.sends < 2:
        parser.error(f"--sends {args.sends}: give at least 2 checks, for a p50 and a p99")
    if not args.sql.startswith("postgresql"):
        parser.error(f"--sql {args.sql!r}: give a PostgreSQL URL (postgresql+psycopg://user@host/db)")
    try:
        counts = [int(n) for n in args.rows.split(",")]
    except ValueError:
        parser.error(f"--rows {args.rows!r}: give whole numbers separated by commas, e.g. 0,300,3000")
    schema = f"bench_fence_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.sql)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(_schema_url(args.sql, schema))
    try:
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE bench_checkpoint (id serial PRIMARY KEY, v text)"))
        for rows in counts:
            print(json.dumps(run(engine, rows, args.sends, args.every_ms / 1000)), flush=True)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
