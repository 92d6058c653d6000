"""The offline form and answers by mail, against a real SMTP server (aiosmtpd).

The customer's message is stored first, then mailed to the staff who receive
offline messages and a copy to the customer; an operator answers it from the
panel. Every refusal says why, and nothing is stored or sent for it.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

import pytest
import sqlalchemy as sa
from babel.dates import format_datetime
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from conftest import login
from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp import signals
from flask_livehelp.errors import Refused
from mailservers import html_of
from mailservers import SMTPServer
from mailservers import text_of
from staff import csrf_in

URL = "/livehelp/offline/message"
QUESTION = "Hej! Har I regnjakken i blå, størrelse M? Jeg vil gerne hente den på Ærø."


def post(client: t.Any, **fields: t.Any) -> t.Any:
    body = {
        "id": "m1",
        "body": QUESTION,
        "name": "Søren Ærø",
        "email": "soren@example.dk",
        "consent": True,
        "page": "https://shop.example/product/regnjakke-blaa",
        "department": None,
        "website": "",
    }
    body.update(fields)
    headers = {}
    if "token" in body:
        headers["X-LiveHelp-Token"] = body.pop("token")
    return client.post(URL, json=body, headers=headers)


@pytest.fixture
def receivers(make_operator: t.Callable[..., t.Any]) -> dict[str, t.Any]:
    return {
        "mette": make_operator(
            name="Mette", email="mette@shop.example", receives_offline=True, locale="da"
        ),
        "jens": make_operator(
            name="Jens", email="jens@shop.example", receives_offline=True
        ),
        "quiet": make_operator(name="Quiet", email="quiet@shop.example"),
    }


def outbox(app: Flask) -> list[t.Any]:
    with app.app_context():
        state = get_state(app)
        rows = state.db.session.execute(sa.select(state.models.mail)).scalars()
        return [(m.kind, m.status, sorted(m.recipients)) for m in rows]


def conversations(app: Flask) -> list[t.Any]:
    with app.app_context():
        state = get_state(app)
        model = state.models.conversation
        return list(state.db.session.execute(sa.select(model)).scalars())


@pytest.mark.livehelp(offline_mailbox="kundeservice@shop.example")
def test_an_offline_message_reaches_the_staff_and_the_customer(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    client = app.test_client()
    answer = post(client)
    assert answer.status_code == 201
    assert answer.json["ok"] is True
    conversation_id = answer.json["conversation"]
    assert answer.json["token"]

    # Mette reads Danish, Jens and the central mailbox the default (English):
    # one mail per language, and the customer's copy.
    deliveries = smtp.wait_for(3)
    assert sorted(r for d in deliveries for r in d.recipients) == [
        "jens@shop.example",
        "kundeservice@shop.example",
        "mette@shop.example",
        "soren@example.dk",
    ]
    [copy] = smtp.to("soren@example.dk")
    [danish] = smtp.to("mette@shop.example")
    [english] = smtp.to("jens@shop.example")
    assert smtp.to("kundeservice@shop.example") == [english]

    subjects = [
        (danish, "Offlinebesked fra Søren Ærø"),
        (english, "Offline message from Søren Ærø"),
    ]
    for staff, subject in subjects:
        message = staff.message
        assert message["From"] == "shop@example.com"
        # No reply address is set up: a plain reply goes to the customer.
        assert message["Reply-To"] == "soren@example.dk"
        assert message["Subject"] == subject
        assert message["Auto-Submitted"] == "auto-generated"
        assert QUESTION in text_of(message)
        assert "https://shop.example/product/regnjakke-blaa" in text_of(message)
        assert QUESTION in html_of(message)
        assert staff.sender == "shop@example.com"
    assert copy.message["Subject"] == "We have received your message"
    assert QUESTION in text_of(copy.message)
    assert copy.message["Reply-To"] == "kundeservice@shop.example"

    # Staff mails are in the staff member's language, the copy in the customer's.
    [conversation] = conversations(app)
    assert conversation.id == conversation_id
    assert conversation.status == "missed" and conversation.origin == "offline"
    # The time the customer wrote, which may be a second after the chat began.
    with app.app_context():
        [said] = get_state(app).conversations.messages_after(conversation.id, 0)
    assert _moment(said.created_at, "da") in text_of(danish.message)
    assert _moment(said.created_at, "en") in text_of(english.message)
    # Every mail of the conversation names its token, so replies thread back.
    for delivery in deliveries:
        assert conversation.reply_token in delivery.message["References"]
    assert sorted(outbox(app)) == [
        ("copy", "sent", ["soren@example.dk"]),
        ("offline", "sent", ["jens@shop.example", "kundeservice@shop.example"]),
        ("offline", "sent", ["mette@shop.example"]),
    ]


def _moment(moment: dt.datetime, lang: str) -> str:
    return format_datetime(moment, "medium", tzinfo=dt.UTC, locale=lang)


@pytest.mark.livehelp(reply_address="reply+{token}@shop.example")
def test_with_a_reply_address_every_reply_comes_back_through_it(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    assert post(app.test_client()).status_code == 201
    deliveries = smtp.wait_for(3)
    [conversation] = conversations(app)
    reply_address = f"reply+{conversation.reply_token}@shop.example"
    for delivery in deliveries:
        assert delivery.message["Reply-To"] == reply_address
        # Replies are cut above this line when they come back; in any
        # language, the line starts with "##-".
        assert any(
            line.startswith("##- ") and line.endswith(" -##")
            for line in text_of(delivery.message).splitlines()
        )


def test_the_visitors_text_is_escaped_in_html_mail(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    body = '<script>alert("x")</script> & <b>bold</b>'
    assert post(app.test_client(), body=body, name="<i>Eve</i>").status_code == 201
    [staff, *_] = smtp.wait_for(3)
    html = html_of(staff.message)
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;i&gt;Eve&lt;/i&gt;" in html
    # The text part is plain text: exactly what was written.
    assert body in text_of(staff.message)


def test_a_resend_answers_the_same_and_stores_and_mails_nothing_again(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    client = app.test_client()
    first = post(client)
    smtp.wait_for(3)
    token = first.json["token"]
    # The same message again: with the token the answer gave, and without it
    # (when that answer never arrived).
    again = post(client, token=token)
    lost = post(client)
    for answer in (again, lost):
        assert answer.status_code == 201
        assert answer.json["conversation"] == first.json["conversation"]
    get_state(app).mail.wait_idle()
    assert len(conversations(app)) == 1
    assert len(outbox(app)) == 3
    assert len(smtp.deliveries) == 3


def test_the_visitors_token_attaches_the_message_to_them(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    client = app.test_client()
    first = post(client, id="a1")
    second = post(client, id="a2", token=first.json["token"])
    assert second.status_code == 201
    assert "token" not in second.json
    first_conversation, second_conversation = conversations(app)
    assert first_conversation.visitor_id == second_conversation.visitor_id
    smtp.wait_for(6)


def test_received_signal_fires_once_the_message_is_stored(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    heard = []

    def receiver(sender: Flask, conversation: t.Any, message: t.Any) -> None:
        heard.append((sender, conversation.id, message.body))

    with signals.offline_message_received.connected_to(receiver):
        answer = post(app.test_client())
    assert heard == [(app, answer.json["conversation"], QUESTION)]
    smtp.wait_for(3)


@pytest.mark.parametrize(
    ("fields", "status", "code", "text"),
    [
        (
            {"name": "Eve\r\nBcc: victim@example.com"},
            400,
            "bad-field",
            "The name must be on one line.",
        ),
        (
            {"email": "eve@example.com\r\nBcc: victim@example.com"},
            400,
            "bad-email",
            "The e-mail address must be on one line.",
        ),
        ({"email": "eve@example.com\n"}, 400, "bad-email", "on one line"),
        (
            {"email": "eve@example.com, victim@example.com"},
            400,
            "bad-email",
            "This is not a valid e-mail address.",
        ),
        (
            {"body": "x" * 4001},
            400,
            "too-long",
            "The message is longer than 4000 characters.",
        ),
        ({"name": "N" * 81}, 400, "too-long", "The name is longer than 80"),
        ({"body": "   "}, 400, "bad-field", "Write a message first."),
        ({"id": "not an id!"}, 400, "bad-field", "The message id is not valid."),
        ({"department": 99}, 400, "bad-field", "There is no such department."),
        ({"consent": "yes"}, 400, "bad-field", "consent has the wrong type"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_nothing_is_sent(
    app: Flask,
    smtp: SMTPServer,
    receivers: dict[str, t.Any],
    fields: dict[str, t.Any],
    status: int,
    code: str,
    text: str,
) -> None:
    answer = post(app.test_client(), **fields)
    assert answer.status_code == status
    assert answer.json["error"] == code
    assert text in answer.json["message"]
    assert conversations(app) == []
    assert outbox(app) == []
    assert smtp.deliveries == []


@pytest.mark.parametrize(
    ("typed", "kept", "mailed"),
    [
        ("o'brien@example.com", "o'brien@example.com", "o'brien@example.com"),
        # An internationalised domain goes out in its ASCII form (IDNA).
        ("kunde@bøger.dk", "kunde@bøger.dk", "kunde@xn--bger-gra.dk"),
        ("Kim.Jensen+shop@Example.COM", "Kim.Jensen+shop@example.com", None),
    ],
)
def test_every_real_address_is_taken_and_mailed(
    app: Flask,
    smtp: SMTPServer,
    receivers: dict[str, t.Any],
    typed: str,
    kept: str,
    mailed: str | None,
) -> None:
    answer = post(app.test_client(), email=typed)
    assert answer.status_code == 201, answer.json
    [conversation] = conversations(app)
    assert conversation.visitor_email == kept
    smtp.wait_for(3)
    [copy] = smtp.to(mailed or kept)
    assert QUESTION in text_of(copy.message)


def test_a_bot_that_fills_the_hidden_field_is_answered_as_usual_and_dropped(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    """A 400 would tell the bot to try again without the field."""
    human = post(app.test_client(), id="m1")
    bot = post(app.test_client(), id="m2", website="http://cheap-pills.example")
    assert bot.status_code == human.status_code == 201
    assert set(bot.json) == set(human.json) and bot.json["ok"] is True
    # Alike in every field's kind, too.
    assert {k: type(v) for k, v in bot.json.items()} == {
        k: type(v) for k, v in human.json.items()
    }
    assert len(conversations(app)) == 1
    get_state(app).mail.wait_idle()
    assert all("cheap-pills" not in d.raw.decode() for d in smtp.deliveries)


def test_a_body_that_is_not_json_is_refused(app: Flask) -> None:
    answer = app.test_client().post(URL, data="body=hello")
    assert answer.status_code == 400
    assert answer.json["error"] == "bad-field"


def test_another_site_may_not_post_offline_messages(
    app: Flask, receivers: dict[str, t.Any]
) -> None:
    answer = app.test_client().post(
        URL,
        json={"id": "x1", "body": "hi", "website": ""},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert answer.json["error"] == "bad-origin"
    assert conversations(app) == []


@pytest.mark.livehelp(offline_per_hour=2)
def test_too_many_messages_from_one_visitor_or_address_are_refused(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    client = app.test_client()
    for number in (1, 2):
        assert post(client, id=f"n{number}").status_code == 201
    smtp.wait_for(6)
    # From the same IP address, without a token, and with another address.
    refused = post(client, id="n3", email="other@example.dk")
    assert refused.status_code == 429
    assert refused.json["error"] == "too-many"
    assert "wait an hour" in refused.json["message"]
    # From another IP address, but to the same inbox.
    elsewhere = app.test_client().post(
        URL,
        json={"id": "n4", "body": "hej", "email": "soren@example.dk", "website": ""},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert elsewhere.status_code == 429
    assert len(conversations(app)) == 2
    assert len(smtp.deliveries) == 6


def test_smtp_down_the_message_is_stored_and_goes_out_once_it_is_back(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    smtp.stop()
    answer = post(app.test_client())
    # Accepted: it is stored, whatever the mail server does.
    assert answer.status_code == 201
    state = get_state(app)
    state.mail.wait_idle()
    with app.app_context():
        mails = state.db.session.execute(sa.select(state.models.mail)).scalars().all()
        assert {(m.status, m.attempts) for m in mails} == {("pending", 1)}
        assert all("Connection refused" in m.last_error for m in mails)
        # The retry is later (backoff); pretend that time has come.
        state.db.session.execute(
            sa.update(state.models.mail).values(next_attempt_at=dt.datetime.now(dt.UTC))
        )
        state.db.session.commit()

    smtp.start()
    for _ in range(3):
        state.jobs.run(app, "send-mail")
    assert len(smtp.wait_for(3)) == 3
    assert sorted(r for d in smtp.deliveries for r in d.recipients) == [
        "jens@shop.example",
        "mette@shop.example",
        "soren@example.dk",
    ]
    assert {status for _, status, _ in outbox(app)} == {"sent"}


# Answering from the panel.


def _offline_message(app: Flask, **fields: t.Any) -> int:
    answer = post(app.test_client(), **fields)
    assert answer.status_code == 201
    return t.cast(int, answer.json["conversation"])


@pytest.mark.livehelp(mail_send_now="off")
def test_the_offline_pages_say_whether_the_customer_may_be_e_mailed(
    app: Flask, receivers: dict[str, t.Any]
) -> None:
    agreed = _offline_message(app)
    declined = _offline_message(
        app, id="m2", name="Ole", email="ole@example.dk", consent=False
    )
    client = app.test_client()
    login(client, "jens@shop.example")
    rows = re.findall(r"<tr>(.*?)</tr>", client.get("/livehelp/offline/").text, re.S)
    consent = {
        name: re.findall(r"<td>(Yes|No)</td>", row)
        for row in rows
        for name in ("Søren Ærø", "Ole")
        if name in row
    }
    assert consent == {"Søren Ærø": ["Yes"], "Ole": ["No"]}
    for conversation_id, said in ((agreed, "Yes"), (declined, "No")):
        page = client.get(f"/livehelp/offline/{conversation_id}").text
        assert re.search(r"May be e-mailed about the question</dt><dd>" + said, page), (
            said
        )


def test_an_operator_answers_an_offline_message_by_mail(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    conversation_id = _offline_message(app)
    smtp.wait_for(3)
    client = app.test_client()
    login(client, "jens@shop.example")

    listing = client.get("/livehelp/offline/")
    assert listing.status_code == 200
    assert "Søren Ærø" in listing.text
    assert QUESTION[:60] in listing.text
    page = client.get(f"/livehelp/offline/{conversation_id}")
    assert QUESTION in page.text
    form_id = re.search(r'name="form_id" value="([^"]+)"', page.text).group(1)

    reply = "Hej Søren, ja - vi har den i blå, størrelse M. Venlig hilsen Jens"
    data = {"body": reply, "form_id": form_id, "_lh_csrf": csrf_in(page.text)}
    done = client.post(f"/livehelp/offline/{conversation_id}/answer", data=data)
    assert done.status_code == 302
    # A double click sends the same form again: still one answer.
    client.post(f"/livehelp/offline/{conversation_id}/answer", data=data)

    [*_, answer] = smtp.wait_for(4)
    assert answer.recipients == ["soren@example.dk"]
    assert answer.message["Subject"] == "Answer to your message"
    assert reply in text_of(answer.message)
    assert "Jens" in text_of(answer.message)
    get_state(app).mail.wait_idle()
    assert len(smtp.deliveries) == 4

    # It is in the transcript, and the message now counts as answered.
    page = client.get(f"/livehelp/offline/{conversation_id}")
    assert reply in page.text
    assert "by e-mail" in page.text
    assert "Søren Ærø" not in client.get("/livehelp/offline/").text
    assert "Søren Ærø" in client.get("/livehelp/offline/?show=answered").text
    with app.app_context():
        messages = get_state(app).conversations.messages_after(conversation_id, 0)
        assert [(m.author, m.via, m.body) for m in messages] == [
            ("visitor", "chat", QUESTION),
            ("operator", "email", reply),
        ]


def test_an_answer_needs_the_customers_address(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    conversation_id = _offline_message(app, email=None)
    smtp.wait_for(2)
    client = app.test_client()
    login(client, "jens@shop.example")
    page = client.get(f"/livehelp/offline/{conversation_id}")
    assert "gave no e-mail address" in page.text
    refused = client.post(
        f"/livehelp/offline/{conversation_id}/answer",
        data={"body": "Mit svar", "_lh_csrf": csrf_in(page.text)},
    )
    assert refused.status_code == 400
    assert "The customer left no e-mail address" in refused.text
    get_state(app).mail.wait_idle()
    assert len(smtp.deliveries) == 2


def test_a_refused_answer_keeps_what_was_written(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    conversation_id = _offline_message(app)
    smtp.wait_for(3)
    client = app.test_client()
    login(client, "jens@shop.example")
    page = client.get(f"/livehelp/offline/{conversation_id}")
    long_answer = "Mit lange svar " * 300
    refused = client.post(
        f"/livehelp/offline/{conversation_id}/answer",
        data={"body": long_answer, "_lh_csrf": csrf_in(page.text)},
    )
    assert refused.status_code == 400
    assert "The message is longer than 4000 characters." in refused.text
    assert long_answer.strip() in refused.text
    get_state(app).mail.wait_idle()
    assert len(smtp.deliveries) == 3


def test_the_answer_form_needs_the_panels_csrf_token(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    conversation_id = _offline_message(app)
    smtp.wait_for(3)
    client = app.test_client()
    login(client, "jens@shop.example")
    refused = client.post(
        f"/livehelp/offline/{conversation_id}/answer", data={"body": "Svar"}
    )
    assert refused.status_code == 400
    get_state(app).mail.wait_idle()
    assert len(smtp.deliveries) == 3


def test_operators_see_only_their_departments_offline_messages(
    app: Flask, smtp: SMTPServer, make_operator: t.Callable[..., t.Any]
) -> None:
    with app.app_context():
        state = get_state(app)
        shoes = state.models.department(name="Sko", email="sko@shop.example")
        coats = state.models.department(name="Jakker")
        state.db.session.add_all([shoes, coats])
        state.db.session.commit()
        shoes_id, coats_id = shoes.id, coats.id
        clerk = state.operators.create_operator(
            name="Kim", email="kim@shop.example", password="correct horse"
        )
        clerk.departments = [coats]
        state.db.session.commit()
    conversation_id = _offline_message(app, department=shoes_id)
    # The department's own address gets it (nobody else receives offline mail).
    [staff, copy] = sorted(smtp.wait_for(2), key=lambda d: d.recipients)
    assert staff.recipients == ["sko@shop.example"]

    client = app.test_client()
    login(client, "kim@shop.example")
    assert "Søren Ærø" not in client.get("/livehelp/offline/").text
    assert client.get(f"/livehelp/offline/{conversation_id}").status_code == 403
    assert coats_id


def test_a_chat_nobody_took_is_mailed_like_an_offline_message_once(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    with app.app_context():
        state = get_state(app)
        visitor, _ = state.visitors.create(
            ip_address="127.0.0.1", user_agent="test", locale="da"
        )
        conversation, _ = state.conversations.start(
            visitor.id,
            client_id="c1",
            body="Er der nogen?",
            email="kunde@example.dk",
            locale="da",
        )
        state.conversations.finish(conversation.id, by="timeout", only="queued")
        assert state.offline.mail_timed_out(conversation.id)
        assert state.offline.mail_timed_out(conversation.id) == []
        conversation_id = conversation.id
    deliveries = smtp.wait_for(3)
    [staff] = smtp.to("jens@shop.example")
    assert staff.message["Subject"] == "Missed chat from a customer"
    assert "Er der nogen?" in text_of(staff.message)
    [copy] = smtp.to("kunde@example.dk")
    # The customer wrote in Danish, so their copy is Danish.
    assert "Ingen kunne tage din chat i tide" in text_of(copy.message)
    get_state(app).mail.wait_idle()
    assert len(smtp.deliveries) == len(deliveries) == 3

    # It is listed with the offline messages, to be answered by mail.
    client = app.test_client()
    login(client, "jens@shop.example")
    assert (
        f"/livehelp/offline/{conversation_id}" in client.get("/livehelp/offline/").text
    )


def test_a_transcript_goes_to_the_address_on_file_and_not_too_often(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    conversation_id = _offline_message(app)
    smtp.wait_for(3)
    with app.app_context():
        offline = get_state(app).offline
        for _ in range(3):
            offline.queue_transcript(
                conversation_id, "soren@example.dk", requested_by="visitor"
            )
        with pytest.raises(Refused) as refused:
            offline.queue_transcript(
                conversation_id, "soren@example.dk", requested_by="visitor"
            )
        assert refused.value.code == "too-many"
    deliveries = smtp.wait_for(6)
    transcripts = [
        d for d in deliveries if d.message["X-LiveHelp-Mail"] == "transcript"
    ]
    assert len(transcripts) == 3
    assert QUESTION in text_of(transcripts[0].message)


def test_a_chat_transcript_mail_tells_what_happened_in_the_customers_language(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    with app.app_context():
        state = get_state(app)
        jens = state.operators.find_by_email("jens@shop.example")
        visitor, _ = state.visitors.create(
            ip_address="127.0.0.1", user_agent="test", locale="da"
        )
        conversation, _ = state.conversations.start(
            visitor.id,
            client_id="c1",
            body="Hvornår lukker I?",
            email="kunde@example.dk",
            locale="da",
        )
        state.conversations.accept(jens, conversation.id)
        state.conversations.post_by_operator(
            jens, conversation.id, client_id="o1", body="Klokken 17."
        )
        state.conversations.end(conversation.id, by="operator", operator=jens)
        state.offline.queue_transcript(
            conversation.id, "kunde@example.dk", requested_by="visitor"
        )
        created = conversation.created_at
    [transcript] = smtp.wait_for(1)
    text = text_of(transcript.message)
    assert "Hvornår lukker I?" in text and "Klokken 17." in text
    assert "Jens tog imod chatten." in text
    assert _moment(created, "da") in text
    assert "Jens tog imod chatten." in html_of(transcript.message)


def test_an_operators_own_transcript_copy_is_a_staff_mail(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    conversation_id = _offline_message(app)
    smtp.wait_for(3)
    with app.app_context():
        state = get_state(app)
        mette = state.operators.find_by_email("mette@shop.example")
        conversation = state.conversations.get(conversation_id)
        state.conversations.add_event(
            conversation, "note", staff_only=True, operator=mette
        )
        state.db.session.commit()
        state.offline.queue_transcript(
            conversation_id, "mette@shop.example", requested_by=mette
        )
        created = conversation.created_at
    [*_, copy] = smtp.wait_for(4)
    assert copy.recipients == ["mette@shop.example"]
    assert copy.message["Reply-To"] is None
    text = text_of(copy.message)
    assert QUESTION in text
    # Staff-only lines are for staff; Mette reads Danish.
    assert "* note" in text
    assert _moment(created, "da") in text


def test_the_widget_is_told_only_what_mail_will_really_do(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    client = app.test_client()
    assert post(client, id="m1").json["mailed"] == "soren@example.dk"
    # No address: nothing can be promised by mail.
    assert post(client, id="m2", email=None).json["mailed"] is None
    # No sender address: mail waits in the outbox and is promised to nobody.
    app.extensions["mail"].default_sender = None
    answer = post(client, id="m3", email="kim@example.dk")
    assert answer.status_code == 201 and answer.json["mailed"] is None


def test_mails_written_before_the_shop_set_a_sender_go_out_once_it_is_set(
    app: Flask, smtp: SMTPServer, receivers: dict[str, t.Any]
) -> None:
    app.extensions["mail"].default_sender = None
    assert post(app.test_client()).status_code == 201
    state = get_state(app)
    state.mail.wait_idle()
    # Nothing can go out, and nothing is given up either: they wait.
    assert {status for _, status, _ in outbox(app)} == {"pending"}
    assert smtp.deliveries == []
    app.config["LIVEHELP_MAIL_SENDER"] = "Butikken <butik@shop.example>"
    state.jobs.run(app, "send-mail")
    deliveries = smtp.wait_for(3)
    assert {d.sender for d in deliveries} == {"butik@shop.example"}
    assert {status for _, status, _ in outbox(app)} == {"sent"}


def test_a_shop_without_a_sender_hears_of_it_at_once(
    database_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_uri, SECRET_KEY="x")
    db = SQLAlchemy()
    db.init_app(app)
    with caplog.at_level("WARNING", logger="flask_livehelp"):
        LiveHelp(app, db=db)
    assert any("cannot send mail: no sender" in r.getMessage() for r in caplog.records)
