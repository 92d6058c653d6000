"""Who sees the outbox (issue 20): managers their departments' mails, admins
all; and every mail not sent yet has its row and its "send now"."""

from __future__ import annotations

import re
import typing as t

import pytest
from flask import Flask

import staff
from conftest import login
from flask_livehelp import get_state
from mailservers import SMTPServer
from staff import csrf_in


def offline_message(app: Flask, department_id: int, email: str) -> int:
    """A customer leaves a message for a department; its mails wait unsent."""
    with app.test_request_context():
        state = get_state()
        submission = state.offline.submit(
            client_id=f"off-{department_id}",
            body="Har I den i blå?",
            email=email,
            department_id=department_id,
            ip_address=f"192.0.2.{department_id}",
        )
        (copy,) = [
            mail
            for mail in state.mail.for_conversation(submission.conversation_id)
            if mail.recipients == [email]
        ]
        return t.cast(int, copy.id)


def department(app: Flask, name: str) -> int:
    return staff.department(app, name, f"{name.lower()}@shop.example")


@pytest.mark.livehelp(mail_send_now="off")
def test_a_manager_sends_a_waiting_mail_of_their_department_now(
    app: Flask, smtp: SMTPServer, make_operator: t.Any
) -> None:
    sales, b2b = department(app, "Salg"), department(app, "B2B")
    boss = make_operator(name="Lone", role="manager", department_ids=[sales])
    ours = offline_message(app, sales, "karen@example.com")
    theirs = offline_message(app, b2b, "indkob@firma.example")

    client = app.test_client()
    login(client, boss.email)
    assert ">Outbox<" in client.get("/livehelp/offline/").text
    page = client.get("/livehelp/offline/outbox")
    assert page.status_code == 200
    # A mail nobody tried yet has its row: waiting, with "Send now".
    row = re.search(r"<tr[^>]*>\s*<td>karen@example\.com</td>.*?</tr>", page.text, re.S)
    assert row is not None
    assert "Waiting" in row.group(0) and "Send now" in row.group(0)
    # The other department's mails are not hers.
    assert "indkob@firma.example" not in page.text
    assert "b2b@shop.example" not in page.text

    # Nothing sent them so far (as when the sender is stuck); "Send now" does.
    app.config["LIVEHELP_MAIL_SEND_NOW"] = "inline"
    token = csrf_in(page.text)
    refused = client.post(
        f"/livehelp/offline/outbox/{theirs}/retry", data={"_lh_csrf": token}
    )
    assert refused.status_code == 403
    sent = client.post(
        f"/livehelp/offline/outbox/{ours}/retry", data={"_lh_csrf": token}
    )
    assert sent.status_code == 302
    (delivery,) = smtp.wait_for(1)
    assert delivery.recipients == ["karen@example.com"]
