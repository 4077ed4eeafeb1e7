"""One turn per conversation at a time: the turn lease.

Revision ID: 0002_turn_lease
Revises: 0001_release_0_1
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002_turn_lease"
down_revision = "0001_release_0_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turn_lease",
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.PrimaryKeyConstraint("conversation_id"),
    )


def downgrade() -> None:
    op.drop_table("turn_lease")
