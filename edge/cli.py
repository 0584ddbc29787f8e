"""`floorwatch edge --config edge.yaml [--check]`: run the edge agent, or only validate its configuration.

`main(argv)` is wired into the top-level `floorwatch` console script by server/cli.py; `python -m edge`
runs it directly.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter

from edge.commands import KeyFileError, load_keys
from edge.config import ConfigError, config_message, load_config, unreadable_tls_files
from gateway.signing import key_id


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] == "discover":
        from edge.discover import main as discover  # its own arguments (floorwatch edge discover --help)

        return discover(argv[1:])
    parser = argparse.ArgumentParser(prog="floorwatch edge", description="Run the Floorwatch edge agent.")
    parser.add_argument("--config", required=True, metavar="PATH", help="the edge's YAML configuration")
    parser.add_argument("--check", action="store_true", help="validate the configuration only")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        tls = unreadable_tls_files(config)  # TLS files: the first connection would stop the agent
        if tls:
            raise ConfigError([config_message(args.config, loc, message) for loc, message in tls])
        keys = load_keys(config.commands)  # a configured key must be usable, also for --check
    except KeyFileError as exc:
        print(config_message(args.config, exc.loc, exc.message), file=sys.stderr)
        print(f"{args.config}: 1 problem(s); nothing started", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{args.config}: {len(exc.problems)} problem(s); nothing started", file=sys.stderr)
        return 2
    if args.check:
        kinds = Counter(d.kind.value for d in config.devices)
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "no devices"
        count = len(config.devices)
        signed = f"commands signed (key {', '.join(key_id(k) for k in keys)})" if keys else "commands unsigned"
        print(f"{args.config}: OK: site {config.site}, edge {config.edge}, {count} devices ({summary}), {signed}")
        return 0
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from edge.agent import EdgeAgent  # imported late: --check must not need a broker library at all
    from edge.outbox import OutboxUnavailable

    agent = EdgeAgent(config)
    try:
        agent.start()
    except OutboxUnavailable as exc:
        print(config_message(args.config, ("buffer", "path"), str(exc)), file=sys.stderr)
        if not exc.file_problem:
            return 1  # may pass: the service manager restarts on 1, never on 2
        print(f"{args.config}: 1 problem(s); nothing started", file=sys.stderr)
        return 2
    agent.run_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
