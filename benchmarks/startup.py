"""Start-up of the real server on a generated site (issue 14 item 4): time from launch to connected,
and the server process's peak RSS (VmHWM) by then.

    python -m benchmarks.startup --devices 50000 --starts 2
    python -m benchmarks.startup --site FILE --starts 2   # a floor generated before (no generation)

Each size: a floor from simulators.floorgen, a private Mosquitto, then `--starts` starts of
`benchmarks.server_proc` (the real Runtime: site parse, rule engine, migrations, restore, MQTT) on the
same data folder, each stopped once connected. Prints one JSON line per start.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cli import ServerChild
from benchmarks.floor import Floor, make_floor
from gateway.broker import EmbeddedBroker
from server.site_check import load_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=50_000, help="floor size")
    parser.add_argument("--starts", type=int, default=2, help="starts on the same data folder")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="longest wait for one start")
    parser.add_argument("--site", type=Path, help="start on this site file instead of generating a floor "
                        "(to repeat a measurement without the generation)")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.starts < 1 or args.timeout_s <= 0:
        parser.error("--devices and --starts must be positive, --timeout-s above 0")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        if args.site is not None:
            if not args.site.is_file():
                parser.error(f"--site {args.site}: no such file")
            floor = Floor("", args.site, len(load_site(args.site).devices))
        else:
            floor = make_floor(args.devices, Path(tmp) / "floor")
        generated = time.monotonic() - t0
        (Path(tmp) / "server").mkdir()
        broker = EmbeddedBroker(kind="mosquitto")
        broker.start()
        try:
            for start in range(args.starts):
                t0 = time.monotonic()
                server = ServerChild(floor, broker, Path(tmp) / "server" / "data")
                try:
                    if not server.wait(lambda s: s["connected"], args.timeout_s):
                        print(f"start {start}: the server did not connect within {args.timeout_s} s; "
                              f"see {Path(tmp) / 'server' / 'server.err'}", file=sys.stderr)
                        return 1
                    startup = time.monotonic() - t0
                    rss = server.peak_rss_kb
                finally:
                    server.stop()
                print(json.dumps({"devices": floor.devices, "start": start, "generate_s": round(generated, 1),
                                  "startup_s": round(startup, 1), "peak_rss_mb": round(rss / 1024)}), flush=True)
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
