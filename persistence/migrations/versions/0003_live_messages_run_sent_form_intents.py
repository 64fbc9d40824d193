"""What recovery needs to finish everything after a crash: the live messages a run has not
closed (`threads.live_ts`), whether the run's input left for the agent (`threads.run_sent`),
and the intent to post a form, stored before Slack is asked (`interrupts.form_intent`,
`interrupts.form_intent_at`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("live_ts", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("run_sent", sa.String(length=64), nullable=True))
    with op.batch_alter_table("interrupts") as batch:
        batch.add_column(sa.Column("form_intent", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("form_intent_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interrupts") as batch:
        batch.drop_column("form_intent_at")
        batch.drop_column("form_intent")
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("run_sent")
        batch.drop_column("live_ts")
