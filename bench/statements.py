"""Storing one message, written by hand for the driver: the floor no Python on
top of sqlite3 or psycopg can go under.

``bench.posting`` measures Flask-LiveHelp's storing against it in-process;
``bench.relay_server`` runs it for every message of its storing relay. Each
claims the chat's next number (proving the author may write there, as
Flask-LiveHelp's claim does) and inserts the row; on PostgreSQL both are one
statement, a transaction of its own, as Flask-LiveHelp stores a message there.
"""

from __future__ import annotations

import typing as t

Author = t.Literal["visitor", "operator"]

#: The driver's placeholder.
PLACEHOLDER = {"sqlite": "?", "postgresql": "%s"}

_CLAIM = (
    "UPDATE livehelp_conversation SET last_seq = last_seq + 1{stamp}"
    " WHERE id = {p} AND {author}_id = {p}"
    " AND deleted_at IS NULL AND status IN ('queued', 'active')"
    " RETURNING id, last_seq, visitor_name"
)
_COLUMNS = (
    "conversation_id, seq, client_id, author, author_name, operator_id,"
    " kind, body, staff_only, via, created_at"
)


def claim(kind: str, author: Author) -> str:
    """Take the chat's next number. Parameters: (now,) chat, author id;
    its row: the chat, the number, the visitor's name."""
    return _CLAIM.format(p=PLACEHOLDER[kind], author=author, stamp=_stamp(kind, author))


def insert(kind: str, author: Author) -> str:
    """Insert the claimed message. Parameters: chat, number, client id, author
    name, operator id, body, now; its row: the message's id."""
    p = PLACEHOLDER[kind]
    false = "0" if kind == "sqlite" else "false"
    return (
        f"INSERT INTO livehelp_message ({_COLUMNS})"
        f" VALUES ({p}, {p}, {p}, '{author}', {p}, {p}, 'text', {p}, {false},"
        f" 'chat', {p}) RETURNING id"
    )


def at_once(author: Author) -> str:
    """PostgreSQL: claim and insert in one statement. Parameters: as
    :func:`claim`'s, then client id, author name (``None``: the visitor's),
    operator id, body, now; its row: the message's id and number."""
    return (
        f"WITH claimed AS ({claim('postgresql', author)})"
        f" INSERT INTO livehelp_message ({_COLUMNS})"
        f" SELECT id, last_seq, %s, '{author}', coalesce(%s, visitor_name),"
        " %s::integer, 'text', %s, false, 'chat', %s FROM claimed RETURNING id, seq"
    )


def _stamp(kind: str, author: Author) -> str:
    # A visitor's message marks when the chat last heard from its customer.
    if author != "visitor":
        return ""
    return f", last_visitor_message_at = {PLACEHOLDER[kind]}"
