"""One open chat per visitor; who claims a mail, and a resend after a crash

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 05:00:00

Two tabs that started a chat at once could leave a visitor with two open
chats; a unique index on the open ones makes that impossible, and the older
of any such pair is ended first. The outbox learns which process holds a
mail (and since when) and whether a mail went out again after a crash.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

from flask_livehelp.migrations import table_prefix

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OPEN = "status IN ('queued', 'active') AND deleted_at IS NULL"


def upgrade() -> None:
    P = table_prefix()
    with op.batch_alter_table(f"{P}mail", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=120)))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime()))
        batch_op.add_column(
            sa.Column("resent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.get_bind().execute(
        sa.text(
            f"UPDATE {P}conversation SET status = 'ended', ended_at = :now"
            f" WHERE {OPEN} AND id NOT IN (SELECT MAX(id) FROM {P}conversation"
            f" WHERE {OPEN} GROUP BY visitor_id)"
        ),
        {"now": dt.datetime.now(dt.UTC).replace(tzinfo=None)},
    )
    op.create_index(
        f"ix_{P}conversation_one_open",
        f"{P}conversation",
        ["visitor_id"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    P = table_prefix()
    op.drop_index(f"ix_{P}conversation_one_open", table_name=f"{P}conversation")
    with op.batch_alter_table(f"{P}mail", schema=None) as batch_op:
        batch_op.drop_column("resent")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
