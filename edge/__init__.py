"""The Floorwatch edge agent: vendor device dialects in, the canonical contract out (see agent.py)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("floorwatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
