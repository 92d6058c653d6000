"""The outbox, against a real SMTP server (aiosmtpd).

A mail is stored with what caused it, marked sent only once the server took
it, retried with backoff while the server is away, and after too many
failures shown to admins with the error.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from conftest import login
from flask_livehelp import get_state
from flask_livehelp.errors import Refused
from mailservers import html_of
from mailservers import SMTPServer
from mailservers import text_of
from staff import csrf_in

SUBJECT = "Ny besked fra kunden: Æbleskiver på lager?"
TEXT = "Hej! Har I æbleskivepander? Mvh Søren Ærø"


def queue(state: t.Any, to: str = "butik@shop.example", **options: t.Any) -> t.Any:
    return state.mail.queue("offline", [to], SUBJECT, TEXT, f"<p>{TEXT}</p>", **options)


def rows(state: t.Any) -> list[t.Any]:
    model = state.models.mail
    return list(state.db.session.execute(sa.select(model).order_by(model.id)).scalars())


def due_now(state: t.Any) -> None:
    """Let the backoff pass: the next attempt is due now."""
    model = state.models.mail
    state.db.session.execute(
        sa.update(model).values(next_attempt_at=dt.datetime.now(dt.UTC))
    )
    state.db.session.commit()


def test_a_mail_exists_only_if_what_caused_it_was_committed(
    state: t.Any, smtp: SMTPServer
) -> None:
    queue(state)
    state.db.session.rollback()
    assert rows(state) == []
    queue(state)
    state.db.session.commit()
    [mail] = rows(state)
    assert (mail.status, mail.attempts) == ("pending", 0)


def test_a_queued_mail_is_sent_with_its_headers_and_marked_sent(
    state: t.Any, smtp: SMTPServer
) -> None:
    mail = queue(
        state,
        reply_to="kunde@example.dk",
        headers={"Auto-Submitted": "auto-generated"},
    )
    state.db.session.commit()
    assert state.mail.send_due() == 1
    [delivery] = smtp.wait_for(1)
    message = delivery.message
    assert delivery.recipients == ["butik@shop.example"]
    assert message["Subject"] == SUBJECT
    assert message["From"] == "shop@example.com"
    assert message["Reply-To"] == "kunde@example.dk"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-LiveHelp-Mail"] == "offline"
    assert message["Message-ID"] == mail.headers["Message-ID"]
    assert text_of(message).strip() == TEXT
    assert html_of(message).strip() == f"<p>{TEXT}</p>"
    state.db.session.refresh(mail)
    assert (mail.status, mail.attempts, mail.last_error) == ("sent", 1, None)
    assert mail.sent_at is not None
    # Sent is sent: the job does not send it again.
    assert state.mail.send_due() == 0
    assert len(smtp.deliveries) == 1


def test_a_mail_being_sent_by_one_process_is_not_sent_by_another(
    state: t.Any, smtp: SMTPServer
) -> None:
    mail = queue(state)
    state.db.session.commit()
    # One sender has claimed it (and is talking to the server right now).
    assert state.mail._claim(mail.id)
    assert state.mail.send_due() == 0
    assert state.mail.send_ids([mail.id]) == 0
    assert smtp.deliveries == []


def test_while_smtp_is_down_mails_wait_with_backoff_and_go_out_once(
    state: t.Any, app: Flask, smtp: SMTPServer
) -> None:
    smtp.stop()
    for number in range(3):
        queue(state, to=f"kunde{number}@example.dk")
    state.db.session.commit()
    before = dt.datetime.now(dt.UTC)
    assert state.mail.send_due() == 0
    mails = rows(state)
    assert {(m.status, m.attempts) for m in mails} == {("pending", 1)}
    assert all("Connection refused" in m.last_error for m in mails)
    # Nothing is due again before the backoff has passed.
    assert all(m.next_attempt_at >= before + dt.timedelta(seconds=29) for m in mails)
    assert state.mail.send_due() == 0

    due_now(state)
    state.mail.send_due()
    second = {m.next_attempt_at - before for m in rows(state)}
    # The wait doubles with every failure.
    assert all(wait >= dt.timedelta(seconds=59) for wait in second)

    smtp.start()
    due_now(state)
    assert state.mail.send_due() == 3
    assert state.mail.send_due() == 0
    assert sorted(r for d in smtp.wait_for(3) for r in d.recipients) == [
        "kunde0@example.dk",
        "kunde1@example.dk",
        "kunde2@example.dk",
    ]
    assert {(m.status, m.attempts) for m in rows(state)} == {("sent", 3)}


@pytest.mark.livehelp(mail_max_attempts=2)
def test_after_too_many_failures_a_mail_is_failed_and_admins_see_why(
    app: Flask, smtp: SMTPServer, make_operator: t.Callable[..., t.Any]
) -> None:
    make_operator(name="Admin", email="admin@shop.example", role="admin")
    make_operator(name="Clerk", email="clerk@shop.example")
    smtp.stop()
    with app.app_context():
        state = get_state(app)
        queue(state, to="kunde@example.dk")
        state.db.session.commit()
        state.mail.send_due()
        due_now(state)
        state.mail.send_due()
        [mail] = rows(state)
        assert (mail.status, mail.attempts) == ("failed", 2)
        mail_id = mail.id
        # Failed mails are not tried again by the loop.
        due_now(state)
        assert state.mail.send_due() == 0

    clerk = app.test_client()
    login(clerk, "clerk@shop.example")
    assert clerk.get("/livehelp/offline/outbox").status_code == 403

    admin = app.test_client()
    login(admin, "admin@shop.example")
    assert "1 mail could not be sent." in admin.get("/livehelp/offline/").text
    page = admin.get("/livehelp/offline/outbox")
    assert page.status_code == 200
    assert "kunde@example.dk" in page.text
    assert "Connection refused" in page.text
    assert SUBJECT in page.text

    # The admin fixed the mail server and sends it again.
    smtp.start()
    token = csrf_in(page.text)
    sent_again = admin.post(
        f"/livehelp/offline/outbox/{mail_id}/retry", data={"_lh_csrf": token}
    )
    assert sent_again.status_code == 302
    [delivery] = smtp.wait_for(1)
    assert delivery.recipients == ["kunde@example.dk"]
    # Marked sent once the server took it; until then it is being sent.
    get_state(app).mail.wait_idle()
    assert "Every mail went out." in admin.get("/livehelp/offline/outbox").text


def test_a_mail_the_server_refuses_for_good_fails_at_once(
    state: t.Any, smtp: SMTPServer
) -> None:
    smtp.refuse.add("nobody@shop.example")
    queue(state, to="nobody@shop.example")
    queue(state, to="somebody@shop.example")
    state.db.session.commit()
    # The refusal of one mail does not hold up the next.
    assert state.mail.send_due() == 1
    refused, accepted = rows(state)
    assert refused.status == "failed"
    assert "No such mailbox here" in refused.last_error
    assert accepted.status == "sent"
    assert [d.recipients for d in smtp.wait_for(1)] == [["somebody@shop.example"]]


@pytest.mark.parametrize(
    "address",
    [
        "kunde@example.dk\r\nBcc: victim@example.com",
        "kunde@example.dk\n",
        "Kunde <kunde@example.dk>",
        "kunde@example.dk, victim@example.com",
        "not an address",
    ],
)
def test_addresses_must_be_one_plain_address(state: t.Any, address: str) -> None:
    with pytest.raises(Refused) as refused:
        queue(state, to=address)
    assert refused.value.code == "bad-email"
    with pytest.raises(Refused):
        queue(state, reply_to=address)
    state.db.session.rollback()
    assert rows(state) == []


def test_a_header_value_is_one_line(state: t.Any) -> None:
    with pytest.raises(ValueError, match="not one safe line"):
        queue(state, headers={"In-Reply-To": "<a@b>\r\nBcc: victim@example.com"})


@pytest.mark.parametrize(
    "headers", [{"In-Reply-To": "<a@b>\n"}, {"X-Note\n": "hi"}], ids=["value", "name"]
)
def test_a_header_may_not_end_in_a_line_break(
    state: t.Any, headers: dict[str, str]
) -> None:
    # A regex's "$" matches before a final newline: the check must not use it.
    with pytest.raises(ValueError, match="not one safe line"):
        queue(state, headers=headers)


def test_without_flask_mail_mails_wait_in_the_outbox_and_admins_are_told(
    app: Flask, make_operator: t.Callable[..., t.Any]
) -> None:
    make_operator(name="Admin", email="admin@shop.example", role="admin")
    make_operator(name="Jens", email="jens@shop.example", receives_offline=True)
    # A host that never set up Flask-Mail.
    del app.extensions["mail"]
    client = app.test_client()
    answer = client.post(
        "/livehelp/offline/message",
        json={"id": "x1", "body": "Hej", "email": "kunde@example.dk", "website": ""},
    )
    assert answer.status_code == 201
    state = get_state(app)
    state.mail.wait_idle()
    with app.app_context():
        assert state.mail.send_due() == 0
        assert {(m.status, m.attempts) for m in rows(state)} == {("pending", 0)}
    login(client, "admin@shop.example")
    warning = "the shop has not set up Flask-Mail. 2 mails are waiting"
    assert warning in client.get("/livehelp/offline/").text
    assert warning in client.get("/livehelp/offline/outbox").text


@pytest.mark.livehelp(mail_send_now="inline")
def test_sent_right_away_before_the_answer_when_asked_to(
    app: Flask, smtp: SMTPServer, make_operator: t.Callable[..., t.Any]
) -> None:
    make_operator(name="Jens", email="jens@shop.example", receives_offline=True)
    answer = app.test_client().post(
        "/livehelp/offline/message",
        json={"id": "x1", "body": "Hej", "website": ""},
    )
    assert answer.status_code == 201
    # No waiting: the mail was accepted before the form got its answer.
    assert [d.recipients for d in smtp.deliveries] == [["jens@shop.example"]]


@pytest.mark.livehelp(mail_send_now="off")
def test_with_sending_now_off_the_background_job_sends(
    app: Flask, smtp: SMTPServer, make_operator: t.Callable[..., t.Any]
) -> None:
    make_operator(name="Jens", email="jens@shop.example", receives_offline=True)
    app.test_client().post(
        "/livehelp/offline/message",
        json={"id": "x1", "body": "Hej", "website": ""},
    )
    assert smtp.deliveries == []
    result = app.test_cli_runner().invoke(args=["livehelp", "send-mail"])
    assert "Sent 1 mails." in result.output
    assert [d.recipients for d in smtp.wait_for(1)] == [["jens@shop.example"]]


def is_sender(thread: threading.Thread) -> bool:
    return thread.name.startswith("livehelp-mail")


def test_a_burst_of_mails_is_sent_by_one_thread_over_one_connection(
    state: t.Any, smtp: SMTPServer
) -> None:
    """Thirty offline messages at once start one sender, not thirty."""
    # Other apps' senders (earlier tests) may still be about.
    before = set(filter(is_sender, threading.enumerate()))
    senders = []
    for number in range(30):
        mail = queue(state, to=f"kunde{number}@example.dk")
        state.db.session.commit()
        state.mail.send_soon([mail])
        senders.append(len(set(filter(is_sender, threading.enumerate())) - before))
    state.mail.wait_idle()
    assert max(senders) == 1
    assert len(smtp.wait_for(30)) == 30
    state.db.session.expire_all()
    assert {m.status for m in rows(state)} == {"sent"}


# A sender that dies.

DIE = """
import os, signal, sys
from deployed_app import app
from flask_livehelp import get_state
from flask_livehelp.services.mail import MailService

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

# Where the process dies: after the server took the mail ("_sent"), or
# after claiming the mails, before any went out ("_sending").
setattr(MailService, sys.argv[1], die)
with app.app_context():
    get_state().mail.send_due()
"""


def sender_that_dies(
    app: Flask, smtp: SMTPServer, where: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the outbox in another process that is killed (-9) at ``where``."""
    from deployment import TESTS

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "SHOP_SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "SHOP_MAIL_SERVER": "127.0.0.1",
        "SHOP_MAIL_PORT": str(smtp.port),
        "SHOP_MAIL_DEFAULT_SENDER": '"shop@example.com"',
        "SHOP_LIVEHELP_MAIL_CLAIM_SECONDS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", DIE, where], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    return done


@pytest.mark.livehelp(mail_claim_seconds=1)
def test_a_sender_killed_after_the_server_took_a_mail_sends_it_once_more_marked(
    app: Flask, state: t.Any, smtp: SMTPServer
) -> None:
    queue(state)
    state.db.session.commit()
    sender_that_dies(app, smtp, "_sent")
    [first] = smtp.wait_for(1)
    time.sleep(1.2)  # the dead process's claim runs out
    assert state.mail.send_due() == 1
    [_, again] = smtp.wait_for(2)
    # The same Message-ID, marked as a possible copy: a receiver keeps one.
    assert again.message["Message-ID"] == first.message["Message-ID"]
    assert first.message["X-LiveHelp-Resent"] is None
    assert again.message["X-LiveHelp-Resent"].startswith("after a crash")
    state.db.session.expire_all()
    [mail] = rows(state)
    assert (mail.status, mail.resent) == ("sent", True)
    assert state.mail.send_due() == 0
    assert len(smtp.deliveries) == 2


@pytest.mark.livehelp(mail_claim_seconds=1)
def test_never_a_third_time_after_two_crashes(
    app: Flask, state: t.Any, smtp: SMTPServer
) -> None:
    queue(state)
    state.db.session.commit()
    sender_that_dies(app, smtp, "_sent")
    time.sleep(1.2)
    sender_that_dies(app, smtp, "_sent")
    assert len(smtp.wait_for(2)) == 2
    time.sleep(1.2)
    assert state.mail.send_due() == 0
    state.db.session.expire_all()
    [mail] = rows(state)
    assert mail.status == "sent" and "Not sent a third time" in mail.last_error
    assert len(smtp.deliveries) == 2


@pytest.mark.livehelp(mail_claim_seconds=1)
def test_the_mails_a_dead_sender_claimed_go_out_within_its_claim_time(
    app: Flask, state: t.Any, smtp: SMTPServer
) -> None:
    for number in range(5):
        queue(state, to=f"kunde{number}@example.dk")
    state.db.session.commit()
    sender_that_dies(app, smtp, "_sending")
    state.db.session.expire_all()
    assert {m.claimed_by is not None for m in rows(state)} == {True}
    assert state.mail.send_due() == 0  # still claimed by the dead process
    time.sleep(1.2)
    assert state.mail.send_due() == 5
    assert len(smtp.wait_for(5)) == 5


@pytest.mark.livehelp(mail_claim_seconds=2)
def test_a_live_slow_sender_keeps_its_claims(
    app: Flask, state: t.Any, smtp: SMTPServer
) -> None:
    for number in range(4):
        queue(state, to=f"kunde{number}@example.dk")
    state.db.session.commit()
    smtp.delay = 0.8  # seconds the server takes per mail
    slow = threading.Thread(target=lambda: sending(app))
    slow.start()
    # From when it holds them all: on a loaded machine starting it takes a
    # while, and a second sender coming first would rightly take them.
    deadline = time.monotonic() + 10
    while not all(mail.claimed_by for mail in rows(state)):
        assert time.monotonic() < deadline, "the slow sender claimed nothing"
        state.db.session.rollback()  # see what it committed
        time.sleep(0.05)
    time.sleep(2.5)
    # Past one claim time: a second sender finds every mail still claimed
    # (renewed every 0.67 s), or sent.
    assert state.mail.send_due() == 0
    slow.join()
    assert len(smtp.wait_for(4)) == 4


@pytest.mark.livehelp(mail_claim_seconds=1)
def test_one_answer_slower_than_the_claim_does_not_let_another_sender_in(
    app: Flask, state: t.Any, smtp: SMTPServer
) -> None:
    queue(state)
    state.db.session.commit()
    smtp.delay = 2.5  # one mail, one slow server answer: no gap to renew in
    slow = threading.Thread(target=lambda: sending(app))
    slow.start()
    for _ in range(4):
        time.sleep(0.5)
        assert state.mail.send_due() == 0
    slow.join()
    time.sleep(1.2)
    assert state.mail.send_due() == 0
    assert len(smtp.wait_for(1)) == 1
    time.sleep(0.5)
    assert len(smtp.deliveries) == 1


@pytest.mark.livehelp(mail_claim_seconds=1)
def test_a_sender_that_lost_its_claim_leaves_the_mail_to_its_new_holder(
    app: Flask, state: t.Any, smtp: SMTPServer
) -> None:
    mail = queue(state)
    state.db.session.commit()
    # An admin's "send now" broke this process's claim, and another process
    # took the mail, between this one's claim and its send.
    claim = state.mail._claim

    def claim_then_lose(mail_id: int) -> bool:
        taken = claim(mail_id)
        model = state.models.mail
        state.db.session.execute(
            sa.update(model).where(model.id == mail_id).values(claimed_by="other:1")
        )
        state.db.session.commit()
        return t.cast(bool, taken)

    state.mail._claim = claim_then_lose
    assert state.mail.send_ids([mail.id]) == 0
    state.mail.wait_idle()
    assert smtp.deliveries == []
    state.db.session.expire_all()
    [row] = rows(state)
    assert (row.status, row.claimed_by) == ("pending", "other:1")


def sending(app: Flask) -> None:
    with app.app_context():
        get_state().mail.send_due()
        get_state().db.session.remove()


@pytest.mark.livehelp(mail_claim_seconds=300)
def test_an_admin_sees_who_holds_a_stuck_mail_and_sends_it_now(
    app: Flask, state: t.Any, smtp: SMTPServer, make_operator: t.Any
) -> None:
    admin = make_operator(name="Admin", email="admin@shop.example", role="admin")
    queue(state)
    state.db.session.commit()
    sender_that_dies(app, smtp, "_sending")
    client = app.test_client()
    login(client, admin.email)
    page = client.get("/livehelp/offline/outbox").text
    assert "Being sent by" in page and "Send now" in page
    [mail_id] = [m.id for m in rows(state)]
    token = csrf_in(page)
    client.post(f"/livehelp/offline/outbox/{mail_id}/retry", data={"_lh_csrf": token})
    assert len(smtp.wait_for(1)) == 1
