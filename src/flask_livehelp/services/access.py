"""Who among the staff may see and do what.

Roles rank ``operator`` < ``manager`` < ``admin``. Operators work on their own
chats and the queue of their departments; managers see every chat of their
departments and keep the canned responses; admins may do everything.

Which departments someone serves is one rule, :func:`scope`. The functions
on single objects answer for one chat; :func:`visible_clause` is the same
rule as a SQL condition, so lists never show what the single checks would
refuse.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from ..models import ConversationMixin
from ..models import Models
from ..models import OperatorMixin
from ..models import TransferMixin

RANKS = {"operator": 0, "manager": 1, "admin": 2}
OPEN = ("queued", "active")

#: The departments whose chats someone answers; ``None`` for every one.
Scope = frozenset[int] | None


class Scoped(t.Protocol):
    """What carries an operator's scope already (the presence list)."""

    @property
    def department_scope(self) -> Scope: ...


class Seated(Scoped, t.Protocol):
    """Staff whose scope is known already: the socket's seat."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...


#: Whom a rule asks about: an operator row, or what carries its scope.
Staff = OperatorMixin | Seated
#: A department column of a chat, or of a transfer.
DepartmentColumn = sa_orm.InstrumentedAttribute[int | None]

#: Never a scope: what :func:`scope` finds on an operator row.
_FROM_ROW = object()


def department_ids(operator: OperatorMixin) -> set[int]:
    return {department.id for department in operator.departments}


def has_role(operator: Staff, role: str) -> bool:
    """Whether ``operator`` has ``role`` or a higher one."""
    return RANKS.get(operator.role, -1) >= RANKS[role]


def scope(operator: OperatorMixin | Scoped) -> Scope:
    """The departments whose chats ``operator`` answers; ``None`` for all.

    The one rule of departments, which every check here, the lists and the
    staff channel follow: an operator answers the chats of their own
    departments. One in no department answers every chat while the shop has
    no department at all, and none once it has some: a department left
    empty in the form must not open every other department's chats.

    ``operator`` is an operator row, or what carries its scope already
    (``department_scope``: the socket's seat, the presence list).
    """
    carried = getattr(operator, "department_scope", _FROM_ROW)
    if carried is not _FROM_ROW:
        return t.cast(Scope, carried)
    row = t.cast(OperatorMixin, operator)
    mine = frozenset(department_ids(row))
    if mine or row.shop_has_departments:
        return mine
    return None


def in_scope(departments: Scope, department_id: int | None) -> bool:
    """Whether a chat of ``department_id`` is in ``departments``.

    A chat in no department is for everyone.
    """
    return department_id is None or departments is None or department_id in departments


def serves(operator: OperatorMixin | Scoped, department_id: int | None) -> bool:
    """Whether ``operator`` answers chats of this department (see :func:`scope`)."""
    return in_scope(scope(operator), department_id)


def scope_clause(operator: Staff, column: DepartmentColumn) -> sa.ColumnElement[bool]:
    """:func:`serves` as a SQL condition on a department column."""
    departments = scope(operator)
    if departments is None:
        return sa.true()
    return sa.or_(column.is_(None), column.in_(departments))


def hears_of(
    operator: Staff, department_id: int | None, operator_id: int | None
) -> bool:
    """Whether ``operator`` is told of a chat's changes as they happen.

    Their own chats, the chats of the departments they serve (as they see
    them queued, they see them leave the queue), and every chat for admins.
    """
    return (
        operator.role == "admin"
        or (operator_id is not None and operator_id == operator.id)
        or serves(operator, department_id)
    )


def oversees(operator: Staff, department_id: int | None) -> bool:
    """Whether ``operator`` sees every chat of this department (managers, admins)."""
    if operator.role == "admin":
        return True
    return operator.role == "manager" and serves(operator, department_id)


def takes_transfers(operator: Staff, department_id: int | None) -> bool:
    """Whether ``operator`` may take a chat offered to this department."""
    return operator.role == "admin" or serves(operator, department_id)


def may_take(operator: Staff, transfer: TransferMixin) -> bool:
    """Whether a transfer offer is for ``operator`` to accept or decline: the
    colleague it names, or anyone who takes its department's transfers; never
    the one who offered it."""
    if transfer.from_operator_id == operator.id:
        return False
    if transfer.to_operator_id is not None:
        return bool(transfer.to_operator_id == operator.id)
    return takes_transfers(operator, transfer.to_department_id)


def can_view(operator: Staff, conversation: ConversationMixin) -> bool:
    if operator.role == "admin" or conversation.operator_id == operator.id:
        return True
    if operator.role == "manager":
        return serves(operator, conversation.department_id)
    return conversation.status == "queued" and serves(
        operator, conversation.department_id
    )


def can_accept(operator: Staff, conversation: ConversationMixin) -> bool:
    return bool(
        operator.role == "admin" or serves(operator, conversation.department_id)
    )


def can_write(operator: Staff, conversation: ConversationMixin) -> bool:
    """Only the operator who has the chat answers in it."""
    return bool(
        conversation.status == "active" and conversation.operator_id == operator.id
    )


def can_transfer(operator: Staff, conversation: ConversationMixin) -> bool:
    """The operator who has the chat offers it on; managers and admins may
    move any active chat they see."""
    return can_write(operator, conversation) or (
        has_role(operator, "manager")
        and conversation.status == "active"
        and can_view(operator, conversation)
    )


def can_answer(operator: Staff, conversation: ConversationMixin) -> bool:
    """Staff who serve the conversation's department may read and answer it by mail."""
    return operator.role == "admin" or serves(operator, conversation.department_id)


def answer_clause(operator: Staff, column: DepartmentColumn) -> sa.ColumnElement[bool]:
    """:func:`can_answer` as a SQL condition on a department column."""
    if operator.role == "admin":
        return sa.true()
    return scope_clause(operator, column)


def sees_colleague(viewer: Staff, other: OperatorMixin) -> bool:
    """Whether ``viewer`` may filter the history by ``other``'s chats.

    Everyone by themselves; managers by the colleagues of the departments
    they serve; admins by anyone.
    """
    if other.id == viewer.id:
        return True
    if not has_role(viewer, "manager"):
        return False
    mine = scope(viewer)
    return viewer.role == "admin" or mine is None or bool(department_ids(other) & mine)


def can_end(operator: Staff, conversation: ConversationMixin) -> bool:
    if conversation.operator_id == operator.id:
        return True
    return operator.role in ("manager", "admin") and can_view(operator, conversation)


def can_delete(operator: Staff, conversation: ConversationMixin) -> bool:
    """Managers and admins delete finished chats they oversee."""
    return (
        has_role(operator, "manager")
        and oversees(operator, conversation.department_id)
        and conversation.status not in OPEN
    )


def can_erase(operator: Staff, conversation: ConversationMixin) -> bool:
    """Managers and admins erase the customer's data of a chat they oversee."""
    return has_role(operator, "manager") and oversees(
        operator, conversation.department_id
    )


def can_manage(operator: Staff, area: str) -> bool:
    """Whether ``operator`` may use an administration area.

    Managers keep the canned responses and read the reports; everything else
    is for admins.
    """
    if area in ("canned", "report"):
        return has_role(operator, "manager")
    return has_role(operator, "admin")


def visible_clause(
    operator: Staff, model: type[ConversationMixin]
) -> sa.ColumnElement[bool]:
    """The chats ``operator`` may see in lists, as a SQL condition on ``model``.

    Deleted chats are never visible. It is :func:`can_view` for finished
    chats: operators see their own, managers their departments', admins all.
    """
    alive: sa.ColumnElement[bool] = model.deleted_at.is_(None)
    if operator.role == "admin":
        return alive
    own: sa.ColumnElement[bool] = model.operator_id == operator.id
    if operator.role == "manager":
        return sa.and_(alive, sa.or_(own, scope_clause(operator, model.department_id)))
    return sa.and_(alive, own)


def mail_clause(operator: OperatorMixin, models: Models) -> sa.ColumnElement[bool]:
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
