"""The mail outbox: every mail is written with what caused it, then sent.

A mail is a row written in the caller's transaction, so it exists exactly
when what caused it (an offline message, an answer) was stored. It is sent
right after the commit and again by the background loop until the SMTP server
accepts it; only then is it marked sent. Each sender claims a mail with one
atomic UPDATE first, so two processes never send the same mail.

Exactly once, as far as SMTP allows: a mail is marked ``sending`` (and
committed) before it goes to the server, and ``sent`` after. A process that
dies between the two leaves it ``sending``, and nobody can know whether the
server took it. Such a mail is sent once more, with the same Message-ID and
an ``X-LiveHelp-Resent`` header (a receiver may drop the copy it has), and
never a third time. Claims are short and renewed while a sender works, so a
dead process's mails go out again within ``LIVEHELP_MAIL_CLAIM_SECONDS``.

The service is assembled from one module per job: :mod:`.writing` (languages,
templates and the outbox row), :mod:`.claims` (who sends a mail),
:mod:`.sending` (to the SMTP server, see :mod:`.smtp`) and :mod:`.outbox`
(the outbox as managers and admins see it).
"""

from __future__ import annotations

from .outbox import MailOutbox
from .sending import MailSending


class MailService(MailSending, MailOutbox):
    """The outbox: every mail we send."""


__all__ = ["MailService"]
