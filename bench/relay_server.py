"""The bare baseline: a ``websockets`` server doing the chat relay's job, no more.

``/echo`` sends every message back. ``/customer/<chat>`` and
``/operator/<n>`` carry a chat: a customer's message goes to the operator
socket serving that chat (chat modulo the number of operators), and the
operator's answer goes back to the chat's customer. Nothing is stored.

Run as ``python -m bench.relay_server PORT OPERATORS``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import typing as t

from websockets.asyncio.server import serve
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

customers: dict[int, ServerConnection] = {}
operators: dict[int, ServerConnection] = {}


async def handle(ws: ServerConnection, operator_count: int) -> None:
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
                peer = operators.get(chat % operator_count)
                if peer is not None:
                    await peer.send(text)
        elif kind == "operator":
            operators[int(number)] = ws
            async for text in ws:
                chat = json.loads(text)["chat"]
                peer = customers.get(chat)
                if peer is not None:
                    await peer.send(text)
    except ConnectionClosed:
        pass


async def main(port: int, operator_count: int) -> None:
    async with serve(
        lambda ws: handle(ws, operator_count), "127.0.0.1", port, max_queue=None
    ):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
