"""Customers' payment methods and orders' payment histories (for order actions).

Revision ID: 0003_payments
Revises: 0002_turn_lease
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003_payments"
down_revision = "0002_turn_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_method",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("brand", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("last_four", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
        sa.Column("balance_cents", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_payment_method_customer_id"), "payment_method", ["customer_id"], unique=False
    )
    op.create_table(
        "order_payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("transaction_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("payment_method_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["order.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_order_payment_order_id"), "order_payment", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_order_payment_order_id"), table_name="order_payment")
    op.drop_table("order_payment")
    op.drop_index(op.f("ix_payment_method_customer_id"), table_name="payment_method")
    op.drop_table("payment_method")
