"""What the order actions record on an order (cancel reason, returned and exchanged items).

Revision ID: 0004_order_actions
Revises: 0003_payments
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004_order_actions"
down_revision = "0003_payments"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    # Nullable columns only: every existing order keeps its rows as they were.
    op.add_column("order", sa.Column("cancel_reason", _TEXT(length=32), nullable=True))
    op.add_column("order", sa.Column("return_items", sa.JSON(), nullable=True))
    op.add_column("order", sa.Column("return_payment_method_id", _TEXT(length=64), nullable=True))
    op.add_column("order", sa.Column("exchange_items", sa.JSON(), nullable=True))
    op.add_column("order", sa.Column("exchange_new_items", sa.JSON(), nullable=True))
    op.add_column("order", sa.Column("exchange_payment_method_id", _TEXT(length=64), nullable=True))
    op.add_column(
        "order", sa.Column("exchange_price_difference_cents", sa.Integer(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("order") as batch:
        for name in ("exchange_price_difference_cents", "exchange_payment_method_id",
                     "exchange_new_items", "exchange_items", "return_payment_method_id",
                     "return_items", "cancel_reason"):  # fmt: skip
            batch.drop_column(name)
