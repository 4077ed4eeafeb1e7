"""What the shop's order system answered when it carried a change out (its refund or return
id, the record as it became), kept with the action for staff; and where it differed from what
the customer confirmed.

Revision ID: 0010_system_reply
Revises: 0009_import_marks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_system_reply"
down_revision = "0009_import_marks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proposed_action") as batch:
        batch.add_column(sa.Column("system_reply", sa.String(length=20_000), nullable=True))
        batch.add_column(sa.Column("discrepancy", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("proposed_action") as batch:
        batch.drop_column("discrepancy")
        batch.drop_column("system_reply")
