"""docs/site-file.md names every key the site file (and hr.yaml) accepts, in its own section, and every
allowed value of the enumerated keys: a key added to the models without its line for users fails here."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel

from server.adapters import hr_file
from server.domain import site
from server.domain.inspections import Course

DOC = Path(__file__).resolve().parents[3] / "docs" / "site-file.md"

SECTIONS: dict[str, tuple[type[BaseModel], ...]] = {
    "Top level": (site.SiteConfig,),
    "`site`": (site.SiteInfo,),
    "`floors`": (site.Floor,),
    "`zones`": (site.Zone,),
    "`devices`": (site.Device,),
    "`people`": (site.Person,),
    "`contacts`": (site.Contact,),
    "`shifts`": (site.Shift,),
    "`roster`": (site.RosterEntry,),
    "`thresholds`": (site.Thresholds,),
    "`hr.yaml`": (hr_file.HrFeed, hr_file.Leaver, hr_file.VisitorApproval, hr_file.TrainingRecord,
                  hr_file.NewStarter),
}
ENUMS: dict[str, tuple[type[StrEnum], ...]] = {
    "`zones`": (site.ZoneKind, site.HvacMode),
    "`devices`": (site.DeviceKind, site.PlugClass, site.DoorType, site.LocationType),
    "`hr.yaml`": (Course,),
}


def section(title: str) -> str:
    """The text under the `## ` heading that starts with `title`, up to the next heading."""
    text = DOC.read_text(encoding="utf-8")
    for part in text.split("\n## ")[1:]:
        if part.startswith(title):
            return part
    raise AssertionError(f"docs/site-file.md has no section '## {title}'")


def keys(model: type[BaseModel]) -> list[str]:
    """The YAML keys of a model: the alias where it has one (`class`), else the field name."""
    return [field.alias or name for name, field in model.model_fields.items()]


@pytest.mark.parametrize("title", sorted(SECTIONS))
def test_every_key_is_documented_in_its_section(title: str) -> None:
    text = section(title)
    missing = [f"{model.__name__}.{key}" for model in SECTIONS[title] for key in keys(model) if f"`{key}`" not in text]
    assert not missing, f"docs/site-file.md, section {title}, does not describe {missing}"


@pytest.mark.parametrize("title", sorted(ENUMS))
def test_every_allowed_value_is_documented(title: str) -> None:
    text = section(title)
    missing = [f"{enum.__name__}.{v.value}" for enum in ENUMS[title] for v in enum if f"`{v.value}`" not in text]
    assert not missing, f"docs/site-file.md, section {title}, does not list {missing}"


def test_the_supervision_override_has_its_place() -> None:
    assert "<!-- supervision override: documented with the offline limits -->" in section("`devices`")
