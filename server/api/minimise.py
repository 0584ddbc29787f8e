"""Data minimisation at the API's edge: person names, person ids and badge numbers an account may not
see are replaced before a response leaves the server. Who may see what is the policy's
(`server/domain/policy.py`: PEOPLE_SCOPE, can_see_person, can_see_badges); this module only applies it.

Structured fields (an alarm's subject, a roll-call entry) are decided with their own zone; free text
(messages, notification bodies, audit rows, dead-letter payloads, inspection subjects) is scrubbed of
every hidden person's id and name and, without badge rights, of every badge number and card key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends

from server.api.deps import ActorDep, SiteDep
from server.api.schemas import AlarmPublic
from server.domain.policy import Actor, can_see_badges, can_see_person
from server.domain.rules.access import card_key
from server.domain.site import Site

HIDDEN = "(hidden)"
MASK = "****"
_CARD = re.compile(r"card-[0-9a-f]{12}")
_BADGE_FIELD = re.compile(r"""(["']?[\w-]*(?:badge|card)[\w-]*["']?\s*[:=]\s*["']?)([^"',}\s]+)""", re.IGNORECASE)
"""A badge-like field in raw text (JSON `"badge": "B1011"`, `card_no=...`): a dead letter may hold a
card the site file does not know, so the value is masked whatever it is."""


def person_zones(site: Site) -> dict[str, set[str]]:
    """person id -> zones they are rostered in; a visitor belongs to their host's zones."""
    zones: dict[str, set[str]] = {p: set() for p in site.people}
    for entry in site.config.roster:
        zones.setdefault(entry.person, set()).add(entry.zone)
    for person in site.people.values():
        if person.host:
            zones[person.id] |= zones.get(person.host, set())
    return zones


@dataclass(frozen=True)
class Redactor:
    """What one account may see of people, with the replacements ready for free text."""

    actor: Actor
    zones: Mapping[str, set[str]]
    badges: bool
    pattern: re.Pattern[str] | None
    replace: Mapping[str, str]

    @classmethod
    def of(cls, actor: Actor, site: Site) -> Redactor:
        zones = person_zones(site)
        badges = can_see_badges(actor)
        replace: dict[str, str] = {}
        for person in site.people.values():
            if not can_see_person(actor, person.id, zones.get(person.id, ())):
                replace[person.id] = HIDDEN
                if len(person.name) >= 2:  # a one-letter name would blank out ordinary text
                    replace[person.name] = HIDDEN
            if person.badge and not badges:
                # as written, and as the readers write it (esp-rfid in lower case, Tasmota in upper case)
                for spelling in {person.badge.strip(), person.badge.lower(), person.badge.upper()} - {""}:
                    replace[spelling] = MASK
                replace[card_key(person.badge)] = "card-" + MASK
        # longest first, so a name containing another person's id is replaced whole; ids and badges are
        # matched as whole tokens ("p-op1" must not eat the start of "p-op10")
        tokens = sorted(replace, key=len, reverse=True)
        pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(t)}(?![\w-])" if re.fullmatch(r"[\w-]+", t)
                                      else re.escape(t) for t in tokens)) if tokens else None
        return cls(actor, zones, badges, pattern, replace)

    def sees(self, person: str, zone: str | None = None) -> bool:
        known = self.zones.get(person, set())
        return can_see_person(self.actor, person, known | ({zone} if zone else set()))

    def person(self, person: str | None, zone: str | None = None) -> str | None:
        return person if person is None or self.sees(person, zone) else HIDDEN

    def subject(self, subject: str, zone: str | None) -> str:
        """An alarm subject: a person id or a card key is hidden as the person or badge would be."""
        if subject in self.zones:
            return subject if self.sees(subject, zone) else HIDDEN
        if _CARD.fullmatch(subject):
            return subject if self.badges else "card-" + MASK
        return subject

    def text(self, value: str) -> str:
        if self.pattern is not None:
            value = self.pattern.sub(lambda m: self.replace[m.group(0)], value)
        if not self.badges:
            value = _CARD.sub("card-" + MASK, value)
        return value

    def payload(self, value: str) -> str:
        """Raw text from a device: badge-like fields masked whatever their value, then as `text`."""
        if not self.badges:
            value = _BADGE_FIELD.sub(lambda m: m.group(1) + MASK, value)
        return self.text(value)

    def value(self, data: Any) -> Any:
        """Any JSON-like value with every string (dict keys too) scrubbed."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.value(v) for v in data]
        return data

    def entry(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """A roll-call or drill-report line: the person with their zone, their visitor's host apart."""
        out = dict(entry)
        person = str(out.get("person") or "")
        if person and not self.sees(person, out.get("zone")):
            out["person"] = HIDDEN
            if "name" in out:
                out["name"] = HIDDEN
        host = out.get("host")
        if host and not self.sees(str(host), out.get("zone")):
            out["host"] = HIDDEN
            if out.get("host_name"):
                out["host_name"] = HIDDEN
        return out

    def alarm(self, alarm: AlarmPublic) -> AlarmPublic:
        """An access.* alarm names a person (or a card) as its subject; messages are free text."""
        return alarm.model_copy(update={"subject": self.subject(alarm.subject, alarm.zone),
                                        "message": self.text(alarm.message),
                                        "message_zh": self.text(alarm.message_zh)})


def get_redactor(site: SiteDep, actor: ActorDep) -> Redactor:
    return Redactor.of(actor, site)


RedactorDep = Annotated[Redactor, Depends(get_redactor)]
