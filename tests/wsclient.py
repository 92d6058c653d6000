"""The WebSocket client the tests talk to our sockets with."""

from __future__ import annotations

from simple_websocket import Client


class WsClient(Client):
    """simple-websocket's client, keeping frames that came with the handshake.

    The stock client reads the server's first frames together with the
    handshake answer in one ``recv`` and, when the server closes right
    after, drops them: a frame then close (a refusal) looked like a bare
    close. Handling the buffered events at once keeps them.
    """

    def handshake(self) -> None:
        super().handshake()
        # A closing frame among them ends the connection only once they are
        # read: the reader thread then finds the end of the stream itself.
        self._handle_events()
        self.connected = True
