"""Per-edge command keys on the server: one file per edge, `<keys_dir>/<edge>.key` (hex, mode 600).

The key is read for each command (commands are rare), so a rotated key takes effect without a restart:
replace the file once every edge holds the new key as its `key_file` (the old one as `previous_key_file`).
Log lines name the edge, the file and the key id, never the key.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gateway import signing
from gateway.contract import Command
from server.services.commands import Signer

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


def command_signer(directory: Path | None) -> Signer | None:
    """The server's signer from FLOORWATCH_COMMAND_KEYS_DIR; None (and a warning, once) without one."""
    if directory is None:
        log.warning("commands are published unsigned (no FLOORWATCH_COMMAND_KEYS_DIR): edges rely on the "
                    "broker's ACL alone to know that a command comes from the server")
        return None
    if not directory.is_dir():
        log.error("FLOORWATCH_COMMAND_KEYS_DIR %s is not a folder: every command goes out unsigned", directory)
    return CommandKeys(directory).sign
