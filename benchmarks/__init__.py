"""`floorwatch bench`: ingest throughput, alarm latency and growth of one server process (see
docs/performance.md). Everything runs on 127.0.0.1; every load loop is bounded in count and time."""
