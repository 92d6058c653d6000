"""A load balancer that breaks connections, for tests/test_chaos.py.

:class:`ChaosProxy` listens on one port and hands each new connection to one
of several backends in turn (the next one if a backend refuses, as a load
balancer's health check would). While :meth:`ChaosProxy.start_dropping`
runs, it cuts a random WebSocket every ``every`` seconds, half of them with a
reset (RST) and half with a plain FIN and no close frame: what a phone going
into a tunnel or a restarted router does to a chat.
"""

from __future__ import annotations

import collections
import contextlib
import random
import socket
import struct
import threading
import time
import typing as t


class Pipe:
    """One client connection and the backend connection it was handed."""

    def __init__(self, client: socket.socket, backend: socket.socket) -> None:
        self.client = client
        self.backend = backend
        self.websocket = False
        self.closed = False
        self.opened = time.monotonic()
        self.ports = (client.getpeername()[1], backend.getpeername()[1])
        #: Bytes from the client, and back to it.
        self.up = self.down = 0
        self._lock = threading.Lock()
        self._pumps = 2

    def __repr__(self) -> str:
        kind = "ws" if self.websocket else "http"
        age = time.monotonic() - self.opened
        client, backend = self.ports
        return (
            f"<{kind} {client} to {backend}, {age:.0f} s old,"
            f" {self.up} up {self.down} down>"
        )

    def cut(self, how: str) -> None:
        """End both sides: ``"rst"`` resets them, ``"fin"`` just closes.

        Only shut down here; the sockets are closed once both pumps have
        stopped reading them. Closed under a pump's blocked ``recv``, a socket's
        number could be given to the next connection, whose first bytes the
        old pump would then swallow.
        """
        with self._lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.backend):
            with contextlib.suppress(OSError):
                if how == "rst":
                    # Closed with a zero linger, a socket sends RST, not FIN.
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    sock.shutdown(socket.SHUT_RD)
                else:
                    sock.shutdown(socket.SHUT_RDWR)

    def pump_done(self) -> None:
        """One direction stopped; the second to stop closes both sockets."""
        with self._lock:
            self._pumps -= 1
            last = self._pumps == 0
        if last:
            for sock in (self.client, self.backend):
                with contextlib.suppress(OSError):
                    sock.close()


class ChaosProxy:
    def __init__(self, backends: t.Sequence[int], seed: int = 0) -> None:
        self.backends = list(backends)
        self.random = random.Random(seed)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._turn = 0
        self._pipes: list[Pipe] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._dropping = threading.Event()
        #: How many sockets were cut, by how.
        self.cuts = {"rst": 0, "fin": 0}
        #: What happened to the connections, for a failing test to show.
        self.events: collections.deque[str] = collections.deque(maxlen=2000)
        threading.Thread(target=self._accept, daemon=True).start()

    # Serving.

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect_backend(self) -> socket.socket | None:
        with self._lock:
            start, self._turn = self._turn, self._turn + 1
        for step in range(len(self.backends)):
            port = self.backends[(start + step) % len(self.backends)]
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
        return None

    def note(self, text: str) -> None:
        self.events.append(f"{time.monotonic():.3f} {text}")

    def _serve(self, client: socket.socket) -> None:
        backend = self._connect_backend()
        if backend is None:
            self.note("refused: no backend")
            client.close()
            return
        backend.settimeout(None)
        try:
            pipe = Pipe(client, backend)
        except OSError:
            # One side went away at once.
            client.close()
            backend.close()
            return
        self.note(f"open {pipe}")
        with self._lock:
            self._pipes.append(pipe)
        threading.Thread(
            target=self._pump, args=(pipe, backend, client, False), daemon=True
        ).start()
        self._pump(pipe, client, backend, True)

    def _pump(
        self, pipe: Pipe, source: socket.socket, target: socket.socket, upstream: bool
    ) -> None:
        try:
            while data := source.recv(65536):
                if (
                    upstream
                    and not pipe.websocket
                    and b"upgrade: websocket" in (data[:4096].lower())
                ):
                    pipe.websocket = True
                target.sendall(data)
                if upstream:
                    pipe.up += len(data)
                else:
                    pipe.down += len(data)
        except OSError:
            pass
        finally:
            if not pipe.closed:
                self.note(f"ended {'up' if upstream else 'down'} {pipe}")
            pipe.cut("fin")
            pipe.pump_done()
            with self._lock:
                if pipe in self._pipes:
                    self._pipes.remove(pipe)

    # Breaking.

    def start_dropping(self, every: float = 0.4) -> None:
        self._dropping.set()
        threading.Thread(target=self._drop, args=(every,), daemon=True).start()

    def stop_dropping(self) -> None:
        self._dropping.clear()

    def _drop(self, every: float) -> None:
        while self._dropping.is_set() and not self._stop.is_set():
            time.sleep(every)
            if not self._dropping.is_set():
                break  # stopped while asleep: stop means no cut from here on
            with self._lock:
                sockets = [p for p in self._pipes if p.websocket and not p.closed]
            if not sockets:
                continue
            how = self.random.choice(("rst", "fin"))
            chosen = self.random.choice(sockets)
            self.note(f"cut {how} {chosen}")
            chosen.cut(how)
            self.cuts[how] += 1

    def open_pipes(self) -> list[Pipe]:
        with self._lock:
            return list(self._pipes)

    def close(self) -> None:
        self._stop.set()
        self._dropping.clear()
        self.listener.close()
        with self._lock:
            pipes = list(self._pipes)
        for pipe in pipes:
            pipe.cut("fin")
