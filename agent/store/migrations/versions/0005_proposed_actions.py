"""Proposed actions: store-changing tool calls waiting for (or settled by) the customer.

Revision ID: 0005_proposed_actions
Revises: 0004_order_actions
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005_proposed_actions"
down_revision = "0004_order_actions"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_STATUS = sa.Enum(
    "PROPOSED", "EXECUTED", "FAILED", "DECLINED", "EXPIRED", "SUPERSEDED", name="actionstatus"
)


def upgrade() -> None:
    op.create_table(
        "proposed_action",
        sa.Column("id", _TEXT(length=40), nullable=False),
        sa.Column("conversation_id", _TEXT(length=36), nullable=True),
        sa.Column("customer_id", _TEXT(length=64), nullable=False),
        sa.Column("tool", _TEXT(length=64), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("summary", _TEXT(length=2000), nullable=False),
        sa.Column("tool_use_id", _TEXT(length=64), nullable=True),
        sa.Column("held_results", sa.JSON(), nullable=False),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("proposed_by", _TEXT(length=120), nullable=False),
        sa.Column("decided_by", _TEXT(length=120), nullable=True),
        sa.Column("result", _TEXT(length=20000), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("conversation_id", "customer_id", "status"):
        op.create_index(f"ix_proposed_action_{column}", "proposed_action", [column])
    op.add_column("conversation", sa.Column("pending_action_id", _TEXT(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("pending_action_id")
    op.drop_table("proposed_action")
    _STATUS.drop(op.get_bind(), checkfirst=True)
