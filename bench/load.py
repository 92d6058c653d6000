"""Load generators: chats over WebSockets, and HTTP requests, from asyncio.

A chat is a customer socket and a share of an operator socket. The load
sends customers' messages at a fixed total rate (open loop, so a slow server
cannot slow the load down and hide its latency); the operator side answers
each one at once. Measured per message sent in the window: customer to
operator, and the round trip customer -> operator -> customer.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import time
import typing as t

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

#: What the clients offer: ``None`` (nobody compresses, so every server does
#: the same work per frame) or ``"deflate"``, as every browser offers.
COMPRESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "compression", default=None
)
BODY = "Har I regnjakken i blå, str. M? Og kan den sendes i dag?"
CONNECTING_AT_ONCE = 100


class Target(t.Protocol):
    """How one server kind speaks the chat; see the classes below."""

    name: str
    has_operator: bool

    async def customer(self, chat: int) -> ClientConnection: ...
    async def operator(self, number: int) -> ClientConnection: ...
    def customer_message(self, chat: int, message_id: str) -> str: ...
    def for_operator(self, text: str) -> tuple[int, str] | None: ...
    def operator_reply(self, chat: int, message_id: str) -> str: ...
    def for_customer(self, text: str) -> str | None: ...
    def pong(self, text: str) -> str | None: ...


async def _open(url: str, headers: dict[str, str] | None = None) -> ClientConnection:
    return await connect(
        url,
        additional_headers=headers,
        compression=COMPRESSION.get(),
        ping_interval=None,
        max_queue=None,
        open_timeout=60,
    )


class LiveHelpTarget:
    """Our sockets: visitors resume a seeded chat; operators follow theirs."""

    name = "flask-livehelp"
    has_operator = True

    def __init__(
        self,
        customer_bases: list[str],
        operator_base: str,
        chats: list[t.Any],
        cookies: list[str],
    ) -> None:
        #: Customer ``n`` uses ``customer_bases[n % len(customer_bases)]``;
        #: operators may be on yet another process.
        self.customer_bases = customer_bases
        self.operator_base = operator_base
        self.chats = chats
        self.cookies = cookies

    async def customer(self, chat: int) -> ClientConnection:
        seeded = self.chats[chat]
        base = self.customer_bases[chat % len(self.customer_bases)]
        ws = await _open(base + "/livehelp/widget/ws")
        hello = {
            "type": "hello",
            "token": seeded.token,
            "conversation": seeded.conversation_id,
            "after": 0,
        }
        await ws.send(json.dumps(hello))
        await _until(ws, '"type":"conversation"')
        return ws

    async def operator(self, number: int) -> ClientConnection:
        ws = await _open(
            self.operator_base + "/livehelp/panel/ws",
            {"Cookie": self.cookies[number]},
        )
        await _until(ws, '"type":"hello"')
        return ws

    def customer_message(self, chat: int, message_id: str) -> str:
        return json.dumps({"type": "message", "id": message_id, "body": BODY})

    def for_operator(self, text: str) -> tuple[int, str] | None:
        if '"author":"visitor"' not in text:
            return None
        frame = json.loads(text)
        if frame.get("type") != "message":
            return None
        return frame["conversation"], frame["id"]

    def operator_reply(self, chat: int, message_id: str) -> str:
        reply = {
            "type": "message",
            "conversation": chat,
            "id": "o" + message_id,
            "body": BODY,
        }
        return json.dumps(reply)

    def for_customer(self, text: str) -> str | None:
        if '"author":"operator"' not in text:
            return None
        frame = json.loads(text)
        return t.cast("str | None", frame.get("id", "")[1:] or None)

    def pong(self, text: str) -> str | None:
        return None

    def chat_key(self, chat: int) -> int:
        return t.cast(int, self.chats[chat].conversation_id)


class RelayTarget:
    """bench.relay_server: the bare ``websockets`` relay (``echo=True``: echo),
    which may also store every message and acknowledge it to its sender."""

    has_operator = True

    def __init__(self, base: str, echo: bool = False, stores: str = "") -> None:
        self.base = base
        self.echo = echo
        self.has_operator = not echo
        self.name = "websockets echo" if echo else "websockets relay"
        if stores:
            self.name += f", storing in {stores}"

    async def customer(self, chat: int) -> ClientConnection:
        return await _open(self.base + ("/echo" if self.echo else f"/customer/{chat}"))

    async def operator(self, number: int) -> ClientConnection:
        return await _open(self.base + f"/operator/{number}")

    def customer_message(self, chat: int, message_id: str) -> str:
        return json.dumps({"chat": chat, "id": message_id, "body": BODY})

    def for_operator(self, text: str) -> tuple[int, str] | None:
        frame = json.loads(text)
        if "ack" in frame:
            return None  # the storing relay's, for the operator's answer
        return frame["chat"], frame["id"]

    def operator_reply(self, chat: int, message_id: str) -> str:
        return json.dumps({"chat": chat, "id": "o" + message_id, "body": BODY})

    def for_customer(self, text: str) -> str | None:
        frame = json.loads(text)
        if "ack" in frame:
            return None
        message_id = t.cast(str, frame["id"])
        if self.echo:
            return message_id
        return message_id[1:]

    def pong(self, text: str) -> str | None:
        return None

    def chat_key(self, chat: int) -> int:
        return chat


class SocketIOTarget:
    """bench.socketio_app: the same relay in Socket.IO (Engine.IO 4 framing)."""

    name = "flask-socketio relay"
    has_operator = True

    def __init__(self, base: str) -> None:
        self.base = base

    async def _join(self, query: str) -> ClientConnection:
        ws = await _open(f"{self.base}/socket.io/?EIO=4&transport=websocket&{query}")
        await _until(ws, "0{")
        await ws.send("40")
        await _until(ws, "40")
        return ws

    async def customer(self, chat: int) -> ClientConnection:
        return await self._join(f"role=c&n={chat}")

    async def operator(self, number: int) -> ClientConnection:
        return await self._join(f"role=o&n={number}")

    def customer_message(self, chat: int, message_id: str) -> str:
        return "42" + json.dumps(
            ["msg", {"chat": chat, "id": message_id, "body": BODY}]
        )

    def _data(self, text: str) -> dict[str, t.Any] | None:
        if not text.startswith("42"):
            return None
        return t.cast("dict[str, t.Any]", json.loads(text[2:])[1])

    def for_operator(self, text: str) -> tuple[int, str] | None:
        data = self._data(text)
        return None if data is None else (data["chat"], data["id"])

    def operator_reply(self, chat: int, message_id: str) -> str:
        data = {"chat": chat, "id": "o" + message_id, "body": BODY}
        return "42" + json.dumps(["msg", data])

    def for_customer(self, text: str) -> str | None:
        data = self._data(text)
        return None if data is None else t.cast(str, data["id"][1:])

    def pong(self, text: str) -> str | None:
        # Engine.IO's server pings; a client that does not answer is dropped.
        return "3" if text == "2" else None

    def chat_key(self, chat: int) -> int:
        return chat


async def _until(ws: ClientConnection, marker: str, timeout: float = 60) -> str:
    async with asyncio.timeout(timeout):
        while True:
            text = t.cast(str, await ws.recv())
            if marker in text:
                return text


@dataclasses.dataclass
class ChatResult:
    target: str
    chats: int
    rate: float
    sent: int = 0
    #: Seconds from the customer's send to the operator's receipt.
    to_operator: list[float] = dataclasses.field(default_factory=list)
    #: When each of those was sent (``time.time()``), in the same order.
    to_operator_sent: list[float] = dataclasses.field(default_factory=list)
    #: Seconds from the customer's send to the operator's answer arriving.
    round_trip: list[float] = dataclasses.field(default_factory=list)
    lost: int = 0
    late_sends: int = 0
    window: float = 0.0
    connect_seconds: float = 0.0


class ChatLoad:
    """Open sockets for ``chats`` chats, then send at ``rate`` messages a second.

    ``rate`` counts every message handled: a customer's and its answer (for
    the echo, the message and its echo), so customers send ``rate / 2``.
    """

    def __init__(self, target: t.Any, chats: int, operators: int) -> None:
        self.target = target
        self.chats = chats
        self.operators = operators if target.has_operator else 0
        self.customers: list[ClientConnection] = []
        self.operator_sockets: list[ClientConnection] = []
        self.sent_at: dict[str, float] = {}
        self.result: ChatResult | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._replies_open = 0
        self._key_to_chat = {target.chat_key(n): n for n in range(chats)}
        #: From ``time.perf_counter()`` to ``time.time()``, to line up with logs.
        self._wall_clock = time.time() - time.perf_counter()

    async def open(self, readers: bool = True) -> float:
        """Connect everyone; ``readers=False`` leaves the customers' reading
        to the caller, and operators only read (a socket nobody reads would
        stall the server's sends to it)."""
        began = time.perf_counter()
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

        async def guarded(opening: t.Awaitable[ClientConnection]) -> ClientConnection:
            async with gate:
                return await opening

        self.operator_sockets = list(
            await asyncio.gather(
                *(guarded(self.target.operator(n)) for n in range(self.operators))
            )
        )
        self.customers = list(
            await asyncio.gather(
                *(guarded(self.target.customer(n)) for n in range(self.chats))
            )
        )
        for ws in self.operator_sockets:
            reading = self._read_operator(ws) if readers else _drain(ws)
            self._readers.append(asyncio.create_task(reading))
        if readers:
            for ws in self.customers:
                self._readers.append(asyncio.create_task(self._read_customer(ws)))
        return time.perf_counter() - began

    async def run(
        self,
        rate: float,
        duration: float,
        warmup: float,
        window_started: t.Callable[[], None] = lambda: None,
        window_ended: t.Callable[[], None] = lambda: None,
    ) -> ChatResult:
        result = ChatResult(self.target.name, self.chats, rate)
        self.result = result
        per_second = rate / 2
        total = int(per_second * (warmup + duration))
        first_measured = int(per_second * warmup)
        start = time.perf_counter()
        for number in range(total):
            due = start + number / per_second
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                result.late_sends += 1
            if number == first_measured:
                window_started()
                window_start = time.perf_counter()
            chat = number % self.chats
            message_id = f"{'m' if number >= first_measured else 'w'}{number}"
            self.sent_at[message_id] = time.perf_counter()
            if number >= first_measured:
                result.sent += 1
                self._replies_open += 1
            await self.customers[chat].send(
                self.target.customer_message(self.target.chat_key(chat), message_id)
            )
        window_ended()
        result.window = time.perf_counter() - window_start
        # Answers still on their way count as lost after ten seconds.
        deadline = time.perf_counter() + 10
        while self._replies_open and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        result.lost = self._replies_open
        return result

    async def _read_operator(self, ws: ClientConnection) -> None:
        target = self.target
        try:
            async for text in ws:
                if (pong := target.pong(text)) is not None:
                    await ws.send(pong)
                    continue
                found = target.for_operator(text)
                if found is None:
                    continue
                key, message_id = found
                sent = self.sent_at.get(message_id)
                if sent is not None and message_id[0] == "m" and self.result:
                    self.result.to_operator.append(time.perf_counter() - sent)
                    self.result.to_operator_sent.append(sent + self._wall_clock)
                await ws.send(target.operator_reply(key, message_id))
        except ConnectionClosed:
            pass

    async def _read_customer(self, ws: ClientConnection) -> None:
        target = self.target
        try:
            async for text in ws:
                if (pong := target.pong(text)) is not None:
                    await ws.send(pong)
                    continue
                message_id = target.for_customer(text)
                if message_id is None:
                    continue
                sent = self.sent_at.pop(message_id, None)
                if sent is None or message_id[0] != "m" or self.result is None:
                    continue
                self.result.round_trip.append(time.perf_counter() - sent)
                self._replies_open -= 1
        except ConnectionClosed:
            pass

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(
            *(ws.close() for ws in self.customers + self.operator_sockets),
            return_exceptions=True,
        )


async def stored_per_second(
    target: LiveHelpTarget,
    customers: list[ClientConnection],
    duration: float,
    window_started: t.Callable[[], None],
    window_ended: t.Callable[[], None],
) -> float:
    """Each customer sends its next message once the last one is stored (acked)."""
    deadline = time.perf_counter() + duration
    window_started()
    counts = await asyncio.gather(
        *(
            _store_until(target, number, ws, deadline)
            for number, ws in enumerate(customers)
        )
    )
    window_ended()
    return sum(counts) / duration


async def _store_until(
    target: LiveHelpTarget, number: int, ws: ClientConnection, deadline: float
) -> int:
    stored = 0
    while time.perf_counter() < deadline:
        message_id = f"s{number}x{stored}"
        await ws.send(target.customer_message(number, message_id))
        await _until(ws, f'"type":"ack","id":"{message_id}"')
        stored += 1
    return stored


async def _drain(ws: ClientConnection) -> None:
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


# HTTP requests per second, over kept-alive connections.


async def requests_per_second(
    host: str, port: int, path: str, connections: int, duration: float
) -> float:
    """Completed GET ``path`` requests per second, all answered 200."""
    deadline = time.perf_counter() + duration
    counts = await asyncio.gather(
        *(_keep_asking(host, port, path, deadline) for _ in range(connections))
    )
    return sum(counts) / duration


async def _keep_asking(host: str, port: int, path: str, deadline: float) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    done = 0
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{path} answered {head[:40]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
    return done
