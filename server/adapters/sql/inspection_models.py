"""Inspection tables (RULES.md §6): tasks, item results, photos, hazards, and the planner's watermark.

They share `Base.metadata` with the other tables (imported at the end of `models.py`), so Alembic
sees them; the schema itself comes from migration 0002. All times are stored in UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.adapters.sql.base import Base


class InspectionTaskRow(Base):
    __tablename__ = "inspection_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(160))
    run_at: Mapped[datetime]
    due_at: Mapped[datetime]
    zone: Mapped[str | None] = mapped_column(String(64))
    seat: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(128))
    assignee: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(64), default="")
    trigger: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    """open, done or missed (never created in time: a run skipped by catch-up)."""
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        # One task per (schedule, subject, run): a restart or a double run of the planner is harmless.
        UniqueConstraint("schedule_id", "subject", "run_at", name="uq_inspection_run"),
        Index("ix_inspection_status_due", "status", "due_at"),
        Index("ix_inspection_zone_run", "zone", "run_at"),
    )


class InspectionResultRow(Base):
    __tablename__ = "inspection_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("inspection_tasks.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    suggested: Mapped[str | None] = mapped_column(String(16))
    """The pre-fill's suggestion when the person signed (pass, fail, unknown), or None (no pre-fill)."""
    evidence: Mapped[list[str] | None] = mapped_column(JSON)
    """The facts shown with the suggestion (migration 0005)."""

    __table_args__ = (UniqueConstraint("task_id", "item_id", name="uq_inspection_result_item"),)


class InspectionPhotoRow(Base):
    __tablename__ = "inspection_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("inspection_tasks.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str | None] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime]
    uploaded_by: Mapped[str] = mapped_column(String(64))


class InspectionHazardRow(Base):
    """A failed on-the-spot (当场改正) item: corrected on the spot, recorded with its note or photo."""

    __tablename__ = "inspection_hazards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("inspection_tasks.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    found_at: Mapped[datetime]
    found_by: Mapped[str] = mapped_column(String(64))


class InspectionWatermarkRow(Base):
    """How far the planner has created tasks, per schedule (so a restart resumes, never replays)."""

    __tablename__ = "inspection_watermarks"

    schedule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    planned_until: Mapped[datetime]
