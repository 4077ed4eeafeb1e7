"""Failed and refused identity checks, counted across conversations and workers.

Revision ID: 0006_identity_checks
Revises: 0005_proposed_actions
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006_identity_checks"
down_revision = "0005_proposed_actions"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "identity_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", _TEXT(length=80), nullable=False),
        sa.Column("client", _TEXT(length=80), nullable=True),
        sa.Column("conversation_id", _TEXT(length=36), nullable=True),
        sa.Column("outcome", _TEXT(length=16), nullable=False),
        sa.Column("detail", _TEXT(length=300), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("target", "client", "created_at"):
        op.create_index(f"ix_identity_check_{column}", "identity_check", [column])


def downgrade() -> None:
    op.drop_table("identity_check")
