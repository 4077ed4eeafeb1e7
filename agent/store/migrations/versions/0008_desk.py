"""The desk: staff accounts and sign-ins, ticket assignment, internal notes, saved replies,
and the event feed behind live updates.

Revision ID: 0008_desk
Revises: 0007_outcomes
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008_desk"
down_revision = "0007_outcomes"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "staff_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", _TEXT(length=64), nullable=False),
        sa.Column("display_name", _TEXT(length=100), nullable=False),
        sa.Column("password_hash", _TEXT(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_staff_account_username", "staff_account", ["username"], unique=True)
    op.create_table(
        "staff_session",
        sa.Column("token_hash", _TEXT(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.Column("expires_at", _WHEN(), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_account.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_staff_session_staff_id", "staff_session", ["staff_id"])
    with op.batch_alter_table("ticket") as batch:  # SQLite rebuilds the table; nothing is lost
        batch.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch.create_index("ix_ticket_assignee_id", ["assignee_id"])
    op.create_table(
        "ticket_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author", _TEXT(length=100), nullable=False),
        sa.Column("text", _TEXT(length=4000), nullable=False),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_note_ticket_id", "ticket_note", ["ticket_id"])
    op.create_table(
        "saved_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", _TEXT(length=100), nullable=False),
        sa.Column("text", _TEXT(length=4000), nullable=False),
        sa.Column("created_by", _TEXT(length=100), nullable=False),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("title"),
    )
    op.create_table(
        "desk_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _TEXT(length=32), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", _TEXT(length=36), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("actor", _TEXT(length=100), nullable=False),
        sa.Column("text", _TEXT(length=500), nullable=False),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_desk_event_conversation_id", "desk_event", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("desk_event")
    op.drop_table("saved_reply")
    op.drop_table("ticket_note")
    with op.batch_alter_table("ticket") as batch:
        batch.drop_index("ix_ticket_assignee_id")
        batch.drop_column("assignee_id")
    op.drop_table("staff_session")
    op.drop_table("staff_account")
