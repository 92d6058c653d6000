"""Real mail servers for the tests: aiosmtpd for SMTP, Dovecot for IMAP.

Both run on a free port of 127.0.0.1, are started by the fixtures here and
stopped afterwards. The SMTP server can be stopped and started again on the
same port, to play a mail server that is away for a while.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import email
import email.policy
import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import typing as t
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from conftest import need
from flask_livehelp import get_state
from servers import free_port
from servers import wait_until

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
)


class Delivery(t.NamedTuple):
    """One mail as the SMTP server got it."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes


class SMTPServer:
    """An SMTP server that keeps what it is sent, and refuses what it is told to."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[Delivery] = []
        #: Recipients the server refuses for good (550).
        self.refuse: set[str] = set()
        #: Seconds the server takes over each mail (a slow relay).
        self.delay = 0.0
        self._changed = threading.Condition()
        self._controller: Controller | None = None
        self._served: list[Flask] = []

    def start(self) -> SMTPServer:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # aiosmtpd's handler hooks.

    async def handle_RCPT(
        self,
        server: t.Any,
        session: t.Any,
        envelope: t.Any,
        address: str,
        options: t.Any,
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = t.cast(bytes, envelope.original_content)
        message = t.cast(
            EmailMessage, email.message_from_bytes(raw, policy=email.policy.default)
        )
        with self._changed:
            self.deliveries.append(
                Delivery(envelope.mail_from, list(envelope.rcpt_tos), message, raw)
            )
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    # For the tests.

    def wait_for(self, count: int, timeout: float = 15) -> list[Delivery]:
        """Wait until ``count`` mails have arrived; returns them all.

        The apps this server serves have recorded by then what came of each
        mail they were sending: the server's answer reaches the sender a
        moment before its outbox says "sent".
        """
        with self._changed:
            arrived = self._changed.wait_for(
                lambda: len(self.deliveries) >= count, timeout
            )
        if not arrived:
            raise AssertionError(
                f"{len(self.deliveries)} mails arrived, not {count}, in {timeout} s"
            )
        for app in self._served:
            get_state(app).mail.wait_idle(timeout)
        return list(self.deliveries)

    def to(self, address: str) -> list[Delivery]:
        return [d for d in self.deliveries if address in d.recipients]

    def serve(self, app: Flask) -> None:
        """Make ``app``'s Flask-Mail send here, for real (not suppressed)."""
        self._served.append(app)
        app.config.update(
            MAIL_SERVER="127.0.0.1", MAIL_PORT=self.port, MAIL_SUPPRESS_SEND=False
        )
        # Flask-Mail reads its settings at init_app; the app exists already.
        mail = app.extensions["mail"]
        mail.server, mail.port, mail.suppress = "127.0.0.1", self.port, False


def text_of(message: EmailMessage) -> str:
    return t.cast(str, message.get_body(preferencelist=("plain",)).get_content())


def html_of(message: EmailMessage) -> str:
    return t.cast(str, message.get_body(preferencelist=("html",)).get_content())


@pytest.fixture
def smtp_server() -> c.Iterator[SMTPServer]:
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(app: Flask, smtp_server: SMTPServer) -> c.Iterator[SMTPServer]:
    """The SMTP server, with the test app sending to it."""
    smtp_server.serve(app)
    yield smtp_server
    # Mails still being sent must land before the app's tables go.
    get_state(app).mail.wait_idle()


class IMAPServer:
    """Dovecot with one mailbox, ``replies``, in a directory of its own."""

    user = "replies"
    password = "reply-secret"

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="livehelp-dovecot-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/INBOX"

    def start(self) -> IMAPServer:
        config = self._write_config()
        self.process = subprocess.Popen(
            [t.cast(str, DOVECOT), "-F", "-c", config],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 15, "Dovecot answering IMAP")
        return self

    def _write_config(self) -> str:
        # Dovecot will not keep mail as root: as root, the mailbox belongs to
        # "nobody"; otherwise to whoever runs the tests.
        if os.geteuid() == 0:
            owner = pwd.getpwnam("nobody")
            services = ""
        else:
            owner = pwd.getpwuid(os.geteuid())
            services = (
                f"default_internal_user = {owner.pw_name}\n"
                f"default_login_user = {owner.pw_name}\n"
            )
        home = os.path.join(self.directory, "home")
        for name in ("run", "state", "home"):
            os.makedirs(os.path.join(self.directory, name))
        os.chmod(self.directory, 0o755)
        os.chown(home, owner.pw_uid, owner.pw_gid)
        users = os.path.join(self.directory, "users")
        with open(users, "w") as f:
            f.write(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        path = os.path.join(self.directory, "dovecot.conf")
        with open(path, "w") as f:
            f.write(
                f"""base_dir = {self.directory}/run
state_dir = {self.directory}/state
log_path = {self.directory}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {owner.pw_uid}
{services}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
            )
        return path

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = os.path.join(self.directory, "dovecot.log")
            text = open(log).read() if os.path.exists(log) else ""
            raise RuntimeError(f"Dovecot stopped: {text[-2000:]}")
        try:
            client = self.client()
        except OSError:
            return False
        client.logout()
        return True

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=5)
        client.login(self.user, self.password)
        client.select("INBOX")
        return client

    def deliver(self, raw: bytes) -> None:
        """Put a mail into the mailbox, as the shop's mail server would."""
        client = self.client()
        client.append("INBOX", None, None, raw)
        client.logout()

    def unseen(self) -> int:
        client = self.client()
        _, found = client.search(None, "UNSEEN")
        client.logout()
        return len((found[0] or b"").split())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def imap_server() -> c.Iterator[IMAPServer]:
    need(DOVECOT is not None, "Dovecot (apt-get install dovecot-imapd)")
    server = IMAPServer().start()
    yield server
    server.stop()
