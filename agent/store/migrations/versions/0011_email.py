"""Email as a channel: inbound messages with where their processing stands (one per
Message-ID), the outbox of replies, each email conversation's address and thread, and the
one-time confirmation links.

Revision ID: 0011_email
Revises: 0010_system_reply
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011_email"
down_revision = "0010_system_reply"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "email_inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", _TEXT(length=500), nullable=False),
        sa.Column("source", _TEXT(length=16), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sender", _TEXT(length=320), nullable=False),
        sa.Column("subject", _TEXT(length=500), nullable=False),
        sa.Column("state", _TEXT(length=16), nullable=False),
        sa.Column("reason", _TEXT(length=300), nullable=False),
        sa.Column("conversation_id", _TEXT(length=36), nullable=True),
        sa.Column("admitted_after", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _WHEN(), nullable=False),
        sa.Column("claimed_until", _WHEN(), nullable=True),
        sa.Column("last_error", _TEXT(length=2000), nullable=True),
        sa.Column("received_at", _WHEN(), nullable=False),
        sa.Column("processed_at", _WHEN(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_email_inbound_state", "email_inbound", ["state"])
    op.create_index("ix_email_inbound_conversation_id", "email_inbound", ["conversation_id"])
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", _TEXT(length=200), nullable=False),
        sa.Column("kind", _TEXT(length=16), nullable=False),
        sa.Column("conversation_id", _TEXT(length=36), nullable=False),
        sa.Column("to_address", _TEXT(length=320), nullable=False),
        sa.Column("from_address", _TEXT(length=320), nullable=False),
        sa.Column("subject", _TEXT(length=500), nullable=False),
        sa.Column("message_id", _TEXT(length=200), nullable=False),
        sa.Column("in_reply_to", _TEXT(length=500), nullable=True),
        sa.Column("references", _TEXT(length=8000), nullable=False),
        sa.Column("text", _TEXT(length=40000), nullable=False),
        sa.Column("state", _TEXT(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _WHEN(), nullable=False),
        sa.Column("claimed_until", _WHEN(), nullable=True),
        sa.Column("last_error", _TEXT(length=2000), nullable=True),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.Column("sent_at", _WHEN(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_email_outbox_state", "email_outbox", ["state"])
    op.create_index("ix_email_outbox_conversation_id", "email_outbox", ["conversation_id"])
    op.create_table(
        "email_thread",
        sa.Column("conversation_id", _TEXT(length=36), nullable=False),
        sa.Column("address", _TEXT(length=320), nullable=False),
        sa.Column("shop_address", _TEXT(length=320), nullable=False),
        sa.Column("subject", _TEXT(length=500), nullable=False),
        sa.Column("token", _TEXT(length=16), nullable=False),
        sa.Column("last_message_id", _TEXT(length=500), nullable=True),
        sa.Column("references", _TEXT(length=8000), nullable=False),
        sa.Column("dkim_domain", _TEXT(length=255), nullable=True),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("conversation_id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index("ix_email_thread_address", "email_thread", ["address"])
    op.create_table(
        "email_link",
        sa.Column("id", _TEXT(length=40), nullable=False),
        sa.Column("action_id", _TEXT(length=40), nullable=False),
        sa.Column("conversation_id", _TEXT(length=36), nullable=False),
        sa.Column("expires_at", _WHEN(), nullable=False),
        sa.Column("used_at", _WHEN(), nullable=True),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_email_link_action_id", "email_link", ["action_id"])


def downgrade() -> None:
    op.drop_table("email_link")
    op.drop_table("email_thread")
    op.drop_table("email_outbox")
    op.drop_table("email_inbound")
