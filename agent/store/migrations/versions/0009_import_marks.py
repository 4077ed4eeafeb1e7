"""What an import can tell apart from a change made here: when each customer and order was
last imported, and each gift card's opening balance (its balance before any entry of the
payment histories stored here, so that balance = opening + refunds - payments always holds).

Revision ID: 0009_import_marks
Revises: 0008_desk
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009_import_marks"
down_revision = "0008_desk"
branch_labels = None
depends_on = None

_WHEN = sqlmodel.sql.sqltypes.UTCDateTime

# A gift card's opening balance from what is stored now: its balance, less the refunds it
# received, plus the payments it made. (A database made before this release has no import
# marks: every executed change counts as made here since the last import, as it was.)
_OPENING = """
UPDATE payment_method SET opening_balance_cents = COALESCE(balance_cents, 0)
  - COALESCE((SELECT SUM(CASE WHEN p.transaction_type = 'refund' THEN p.amount_cents
                              ELSE -p.amount_cents END)
              FROM order_payment p WHERE p.payment_method_id = payment_method.id), 0)
WHERE source = 'gift_card'
"""


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("imported_at", _WHEN(), nullable=True))
    with op.batch_alter_table("order") as batch:
        batch.add_column(sa.Column("imported_at", _WHEN(), nullable=True))
    with op.batch_alter_table("payment_method") as batch:
        batch.add_column(sa.Column("opening_balance_cents", sa.Integer(), nullable=True))
    op.execute(_OPENING)


def downgrade() -> None:
    with op.batch_alter_table("payment_method") as batch:
        batch.drop_column("opening_balance_cents")
    with op.batch_alter_table("order") as batch:
        batch.drop_column("imported_at")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("imported_at")
