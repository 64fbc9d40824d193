"""The schema of release 0.1.0, the first release.

0.1.0 created these tables itself and marked them with `orchestrator_meta.schema_version = 1`,
without an `alembic_version` table; `persistence.schema_upgrade` recognises such a database as
being at this revision and stamps it before upgrading.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_events",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_inbound_events_at", "inbound_events", ["at"])

    op.create_table(
        "orchestrator_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "threads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=255), nullable=True),
        sa.Column("requester", sa.String(length=32), nullable=True),
        sa.Column("requester_is_bot", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("message_ts", sa.JSON(), nullable=False),
        sa.Column("last_input", sa.JSON(), nullable=True),
        sa.Column("error_kind", sa.String(length=64), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", "thread_ts"),
    )
    op.create_index("ix_threads_state", "threads", ["state"])

    op.create_table(
        "answers",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("view", sa.JSON(), nullable=False),
        sa.Column("message_ts", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("regenerated_by", sa.String(length=32), nullable=True),
        sa.Column("regenerated_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_answers_thread_id", "answers", ["thread_id"])

    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("thread_id", "seq"),
    )
    op.create_table(
        "escalations",
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("thread_id"),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("forward_state", sa.String(length=16), nullable=True),
        sa.Column("forward_due", sa.Float(), nullable=True),
        sa.Column("forward_attempts", sa.Integer(), nullable=False),
        sa.Column("forward_error", sa.Text(), nullable=True),
        sa.Column("forwarded_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "user"),
    )
    op.create_index("ix_feedback_forward_due", "feedback", ["forward_due"])
    op.create_index("ix_feedback_thread_id", "feedback", ["thread_id"])

    op.create_table(
        "interrupts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("interrupt_id", sa.String(length=255), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("wire_form", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("tool_call_id", sa.String(length=255), nullable=True),
        sa.Column("tool_name", sa.String(length=255), nullable=True),
        sa.Column("tool_args", sa.Text(), nullable=True),
        sa.Column("response_schema", sa.JSON(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("requester", sa.String(length=32), nullable=True),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("form_ts", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answered_by", sa.String(length=32), nullable=True),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("remind_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("thread_id", "interrupt_id"),
    )
    op.create_index("ix_interrupts_due", "interrupts", ["status", "expires_at"])
    op.create_index("ix_interrupts_status", "interrupts", ["status"])
    op.create_index("ix_interrupts_thread_id", "interrupts", ["thread_id"])

    op.create_table(
        "queued_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_queued_messages_thread_id", "queued_messages", ["thread_id"])

    op.create_table(
        "run_leases",
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("thread_id"),
    )
    op.create_index("ix_run_leases_owner", "run_leases", ["owner"])

    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=False),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_transitions_thread_id", "transitions", ["thread_id"])


def downgrade() -> None:
    op.drop_index("ix_transitions_thread_id", table_name="transitions")

    op.drop_table("transitions")
    op.drop_index("ix_run_leases_owner", table_name="run_leases")

    op.drop_table("run_leases")
    op.drop_index("ix_queued_messages_thread_id", table_name="queued_messages")

    op.drop_table("queued_messages")
    op.drop_index("ix_interrupts_thread_id", table_name="interrupts")
    op.drop_index("ix_interrupts_status", table_name="interrupts")
    op.drop_index("ix_interrupts_due", table_name="interrupts")

    op.drop_table("interrupts")
    op.drop_index("ix_feedback_thread_id", table_name="feedback")
    op.drop_index("ix_feedback_forward_due", table_name="feedback")

    op.drop_table("feedback")
    op.drop_table("escalations")
    op.drop_table("conversation_messages")
    op.drop_index("ix_answers_thread_id", table_name="answers")

    op.drop_table("answers")
    op.drop_index("ix_threads_state", table_name="threads")

    op.drop_table("threads")
    op.drop_table("orchestrator_meta")
    op.drop_index("ix_inbound_events_at", table_name="inbound_events")

    op.drop_table("inbound_events")
