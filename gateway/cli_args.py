"""Argument types the command lines share (`floorwatch …` in server/cli.py, `floorwatch simulate` in
simulators/cli.py): a bad value is refused by argparse in one line that names it, with exit code 2."""

from __future__ import annotations

import argparse
import math


def _number(value: str) -> float | None:
    """A finite number, else None: float() also takes inf and nan, which no count, rate or time may be."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def positive(value: str) -> float:
    number = _number(value)
    if number is None or not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return number


def non_negative(value: str) -> float:
    number = _number(value)
    if number is None or not number >= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number ≥ 0")
    return number


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number ≥ 1")
    return int(value)


def port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1-65535)")
    return int(value)


def host_port(text: str) -> tuple[str, int]:
    host, _, number = text.rpartition(":")
    if not host or not number.isdigit() or not 1 <= int(number) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected host:port with a port 1-65535, e.g. 127.0.0.1:1883")
    return host, int(number)
