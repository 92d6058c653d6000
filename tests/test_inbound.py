"""Replies by mail thread back into their conversation: through the signed
webhook, and through IMAP against a real Dovecot. Quotes and signatures are
trimmed, each mail is stored once, and the other side gets it by mail.
"""

from __future__ import annotations

import io
import json
import threading
import time
import typing as t
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from flask import Flask

from flask_livehelp import get_state
from flask_livehelp.hub import conversation_channel
from flask_livehelp.hub import STAFF_CHANNEL
from flask_livehelp.services.inbound import html_to_text
from flask_livehelp.services.inbound import sign_webhook
from flask_livehelp.services.inbound import trim_reply
from flask_livehelp.views.offline import MAX_INBOUND_BYTES
from mailservers import IMAPServer
from mailservers import SMTPServer
from mailservers import text_of

SECRET = "webhook-secret"
WEBHOOK = "/livehelp/offline/inbound"
QUESTION = "Kan jeg bytte uldtrøjen til en større størrelse?"

pytestmark = pytest.mark.livehelp(
    reply_address="reply+{token}@shop.example", inbound_secret=SECRET
)


# Trimming what the writer did not write now.


def test_quoted_history_below_an_intro_line_is_trimmed() -> None:
    gmail = (
        "Tak, det lyder godt!\n\nOn Mon, 3 Nov 2026 at 10:02, Nordlys Butik\n"
        "<reply+abc@shop.example> wrote:\n> Hej Søren\n> Ja, vi har den.\n"
    )
    assert trim_reply(gmail) == "Tak, det lyder godt!"
    danish = (
        "Perfekt.\nDen 3. nov. 2026 kl. 10.02 skrev Nordlys Butik <b@shop.dk>:\n> x"
    )
    assert trim_reply(danish) == "Perfekt."
    outlook = (
        "Fint, tak.\n\n________________________________\nFrom: Nordlys Butik\n"
        "Sent: 3 November 2026 10:02\nTo: Søren\nSubject: Svar\n\nHej Søren"
    )
    assert trim_reply(outlook) == "Fint, tak."
    outlook_without_line = "Fint.\nFra: Nordlys Butik\nSendt: 3. nov. 2026\n\nHej"
    assert trim_reply(outlook_without_line) == "Fint."


def test_signatures_our_marker_and_mobile_footers_are_trimmed() -> None:
    assert trim_reply("Ja tak.\n-- \nSøren Ærø\nTlf. 12345678") == "Ja tak."
    assert trim_reply("Ja tak.\n\nSendt fra min iPhone") == "Ja tak."
    marked = "Ja tak.\n\n> ##- Please type your reply above this line -##\n> Hej"
    assert trim_reply(marked) == "Ja tak."


def test_an_answer_written_below_the_quote_is_kept() -> None:
    bottom = "On Mon, 3 Nov 2026, Nordlys wrote:\n> Har I den?\n\nJa, i blå.\n-- \nS"
    assert trim_reply(bottom) == "Ja, i blå."


def test_html_replies_become_text_without_the_quoted_mail() -> None:
    markup = (
        "<div dir='ltr'>Tak for &aelig;ndringen!<br>Hilsen S&oslash;ren</div>"
        "<div class='gmail_quote'><div>On Mon ... wrote:</div>"
        "<blockquote>Hej <b>Søren</b></blockquote></div>"
    )
    assert html_to_text(markup) == "Tak for ændringen!\nHilsen Søren"


# Mails for the tests.


def reply_mail(
    to: str,
    body: str,
    *,
    sender: str = "Søren Ærø <soren@example.dk>",
    html: str | None = None,
    **headers: str,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Re: We have received your message"
    message["Message-ID"] = make_msgid(domain="example.dk")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


def deliver(client: t.Any, raw: bytes, secret: str = SECRET, **sign: t.Any) -> t.Any:
    return client.post(
        WEBHOOK,
        data=raw,
        headers={
            "Content-Type": "message/rfc822",
            **sign_webhook(secret, raw, **sign),
        },
    )


@pytest.fixture
def offline_message(
    app: Flask, smtp: SMTPServer, make_operator: t.Callable[..., t.Any]
) -> t.Any:
    """An offline message, mailed to Jens and to the customer."""
    make_operator(name="Jens", email="jens@shop.example", receives_offline=True)
    answer = app.test_client().post(
        "/livehelp/offline/message",
        json={
            "id": "q1",
            "body": QUESTION,
            "name": "Søren Ærø",
            "email": "soren@example.dk",
            "website": "",
        },
    )
    assert answer.status_code == 201
    smtp.wait_for(2)
    with app.app_context():
        state = get_state(app)
        conversation = state.conversations.get(answer.json["conversation"])
        state.db.session.expunge(conversation)
    return conversation


def texts(app: Flask, conversation_id: int) -> list[tuple[str, str, str]]:
    with app.app_context():
        messages = get_state(app).conversations.messages_after(conversation_id, 0)
        return [(m.author, m.via, m.body) for m in messages if m.kind == "text"]


class Listener:
    """What the hub publishes on some channels, as panels and widgets get it."""

    def __init__(self, app: Flask, *channels: str) -> None:
        self.frames: list[dict[str, t.Any]] = []
        self._lock = threading.Lock()
        get_state(app).hub.subscribe(self._heard, *channels)

    def _heard(self, channel: str, text: str) -> None:
        with self._lock:
            self.frames.append(json.loads(text))

    def types(self) -> list[tuple[str, str | None]]:
        with self._lock:
            return [(f["type"], f.get("via")) for f in self.frames]


# The webhook.


def test_a_customers_reply_through_the_webhook_joins_its_conversation(
    app: Flask, smtp: SMTPServer, offline_message: t.Any
) -> None:
    address = f"reply+{offline_message.reply_token}@shop.example"
    listener = Listener(app, conversation_channel(offline_message.id), STAFF_CHANNEL)
    raw = reply_mail(
        address,
        "Størrelse L, tak.\n\nOn Mon, Nordlys wrote:\n> Hej Søren\n> Ja.\n-- \nSøren",
    )
    answer = deliver(app.test_client(), raw)
    assert answer.status_code == 200
    assert answer.json["outcome"] == "appended"
    assert answer.json["conversation"] == offline_message.id
    assert texts(app, offline_message.id) == [
        ("visitor", "chat", QUESTION),
        ("visitor", "email", "Størrelse L, tak."),
    ]
    # Panels hear of it at once, like of any other message.
    assert ("message", "email") in listener.types()
    assert ("reply", None) in listener.types()
    # The staff get it by mail too, with the reply address to answer it.
    [*_, forwarded] = smtp.wait_for(3)
    assert forwarded.recipients == ["jens@shop.example"]
    assert forwarded.message["Subject"] == "Søren Ærø replied"
    assert "Størrelse L, tak." in text_of(forwarded.message)
    assert "Hej Søren" not in text_of(forwarded.message)
    assert forwarded.message["Reply-To"] == address

    # The relay sends it again: stored once, mailed once.
    again = deliver(app.test_client(), raw)
    assert again.json["outcome"] == "duplicate"
    get_state(app).mail.wait_idle()
    assert len(texts(app, offline_message.id)) == 2
    assert len(smtp.deliveries) == 3


def test_a_staff_reply_by_mail_reaches_the_customer_and_the_transcript(
    app: Flask, smtp: SMTPServer, offline_message: t.Any
) -> None:
    address = f"reply+{offline_message.reply_token}@shop.example"
    raw = reply_mail(
        address,
        "Hej Søren, det kan du sagtens.\n\nDen 3. nov. 2026 skrev Søren:\n> Kan jeg",
        sender="Jens <jens@shop.example>",
    )
    assert deliver(app.test_client(), raw).json["outcome"] == "appended"
    assert texts(app, offline_message.id)[-1] == (
        "operator",
        "email",
        "Hej Søren, det kan du sagtens.",
    )
    [*_, answer] = smtp.wait_for(3)
    assert answer.recipients == ["soren@example.dk"]
    assert "Hej Søren, det kan du sagtens." in text_of(answer.message)
    assert answer.message["Reply-To"] == address
    with app.app_context():
        conversation = get_state(app).conversations.get(offline_message.id)
        assert conversation.answered_at is not None


def test_a_reply_to_our_message_id_threads_back_without_a_reply_address(
    app: Flask, smtp: SMTPServer, offline_message: t.Any
) -> None:
    # The customer answered the copy, which went to the shop's own mailbox.
    copy = smtp.to("soren@example.dk")[0].message
    raw = reply_mail(
        "kundeservice@shop.example",
        "Og i rød?",
        In_Reply_To=copy["Message-ID"],
        References=copy["References"] + " " + copy["Message-ID"],
    )
    assert deliver(app.test_client(), raw).json["outcome"] == "appended"
    assert texts(app, offline_message.id)[-1] == ("visitor", "email", "Og i rød?")
    smtp.wait_for(3)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto_Submitted": "auto-replied"}, "automatic"),
        ({"Precedence": "bulk"}, "automatic"),
        ({"X_LiveHelp_Mail": "copy"}, "own-mail"),
    ],
)
def test_auto_replies_and_our_own_mails_are_not_appended(
    app: Flask,
    smtp: SMTPServer,
    offline_message: t.Any,
    headers: dict[str, str],
    reason: str,
) -> None:
    address = f"reply+{offline_message.reply_token}@shop.example"
    raw = reply_mail(address, "Jeg er på ferie til mandag.", **headers)
    answer = deliver(app.test_client(), raw)
    assert answer.json == {
        "ok": True,
        "outcome": "ignored",
        "reason": reason,
        "conversation": None,
    }
    assert len(texts(app, offline_message.id)) == 1


def test_a_mailed_reply_is_kept_as_plain_text_and_a_blank_one_not_at_all(
    app: Flask, smtp: SMTPServer, offline_message: t.Any
) -> None:
    address = f"reply+{offline_message.reply_token}@shop.example"
    blank = reply_mail(address, "\u200b\ufeff\u2060\n")
    assert deliver(app.test_client(), blank).json["outcome"] == "ignored"
    # A byte no charset decodes in the sender's name, and control characters.
    raw = reply_mail(address, "Stø\x85rrelse\x1b[31m L").replace(
        b"From: ", b"From: S\xf8ren\x85 ", 1
    )
    answer = deliver(app.test_client(), raw)
    assert (answer.status_code, answer.json["outcome"]) == (200, "appended")
    [*_, (author, via, body)] = texts(app, offline_message.id)
    assert (author, via, body) == ("visitor", "email", "Størrelse[31m L")


def test_a_reply_to_an_unknown_token_is_not_appended_anywhere(
    app: Flask, smtp: SMTPServer, offline_message: t.Any
) -> None:
    raw = reply_mail(f"reply+{'0' * 32}@shop.example", "Hej?")
    assert deliver(app.test_client(), raw).json["reason"] == "no-conversation"
    assert len(texts(app, offline_message.id)) == 1


def test_the_webhook_refuses_a_wrong_or_stale_signature(
    app: Flask, smtp: SMTPServer, offline_message: t.Any
) -> None:
    raw = reply_mail(f"reply+{offline_message.reply_token}@shop.example", "Hej")
    client = app.test_client()
    assert deliver(client, raw, secret="guessed").status_code == 403
    stale = deliver(client, raw, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 403
    unsigned = client.post(WEBHOOK, data=raw)
    assert unsigned.status_code == 403
    assert len(texts(app, offline_message.id)) == 1


def test_the_webhook_reads_no_more_than_a_mail_can_be(
    app: Flask, offline_message: t.Any
) -> None:
    address = f"reply+{offline_message.reply_token}@shop.example"
    raw = reply_mail(address, "x" * (MAX_INBOUND_BYTES + 1))
    assert deliver(app.test_client(), raw).status_code == 413
    # Also when the relay does not say how long it is beforehand.
    chunked = app.test_client().post(
        WEBHOOK,
        input_stream=io.BytesIO(raw),
        headers={"Content-Type": "message/rfc822", **sign_webhook(SECRET, raw)},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert chunked.status_code == 413
    assert len(texts(app, offline_message.id)) == 1


@pytest.mark.livehelp(inbound_secret=None)
def test_without_a_secret_there_is_no_webhook(app: Flask) -> None:
    raw = reply_mail("reply+x@shop.example", "Hej")
    assert deliver(app.test_client(), raw, secret="anything").status_code == 404


def test_the_webhook_works_beside_the_hosts_csrf_protection(shop: Flask) -> None:
    # The example shop protects every form with Flask-WTF's CSRFProtect; the
    # webhook proves itself by its signature instead, and is let through.
    shop.config["LIVEHELP_INBOUND_SECRET"] = SECRET
    raw = reply_mail(f"reply+{'0' * 32}@shop.example", "Tak!")
    answer = deliver(shop.test_client(), raw)
    assert answer.status_code == 200
    assert answer.json["reason"] == "no-conversation"
    # Its other forms are still protected.
    assert shop.test_client().post("/livehelp/offline/message").status_code == 400


# IMAP, against Dovecot.


def test_replies_are_fetched_from_the_imap_mailbox(
    app: Flask,
    smtp: SMTPServer,
    imap_server: IMAPServer,
    offline_message: t.Any,
) -> None:
    app.config["LIVEHELP_IMAP_URL"] = imap_server.url
    address = f"reply+{offline_message.reply_token}@shop.example"
    imap_server.deliver(
        reply_mail(address, "Jeg henter den i morgen.\n\n> gammel tekst")
    )
    imap_server.deliver(reply_mail("someone@shop.example", "Reklame uden token"))
    assert imap_server.unseen() == 2

    result = app.test_cli_runner().invoke(args=["livehelp", "fetch-mail"])
    assert result.exit_code == 0, result.output
    assert "1 appended" in result.output and "1 ignored" in result.output
    assert texts(app, offline_message.id)[-1] == (
        "visitor",
        "email",
        "Jeg henter den i morgen.",
    )
    # Handled mails are marked read; fetching again finds nothing new.
    assert imap_server.unseen() == 0
    again = app.test_cli_runner().invoke(args=["livehelp", "fetch-mail"])
    assert "No new mail." in again.output
    assert len(texts(app, offline_message.id)) == 2
    smtp.wait_for(3)


def test_the_background_loop_fetches_mail_when_imap_is_set_up(
    tmp_path: t.Any, imap_server: IMAPServer, smtp_server: SMTPServer
) -> None:
    # An app configured for IMAP from the start, as a shop's would be.
    from flask_sqlalchemy import SQLAlchemy

    from conftest import make_app
    from flask_livehelp import LiveHelp

    db = SQLAlchemy()
    app = make_app(
        f"sqlite:///{tmp_path / 'imap.sqlite3'}",
        db,
        LiveHelp(db=db),
        imap_url=imap_server.url,
        reply_address="reply+{token}@shop.example",
    )
    smtp_server.serve(app)
    state = get_state(app)
    assert "fetch-mail" in state.jobs.names()
    with app.app_context():
        visitor, _ = state.visitors.create(
            ip_address="127.0.0.1", user_agent="test", locale="da"
        )
        conversation, _ = state.conversations.add_offline(
            visitor.id,
            client_id="o1",
            body="Hej",
            name=None,
            email="kunde@example.dk",
            consent=False,
            page=None,
            locale="da",
            department_id=None,
            reply_token="f" * 32,
        )
        state.db.session.commit()
        conversation_id = conversation.id
    imap_server.deliver(reply_mail(f"reply+{'f' * 32}@shop.example", "Svar via IMAP"))
    state.jobs.run(app, "fetch-mail")
    assert texts(app, conversation_id)[-1] == ("visitor", "email", "Svar via IMAP")
    assert imap_server.unseen() == 0
    state.mail.wait_idle()
