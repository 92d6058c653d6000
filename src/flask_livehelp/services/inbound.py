"""Replies by mail: read, trimmed of quotes and signatures, threaded back.

A reply finds its conversation by the token in the address it was sent to
(``LIVEHELP_REPLY_ADDRESS``) or in the Message-IDs it refers to (every mail
we send carries the token there, so a reply that reached the shop's ordinary
mailbox still threads). Mail arrives in two ways, both handled by
:meth:`InboundService.receive`: the IMAP poller (``flask livehelp
fetch-mail`` and the background loop) and a signed webhook.

A reply from a staff address becomes the staff's answer and is mailed on to
the customer; anyone else's is the customer's and is mailed on to the staff.
Each mail is stored once, by its Message-ID, however often it arrives.
"""

from __future__ import annotations

import collections
import dataclasses
import email
import email.policy
import hashlib
import hmac
import html
import imaplib
import logging
import re
import time
import typing as t
from email.message import EmailMessage
from email.utils import getaddresses
from email.utils import parseaddr
from html.parser import HTMLParser
from urllib.parse import unquote
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..background import hold_lease
from ..models import ConversationMixin
from ..models import OperatorMixin
from ..models import utcnow
from ..state import LiveHelpState
from ..text import is_blank
from ..text import plain
from . import Basics
from . import Service
from .conversations import ConversationService
from .mail import MailService
from .mail.writing import KIND_HEADER
from .offline import OfflineService

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-LiveHelp-Signature"
TIMESTAMP_HEADER = "X-LiveHelp-Timestamp"
#: How far a webhook's timestamp may be from our clock, so an old request
#: cannot be replayed later.
MAX_SKEW_SECONDS = 300
#: Mails one IMAP poll handles at most; the rest wait for the next.
FETCH_BATCH = 50
TOKEN_IN_REFERENCE = re.compile(r"<livehelp\.([0-9a-f]{32})[.@]")
ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


@dataclasses.dataclass(frozen=True)
class Received:
    """What became of one inbound mail."""

    #: ``appended``, ``duplicate`` or ``ignored``.
    outcome: str
    reason: str | None = None
    conversation_id: int | None = None


class InboundService(Service):
    def __init__(
        self,
        *args: *Basics,
        conversations: ConversationService,
        offline: OfflineService,
        mail: MailService,
    ) -> None:
        super().__init__(*args)
        self.conversations = conversations
        self.offline = offline
        self.mail = mail

    def receive(self, raw: bytes, *, recipient: str | None = None) -> Received:
        """Append one inbound mail (RFC 822 bytes) to its conversation.

        :param recipient: The envelope recipient, when the relay knows it.
        """
        message: EmailMessage = email.message_from_bytes(
            raw, policy=email.policy.default
        )
        if message.get(KIND_HEADER) is not None:
            return Received("ignored", "own-mail")
        if is_automatic(message):
            return Received("ignored", "automatic")
        sender_name, sender = parseaddr(plain(str(message.get("From", ""))))
        if "@" not in sender:
            return Received("ignored", "no-sender")
        conversation = self._conversation_for(message, recipient)
        if conversation is None:
            return Received("ignored", "no-conversation")
        client_id = mail_client_id(message, raw)
        if self.conversations.by_client_id(conversation.id, client_id) is not None:
            return Received("duplicate", conversation_id=conversation.id)
        text = trim_reply(plain(body_text(message)))
        if is_blank(text):
            return Received("ignored", "empty", conversation.id)
        limit = self.setting("MAX_MESSAGE_LENGTH")
        if len(text) > limit:
            text = text[: limit - 1].rstrip() + "…"
        return self._append(conversation, sender, sender_name, text, client_id)

    def _append(
        self,
        conversation: ConversationMixin,
        sender: str,
        sender_name: str,
        text: str,
        client_id: str,
    ) -> Received:
        if sender.lower() in self.offline.staff_addresses():
            operator = self._operator(sender)
            message = self.conversations.append_by_mail(
                conversation,
                "operator",
                text,
                client_id=client_id,
                operator=operator,
                author_name=None if operator else _one_line(sender_name),
            )
            conversation.answered_at = utcnow()
            mails = []
            if conversation.visitor_email:
                mails = self.offline.queue_answer(conversation, message)
            change = "answered"
        else:
            message = self.conversations.append_by_mail(
                conversation,
                "visitor",
                text,
                client_id=client_id,
                data={"from": sender},
            )
            # The customer wrote again: the message is open until answered.
            conversation.answered_at = None
            mails = self.offline.queue_reply_to_staff(conversation, message)
            change = "reply"
        try:
            self.session.commit()
        except IntegrityError:
            # The same mail came in twice at once; the other one stored it.
            self.session.rollback()
            return Received("duplicate", conversation_id=conversation.id)
        self.conversations.announce_by_mail(conversation, message, change)
        self.mail.send_soon(mails)
        return Received("appended", conversation_id=conversation.id)

    def _operator(self, address: str) -> OperatorMixin | None:
        model = self.models.operator
        query = sa.select(model).where(
            sa.func.lower(model.email) == address.lower(), model.is_active.is_(True)
        )
        return self.session.execute(query).scalar_one_or_none()

    def _conversation_for(
        self, message: EmailMessage, recipient: str | None
    ) -> ConversationMixin | None:
        model = self.models.conversation
        for token in self._tokens(message, recipient):
            conversation = self.session.execute(
                sa.select(model).where(
                    model.reply_token == token, model.deleted_at.is_(None)
                )
            ).scalar_one_or_none()
            if conversation is not None:
                return conversation
        return None

    def _tokens(self, message: EmailMessage, recipient: str | None) -> list[str]:
        tokens = []
        pattern = _reply_pattern(self.setting("REPLY_ADDRESS"))
        if pattern is not None:
            values = [
                str(v) for name in ADDRESS_HEADERS for v in message.get_all(name, [])
            ]
            addresses = [a for _, a in getaddresses(values)]
            if recipient:
                addresses.insert(0, recipient)
            for address in addresses:
                found = pattern.fullmatch(address.strip().lower())
                if found:
                    tokens.append(found.group(1))
        references = " ".join(
            str(message.get(name, "")) for name in ("In-Reply-To", "References")
        )
        tokens += TOKEN_IN_REFERENCE.findall(references.lower())
        return list(dict.fromkeys(tokens))

    # The IMAP poller.

    def fetch(self, url: str | None = None) -> dict[str, int]:
        """Read the unseen mails of the IMAP mailbox; returns counts by outcome.

        Each mail handled is marked seen; one that failed (say, the database
        was away) stays unseen and is read again next time.
        """
        url = url or self.setting("IMAP_URL")
        if not url:
            raise RuntimeError(
                "No mailbox to fetch from. Set LIVEHELP_IMAP_URL, e.g."
                " 'imaps://user:password@imap.shop.example/INBOX'."
            )
        counts: collections.Counter[str] = collections.Counter()
        client, folder = _imap_connect(url, self.setting("MAIL_TIMEOUT_SECONDS"))
        try:
            client.select(_imap_quote(folder))
            _, found = client.uid("SEARCH", "UNSEEN")
            for uid in (found[0] or b"").split()[:FETCH_BATCH]:
                outcome = self._fetch_one(client, uid)
                counts[outcome] += 1
        finally:
            try:
                client.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
        return dict(counts)

    def _fetch_one(self, client: imaplib.IMAP4, uid: bytes) -> str:
        _, parts = client.uid("FETCH", uid.decode("ascii"), "(BODY.PEEK[])")
        raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
        if raw is None:
            return "failed"
        try:
            result = self.receive(raw)
        except Exception:
            self.session.rollback()
            log.exception("Mail %s of the reply mailbox could not be read.", uid)
            return "failed"
        client.uid("STORE", uid.decode("ascii"), "+FLAGS", "(\\Seen)")
        return result.outcome


def fetch_mail_job(state: LiveHelpState) -> None:
    """The background job: one process at a time reads the reply mailbox."""
    seconds = state.inbound.setting("FETCH_MAIL_SECONDS")
    # Held for three rounds: another process takes over only if this one died.
    if hold_lease(state, "fetch-mail", seconds * 3, state.jobs.holder):
        state.inbound.fetch()


# Reading a mail.


def is_automatic(message: EmailMessage) -> bool:
    """An auto-reply, a bounce or a list mail: never a person's answer."""
    submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    sender = parseaddr(str(message.get("From", "")))[1].lower()
    return (
        submitted != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or message.get("X-Autoreply") is not None
        or message.get("X-Autorespond") is not None
        or message.get_content_type() == "multipart/report"
        or sender.startswith(("mailer-daemon@", "postmaster@"))
    )


def mail_client_id(message: EmailMessage, raw: bytes) -> str:
    """A stable id per mail, so the same mail is stored once."""
    key = str(message.get("Message-ID", "")).strip() or raw.decode("latin-1")
    return "mail-" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:40]


def body_text(message: EmailMessage) -> str:
    """The mail's text: its plain part, else its HTML part made plain."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = t.cast(str, part.get_content())
    except (LookupError, UnicodeError, KeyError):
        payload = part.get_payload(decode=True) or b""
        content = t.cast(bytes, payload).decode("utf-8", "replace")
    if part.get_content_type() == "text/html":
        content = html_to_text(content)
    return content


class _TextOfHTML(HTMLParser):
    """Text of an HTML mail, leaving out quoted history and what is not shown."""

    HIDDEN = {"script", "style", "head", "title", "blockquote"}
    BREAKS = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6"}
    # Where Gmail, Outlook and Thunderbird put the quoted mail.
    QUOTE_MARKS = ("gmail_quote", "divrplyfwdmsg", "moz-cite-prefix", "yahoo_quoted")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip is not None:
            self._depth += tag == self._skip
            return
        marks = " ".join(v or "" for k, v in attrs if k in ("class", "id")).lower()
        if tag in self.HIDDEN or any(mark in marks for mark in self.QUOTE_MARKS):
            self._skip, self._depth = tag, 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip is not None:
            self._depth -= tag == self._skip
            if self._depth == 0:
                self._skip = None
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip is None:
            # Line breaks in HTML source are spaces; <br> and blocks break lines.
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    parser = _TextOfHTML()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# Trimming quoted history and signatures.

#: The line above which our mails ask for the reply: "##- ... -##".
MARKER = "##-"
QUOTE_INTROS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^On\b.{0,300}\bwrote:$",
        r"^Den\b.{0,300}\bskrev\b.{0,300}:$",
        r"^Am\b.{0,300}\bschrieb\b.{0,300}:$",
        r"^Le\b.{0,300}\ba écrit ?:$",
        r"^-{2,} ?(Original Message|Oprindelig meddelelse|Ursprüngliche Nachricht"
        r"|Forwarded message|Videresendt meddelelse|Message d'origine) ?-{2,}$",
        r"^_{20,}$",
    )
]
#: An Outlook quote starts "From: ..." with "Sent: ..." or "Date: ..." below.
QUOTE_FROM = re.compile(r"^\*?(From|Fra|Von|De) ?:", re.IGNORECASE)
QUOTE_SENT = re.compile(r"^\*?(Sent|Sendt|Gesendet|Envoyé|Date|Dato) ?:", re.IGNORECASE)
SIGNATURE = re.compile(r"^-- ?$")
MOBILE_FOOTER = re.compile(
    r"^(Sent from my|Sendt fra min|Von meinem|Get Outlook for|Hent Outlook til)\b",
    re.IGNORECASE,
)


def trim_reply(text: str) -> str:
    """What the writer added: no quoted history, no signature.

    The reply is cut at the first quote intro ("On ... wrote:", "Den ...
    skrev:", an Outlook header, our own marker) or signature, and quoted
    lines are dropped. Someone who answered below the quote keeps their
    text too.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = next((i for i in range(len(lines)) if _ends_reply(lines, i)), len(lines))
    kept = _unquoted(lines[:cut])
    if kept:
        return kept
    # Nothing above the quote: the answer is below it (bottom-posting).
    below = [line for i, line in enumerate(lines) if not _intro(lines, i)]
    end = next((i for i, line in enumerate(below) if _signature(line)), len(below))
    return _unquoted(below[:end])


def _ends_reply(lines: list[str], i: int) -> bool:
    return _intro(lines, i) or _signature(lines[i])


def _intro(lines: list[str], i: int) -> bool:
    line = lines[i].strip()
    if MARKER in line or any(p.match(line) for p in QUOTE_INTROS):
        return True
    after = [rest.strip() for rest in lines[i + 1 : i + 4] if rest.strip()]
    if after and any(p.match(f"{line} {after[0]}") for p in QUOTE_INTROS[:4]):
        # Mail programs wrap a long "On ..., X <x@y> wrote:" over two lines.
        return line.lower().startswith(("on ", "den ", "am ", "le "))
    return bool(QUOTE_FROM.match(line) and any(QUOTE_SENT.match(a) for a in after))


def _signature(line: str) -> bool:
    return bool(SIGNATURE.match(line) or MOBILE_FOOTER.match(line.strip()))


def _unquoted(lines: list[str]) -> str:
    kept = [line.rstrip() for line in lines if not line.lstrip().startswith(">")]
    return "\n".join(kept).strip()


def _one_line(text: str) -> str | None:
    return " ".join(text.split())[:120] or None


def _reply_pattern(template: str | None) -> re.Pattern[str] | None:
    if not template or "{token}" not in template:
        return None
    before, _, after = template.lower().partition("{token}")
    return re.compile(re.escape(before) + "([0-9a-f]{32})" + re.escape(after))


# The IMAP connection.


def _imap_connect(url: str, timeout: float) -> tuple[imaplib.IMAP4, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise RuntimeError(
            f"LIVEHELP_IMAP_URL must look like 'imaps://user:password@host/INBOX',"
            f" not {parts.scheme!r}."
        )
    secure = parts.scheme == "imaps"
    port = parts.port or (993 if secure else 143)
    client: imaplib.IMAP4
    if secure:
        client = imaplib.IMAP4_SSL(parts.hostname, port, timeout=timeout)
    else:
        client = imaplib.IMAP4(parts.hostname, port, timeout=timeout)
    try:
        client.login(unquote(parts.username or ""), unquote(parts.password or ""))
    except Exception:
        client.shutdown()
        raise
    return client, unquote(parts.path.lstrip("/")) or "INBOX"


def _imap_quote(folder: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._/-]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The webhook's signature.


def sign_webhook(
    secret: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The headers a relay sends with a raw mail to the inbound webhook.

    The signature is HMAC-SHA256 over ``"<timestamp>." + body`` with
    ``LIVEHELP_INBOUND_SECRET``, as ``sha256=<hex>``.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "sha256=" + digest.hexdigest()}


def webhook_signed(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float | None = None,
) -> bool:
    """Whether a webhook request was signed with ``secret`` just now."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    expected = sign_webhook(secret, body, int(timestamp))[SIGNATURE_HEADER]
    return hmac.compare_digest(expected, signature.strip())
