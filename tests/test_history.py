"""Chat history: lists, sorting, filters, search, transcripts, exports, deleting."""

from __future__ import annotations

import csv
import datetime as dt
import io
import typing as t

import pytest
import sqlalchemy as sa
from babel.dates import format_datetime
from babel.dates import get_timezone
from flask import Flask

from conftest import login
from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services.history.wording import event_text
from staff import chat
from staff import csrf_of
from staff import department
from staff import listed
from staff import move
from staff import set_times
from staff import utc


@pytest.fixture
def manager(make_operator: t.Any) -> t.Any:
    return make_operator(name="Lone", email="lone@example.com", role="manager")


def signed_in(app: Flask, person: t.Any) -> t.Any:
    client = app.test_client()
    assert login(client, person.email).status_code == 302
    return client


# The lists.


def test_my_completed_chats_escape_what_visitors_wrote(
    app: Flask, operator: t.Any
) -> None:
    chat_id = chat(
        app, operator=operator, name="<script>alert(1)</script>", answers=["<b>Ja</b>"]
    )
    client = signed_in(app, operator)
    listing = client.get("/livehelp/history/")
    assert listed(listing.text) == [chat_id]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    assert "<script>alert(1)" not in listing.text
    assert "no e-mail" in listing.text
    transcript = client.get(f"/livehelp/history/{chat_id}")
    assert transcript.status_code == 200
    assert "Hej, har I den i blå?" in transcript.text
    assert "&lt;b&gt;Ja&lt;/b&gt;" in transcript.text
    assert "Mette accepted the chat." in transcript.text


def test_operators_see_their_own_active_and_completed_chats(
    app: Flask, operator: t.Any, make_operator: t.Any
) -> None:
    colleague = make_operator(name="Bo")
    mine_done = chat(app, operator=operator, email="karen@example.com")
    mine_open = chat(app, operator=operator, end=False, name="Ole")
    chat(app, operator=colleague)
    chat(app, operator=colleague, end=False)
    client = signed_in(app, operator)
    completed = client.get("/livehelp/history/?view=completed")
    assert listed(completed.text) == [mine_done]
    assert "karen@example.com" in completed.text
    active = client.get("/livehelp/history/?view=active")
    assert listed(active.text) == [mine_open]
    assert "Ole" in active.text
    # Managers' lists are refused, not shown empty.
    refused = client.get("/livehelp/history/?view=all")
    assert refused.status_code == 403
    assert "Only managers and admins see all chats." in refused.text


def test_managers_see_all_chats_of_their_departments(
    app: Flask, make_operator: t.Any
) -> None:
    sales, support = department(app, "Salg"), department(app, "Kundeservice")
    seller = make_operator(name="Sælger", department_ids=[sales])
    helper = make_operator(name="Hjælper", department_ids=[support])
    manager = make_operator(name="Lone", role="manager", department_ids=[sales])
    admin = make_operator(name="Adam", role="admin", department_ids=[support])
    in_sales = chat(app, operator=seller, department_id=sales)
    in_support = chat(app, operator=helper, department_id=support)
    nowhere = chat(app, operator=seller)

    seen = listed(signed_in(app, manager).get("/livehelp/history/?view=all").text)
    assert sorted(seen) == sorted([in_sales, nowhere])
    by_admin = signed_in(app, admin).get("/livehelp/history/?view=all")
    assert sorted(listed(by_admin.text)) == sorted([in_sales, in_support, nowhere])
    # By department and by operator.
    client = signed_in(app, admin)
    assert listed(
        client.get(f"/livehelp/history/?view=all&department={support}").text
    ) == [in_support]
    assert sorted(
        listed(client.get(f"/livehelp/history/?view=all&operator={seller.id}").text)
    ) == sorted([in_sales, nowhere])
    # A manager asking for another department is refused.
    other = signed_in(app, manager).get(
        f"/livehelp/history/?view=all&department={support}"
    )
    assert other.status_code == 403
    assert (
        signed_in(app, manager).get(f"/livehelp/history/{in_support}").status_code
        == 403
    )


def test_sorting_by_a_column_with_idle_time_breaking_ties(
    app: Flask, make_operator: t.Any
) -> None:
    # Four chats going on at once: room for all of them.
    admin = make_operator(name="Adam", role="admin", max_chats=4)
    now = utcnow()
    ids = {}
    # Three chats of the same customer, idle for 30, 10 and 20 minutes.
    for minutes in (30, 10, 20):
        ids[minutes] = chat(app, operator=admin, name="Karen", end=False)
        moment = now - dt.timedelta(minutes=minutes)
        set_times(
            app,
            ids[minutes],
            created_at=moment - dt.timedelta(minutes=5),
            accepted_at=moment - dt.timedelta(minutes=5),
            last_visitor_message_at=moment,
            last_operator_message_at=moment - dt.timedelta(minutes=1),
        )
    first = chat(app, operator=admin, name="Anders", end=False)
    client = signed_in(app, admin)

    ascending = listed(
        client.get("/livehelp/history/?view=all&sort=customer&dir=asc").text
    )
    assert ascending == [first, ids[10], ids[20], ids[30]]
    descending = listed(
        client.get("/livehelp/history/?view=all&sort=customer&dir=desc").text
    )
    assert descending == [ids[30], ids[20], ids[10], first]
    by_idle = listed(client.get("/livehelp/history/?view=all&sort=idle&dir=asc").text)
    assert by_idle == [first, ids[10], ids[20], ids[30]]
    page = client.get("/livehelp/history/?view=active&sort=idle&dir=desc")
    assert "30 minutes" in page.text  # idle time of an active chat


@pytest.mark.parametrize(
    "sort",
    [
        "customer",
        "email",
        "department",
        "operator",
        "started",
        "duration",
        "idle",
        "tags",
        "status",
    ],
)
def test_every_column_sorts_both_ways(
    app: Flask, make_operator: t.Any, sort: str
) -> None:
    admin = make_operator(name="Adam", role="admin")
    sales, support = department(app, "Salg"), department(app, "Kundeservice")
    bo = make_operator(name="Bo", department_ids=[sales])
    early = chat(
        app,
        operator=admin,
        name="Anne",
        email="anne@example.com",
        department_id=support,
        tags=["bytte"],
        started=utc(2026, 1, 1, 9),
        end=False,
    )
    late = chat(
        app,
        operator=bo,
        name="Xenia",
        email="xenia@example.com",
        department_id=sales,
        tags=["retur"],
        started=utc(2026, 2, 1, 9),
    )
    # The later chat is the longer one, and the one idle longer.
    set_times(app, late, ended_at=utc(2026, 2, 1, 11))
    set_times(app, early, last_visitor_message_at=utcnow())
    expected = {
        "customer": [early, late],
        "email": [early, late],
        "department": [early, late],
        "operator": [early, late],
        "started": [early, late],
        "duration": [early, late],
        "idle": [early, late],
        "tags": [early, late],
        "status": [early, late],
    }[sort]
    client = signed_in(app, admin)
    up = listed(client.get(f"/livehelp/history/?view=all&sort={sort}&dir=asc").text)
    down = listed(client.get(f"/livehelp/history/?view=all&sort={sort}&dir=desc").text)
    if sort == "duration":
        # The open chat has lasted since January: the longest.
        expected = [late, early]
    assert up == expected
    assert down == expected[::-1]


def test_bad_list_arguments_are_refused_with_a_reason(
    app: Flask, operator: t.Any
) -> None:
    client = signed_in(app, operator)
    for query, reason in (
        ("sort=price", "Unknown sort order."),
        ("view=everything", "Unknown list."),
        ("status=lost", "Unknown status."),
        ("from=yesterday", "Write dates as YYYY-MM-DD"),
        ("page=x", "must be a number"),
        ("from=2026-02-01&to=2026-01-01", "The first day is after the last day."),
    ):
        response = client.get(f"/livehelp/history/?{query}")
        assert response.status_code == 400, query
        assert reason in response.text


def test_filters_by_days_in_the_viewers_time_zone_tag_and_status(
    app: Flask, make_operator: t.Any
) -> None:
    # In Copenhagen (UTC+1 in winter) 23:30 UTC on 9 January is 10 January.
    admin = make_operator(name="Adam", role="admin", timezone="Europe/Copenhagen")
    late_evening = chat(
        app, operator=admin, tags=["retur"], started=utc(2026, 1, 9, 23, 30)
    )
    next_day = chat(app, operator=admin, tags=["bytte"], started=utc(2026, 1, 10, 12))
    before = chat(app, operator=admin, started=utc(2026, 1, 9, 22, 30))
    missed = chat(app, started=utc(2026, 1, 10, 13))
    client = signed_in(app, admin)
    tenth = listed(
        client.get("/livehelp/history/?view=all&from=2026-01-10&to=2026-01-10").text
    )
    assert sorted(tenth) == sorted([late_evening, next_day, missed])
    assert before not in tenth
    assert listed(client.get("/livehelp/history/?view=all&tag=retur").text) == [
        late_evening
    ]
    assert listed(client.get("/livehelp/history/?view=all&status=missed").text) == [
        missed
    ]


def test_full_text_search_finds_every_word_in_any_message(
    app: Flask, make_operator: t.Any, manager: t.Any
) -> None:
    admin = make_operator(name="Adam", role="admin")
    both = chat(
        app,
        operator=admin,
        question="Har I regnjakken i blå?",
        answers=["Ja, i størrelse medium"],
    )
    one_word = chat(app, operator=admin, question="Hvornår kommer min regnjakke?")
    chat(app, operator=admin, question="Kan jeg bytte en hue?")
    client = signed_in(app, admin)

    def search(words: str) -> list[int]:
        return listed(
            client.get(
                "/livehelp/history/", query_string={"view": "all", "q": words}
            ).text
        )

    assert sorted(search("regnjakke")) == sorted([both, one_word])
    assert search("regnjakke størrelse") == [both]  # words in different messages
    assert search("REGNJAKKE medium") == [both]
    assert search("sokker") == []
    # A LIKE wildcard is a plain character, not a pattern.
    assert search("re_njakke") == []
    page = client.get("/livehelp/history/?view=all&q=regnjakke")
    assert "2 chats found." in page.text


def test_pages_of_fifty(app: Flask, operator: t.Any) -> None:
    ids = [
        chat(app, operator=operator, started=utc(2026, 1, 1) + dt.timedelta(minutes=n))
        for n in range(53)
    ]
    client = signed_in(app, operator)
    first = client.get("/livehelp/history/")
    assert listed(first.text) == ids[::-1][:50]
    assert "Page 1 of 2" in first.text
    second = client.get("/livehelp/history/?page=2")
    assert listed(second.text) == ids[::-1][50:]


# The transcript.


def test_the_transcript_has_every_message_and_event_in_the_readers_zone_and_language(
    app: Flask, make_operator: t.Any
) -> None:
    reader = make_operator(
        name="Adam", role="admin", locale="da", timezone="America/New_York"
    )
    mette = make_operator(name="Mette")
    chat_id = chat(app, operator=mette, answers=["Ja, den har vi."], end=False)
    with app.app_context():
        get_state().conversations.end(chat_id, by="timeout")
    move(app, chat_id, utc(2026, 1, 10, 14, 5))
    page = signed_in(app, reader).get(f"/livehelp/history/{chat_id}")
    assert page.status_code == 200
    assert "Hej, har I den i blå?" in page.text
    assert "Ja, den har vi." in page.text
    assert page.text.count('class="lh-event') == 2  # accepted, timed out
    # 14:05 UTC is 09:05 in New York, written the Danish way.
    expected = format_datetime(
        utc(2026, 1, 10, 14, 5),
        "short",
        tzinfo=get_timezone("America/New_York"),
        locale="da",
    )
    assert "09.05" in expected
    assert expected in page.text


def test_transcript_events_in_words(app: Flask, make_operator: t.Any) -> None:
    mette = make_operator(name="Mette")
    timed_out = chat(app, operator=mette, end=False)
    quiet = chat(app, operator=mette, end=False)
    with app.test_request_context():
        state = get_state()
        state.conversations.end(timed_out, by="timeout")
        state.conversations.end(quiet, by="inactive")
        reader = state.operators.get(mette.id)
        said = {
            chat_id: [event_text(m) for m in messages if m.kind == "event"]
            for chat_id in (timed_out, quiet)
            for _, messages in [state.history.transcript(reader, chat_id)]
        }
    assert said[timed_out] == ["Mette accepted the chat.", "The chat timed out."]
    assert said[quiet] == [
        "Mette accepted the chat.",
        "The chat was closed after a long silence.",
    ]


def test_a_transcript_as_text(app: Flask, operator: t.Any) -> None:
    chat_id = chat(app, operator=operator, email="karen@example.com", answers=["Ja!"])
    client = signed_in(app, operator)
    response = client.get(f"/livehelp/history/{chat_id}.txt")
    assert response.status_code == 200
    assert response.content_type == "text/plain; charset=utf-8"
    assert f'filename="chat-{chat_id}.txt"' in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert "Customer: Karen" in text
    assert "E-mail: karen@example.com" in text
    assert "Karen: Hej, har I den i blå?" in text
    assert "Mette: Ja!" in text
    assert "* Mette accepted the chat." in text


# Export.


def test_csv_export_has_the_whole_filtered_list_and_defuses_formulas(
    app: Flask, operator: t.Any
) -> None:
    for n in range(55):
        chat(
            app,
            operator=operator,
            name=f"Kunde {n}",
            started=utc(2026, 1, 1) + dt.timedelta(minutes=n),
        )
    evil = chat(
        app,
        operator=operator,
        name='=HYPERLINK("http://evil.example","x")',
        email="@evil",
    )
    chat(app, operator=operator, name="Uden for perioden", started=utc(2025, 6, 1))
    client = signed_in(app, operator)
    response = client.get("/livehelp/history/export.csv?from=2026-01-01")
    assert response.status_code == 200
    assert response.content_type == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["Chat", "Customer", "E-mail"]
    assert len(body) == 56
    assert "Uden for perioden" not in {row[1] for row in body}
    evil_row = next(row for row in body if row[0] == str(evil))
    assert evil_row[1] == '\'=HYPERLINK("http://evil.example","x")'
    assert evil_row[2] == "'@evil"


# Deleting.


def test_a_manager_deletes_chats_gone_from_every_list_with_an_audit_entry(
    app: Flask, operator: t.Any, manager: t.Any, make_operator: t.Any
) -> None:
    doomed = chat(app, operator=operator, question="Slet mig venligst")
    kept = chat(app, operator=operator, question="Behold mig")
    client = signed_in(app, manager)
    token = csrf_of(client)
    response = client.post(
        "/livehelp/history/actions",
        data={"_lh_csrf": token, "action": "delete", "ids": [str(doomed)]},
    )
    assert response.status_code == 302
    assert "Deleted 1 chat." in client.get(response.location).text
    assert listed(client.get("/livehelp/history/?view=all").text) == [kept]
    assert listed(client.get("/livehelp/history/?view=all&q=slet").text) == []
    assert client.get(f"/livehelp/history/{doomed}").status_code == 404
    export = client.get("/livehelp/history/export.csv?view=all").get_data(as_text=True)
    assert f"\n{doomed}," not in export
    owner = signed_in(app, operator)
    assert listed(owner.get("/livehelp/history/").text) == [kept]
    admin = signed_in(app, make_operator(name="Adam", role="admin"))
    assert listed(admin.get("/livehelp/history/?view=all").text) == [kept]
    assert listed(admin.get("/livehelp/history/?view=all&q=slet").text) == []
    assert admin.get(f"/livehelp/history/{doomed}").status_code == 404
    with app.app_context():
        entries, _ = get_state().audit.entries(action="conversation-deleted")
        assert [(e.actor_name, e.target) for e in entries] == [
            ("Lone", f"conversation:{doomed}")
        ]


def test_operators_may_not_delete_and_open_chats_stay(
    app: Flask, operator: t.Any, manager: t.Any
) -> None:
    finished = chat(app, operator=operator)
    going_on = chat(app, operator=operator, end=False)
    owner = signed_in(app, operator)
    refused = owner.post(
        "/livehelp/history/actions",
        data={"_lh_csrf": csrf_of(owner), "action": "delete", "ids": [str(finished)]},
    )
    assert refused.status_code == 403
    boss = signed_in(app, manager)
    still_open = boss.post(
        "/livehelp/history/actions",
        data={
            "_lh_csrf": csrf_of(boss),
            "action": "delete",
            "ids": [str(finished), str(going_on)],
        },
    )
    assert still_open.status_code == 400
    assert "is still going on" in still_open.text
    # All or nothing: the finished one is still there too.
    assert sorted(listed(boss.get("/livehelp/history/?view=all").text)) == sorted(
        [finished, going_on]
    )
    assert (
        owner.post(
            "/livehelp/history/actions",
            data={"action": "delete", "ids": [str(finished)]},
        ).status_code
        == 400
    )  # no CSRF token


# Erasing a customer's data.


def test_erasing_a_customer_keeps_the_figures(
    app: Flask, operator: t.Any, manager: t.Any
) -> None:
    with app.app_context():
        visitor, _ = get_state().visitors.create(
            ip_address="203.0.113.9", user_agent="Karen's browser", locale="da"
        )
        visitor_id = visitor.id
    first = chat(
        app,
        operator=operator,
        visitor_id=visitor_id,
        email="karen@example.com",
        name="Karen Kunde",
    )
    second = chat(
        app,
        operator=operator,
        visitor_id=visitor_id,
        email="karen@example.com",
        name="Karen Kunde",
        visitor_says=["Mit navn er Karen Kunde"],
    )
    other = chat(app, operator=operator, name="Ole")
    with app.app_context():
        # A copy of the chat in the outbox, addressed to her.
        get_state().mail.queue(
            "transcript",
            ["karen@example.com"],
            "Your chat",
            "Karen Kunde wrote...",
            conversation_id=first,
        )
        get_state().db.session.commit()
    client = signed_in(app, manager)
    assert client.get(f"/livehelp/history/{first}/erase").status_code == 200
    response = client.post(
        f"/livehelp/history/{first}/erase", data={"_lh_csrf": csrf_of(client)}
    )
    assert response.status_code == 302
    with app.app_context():
        state = get_state()
        model = state.models.conversation
        for chat_id in (first, second):
            row = state.db.session.get(model, chat_id)
            assert (row.visitor_name, row.visitor_email) == (None, None)
            assert row.status == "ended" and row.ended_at is not None
        visitor = state.db.session.get(state.models.visitor, visitor_id)
        assert (
            visitor.ip_address,
            visitor.user_agent,
            visitor.erased_at is not None,
        ) == (
            None,
            None,
            True,
        )
        names = state.db.session.execute(
            sa.select(state.models.message.author_name).where(
                state.models.message.conversation_id == second,
                state.models.message.author == "visitor",
            )
        ).scalars()
        assert set(names) == {None}
        assert state.db.session.get(model, other).visitor_name == "Ole"
        mails = sa.select(sa.func.count()).select_from(state.models.mail)
        assert state.db.session.execute(mails).scalar() == 0
        entries, _ = state.audit.entries(action="customer-erased")
        assert entries[0].actor_name == "Lone"
    assert "Karen Kunde" not in client.get("/livehelp/history/?view=all").text
    # The figures stay: every chat is still listed.
    assert len(listed(client.get("/livehelp/history/?view=all").text)) == 3
    # Operators may not erase.
    owner = signed_in(app, operator)
    assert owner.get(f"/livehelp/history/{first}/erase").status_code == 403


# Retention.


def test_purge_deletes_old_finished_chats_for_good(app: Flask, operator: t.Any) -> None:
    old = chat(app, operator=operator, started=utcnow() - dt.timedelta(days=40))
    old_open = chat(
        app, operator=operator, end=False, started=utcnow() - dt.timedelta(days=40)
    )
    recent = chat(app, operator=operator, started=utcnow() - dt.timedelta(days=5))
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["livehelp", "purge"])
    assert refused.exit_code != 0 and "No retention is set" in refused.output
    result = runner.invoke(args=["livehelp", "purge", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 chats." in result.output
    with app.app_context():
        state = get_state()
        model, message = state.models.conversation, state.models.message
        left = set(state.db.session.execute(sa.select(model.id)).scalars())
        assert left == {old_open, recent}
        orphans = state.db.session.execute(
            sa.select(sa.func.count()).where(message.conversation_id == old)
        ).scalar_one()
        assert orphans == 0


def test_the_background_loop_purges_by_the_retention_setting(
    app: Flask, operator: t.Any
) -> None:
    old = chat(app, operator=operator, started=utcnow() - dt.timedelta(days=10))
    kept = chat(app, operator=operator)
    state = get_state(app)
    state.jobs.run(app, "purge")
    with app.app_context():
        assert state.db.session.get(state.models.conversation, old) is not None
        state.settings.set("HISTORY_RETENTION_DAYS", 7)
    state.jobs.run(app, "purge")
    with app.app_context():
        assert state.db.session.get(state.models.conversation, old) is None
        assert state.db.session.get(state.models.conversation, kept) is not None


# Transfers from the history list.


def test_transferring_selected_chats_to_a_colleague(
    app: Flask, operator: t.Any, make_operator: t.Any
) -> None:
    state = get_state(app)
    colleague = make_operator(name="Bo")
    going_on = chat(app, operator=operator, end=False)
    with app.app_context():
        state.presence.open_connection(colleague.id)
        state.presence.set_status(colleague.id, "online")
    client = signed_in(app, operator)
    response = client.post(
        "/livehelp/history/actions",
        data={
            "_lh_csrf": csrf_of(client),
            "action": "transfer",
            "ids": [str(going_on)],
            "to": f"operator:{colleague.id}",
            "note": "Hun vil bytte",
            "next": "/livehelp/history/?view=active",
        },
    )
    assert response.status_code == 302
    assert response.location == "/livehelp/history/?view=active"
    assert "Offered 1 chat for transfer." in client.get(response.location).text
    with app.app_context():
        transfer = state.models.transfer
        offer = state.db.session.execute(sa.select(transfer)).scalar_one()
        assert (offer.to_operator_id, offer.note, offer.status) == (
            colleague.id,
            "Hun vil bytte",
            "offered",
        )
