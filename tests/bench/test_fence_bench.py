"""`python -m benchmarks.fence` runs end to end on the real PostgreSQL and leaves nothing behind. It never
asserts speed (machines vary); docs/performance.md has the figures."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from benchmarks.fence import main


def test_the_fence_bench_measures_every_row_count_and_drops_its_schema(
        postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--sql", postgres_url, "--rows", "0,50", "--sends", "20", "--every-ms", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["rows_per_commit"] for line in lines] == [0, 50]
    for line in lines:
        assert line["sends"] == 20
        assert 0 < line["presend_p50_ms"] <= line["presend_p99_ms"] <= line["presend_max_ms"], line
        assert line["ingest_commit_median_ms"] > 0, line
    admin = create_engine(postgres_url)
    with admin.connect() as connection:
        left = connection.execute(text(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\_fence\_%'"))
        assert left.scalars().all() == []
    admin.dispose()


def test_the_fence_bench_refuses_a_url_that_is_not_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--sql", "sqlite:///x.db"])
    assert exit_.value.code == 2
    assert "--sql 'sqlite:///x.db': give a PostgreSQL URL" in capsys.readouterr().err
