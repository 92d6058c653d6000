"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Table names carry the app's table prefix (``P``), so one script serves
``livehelp_`` and any other prefix.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_livehelp.migrations import table_prefix
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    P = table_prefix()
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    P = table_prefix()
    ${downgrades if downgrades else "pass"}
