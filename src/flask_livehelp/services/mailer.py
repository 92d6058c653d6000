"""One thread per process that sends the mails just written, right away.

A burst of offline messages used to start a thread per mail, hundreds at once,
each with its own SMTP connection. The mailer instead keeps a list of mails
to send and one thread that sends all of them, those that came meanwhile
included, over one connection. It stops when it has had nothing to do for a
while and starts again with the next mail, also in a process forked after the
app was loaded. Whatever it cannot send, the background loop sends later.
"""

from __future__ import annotations

import collections.abc as c
import logging
import os
import threading

from flask import Flask

log = logging.getLogger(__name__)

#: Seconds without a mail after which the thread ends.
IDLE_SECONDS = 10.0

#: Sends the mails of these ids within the app's context.
SendIds = c.Callable[[Flask, list[int]], None]


class Mailer:
    def __init__(self, send: SendIds) -> None:
        self._send = send
        self._changed = threading.Condition()
        self._waiting: dict[int, None] = {}  # ordered and without repeats
        self._app: Flask | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._busy = False

    def put(self, app: Flask, ids: c.Iterable[int]) -> None:
        """Send these mails soon; a mail already waiting is not sent twice."""
        with self._changed:
            self._app = app
            self._waiting.update(dict.fromkeys(ids))
            if not self._running():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="livehelp-mailer", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def wait_idle(self, timeout: float = 30) -> bool:
        """Wait until every mail handed over was tried (tests, a clean shutdown)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not (self._waiting and self._running()) and not self._busy,
                timeout,
            )

    def _running(self) -> bool:
        # A thread of the parent does not run in a forked child.
        return (
            self._thread is not None
            and self._pid == os.getpid()
            and self._thread.is_alive()
        )

    def _run(self) -> None:
        while True:
            with self._changed:
                if not self._changed.wait_for(lambda: self._waiting, IDLE_SECONDS):
                    self._thread = None
                    return
                ids, self._waiting = list(self._waiting), {}
                app, self._busy = self._app, True
            try:
                assert app is not None
                self._send(app, ids)
            except Exception:
                log.exception("Sending mails %s failed; the outbox retries.", ids)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
