"""Outcomes and satisfaction: the customer's end of a conversation and their rating.

Revision ID: 0007_outcomes
Revises: 0006_identity_checks
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_outcomes"
down_revision = "0006_identity_checks"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "conversation_end",
        sa.Column("conversation_id", _TEXT(length=36), nullable=False),
        sa.Column("ended_by", _TEXT(length=120), nullable=False),
        sa.Column("ended_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_table(
        "conversation_rating",
        sa.Column("conversation_id", _TEXT(length=36), nullable=False),
        sa.Column("score", _TEXT(length=8), nullable=False),
        sa.Column("comment", _TEXT(length=2000), nullable=True),
        sa.Column("rated_by", _TEXT(length=120), nullable=False),
        sa.Column("rated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("conversation_id"),
    )


def downgrade() -> None:
    op.drop_table("conversation_rating")
    op.drop_table("conversation_end")
