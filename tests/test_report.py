"""The managers' report: chats per day, missed and timed-out chats, response
times and durations per operator and department."""

from __future__ import annotations

import datetime as dt
import re
import typing as t

import pytest
from flask import Flask

from conftest import login
from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services import timeouts
from staff import chat
from staff import department
from staff import set_times
from staff import utc


def test_the_figures_per_day_operator_and_department(
    app: Flask, make_operator: t.Any
) -> None:
    sales = department(app, "Salg")
    mette = make_operator(name="Mette", department_ids=[sales])
    bo = make_operator(name="Bo", department_ids=[sales])
    boss = make_operator(
        name="Lone",
        role="manager",
        department_ids=[sales],
        timezone="Europe/Copenhagen",
    )
    day = utc(2026, 3, 2, 9)
    # Mette answers after 10, 20, 30, 40 and 100 seconds; chats last 1-5 minutes.
    for n, wait in enumerate((10, 20, 30, 40, 100)):
        chat_id = chat(
            app,
            operator=mette,
            department_id=sales,
            answers=["Hej"],
            started=day + dt.timedelta(hours=n),
        )
        start = day + dt.timedelta(hours=n)
        set_times(
            app,
            chat_id,
            first_response_at=start + dt.timedelta(seconds=wait),
            ended_at=start + dt.timedelta(minutes=n + 1),
        )
    bo_chat = chat(app, operator=bo, department_id=sales, answers=["Ja"], started=day)
    set_times(
        app,
        bo_chat,
        first_response_at=day + dt.timedelta(seconds=5),
        ended_at=day + dt.timedelta(minutes=2),
    )
    # Missed: given up by the customer, and timed out in the queue, the next day.
    chat(app, department_id=sales, started=day + dt.timedelta(days=1))
    timed_out = chat(app, department_id=sales, end=False)
    with app.app_context():
        get_state().conversations.end(timed_out, by="timeout")
    set_times(app, timed_out, created_at=day + dt.timedelta(days=1, hours=2))
    # 23:30 UTC on 3 March is 4 March in Copenhagen.
    chat(app, department_id=sales, started=utc(2026, 3, 3, 23, 30))
    # Another department's chat is not the manager's business.
    other = department(app, "B2B")
    chat(app, department_id=other, started=day)

    with app.app_context():
        state = get_state()
        report = state.reports.figures(
            state.operators.get(boss.id),
            dt.date(2026, 3, 2),
            dt.date(2026, 3, 4),
            timezone="Europe/Copenhagen",
        )
    by_day = {
        d.day.day: (d.chats, d.answered, d.missed, d.not_accepted) for d in report.days
    }
    assert by_day == {2: (6, 6, 0, 0), 3: (2, 0, 2, 1), 4: (1, 0, 1, 0)}
    assert (report.totals.chats, report.totals.missed) == (9, 3)
    figures = {g.name: g for g in report.operators}
    assert set(figures) == {"Mette", "Bo"}
    assert figures["Mette"].chats == 5
    assert figures["Mette"].first_response.median == 30
    assert figures["Mette"].first_response.p90 == 100
    assert figures["Mette"].duration.median == 180
    assert figures["Bo"].duration.median == 120
    (salg,) = report.departments
    assert (salg.name, salg.chats, salg.missed) == ("Salg", 9, 3)


@pytest.mark.livehelp(queue_timeout_seconds=60, inactive_close_seconds=600)
def test_not_accepted_in_time_closed_after_silence_and_offline_messages_apart(
    app: Flask, make_operator: t.Any
) -> None:
    """Issue 20: "Timed out" counted quiet chats, and a missed chat passed on
    by mail was no offline message."""
    boss = make_operator(name="Lone", role="manager")
    mette = make_operator(name="Mette")
    # Nobody accepts it in time: missed, and mailed to the shop.
    not_accepted = chat(app, end=False)
    # The customer gives up waiting: missed, not mailed.
    chat(app)
    # Mette's customer goes quiet, and the chat is closed.
    quiet = chat(app, operator=mette, answers=["Et øjeblik"], end=False)
    # Closed after silence before "inactive" existed: ended by "timeout".
    old_quiet = chat(app, operator=mette, end=False)
    # Left with the offline form.
    with app.test_request_context():
        get_state().offline.submit(
            client_id="off1",
            body="Har I den i blå?",
            name="Karen",
            email="karen@example.com",
            consent=False,
            page=None,
            department_id=None,
            honeypot=None,
            visitor_token=None,
            ip_address="192.0.2.9",
            user_agent="pytest",
            locale="da",
        )
    with app.app_context():
        state = get_state()
        later = utcnow() + dt.timedelta(hours=1)
        assert timeouts.time_out_queue(state, now=later) == [not_accepted]
        assert timeouts.close_inactive(state, now=later) == [quiet, old_quiet]
        assert state.conversations.get(quiet).ended_by == "inactive"
        state.conversations.get(old_quiet).ended_by = "timeout"
        state.db.session.commit()
        today = utcnow().date()
        totals = state.reports.figures(state.operators.get(boss.id), today, today)
        totals = totals.totals
    assert (totals.chats, totals.answered, totals.missed) == (4, 2, 2)
    assert (totals.not_accepted, totals.closed_silent) == (1, 2)
    assert totals.offline_messages == 2

    client = app.test_client()
    login(client, boss.email)
    page = client.get("/livehelp/report/").text
    assert "Timed out" not in page
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", page.replace("\n", "")))
    assert facts == {
        "Chats": "4",
        "Answered": "2",
        "Missed": "2",
        "Not accepted in time": "1",
        "Closed after a long silence": "2",
        "Offline messages": "2",
    }


def test_the_report_page_is_for_managers(app: Flask, make_operator: t.Any) -> None:
    sales, b2b = department(app, "Salg"), department(app, "B2B")
    worker = make_operator(name="Mette", department_ids=[sales])
    boss = make_operator(name="Lone", role="manager", department_ids=[sales])
    chat(app, operator=worker, department_id=sales)
    operator_client = app.test_client()
    login(operator_client, worker.email)
    refused = operator_client.get("/livehelp/report/")
    assert refused.status_code == 403
    manager_client = app.test_client()
    login(manager_client, boss.email)
    page = manager_client.get("/livehelp/report/")
    assert page.status_code == 200
    assert "Mette" in page.text and "Chats per day" in page.text
    assert manager_client.get(f"/livehelp/report/?department={b2b}").status_code == 403
    assert (
        manager_client.get(
            "/livehelp/report/?from=2026-05-01&to=2026-04-01"
        ).status_code
        == 400
    )
    assert (
        manager_client.get(
            "/livehelp/report/?from=2024-01-01&to=2026-01-01"
        ).status_code
        == 400
    )
