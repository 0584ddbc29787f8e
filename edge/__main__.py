"""`python -m edge --config edge.yaml [--check]`."""

from edge.cli import main

raise SystemExit(main())
