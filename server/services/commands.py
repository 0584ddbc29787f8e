"""Commands to the edge: door release/secure and relay cut/restore, persisted with who and why.

Every command is a `commands` row (id, device, action, reason, who, safety flag, issued/expires) and
a Command on `floorwatch/v1/{site}/{edge}/commands` with an expiry (the edge refuses it late). The
edge's CommandResult updates the row (`on_result`, wired as Ingest's on_command_result hook).

Under a lease (several workers, server/services/lease.py) the row's transaction runs the lease's fence
first and the Command is published only after it committed: a worker whose lease was taken commits no
command row and publishes nothing (LeaseLost; the API answers 503).

Power-cut policy (RULES.md §2.1): a safety rule cuts only `cuttable`, never `essential` plugs; an
essential plug is cut only by a person with the shift-lead role or above (one-tap manual cut), and only such
a person switches a plug on again after a person's cut. Every
relay command tells the rule engine (`on_relay_command`, through `Ingest.call`) so that
elec.relay_mismatch compares the plug's following readings against it (power must drop within 5 s).
Restoring a relay whose last cut was a safety cut needs controls.relay_reenable (a shift lead, a supervisor or admin,
a reason, an electrician's sign-off after a critical overload). Cuts and restores are audited.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import contract
from server.domain.commands import CommandRecord
from server.domain.findings import Finding
from server.domain.policy import Permission, holds
from server.domain.power import cuttable
from server.domain.rules import RuleEngine
from server.domain.rules.controls import OVERLOAD_CUTS, relay_reenable
from server.domain.site import DeviceKind, Site
from server.services.ports import CommandStore

log = logging.getLogger(__name__)

COMMAND_TTL = timedelta(seconds=30)
EngineCaller = Callable[[Callable[[RuleEngine, datetime], list[Finding]]], list[Finding]]
Publisher = Callable[[str, contract.Command], None]
Signer = Callable[[str, contract.Command], contract.Command]
"""(edge, command) -> the command signed with that edge's key (server/adapters/command_keys.py)."""
ResultCheck = Callable[[str, contract.CommandResult], str | None]
"""(edge, result) -> why the result is not the edge's own (bad signature), or None to take it."""


def alarm_ref(alarm_id: int) -> str:
    """The ref of the commands an alarm sends itself (an overload's cut, a delayed cut)."""
    return f"alarm {alarm_id}"


class CommandError(ValueError):
    """A command that may not be sent (policy), with the reason."""


def check_relay_request(site: Site, device: str, reason: str) -> None:
    """A person's request on a plug's relay names a smart plug and gives a reason: KeyError for an unknown
    device, CommandError otherwise."""
    dev = site.devices.get(device)
    if dev is None:
        raise KeyError(device)
    if dev.kind is not DeviceKind.SMART_PLUG:
        raise CommandError(f"{device} is a {dev.kind.value}, not a smart plug with a relay")
    if not reason.strip():
        raise CommandError("a reason is required")


class CommandService:
    def __init__(self, store: CommandStore, site: Site, clock: Callable[[], datetime],
                 publish: Publisher, engine_call: EngineCaller | None = None, *, sign: Signer | None = None,
                 check_result: ResultCheck | None = None) -> None:
        self.store = store
        """Its transactions run the partition lease's check first (when the process holds a lease)."""
        self.site = site
        self.clock = clock
        self.publish = publish
        self.engine_call = engine_call
        self.sign = sign
        """Signs commands when command keys are configured; None publishes unsigned commands."""
        self.check_result = check_result
        """Given with `sign`: a result that fails it is logged and never recorded (nobody else may say
        that a command was done or failed)."""
        self.refused_results = 0

    def send(self, device: str, action: contract.Action, reason: str, who: str, *, safety: bool = False,
             ref: str = "", ttl: timedelta = COMMAND_TTL) -> contract.Command:
        dev = self.site.devices[device]
        now = self.clock()
        command = contract.Command(id=f"c-{uuid.uuid4().hex[:20]}", device=device, action=action,
                                   reason=reason[:500], issued_at=now, expires_at=now + ttl)
        with self.store.transaction() as tx:
            tx.add(CommandRecord(command.id, device, dev.edge, action.value, reason[:500], who, safety, ref, now,
                                 command.expires_at, "sent"))
            if action in (contract.Action.RELAY_OFF, contract.Action.RELAY_ON):
                tx.audit(who, f"relay.{'off' if action is contract.Action.RELAY_OFF else 'on'}",
                         f"device:{device}", {"reason": reason, "command": command.id, "safety": safety}, now)
            elif action in (contract.Action.DOOR_RELEASE, contract.Action.DOOR_SECURE):
                tx.audit(who, f"door.{action.value.split('_')[1]}", f"device:{device}",
                         {"reason": reason, "command": command.id, "ref": ref}, now)
        try:
            wire = self.sign(dev.edge, command) if self.sign is not None else command  # signed on the wire only
            self.publish(contract.edge_topic(self.site.id, dev.edge, contract.Channel.COMMANDS), wire)
        except Exception:
            log.exception("command %s to %s could not be published", command.id, device)
        if action in (contract.Action.RELAY_OFF, contract.Action.RELAY_ON) and self.engine_call is not None:
            on = action is contract.Action.RELAY_ON
            self.engine_call(lambda engine, t: engine.on_relay_command(device, on, t))
        return command

    # -- relays ----------------------------------------------------------------------------------------

    def safety_cut(self, devices: list[str], reason: str, ref: str = "") -> list[str]:
        """Cut non-essential (cuttable) plugs for a safety rule; essential ones are never cut here."""
        cut: list[str] = []
        for device in devices:
            dev = self.site.devices.get(device)
            if dev is None or not cuttable(dev):
                continue
            self.send(device, contract.Action.RELAY_OFF, reason, "system", safety=True, ref=ref)
            cut.append(device)
        return cut

    def relay(self, device: str, on: bool, reason: str, who: str, roles: set[str],
              electrician_signoff: bool = False) -> contract.Command:
        """A person switches a plug: POST /api/devices/{id}/relay."""
        check_relay_request(self.site, device, reason)
        if not on:
            if not holds(roles, Permission.CUT_POWER):
                raise CommandError("cutting power needs the shift lead (领班) or above")
        else:
            last = self.last_cut(device)
            decision = relay_reenable(sorted(roles), reason, last["rule"] if last else None,
                                      bool(last and last["critical"]), electrician_signoff)
            if not decision.allowed:
                raise CommandError(f"controls.relay_reenable: {decision.reason}")
        return self.send(device, contract.Action.RELAY_ON if on else contract.Action.RELAY_OFF, reason, who)

    def last_cut(self, device: str) -> dict[str, Any] | None:
        """The cut that guards switching the plug on again, None when none since it was last on. Of
        several cuts since then, a critical overload's wins over a later one (the fire zone's cut of the
        same plug), so that its electrician sign-off is not lost. A person's cut (a shift lead's one-tap
        cut: the safety action for an essential plug, which no rule cuts) guards too, as rule `manual`."""
        guard: dict[str, Any] | None = None
        manual: dict[str, Any] | None = None
        for cmd in self.store.recent(device, None, 200):
            if cmd.action == contract.Action.RELAY_ON.value and cmd.status == "ok":
                break  # a restore the edge refused or never answered left the plug off: the guard stays
            if cmd.action != contract.Action.RELAY_OFF.value:
                continue
            if not cmd.safety:
                manual = manual or {"rule": "manual", "critical": False, "command": cmd.id}
                continue
            rule = cmd.reason.split()[0] if cmd.reason else "safety"
            cut = {"rule": rule, "critical": "critical" in cmd.reason, "command": cmd.id}
            if guard is None or (cut["critical"] and rule in OVERLOAD_CUTS):
                guard = cut
        return guard or manual

    def automatic_cuts(self, alarm_ids: Iterable[int]) -> dict[int, list[CommandRecord]]:
        """The safety relay_off commands each alarm sent (ref "alarm <id>"), the latest per plug, in the order
        they were sent (by plug id at one instant); one query for a whole list of alarms."""
        refs = {alarm_ref(a): a for a in alarm_ids}
        cuts: dict[int, dict[str, CommandRecord]] = {}
        for cmd in self.store.of_refs(sorted(refs)):
            if cmd.action == contract.Action.RELAY_OFF.value and cmd.safety and cmd.ref in refs:
                cuts.setdefault(refs[cmd.ref], {})[cmd.device] = cmd
        return {a: sorted(by_device.values(), key=lambda c: (c.issued_at, c.device)) for a, by_device in cuts.items()}

    def on_interlock(self, edge: str, event: contract.Event) -> None:
        """The edge's overload interlock switched a plug off by itself (`interlock_tripped`, at 125 % of its
        rating for 10 s: a critical overload): recorded as that plug's safety cut, done, so that switching it
        on again needs what the server's own critical overload cut needs (elec.relay_reenable_guard).

        Stored at the server's time: `last_cut` orders by it, and an edge clock running behind would sort a
        trip behind the restore before it (the edge's time is in the reason). Once per event: a redelivered
        trip (same edge, plug and time) adds no second command or audit row."""
        dev = self.site.devices.get(event.device)
        if event.type is not contract.EventType.INTERLOCK_TRIPPED or dev is None or dev.edge != edge \
                or dev.kind is not DeviceKind.SMART_PLUG:
            return
        now = self.clock()
        edge_at = event.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        command_id = "i-" + hashlib.sha256(f"{edge}/{event.device}/{edge_at}".encode()).hexdigest()[:20]
        reason = (f"elec.plug_overcurrent critical: the edge's overload interlock switched {event.device} off "
                  f"at {edge_at} (edge clock)")
        if event.detail:
            reason += f" ({event.detail})"
        failed = "FAILED" in (event.detail or "")  # the edge found no driver to switch it: still on
        with self.store.transaction() as tx:
            if tx.exists(command_id):
                return  # the same trip delivered again
            tx.add(CommandRecord(command_id, event.device, edge, contract.Action.RELAY_OFF.value, reason[:500],
                                 "edge", True, "interlock", now, now, "failed" if failed else "ok", now,
                                 event.detail if failed else None))
            tx.audit("edge", "relay.off", f"device:{event.device}", {"reason": reason, "interlock": True}, now)

    # -- results ---------------------------------------------------------------------------------------

    def on_result(self, edge: str, result: contract.CommandResult) -> None:
        why = self.check_result(edge, result) if self.check_result is not None else None
        if why is not None:
            self.refused_results += 1
            log.warning("result for command %s from %s's topic not recorded: %s", result.id[:64], edge, why)
            return
        now = self.clock()
        with self.store.transaction() as tx:
            if not tx.set_result(result.id, "ok" if result.ok else "failed", now, result.error):
                return  # not ours (another server, or an edge-local command)
        if not result.ok:
            log.warning("command %s on %s failed: %s", result.id, edge, result.error)

    def commands(self, device: str | None = None, ref: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        return [{"id": r.id, "device": r.device, "action": r.action, "reason": r.reason, "who": r.who,
                 "safety": r.safety, "ref": r.ref, "issued_at": r.issued_at, "expires_at": r.expires_at,
                 "status": r.status, "result_at": r.result_at, "error": r.error}
                for r in self.store.recent(device, ref, limit)]
