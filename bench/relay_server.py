"""The bare baseline: a ``websockets`` server doing the chat relay's job, no more.

``/echo`` sends every message back. ``/customer/<chat>`` and
``/operator/<n>`` carry a chat: a customer's message goes to the operator
socket serving that chat (chat modulo the number of operators), and the
operator's answer goes back to the chat's customer. Nothing is stored.

Given a database (a seeded benchmark shop's), the relay does the least any
server that keeps its chats must do: it stores each message with the driver
alone (``bench.statements``, as Flask-LiveHelp stores a message alone),
acknowledges it to its sender with the number it got, and only then passes it
on. That is the floor under Flask-LiveHelp's figures: the same work, with no
framework, in a server whose framing is written in C.

Run as ``python -m bench.relay_server PORT OPERATORS [DATABASE_URI]``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import sys
import typing as t

from websockets.asyncio.server import serve
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from bench import statements

customers: dict[int, ServerConnection] = {}
operators: dict[int, ServerConnection] = {}


class Written(t.NamedTuple):
    """One author's statements (``bench.statements``)."""

    claim: str
    insert: str
    at_once: str


class Storage:
    """Stores each message in its own transaction, as the driver alone can.

    Chat ``n`` of the load is the ``n``-th seeded chat, by id.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.kind = "sqlite" if uri.startswith("sqlite") else "postgresql"
        self.chats: list[tuple[int, int, int]] = []
        # Written once, not for every message: the floor does no more than it must.
        authors: tuple[statements.Author, ...] = ("visitor", "operator")
        self.sql = {
            author: Written(
                statements.claim(self.kind, author),
                statements.insert(self.kind, author),
                statements.at_once(author),
            )
            for author in authors
        }

    async def open(self) -> None:
        if self.kind == "sqlite":
            self.sqlite = sqlite3.connect(self.uri.removeprefix("sqlite:///"))
            # As Flask-LiveHelp tunes the SQLite database it stores in.
            self.sqlite.execute("PRAGMA journal_mode=WAL")
            self.sqlite.execute("PRAGMA synchronous=NORMAL")
            rows = self.sqlite.execute(CHATS).fetchall()
        else:
            import psycopg

            self.postgresql = await psycopg.AsyncConnection.connect(
                self.uri.replace("+psycopg", ""), autocommit=True
            )
            rows = await (await self.postgresql.execute(CHATS)).fetchall()
        self.chats = [t.cast(tuple[int, int, int], tuple(row)) for row in rows]

    async def store(
        self,
        ws: ServerConnection,
        chat: int,
        author: statements.Author,
        text: str | bytes,
    ) -> str:
        """Store the message ``text``, acknowledge it on ``ws``; the message
        with its number, to pass on."""
        frame = json.loads(text)
        conversation, visitor, operator = self.chats[chat]
        writer = visitor if author == "visitor" else operator
        operator_id = operator if author == "operator" else None
        name = "Operator" if author == "operator" else None
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if self.kind == "sqlite":
            seq = self._store_in_sqlite(
                author, conversation, writer, operator_id, name, frame, now
            )
        else:
            cursor = await self.postgresql.execute(
                self.sql[author].at_once,
                (*_claim(author, now, conversation, writer), frame["id"], name,
                 operator_id, frame["body"], now),
            )  # fmt: skip
            seq = (await cursor.fetchone() or (None, None))[1]
        await ws.send(json.dumps({"ack": frame["id"], "seq": seq}))
        return json.dumps({**frame, "seq": seq})

    def _store_in_sqlite(
        self,
        author: statements.Author,
        conversation: int,
        writer: int,
        operator_id: int | None,
        name: str | None,
        frame: dict[str, t.Any],
        now: dt.datetime,
    ) -> int | None:
        stamp = now.isoformat(" ")
        with self.sqlite:  # commits
            claimed = self.sqlite.execute(
                self.sql[author].claim,
                _claim(author, stamp, conversation, writer),
            ).fetchone()
            if claimed is None:
                return None
            chat_id, seq, visitor_name = claimed
            self.sqlite.execute(
                self.sql[author].insert,
                (chat_id, seq, frame["id"], name or visitor_name, operator_id,
                 frame["body"], stamp),
            ).fetchone()  # fmt: skip
        return t.cast(int, seq)


CHATS = "SELECT id, visitor_id, operator_id FROM livehelp_conversation ORDER BY id"


def _claim(author: str, now: object, chat: int, writer: int) -> tuple[object, ...]:
    return (now, chat, writer) if author == "visitor" else (chat, writer)


async def handle(
    ws: ServerConnection, operator_count: int, storage: Storage | None
) -> None:
    path = t.cast(str, ws.request.path if ws.request else "/")
    kind, _, number = path.strip("/").partition("/")
    try:
        if kind == "echo":
            async for text in ws:
                await ws.send(text)
        elif kind == "customer":
            chat = int(number)
            customers[chat] = ws
            async for text in ws:
                if storage is not None:
                    text = await storage.store(ws, chat, "visitor", text)
                peer = operators.get(chat % operator_count)
                if peer is not None:
                    await peer.send(text)
        elif kind == "operator":
            operators[int(number)] = ws
            async for text in ws:
                chat = json.loads(text)["chat"]
                if storage is not None:
                    text = await storage.store(ws, chat, "operator", text)
                peer = customers.get(chat)
                if peer is not None:
                    await peer.send(text)
    except ConnectionClosed:
        pass


async def main(port: int, operator_count: int, uri: str | None) -> None:
    storage = None if uri is None else Storage(uri)
    if storage is not None:
        await storage.open()
    async with serve(
        lambda ws: handle(ws, operator_count, storage),
        "127.0.0.1",
        port,
        max_queue=None,
    ):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    uri = sys.argv[3] if len(sys.argv) > 3 else None
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), uri))
