"""`python -m simulators` is the simulator CLI (see simulators/cli.py)."""

from simulators.cli import main

raise SystemExit(main())
