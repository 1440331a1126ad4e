"""History, restart recovery, upload warnings (issue 15): the verdict's label (to list and filter
a user's analyses), who claimed a running job (to requeue it at once when that process is gone),
and what the upload check noticed about the recording (e.g. cut off).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analyses") as batch:
        batch.add_column(sa.Column("label", sa.String(32), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("warnings_json", sa.Text(), nullable=True))
    op.create_index("ix_analyses_owner_created", "analyses", ["owner", "created_at"])
    analyses = sa.table(
        "analyses", sa.column("id", sa.String), sa.column("verdict_json", sa.Text),
        sa.column("label", sa.String),
    )  # fmt: skip
    conn = op.get_bind()
    done = conn.execute(
        sa.select(analyses.c.id, analyses.c.verdict_json).where(
            analyses.c.verdict_json.is_not(None)
        )
    ).all()
    for row in done:
        label = json.loads(row.verdict_json).get("label")
        conn.execute(analyses.update().where(analyses.c.id == row.id).values(label=label))


def downgrade() -> None:
    op.drop_index("ix_analyses_owner_created", table_name="analyses")
    with op.batch_alter_table("analyses") as batch:
        batch.drop_column("warnings_json")
        batch.drop_column("claimed_by")
        batch.drop_column("label")
