"""users get an optional nickname (needed by release v2)

Revision ID: 8e4b7c1d2a65
Revises: 3f1c2a9d7b10
Create Date: 2024-03-01 09:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "8e4b7c1d2a65"
down_revision = "3f1c2a9d7b10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.Text, nullable=True))
    op.create_index("users_nickname_idx", "users", ["nickname"])


def downgrade() -> None:
    # Nicknames written since are lost.
    op.drop_index("users_nickname_idx", table_name="users")
    op.drop_column("users", "nickname")
