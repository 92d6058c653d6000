"""The time-outs from the seeds, run by the background loop.

A queued chat nobody accepts in time becomes an offline message (nothing is
lost: the question goes to the shop's mailbox); a chat where nobody has said
anything for long is closed. Each chat is claimed by one atomic UPDATE, so
with several processes every chat times out once.

"Back in five minutes" is a promise to the customer: while the operators of a
chat's department are away, it waits in the queue for them however long that
is, and its time in the queue counts again from their return.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ..models import utcnow
from ..state import LiveHelpState
from . import access


def time_out_queue(state: LiveHelpState, now: dt.datetime | None = None) -> list[int]:
    """Queued chats older than ``QUEUE_TIMEOUT_SECONDS``: missed, and mailed."""
    seconds = state.settings.get("QUEUE_TIMEOUT_SECONDS")
    if not seconds:
        return []
    cutoff = (now or utcnow()) - dt.timedelta(seconds=seconds)
    model = state.models.conversation
    waiting = state.db.session.execute(
        sa.select(model.id, model.department_id).where(
            model.status == "queued",
            model.deleted_at.is_(None),
            model.created_at < cutoff,
        )
    ).all()
    timed_out = []
    # Asked once per department, however many chats wait in it.
    expected: dict[int | None, bool] = {}
    for conversation_id, department_id in waiting:
        if department_id not in expected:
            expected[department_id] = _operators_expected(state, department_id, cutoff)
        if expected[department_id]:
            continue
        _, mine = state.conversations.finish(
            conversation_id, by="timeout", only="queued"
        )
        if mine:
            timed_out.append(conversation_id)
            state.offline.mail_timed_out(conversation_id)
    return timed_out


def _operators_expected(
    state: LiveHelpState, department_id: int | None, cutoff: dt.datetime
) -> bool:
    """Whether the chat's operators are away, or came back after ``cutoff``.

    Either way nobody has yet had the whole queue time to answer it.
    """
    if state.presence.widget_state(department_id).state == "away":
        return True
    model = state.models.operator
    back = [
        operator.id
        for operator in state.presence.operators()
        if operator.status == "online" and access.serves(operator, department_id)
    ]
    if not back:
        return False
    returned = state.db.session.execute(
        sa.select(sa.func.max(model.status_changed_at)).where(model.id.in_(back))
    ).scalar_one()
    return returned is not None and _aware(returned) > cutoff


def _aware(moment: dt.datetime) -> dt.datetime:
    # An aggregate bypasses the column type, so SQLite hands back naive UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def close_inactive(state: LiveHelpState, now: dt.datetime | None = None) -> list[int]:
    """Active chats where nobody said anything for ``INACTIVE_CLOSE_SECONDS``."""
    seconds = state.settings.get("INACTIVE_CLOSE_SECONDS")
    if not seconds:
        return []
    cutoff = (now or utcnow()) - dt.timedelta(seconds=seconds)
    model = state.models.conversation
    moments = (
        model.accepted_at,
        model.last_visitor_message_at,
        model.last_operator_message_at,
    )
    # Chosen by the database: loading every active chat to compare in Python
    # held up a gevent worker, and all its chats, for as long as it took.
    quiet = state.db.session.execute(
        sa.select(model.id).where(
            model.status == "active",
            model.deleted_at.is_(None),
            sa.or_(*(moment.is_not(None) for moment in moments)),
            *(sa.or_(moment.is_(None), moment < cutoff) for moment in moments),
        )
    ).scalars()
    closed = []
    for conversation_id in list(quiet):
        # Not "timeout": that is a chat nobody accepted in time, and the
        # report counts the two apart.
        _, mine = state.conversations.finish(
            conversation_id, by="inactive", only="active"
        )
        if mine:
            closed.append(conversation_id)
    return closed
