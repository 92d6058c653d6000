"""The visitor's time zone

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:00:00

The widget tells the customer's time zone (the browser's), so the times in
mails to them are their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_livehelp.migrations import table_prefix

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    P = table_prefix()
    with op.batch_alter_table(f"{P}visitor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64)))


def downgrade() -> None:
    P = table_prefix()
    with op.batch_alter_table(f"{P}visitor", schema=None) as batch_op:
        batch_op.drop_column("timezone")
