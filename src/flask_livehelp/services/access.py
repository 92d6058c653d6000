"""Who among the staff may see and do what.

Roles rank ``operator`` < ``manager`` < ``admin``. Operators work on their own
chats and the queue of their departments; managers see every chat of their
departments and keep the canned responses; admins may do everything.

The functions on single objects answer for one chat; :func:`visible_clause`
is the same rule as a SQL condition, so lists never show what the single
checks would refuse.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

RANKS = {"operator": 0, "manager": 1, "admin": 2}
OPEN = ("queued", "active")


def department_ids(operator: t.Any) -> set[int]:
    return {department.id for department in operator.departments}


def has_role(operator: t.Any, role: str) -> bool:
    """Whether ``operator`` has ``role`` or a higher one."""
    return RANKS.get(operator.role, -1) >= RANKS[role]


def serves(operator: t.Any, department_id: int | None) -> bool:
    """Whether ``operator`` answers chats of this department.

    An operator in no department serves all of them, and a chat in no
    department is for everyone.
    """
    mine = department_ids(operator)
    return department_id is None or not mine or department_id in mine


def oversees(operator: t.Any, department_id: int | None) -> bool:
    """Whether ``operator`` sees every chat of this department (managers, admins)."""
    if operator.role == "admin":
        return True
    return operator.role == "manager" and serves(operator, department_id)


def takes_transfers(operator: t.Any, department_id: int | None) -> bool:
    """Whether ``operator`` may take a chat offered to this department."""
    return operator.role == "admin" or serves(operator, department_id)


def can_view(operator: t.Any, conversation: t.Any) -> bool:
    if operator.role == "admin" or conversation.operator_id == operator.id:
        return True
    if operator.role == "manager":
        return serves(operator, conversation.department_id)
    return conversation.status == "queued" and serves(
        operator, conversation.department_id
    )


def can_accept(operator: t.Any, conversation: t.Any) -> bool:
    return bool(
        operator.role == "admin" or serves(operator, conversation.department_id)
    )


def can_write(operator: t.Any, conversation: t.Any) -> bool:
    """Only the operator who has the chat answers in it."""
    return bool(
        conversation.status == "active" and conversation.operator_id == operator.id
    )


def can_end(operator: t.Any, conversation: t.Any) -> bool:
    if conversation.operator_id == operator.id:
        return True
    return operator.role in ("manager", "admin") and can_view(operator, conversation)


def can_delete(operator: t.Any, conversation: t.Any) -> bool:
    """Managers and admins delete finished chats they oversee."""
    return (
        has_role(operator, "manager")
        and oversees(operator, conversation.department_id)
        and conversation.status not in OPEN
    )


def can_erase(operator: t.Any, conversation: t.Any) -> bool:
    """Managers and admins erase the customer's data of a chat they oversee."""
    return has_role(operator, "manager") and oversees(
        operator, conversation.department_id
    )


def can_manage(operator: t.Any, area: str) -> bool:
    """Whether ``operator`` may use an administration area.

    Managers keep the canned responses and read the reports; everything else
    is for admins.
    """
    if area in ("canned", "report"):
        return has_role(operator, "manager")
    return has_role(operator, "admin")


def visible_clause(operator: t.Any, model: t.Any) -> sa.ColumnElement[bool]:
    """The chats ``operator`` may see in lists, as a SQL condition on ``model``.

    Deleted chats are never visible. It is :func:`can_view` for finished
    chats: operators see their own, managers their departments', admins all.
    """
    alive: sa.ColumnElement[bool] = model.deleted_at.is_(None)
    if operator.role == "admin":
        return alive
    own: sa.ColumnElement[bool] = model.operator_id == operator.id
    mine = department_ids(operator)
    if operator.role == "manager":
        if not mine:
            return alive
        return sa.and_(
            alive,
            sa.or_(own, model.department_id.is_(None), model.department_id.in_(mine)),
        )
    return sa.and_(alive, own)


def mail_clause(operator: t.Any, models: t.Any) -> sa.ColumnElement[bool]:
    """The outbox's mails ``operator`` may see and send, as a SQL condition.

    Admins see every mail; managers the mails of chats of the departments
    they oversee (a mail of no chat is for admins); operators none.
    """
    mail, chat = models.mail, models.conversation
    if operator.role == "admin":
        return sa.true()
    if operator.role != "manager":
        return sa.false()
    chats = sa.select(chat.id)
    if mine := department_ids(operator):
        chats = chats.where(
            sa.or_(chat.department_id.is_(None), chat.department_id.in_(mine))
        )
    of_chats: sa.ColumnElement[bool] = mail.conversation_id.in_(chats)
    return of_chats
