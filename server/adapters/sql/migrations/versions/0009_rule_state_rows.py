"""rule engine state per device and per site-wide part, instead of one JSON blob (issue 14)

Revision ID: 0009_rule_state_rows
Revises: 0008_delayed_cuts

An existing `engine_state` row `rules` (the single-blob snapshot) is left in place: the server restores
from it once and its first checkpoint writes these rows and deletes it (server/services/recovery.py).
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009_rule_state_rows"
down_revision = "0008_delayed_cuts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_device_state",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "device"),
    )
    op.create_table(
        "rule_site_state",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("part", sa.String(length=200), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "part"),
    )


def downgrade() -> None:
    # The previous version restores only from the single blob: rebuild it from the rows (the same
    # JSON, regrouped), so a downgraded server keeps its pending durations.
    bind = op.get_bind()
    devices = sa.table("rule_device_state", sa.column("site"), sa.column("device"), sa.column("state", sa.JSON))
    parts = sa.table("rule_site_state", sa.column("site"), sa.column("part"), sa.column("state", sa.JSON))
    blobs: dict[str, dict[str, Any]] = {}

    def blob(site: str) -> dict[str, Any]:
        return blobs.setdefault(site, {"version": 1, "site": site, "open": [], "timers": [], "devices": {},
                                       "fire": {}, "shared": {}})

    for site, device, state in bind.execute(sa.select(devices.c.site, devices.c.device, devices.c.state)):
        b = blob(site)
        if state.get("dump") is not None:
            b["devices"][device] = state["dump"]
        b["timers"] += [[when, rule, device] for rule, when in state.get("timers", {}).items()]
    for site, part, state in bind.execute(sa.select(parts.c.site, parts.c.part, parts.c.state)):
        b = blob(site)
        if part == "open":
            b["open"] = state
        elif part == "timers":
            b["timers"] += state
        elif part.startswith("fire:"):
            b["fire"][part[5:]] = state
        elif part.startswith("shared:"):
            current = b["shared"].get(part[7:])
            both = isinstance(state, dict) and isinstance(current, dict)
            b["shared"][part[7:]] = {**state, **current} if both else state
        elif part.startswith("entry:"):  # one item of a shared map
            _, key, name = part.split(":", 2)
            b["shared"].setdefault(key, {})[name] = state
    if blobs:
        table = sa.table("engine_state", sa.column("key"), sa.column("state", sa.JSON),
                         sa.column("updated_at", sa.DateTime(timezone=True)))
        bind.execute(table.delete().where(table.c.key == "rules"))
        # One database serves one site: the blob of the first (only) site.
        bind.execute(table.insert().values(key="rules", state=blobs[min(blobs)],
                                           updated_at=sa.func.current_timestamp()))
    op.drop_table("rule_site_state")
    op.drop_table("rule_device_state")
