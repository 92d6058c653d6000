"""How many rows a statement changed, for the claims made by one UPDATE."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask_sqlalchemy.session import Session


def rows_changed(
    session: sa_orm.scoped_session[Session], statement: sa.Executable
) -> int:
    """Run an UPDATE or DELETE in ``session``; how many rows it matched."""
    result = session.execute(statement)
    # Session.execute is typed as any Result; a DML statement's is a CursorResult.
    cursor: sa.CursorResult[*tuple[object, ...]] = result  # type: ignore[assignment]
    return cursor.rowcount
