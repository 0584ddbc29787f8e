"""The line every page of an alarm carries: its delayed cut, or the plugs its overload switched off."""

from __future__ import annotations

from gateway import contract
from server.domain.power import safety_cut_note
from server.domain.site import Site
from server.services.commands import CommandService
from server.services.delayed_cuts import delayed_cut_note
from server.services.ports import DelayedCutStore


class PageNotes:
    """The overload cut listener runs before the notification listener, so the first page already says so."""

    def __init__(self, cuts: DelayedCutStore, site: Site, commands: CommandService) -> None:
        self.cuts = cuts
        self.site = site
        self.commands = commands

    def __call__(self, alarm_id: int) -> tuple[str, str] | None:
        note = delayed_cut_note(self.cuts, self.site, alarm_id)
        if note is not None:
            return note
        cut = [c["device"] for c in self.commands.commands(ref=f"alarm {alarm_id}")
               if c["action"] == contract.Action.RELAY_OFF.value]
        return safety_cut_note(cut) if cut else None
