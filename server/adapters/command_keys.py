"""Per-edge command keys on the server: one file per edge, `<keys_dir>/<edge>.key` (hex, mode 600).

The key is read for each command (commands are rare), so a rotated key takes effect without a restart:
replace the file once every edge holds the new key as its `key_file` (the old one as `previous_key_file`).
Log lines name the edge, the file and the key id, never the key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from gateway import signing
from gateway.contract import Command, CommandResult

ResultCheck = Callable[[str, CommandResult], str | None]
"""(edge, result) -> why the result is not the edge's own, or None to take it (CommandService.check_result)."""
Signer = Callable[[str, Command], Command]
"""(edge, command) -> the command signed with that edge's key (CommandService.sign)."""

log = logging.getLogger(__name__)


class CommandKeys:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, edge: str) -> Path:
        return self.directory / f"{edge}.key"

    def sign(self, edge: str, command: Command) -> Command:
        """The command with its signature; unsigned (and an error logged) when the edge has no usable key,
        which an edge that holds a key then refuses as bad_signature: visible, never silently run."""
        path = self.path(edge)
        try:
            key = signing.parse_key(path.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            log.error("command %s to %s goes out unsigned: no usable key in %s (%s)", command.id, edge, path, reason)
            return command
        return signing.signed(command, key)


    def result_refusal(self, edge: str, result: CommandResult) -> str | None:
        """Why a command result must not be believed, or None. An edge with a key here answers with its
        signature (made with the key that signed the command); without a key file for the edge, its
        commands went out unsigned and its results are taken as they are (the ACL decides)."""
        try:
            key = signing.parse_key(self.path(edge).read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        return signing.refusal(result, [key])


def result_checker(directory: Path | None) -> ResultCheck | None:
    """The server's check of command results from FLOORWATCH_COMMAND_KEYS_DIR; None without one."""
    return CommandKeys(directory).result_refusal if directory is not None else None


def command_signer(directory: Path | None) -> Signer | None:
    """The server's signer from FLOORWATCH_COMMAND_KEYS_DIR; None (and a warning, once) without one."""
    if directory is None:
        log.warning("commands are published unsigned (no FLOORWATCH_COMMAND_KEYS_DIR): edges rely on the "
                    "broker's ACL alone to know that a command comes from the server")
        return None
    if not directory.is_dir():
        log.error("FLOORWATCH_COMMAND_KEYS_DIR %s is not a folder: every command goes out unsigned", directory)
    return CommandKeys(directory).sign
