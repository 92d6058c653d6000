"""An operator's load: the chats they have, and whether one more fits.

``max_chats`` is a limit, not a hint: every way a chat comes to an operator
(accepting it, taking a transfer) claims the place in the statement that
hands the chat over, and an invitation is only sent, and only routes the
chat it starts, while there is room.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask_sqlalchemy.session import Session as FlaskSession

from ..errors import Refused
from ..i18n import N_
from ..models import Models

#: The request's session, as Flask-SQLAlchemy gives it.
Session: t.TypeAlias = sa_orm.scoped_session[FlaskSession]

FULL = N_("You have as many chats as you may have at once (%(max)d). End one first.")


def active_chats(models: Models, operator_id: int) -> sa.ScalarSelect[int]:
    """How many chats the operator has, as a SQL expression."""
    # An alias: inside an UPDATE of the chats, the count must not correlate.
    chats = sa_orm.aliased(models.conversation)
    return (
        sa.select(sa.func.count())
        .select_from(chats)
        .where(chats.status == "active", chats.operator_id == operator_id)
        .scalar_subquery()
    )


def room_clause(
    session: Session, models: Models, operator_id: int
) -> tuple[sa.ColumnElement[bool], int]:
    """A condition for the UPDATE that hands a chat to the operator, and their limit.

    Locks the operator's row until the commit first. On PostgreSQL two claims
    for one operator at once (two tabs, an accept and a transfer) would each
    count the other's chat as not there yet and both pass; after the lock the
    second counts the first's. SQLite writes one statement at a time, so the
    count inside the claiming UPDATE is exact there already.
    """
    model = models.operator
    limit = session.execute(
        sa.select(model.max_chats).where(model.id == operator_id).with_for_update()
    ).scalar_one()
    return active_chats(models, operator_id) < limit, limit


def has_room(session: Session, models: Models, operator_id: int) -> bool:
    """Whether one more chat fits now (for what only routes or invites)."""
    limit = session.execute(
        sa.select(models.operator.max_chats).where(models.operator.id == operator_id)
    ).scalar_one_or_none()
    if limit is None:
        return False
    load = session.execute(sa.select(active_chats(models, operator_id))).scalar_one()
    return load < limit


def full(limit: int) -> Refused:
    """The refusal an operator without room gets."""
    return Refused("full", FULL, max=limit)
