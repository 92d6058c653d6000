"""What operators do in a chat, and what time does on its own (issue 4)."""

from __future__ import annotations

import datetime as dt
import threading
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from conftest import statements_of
from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services import timeouts
from flask_livehelp.services.visitors import Beat
from servers import wait_until
from staff import chat
from staff import department


def start_chat(
    socket: t.Any, body: str = "Hej, har I den i blå?", **fields: t.Any
) -> int:
    socket.send(type="hello", page="http://127.0.0.1/product/regnjakke-blaa")
    socket.token = socket.expect("welcome")["token"]
    socket.send(type="start", id="q1", body=body, **fields)
    return t.cast(int, socket.expect("ack", id="q1")["conversation"])


def online(staff: t.Any) -> None:
    staff.send(type="status", state="online")
    staff.expect("status", chosen="online")


def accepted(staff: t.Any, conversation_id: int) -> None:
    staff.send(type="accept", conversation=conversation_id)
    staff.expect("assigned", id=conversation_id)


# Tags.


def test_tags_are_set_and_seen_by_staff_only(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    visitor, staff = visitor_socket(), operator_socket(operator)
    conversation_id = start_chat(visitor)
    accepted(staff, conversation_id)
    staff.send(
        type="tags", conversation=conversation_id, names=["fragt", " retur ", "fragt"]
    )
    # The staff's frame of the chat, not the customer's (the panel follows
    # the chat, so it hears that one too).
    frame = staff.expect("conversation", id=conversation_id, origin="chat")
    assert frame["tags"] == ["fragt", "retur"]
    assert all("tags" not in f for f in visitor.quiet() if f["type"] == "conversation")
    staff.send(type="tags", conversation=conversation_id, names=["x" * 65])
    assert staff.expect("error")["code"] == "too-long"


def test_tags_added_a_moment_apart_are_all_kept(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    """Changes, not whole lists: the second frame does not undo the first."""
    staff = operator_socket(operator)
    conversation_id = start_chat(visitor_socket())
    accepted(staff, conversation_id)
    staff.send(type="tags", conversation=conversation_id, add=["levering"])
    staff.send(type="tags", conversation=conversation_id, add=[" retur ", "levering"])
    staff.expect("conversation", id=conversation_id, tags=["levering", "retur"])
    staff.send(type="tags", conversation=conversation_id, remove=["levering"])
    staff.expect("conversation", id=conversation_id, tags=["retur"])
    # The whole list still replaces it.
    staff.send(type="tags", conversation=conversation_id, names=["fragt"])
    staff.expect("conversation", id=conversation_id, tags=["fragt"])


def test_two_tabs_tagging_at_once_keep_both_tags(app: Flask, operator: t.Any) -> None:
    conversation_id = chat(app, operator=operator, end=False)
    barrier = threading.Barrier(2)

    def tag_in_tab(name: str) -> None:
        with app.app_context():
            state = get_state()
            mette = state.operators.get(operator.id)
            barrier.wait()
            state.conversations.change_tags(mette, conversation_id, add=[name])
            state.db.session.remove()

    tabs = [threading.Thread(target=tag_in_tab, args=(n,)) for n in ("a", "b")]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    with app.app_context():
        stored = get_state().conversations.get(conversation_id).tags
        assert [tag.name for tag in stored] == ["a", "b"]


def test_a_panel_opening_sees_each_chat_with_its_own_question_and_tags(
    app: Flask, operator_socket: t.Any, operator: t.Any, make_operator: t.Any
) -> None:
    long_question = "Hvor lang tid tager levering til Grønland? " * 10
    waiting = chat(app, question="Har I regnjakken i blå?", end=False)
    long_one = chat(app, question=long_question, end=False)
    with app.app_context():
        get_state().conversations.post_by_visitor(
            visitor_of(app, waiting), waiting, client_id="v2", body="Hallo?"
        )
    mine = chat(
        app,
        operator=operator,
        question="Kan jeg bytte størrelse?",
        answers=["Ja da."],
        visitor_says=["Tak!"],
        tags=["retur", "bytte"],
        end=False,
    )
    chat(app, operator=make_operator(), question="Andens chat", end=False)
    staff = operator_socket(operator)
    staff.send(type="hello")
    hello = staff.expect("hello")
    queue = {frame["id"]: frame for frame in hello["queue"]}
    assert set(queue) == {waiting, long_one}
    # The hint is the first thing the customer wrote, not the latest.
    assert queue[waiting]["preview"] == "Har I regnjakken i blå?"
    assert queue[long_one]["preview"] == long_question[:200]
    assert [(f["id"], f["preview"], f["tags"]) for f in hello["active"]] == [
        (mine, "Kan jeg bytte størrelse?", ["bytte", "retur"])
    ]


def visitor_of(app: Flask, conversation_id: int) -> int:
    with app.app_context():
        return t.cast(int, get_state().conversations.get(conversation_id).visitor_id)


@pytest.mark.livehelp(require_tag=True)
def test_a_tag_can_be_required_before_ending(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    staff = operator_socket(operator)
    conversation_id = start_chat(visitor_socket())
    accepted(staff, conversation_id)
    staff.send(type="end", conversation=conversation_id)
    error = staff.expect("error")
    assert (error["code"], error["message"]) == (
        "tag-required",
        "Add a tag before you end the chat.",
    )
    staff.send(type="tags", conversation=conversation_id, names=["levering"])
    staff.expect("conversation", id=conversation_id)
    staff.send(type="end", conversation=conversation_id)
    assert staff.expect("ended", id=conversation_id)["status"] == "ended"


# Transfers.


def test_a_transfer_is_accepted_by_the_colleague_with_the_history_intact(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    anna, bo = make_operator(name="Anna"), make_operator(name="Bo")
    first, second = operator_socket(anna), operator_socket(bo)
    online(second)
    visitor = visitor_socket()
    conversation_id = start_chat(visitor)
    accepted(first, conversation_id)
    first.send(type="message", conversation=conversation_id, id="a1", body="Et øjeblik")
    first.expect("ack", id="a1")

    first.send(
        type="transfer",
        conversation=conversation_id,
        operator=bo.id,
        note="Kender farverne",
    )
    offer = second.expect("transfer")
    assert (offer["from"], offer["note"]) == ("Anna", "Kender farverne")
    # Until the colleague takes it, the chat stays with Anna.
    second.send(type="message", conversation=conversation_id, id="b0", body="too early")
    assert second.expect("error")["code"] == "not-allowed"

    second.send(type="transfer-answer", transfer=offer["id"], accept=True)
    assert second.expect("assigned", id=conversation_id)["operator_id"] == bo.id
    assert first.expect("unassigned", id=conversation_id)
    assert visitor.expect("conversation", status="active", operator="Bo")

    second.send(type="sync", conversation=conversation_id, after=0)
    history = [
        (f["kind"], f["body"]) for f in second.until("synced") if f["type"] == "message"
    ]
    assert ("text", "Et øjeblik") in history
    assert ("event", "transfer-offered") in history  # with the note, for staff
    assert history[-1] == ("event", "transferred")
    # The visitor never sees the staff note.
    visitor.send(
        type="hello", token=visitor.token, conversation=conversation_id, after=0
    )
    seen = [f for f in visitor.until("synced") if f["type"] == "message"]
    assert all(f["body"] != "transfer-offered" for f in seen)
    assert seen[-1]["body"] == "transferred"

    second.send(
        type="message", conversation=conversation_id, id="b1", body="Hej, jeg er Bo"
    )
    assert second.expect("ack", id="b1")
    first.send(
        type="message", conversation=conversation_id, id="a2", body="still mine?"
    )
    assert first.expect("error")["code"] == "not-allowed"


def test_a_transfer_only_goes_to_a_colleague_who_is_online(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    anna, bo = make_operator(name="Anna"), make_operator(name="Bo")
    staff = operator_socket(anna)
    conversation_id = start_chat(visitor_socket())
    accepted(staff, conversation_id)
    staff.send(type="transfer", conversation=conversation_id, operator=bo.id)
    assert staff.expect("error")["code"] == "not-online"


def test_a_declined_transfer_is_reported_back(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    anna, bo = make_operator(name="Anna"), make_operator(name="Bo")
    first, second = operator_socket(anna), operator_socket(bo)
    online(second)
    conversation_id = start_chat(visitor_socket())
    accepted(first, conversation_id)
    first.send(type="transfer", conversation=conversation_id, operator=bo.id)
    offer = second.expect("transfer")
    second.send(type="transfer-answer", transfer=offer["id"], accept=False)
    assert first.expect("transfer-declined")["by"] == "Bo"
    with app.app_context():
        assert get_state().conversations.get(conversation_id).operator_id == anna.id


def test_a_transfer_to_a_department_reaches_its_operators(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    with app.app_context():
        state = get_state()
        returns = state.models.department(name="Returns")
        state.db.session.add(returns)
        state.db.session.commit()
        department_id = returns.id
    anna, bo = make_operator(name="Anna"), make_operator(name="Bo")
    with app.app_context():
        state = get_state()
        state.operators.get(bo.id).departments = [
            state.db.session.get(state.models.department, department_id)
        ]
        state.db.session.commit()
    first, second = operator_socket(anna), operator_socket(bo)
    conversation_id = start_chat(visitor_socket())
    accepted(first, conversation_id)
    first.send(
        type="transfer",
        conversation=conversation_id,
        department=department_id,
        note="Retur",
    )
    offer = second.expect("transfer")
    assert offer["department_id"] == department_id
    second.send(type="transfer-answer", transfer=offer["id"], accept=True)
    assert second.expect("assigned", id=conversation_id)


# Push page.


def test_push_page_of_the_shop_reaches_the_visitor(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    visitor, staff = visitor_socket(), operator_socket(operator)
    conversation_id = start_chat(visitor)
    accepted(staff, conversation_id)
    staff.send(type="push", conversation=conversation_id, url="http://127.0.0.1/cart")
    pushed = visitor.expect("message", kind="event", body="pushed")
    assert pushed["data"] == {"operator": "Mette", "url": "http://127.0.0.1/cart"}


def test_a_shop_path_is_pushed_as_a_page_of_the_visitors_site(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    visitor, staff = visitor_socket(), operator_socket(operator)
    conversation_id = start_chat(visitor)  # on http://127.0.0.1/product/...
    accepted(staff, conversation_id)
    staff.send(type="push", conversation=conversation_id, url="/cart")
    pushed = visitor.expect("message", kind="event", body="pushed")
    assert pushed["data"]["url"] == "http://127.0.0.1/cart"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/phish",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/",
        "ftp://127.0.0.1/file",
    ],
)
def test_push_page_refuses_other_sites_and_other_schemes(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any, url: str
) -> None:
    visitor, staff = visitor_socket(), operator_socket(operator)
    conversation_id = start_chat(visitor)
    accepted(staff, conversation_id)
    staff.send(type="push", conversation=conversation_id, url=url)
    assert staff.expect("error")["code"] == "bad-url"
    assert not [f for f in visitor.quiet() if f.get("body") == "pushed"]


@pytest.mark.livehelp(push_origins=["https://blog.shop.example"])
def test_push_page_to_an_allowed_origin(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    visitor, staff = visitor_socket(), operator_socket(operator)
    conversation_id = start_chat(visitor)
    accepted(staff, conversation_id)
    staff.send(
        type="push", conversation=conversation_id, url="https://blog.shop.example/guide"
    )
    assert visitor.expect("message", body="pushed")["data"]["url"].startswith(
        "https://blog"
    )


# Queue, busy and routing.


def test_waiting_visitors_learn_their_place_in_the_queue(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    staff = operator_socket(operator)
    first, second = visitor_socket(), visitor_socket()
    first_id = start_chat(first)
    start_chat(second, body="Og mig?")
    assert second.expect("conversation")["position"] == 2
    accepted(staff, first_id)
    assert second.expect("queue")["position"] == 1


@pytest.mark.livehelp(auto_assign=True)
def test_auto_assignment_routes_to_the_least_busy_operator_never_past_max(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    anna = make_operator(name="Anna", max_chats=1)
    bo = make_operator(name="Bo", max_chats=2)
    first, second = operator_socket(anna), operator_socket(bo)
    online(first)
    online(second)
    chat_one = start_chat(visitor_socket())
    routed = first.expect("queued", id=chat_one)
    assert routed["requested_operator"] == "Anna"  # both empty: the lower id
    accepted(first, chat_one)
    chat_two = start_chat(visitor_socket())
    # Anna is at her max; Bo gets it.
    assert second.expect("routed", id=chat_two)["requested_operator"] == "Bo"


@pytest.mark.livehelp(auto_assign=True)
@pytest.mark.parametrize("room", ["ended", "transferred", "online"])
def test_a_chat_that_waited_for_room_is_routed_when_some_comes_free(
    app: Flask,
    visitor_socket: t.Any,
    operator_socket: t.Any,
    make_operator: t.Any,
    room: str,
) -> None:
    sales = department(app, "Salg")
    anna = make_operator(name="Anna", max_chats=1, department_ids=[sales])
    bo = make_operator(name="Bo", max_chats=2, department_ids=[sales])
    first, second = operator_socket(anna), operator_socket(bo)
    online(first)
    # Bo is back in five minutes: not asked to take chats meanwhile.
    second.send(type="status", state="away")
    second.expect("status", chosen="away")
    hers = start_chat(visitor_socket(), department=sales)
    accepted(first, hers)
    waiting = start_chat(visitor_socket(), body="Hallo?", department=sales)
    # Anna is full and Bo is away: it waits for nobody in particular.
    assert first.expect("queued", id=waiting)["requested_operator_id"] is None

    if room == "ended":
        first.send(type="end", conversation=hers)
    elif room == "transferred":
        # Bo takes Anna's chat over while away, which leaves her room.
        first.send(type="transfer", conversation=hers, department=sales, note=None)
        offer = second.expect("transfer", conversation=hers)
        second.send(type="transfer-answer", transfer=offer["id"], accept=True)
    else:
        second.send(type="status", state="online")

    taker, name = (second, "Bo") if room == "online" else (first, "Anna")
    assert taker.expect("routed", id=waiting)["requested_operator"] == name


@pytest.mark.livehelp(auto_assign=True)
def test_chats_back_in_the_queue_go_to_whoever_has_room(
    app: Flask,
    visitor_socket: t.Any,
    operator_socket: t.Any,
    make_operator: t.Any,
) -> None:
    anna = make_operator(name="Anna", max_chats=1)
    bo = make_operator(name="Bo", max_chats=2)
    first = operator_socket(anna)
    online(first)
    hers = start_chat(visitor_socket())
    accepted(first, hers)
    second = operator_socket(bo)
    online(second)
    with app.app_context():
        state = get_state()
        state.operators.deactivate(anna.id, by=None)
        assert state.conversations.release_chats(anna.id) == [hers]
    assert second.expect("routed", id=hers)["requested_operator"] == "Bo"


# Time-outs.


@pytest.mark.livehelp(queue_timeout_seconds=240)
def test_a_queued_chat_nobody_takes_times_out_once(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    visitor = visitor_socket()
    conversation_id = start_chat(visitor)
    visitor.quiet()
    later = utcnow() + dt.timedelta(seconds=241)
    with app.app_context():
        assert timeouts.time_out_queue(get_state(), now=later) == [conversation_id]
        # A second process running the same job finds nothing left to do.
        assert timeouts.time_out_queue(get_state(), now=later) == []
    frame = visitor.expect("conversation", status="missed")
    assert frame["id"] == conversation_id
    # The visitor may leave an address so the shop can answer by mail.
    visitor.send(type="contact", email="karen@example.com", name="Karen")
    assert visitor.expect("contact")["email"] == "karen@example.com"
    with app.app_context():
        conversation = get_state().conversations.get(conversation_id)
        assert (conversation.status, conversation.ended_by) == ("missed", "timeout")
        assert conversation.visitor_email == "karen@example.com"


@pytest.mark.livehelp(inactive_close_seconds=600)
def test_a_chat_silent_on_both_sides_is_closed(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    visitor, staff = visitor_socket(), operator_socket(operator)
    conversation_id = start_chat(visitor)
    accepted(staff, conversation_id)
    with app.app_context():
        state = get_state()
        assert timeouts.close_inactive(state) == []
        later = utcnow() + dt.timedelta(seconds=601)
        # Whoever spoke last keeps it open: here the customer, 100 s before.
        conversation = state.conversations.get(conversation_id)
        conversation.last_visitor_message_at = later - dt.timedelta(seconds=100)
        state.db.session.commit()
        assert timeouts.close_inactive(state, now=later) == []
        much_later = later + dt.timedelta(seconds=501)
        assert timeouts.close_inactive(state, now=much_later) == [conversation_id]
        # Not "timeout": the report tells it from a chat nobody accepted.
        assert state.conversations.get(conversation_id).ended_by == "inactive"


# Presence over time.


@pytest.mark.livehelp(presence_grace_seconds=60)
def test_presence_expiry_sets_a_vanished_operator_offline(
    app: Flask, state: t.Any, operator: t.Any
) -> None:
    connection = state.presence.open_connection(operator.id)
    state.presence.set_status(operator.id, "online")
    state.presence.close_connection(connection, operator.id)
    state.presence.expire()
    assert state.operators.get(operator.id).status == "online"  # still in grace
    state.presence.expire(now=utcnow() + dt.timedelta(seconds=61))
    assert state.operators.get(operator.id).status == "offline"


def test_the_presence_job_costs_the_same_with_five_or_forty_operators_off(
    state: t.Any, make_operator: t.Callable[..., t.Any]
) -> None:
    """It runs every few seconds on a worker that serves chats. Each operator
    offline used to cost an UPDATE and a commit every run, for nothing."""

    def cost(offline: int) -> int:
        for _ in range(offline):
            make_operator()
        state.presence.expire()
        return statements_of(state, state.presence.expire)

    assert cost(5) == cost(35)


@pytest.mark.livehelp(presence_grace_seconds=60)
def test_operators_gone_at_once_are_told_in_one_presence_list(
    state: t.Any, make_operator: t.Callable[..., t.Any], events: list[t.Any]
) -> None:
    """Every panel hears the new list once, and each operator's own tabs
    their status (offline, chosen so now)."""
    gone = [make_operator() for _ in range(3)]
    for operator in gone:
        state.presence.set_status(operator.id, "online")
        state.presence.close_connection(
            state.presence.open_connection(operator.id), operator.id
        )
    events.clear()
    state.presence.expire(now=utcnow() + dt.timedelta(seconds=61))
    lists = [e for channel, e in events if channel == "staff"]
    assert len(lists) == 1
    assert {o["status"] for o in lists[0]["operators"]} == {"offline"}
    statuses = {
        channel: (e["chosen"], e["effective"])
        for channel, e in events
        if e["type"] == "status"
    }
    assert statuses == {f"operator:{o.id}": ("offline", "offline") for o in gone}
    assert {state.operators.get(o.id).status for o in gone} == {"offline"}


@pytest.mark.livehelp(presence_grace_seconds=60)
def test_an_operator_gone_past_the_grace_time_hands_their_chats_back(
    app: Flask,
    visitor_socket: t.Any,
    operator_socket: t.Any,
    operator: t.Any,
    make_operator: t.Any,
) -> None:
    visitor = visitor_socket()
    conversation_id = start_chat(visitor)
    panel = operator_socket(operator)
    accepted(panel, conversation_id)
    visitor.expect("conversation", status="active")
    panel.close()
    colleague = operator_socket(make_operator(name="Bo"))
    with app.app_context():
        state = get_state()
        connection = state.models.connection
        panels = sa.select(sa.func.count()).where(connection.operator_id == operator.id)

        def closed() -> bool:
            state.db.session.rollback()
            return state.db.session.execute(panels).scalar_one() == 0

        wait_until(closed, 5, "the panel's connection closed")
        # Still in the grace time: a reconnect would find the chat as it was.
        state.jobs.run(app, "presence")
        assert state.conversations.get(conversation_id).status == "active"
        # Their panel went away two minutes ago and never came back.
        state.operators.get(operator.id).last_seen_at = utcnow() - dt.timedelta(
            minutes=2
        )
        state.db.session.commit()
        state.jobs.run(app, "presence")
        assert state.conversations.get(conversation_id).status == "queued"
    visitor.expect("message", kind="event", body="returned")
    visitor.expect("conversation", status="queued")
    colleague.expect("queued", id=conversation_id)


def test_connections_of_a_dead_process_are_dropped(
    state: t.Any, operator: t.Any
) -> None:
    state.presence.open_connection(operator.id)
    state.presence.set_status(operator.id, "online")
    model = state.models.connection
    much_later = utcnow() + dt.timedelta(hours=1)
    state.presence.expire(now=much_later)
    assert (
        state.db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()
        == 0
    )


# Visitors on the site, and invitations.


def beat(state: t.Any, pid: str, page: str, **fields: t.Any) -> None:
    state.visitors.beat(
        pid,
        Beat(
            page=page,
            title=fields.get("title"),
            referrer=fields.get("referrer"),
            locale=fields.get("locale", "da"),
            user_agent="pytest",
            ip_address="10.0.0.9",
            at=fields.get("at", utcnow()),
        ),
    )


def test_visitors_on_the_site_come_first_with_their_page(
    state: t.Any, operator: t.Any
) -> None:
    beat(
        state,
        "aaaaaaaa1",
        "http://shop/",
        referrer="https://search.example/?q=regnjakke",
    )
    beat(state, "bbbbbbbb2", "http://shop/kurv", at=utcnow() - dt.timedelta(minutes=5))
    state.visitors.flush_beats()
    beat(
        state, "aaaaaaaa1", "http://shop/product/regnjakke-blaa", title="Regnjakke, blå"
    )
    state.visitors.flush_beats()
    listed = state.visitors.on_site(state.operators.get(operator.id))
    assert [v["on_site"] for v in listed] == [True, False]
    here = listed[0]
    assert here["page"] == "http://shop/product/regnjakke-blaa"
    assert (here["pages"], here["title"], here["lang"]) == (2, "Regnjakke, blå", "da")
    assert here["referrer"] == "https://search.example/?q=regnjakke"


def test_what_a_page_says_of_itself_reaches_the_visitor_list_as_plain_text(
    app: Flask, operator: t.Any
) -> None:
    # A page with a NUL (PostgreSQL stores no NUL), a title with C1 (NEL, CSI).
    query = "pid=abcdef1234&page=http://shop/x%00y&title=Regn%C2%85jakke%C2%9B"
    assert app.test_client().get(f"/livehelp/widget/status?{query}").status_code == 200
    with app.app_context():
        state = get_state()
        assert state.visitors.flush_beats() == 1
        [listed] = state.visitors.on_site(state.operators.get(operator.id))
    assert listed["page"] == "http://shop/xy"
    assert listed["title"] == "Regnjakke"


def test_the_status_request_is_the_heartbeat_and_writes_nothing_itself(
    app: Flask,
) -> None:
    client = app.test_client()
    response = client.get(
        "/livehelp/widget/status?pid=abcdef1234&page=http://shop/x&lang=en"
    )
    assert response.status_code == 200
    assert "private" in response.headers["Cache-Control"]
    with app.app_context():
        state = get_state()
        model = state.models.visitor
        count = sa.select(sa.func.count()).select_from(model)
        assert state.db.session.execute(count).scalar() == 0
        assert state.visitors.flush_beats() == 1
        assert state.db.session.execute(count).scalar() == 1


def test_an_invitation_reaches_the_widget_and_a_decline_the_operator(
    app: Flask, operator_socket: t.Any, operator: t.Any
) -> None:
    client = app.test_client()
    client.get("/livehelp/widget/status?pid=abcdef1234&page=http://shop/")
    staff = operator_socket(operator)
    with app.app_context():
        get_state().visitors.flush_beats()
    staff.send(type="visitors")
    listed = staff.expect("visitors")["items"]
    assert listed[0]["page"] == "http://shop/"
    staff.send(type="invite", visitor=listed[0]["id"], message="Kan jeg hjælpe?")
    assert staff.expect("notice")
    status = client.get("/livehelp/widget/status?pid=abcdef1234").json
    assert status["invitation"]["message"] == "Kan jeg hjælpe?"
    assert status["invitation"]["operator"] == "Mette"
    # A GET changes nothing: the status request is fetched all the time.
    client.get("/livehelp/widget/status?pid=abcdef1234&decline=1")
    assert all(f["type"] != "invitation-declined" for f in staff.quiet())
    answer = client.post("/livehelp/widget/decline", json={"pid": "abcdef1234"})
    assert answer.status_code == 200
    assert staff.expect("invitation-declined")
    assert "invitation" not in client.get("/livehelp/widget/status?pid=abcdef1234").json


def test_the_invitations_job_is_one_query_however_many_operators_invited(
    state: t.Any, make_operator: t.Callable[..., t.Any]
) -> None:
    """It runs every second on a worker that serves chats; each inviting
    operator's name was a query of its own."""
    inviters = [make_operator() for _ in range(4)]
    for number, inviter in enumerate(inviters):
        visitor, _ = state.visitors.create(
            ip_address=None, user_agent=None, locale=None
        )
        visitor.presence_id = f"tab{number}"
        state.db.session.commit()
        state.visitors.invite(state.operators.get(inviter.id), visitor.id, "Hej")
    state.db.session.remove()  # each run of the job has a session of its own
    assert statements_of(state, state.visitors.load_invitations) == 1
    assert {
        f"tab{number}": state.visitors.invitation_for(f"tab{number}")["operator"]
        for number in range(4)
    } == {f"tab{number}": inviter.name for number, inviter in enumerate(inviters)}


def test_an_accepted_invitation_routes_the_chat_to_the_inviter(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    client = app.test_client()
    client.get("/livehelp/widget/status?pid=abcdef1234&page=http://shop/")
    staff = operator_socket(operator)
    with app.app_context():
        get_state().visitors.flush_beats()
        mette = get_state().operators.get(operator.id)
        visitor_id = get_state().visitors.on_site(mette)[0]["id"]
    staff.send(type="invite", visitor=visitor_id, message="Kan jeg hjælpe?")
    staff.expect("notice")
    visitor = visitor_socket()
    visitor.send(type="hello", pid="abcdef1234", page="http://shop/")
    visitor.expect("welcome")
    visitor.send(type="start", id="q1", body="Ja tak", invited=True)
    visitor.expect("ack")
    routed = staff.expect("routed")
    assert routed["requested_operator_id"] == operator.id
    with app.app_context():
        # The browsing visitor and the chatting one are one row.
        mette = get_state().operators.get(operator.id)
        assert get_state().visitors.on_site(mette)[0]["conversation"] == routed["id"]


# The shop's view of the visitor.


def test_the_hosts_context_hook_is_shown_beside_the_chat(
    app: Flask,
    livehelp: t.Any,
    visitor_socket: t.Any,
    operator_socket: t.Any,
    operator: t.Any,
) -> None:
    @livehelp.visitor_context
    def shop_customer() -> dict[str, t.Any]:
        return {
            "name": "Karen Kunde",
            "email": "kunde@example.com",
            "cart": [{"name": "Regnjakke", "quantity": 1}],
        }

    staff = operator_socket(operator)
    start_chat(visitor_socket())
    queued = staff.expect("queued")
    assert queued["context"]["name"] == "Karen Kunde"
    assert queued["context"]["cart"] == [{"name": "Regnjakke", "quantity": 1}]


def test_identity_from_the_browser_counts_only_when_signed(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    from flask_livehelp.identity import sign_identity

    with app.test_request_context():
        signed = sign_identity({"name": "Karen", "customer_id": "K-17"})
    staff = operator_socket(operator)
    trusted = visitor_socket()
    trusted.send(type="hello", identity=signed)
    trusted.expect("welcome")
    trusted.send(type="start", id="q1", body="Hej")
    assert staff.expect("queued")["context"] == {"name": "Karen", "customer_id": "K-17"}
    forged = visitor_socket()
    forged.send(type="hello", identity=signed[:-4] + "AAAA")
    forged.expect("welcome")
    forged.send(type="start", id="q1", body="Hej")
    assert staff.expect("queued")["context"] is None


def test_staff_see_which_name_and_e_mail_the_shop_vouches_for(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    from flask_livehelp.identity import sign_identity

    with app.test_request_context():
        signed = sign_identity({"name": "Karen Kunde", "email": "kunde@example.com"})
    staff = operator_socket(operator)
    said = {}
    for typed in (
        {},
        {"name": "karen kunde ", "email": "KUNDE@example.com"},
        {"name": "Dronningen", "email": "dronning@example.com", "consent": True},
    ):
        socket = visitor_socket()
        socket.send(type="hello", identity=signed)
        socket.expect("welcome")
        socket.send(type="start", id="q1", body="Hej", **typed)
        queued = staff.expect("queued")
        said[typed.get("name")] = (queued["verified"], queued["email_consent"])
    assert said == {
        # Nothing typed: the panel shows what the shop says.
        None: ({"name": True, "email": True}, False),
        "karen kunde ": ({"name": True, "email": True}, False),
        # Typed, and not what the shop knows: only the customer says so.
        "Dronningen": ({"name": False, "email": False}, True),
    }
    unsigned = visitor_socket()
    unsigned.send(type="hello")
    unsigned.expect("welcome")
    unsigned.send(type="start", id="q1", body="Hej", name="Karen Kunde")
    assert staff.expect("queued")["verified"] == {"name": False, "email": False}


# Pre-chat fields as the shop asks for them.


@pytest.mark.livehelp(widget_ask_email="required")
def test_a_required_email_is_enforced_by_the_server(
    app: Flask, visitor_socket: t.Any
) -> None:
    socket = visitor_socket()
    socket.send(type="hello")
    socket.expect("welcome")
    socket.send(type="start", id="q1", body="Hej")
    error = socket.expect("error")
    assert (error["code"], error["ref"]) == ("email-required", "q1")
    socket.send(type="start", id="q1", body="Hej", email="karen@example.com")
    assert socket.expect("ack", id="q1")


@pytest.mark.livehelp(widget_ask_name="hidden")
def test_a_hidden_field_is_not_stored_even_if_sent(
    app: Flask, visitor_socket: t.Any
) -> None:
    socket = visitor_socket()
    conversation_id = start_chat(socket, name="Sneaky")
    with app.app_context():
        assert get_state().conversations.get(conversation_id).visitor_name is None


def test_the_shop_known_email_is_the_address_on_file(
    app: Flask,
    livehelp: t.Any,
    visitor_socket: t.Any,
    operator_socket: t.Any,
    operator: t.Any,
) -> None:
    @livehelp.visitor_context
    def signed_in_customer() -> dict[str, t.Any]:
        return {"name": "Karen Kunde", "email": "kunde@example.com"}

    staff = operator_socket(operator)
    start_chat(visitor_socket())
    queued = staff.expect("queued")
    assert (queued["visitor_name"], queued["visitor_email"]) == (
        "Karen Kunde",
        "kunde@example.com",
    )


# Instant translation (seed 001), through the host's translation service.


def fake_translation(text: str, target: str, source: str | None) -> str:
    return f"[{source}->{target}] {text}"


def test_an_operator_reads_the_customer_in_their_own_language(
    app: Flask,
    livehelp: t.Any,
    visitor_socket: t.Any,
    operator_socket: t.Any,
    operator: t.Any,
) -> None:
    livehelp.translator(fake_translation)
    staff = operator_socket(operator)
    conversation_id = start_chat(visitor_socket(), body="Hvor er min pakke?")
    accepted(staff, conversation_id)
    staff.send(type="translate", conversation=conversation_id, seq=1)
    translation = staff.expect("translation")
    assert translation["seq"] == 1
    assert translation["text"].endswith("Hvor er min pakke?")
    staff.send(type="translate", conversation=conversation_id, text="It is on its way")
    assert staff.expect("translation")["draft"].endswith("It is on its way")


def test_translate_without_a_service_is_refused_clearly(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, operator: t.Any
) -> None:
    staff = operator_socket(operator)
    conversation_id = start_chat(visitor_socket())
    accepted(staff, conversation_id)
    staff.send(type="translate", conversation=conversation_id, seq=1)
    error = staff.expect("error")
    assert (error["code"], error["message"]) == (
        "no-translator",
        "No translation service is set up.",
    )
