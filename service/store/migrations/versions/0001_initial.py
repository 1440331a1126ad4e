"""Initial schema: analyses (the job queue and results) and api_keys.

Revision ID: 0001
Revises:
Create Date: 2025-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.database import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analyses",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("audio_sha256", sa.String(64), nullable=False),
        sa.Column("audio_name", sa.String(255), nullable=False),
        sa.Column("audio_format", sa.String(16), nullable=False),
        sa.Column("audio_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("caller_number", sa.String(32), nullable=True),
        sa.Column("callee_number", sa.String(32), nullable=True),
        sa.Column("call_time", sa.String(40), nullable=True),
        sa.Column("language_hint", sa.String(8), nullable=True),
        sa.Column("caller_channel", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("lease_until", UtcDateTime(), nullable=True),
        sa.Column("verdict_json", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
    )
    op.create_index("ix_analyses_owner", "analyses", ["owner"])
    op.create_index("ix_analyses_audio_sha256", "analyses", ["audio_sha256"])
    op.create_index("ix_analyses_status_created", "analyses", ["status", "created_at"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_analyses_status_created", table_name="analyses")
    op.drop_index("ix_analyses_audio_sha256", table_name="analyses")
    op.drop_index("ix_analyses_owner", table_name="analyses")
    op.drop_table("analyses")
