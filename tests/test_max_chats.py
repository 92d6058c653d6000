"""An operator's max concurrent chats is a limit (issue 20): accepting, taking
a transfer and inviting all stop at it, also when two claims come at once."""

from __future__ import annotations

import threading
import typing as t

import pytest
from flask import Flask

from flask_livehelp import get_state
from flask_livehelp import Refused
from test_panel_tools import accepted
from test_panel_tools import online
from test_panel_tools import start_chat

FULL = "You have as many chats as you may have at once (1). End one first."


def test_accept_past_max_chats_is_refused_until_a_chat_ends(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    mette = make_operator(name="Mette", max_chats=1)
    staff = operator_socket(mette)
    first = start_chat(visitor_socket())
    second = start_chat(visitor_socket(), "Og jeg?")
    accepted(staff, first)
    staff.send(type="accept", conversation=second)
    error = staff.expect("error")
    assert (error["code"], error["message"]) == ("full", FULL)
    with app.app_context():
        assert get_state().conversations.get(second).status == "queued"
    staff.send(type="end", conversation=first)
    staff.expect("ended", id=first)
    accepted(staff, second)


def test_two_tabs_accepting_at_once_stay_within_max_chats(
    app: Flask, make_operator: t.Any
) -> None:
    mette = make_operator(name="Mette", max_chats=2)
    with app.app_context():
        state = get_state()
        chat_ids = []
        for n in range(4):
            visitor, _ = state.visitors.create(
                ip_address=None, user_agent=None, locale=None
            )
            conversation, _ = state.conversations.start(
                visitor.id, client_id=f"q{n}", body="Hej"
            )
            chat_ids.append(conversation.id)
    results: list[str] = []
    barrier = threading.Barrier(len(chat_ids))

    def accept(conversation_id: int) -> None:
        with app.app_context():
            services = get_state()
            operator = services.operators.get(mette.id)
            barrier.wait()
            try:
                services.conversations.accept(operator, conversation_id)
                results.append("won")
            except Refused as refusal:
                results.append(refusal.code)
            finally:
                services.db.session.remove()

    tabs = [threading.Thread(target=accept, args=(i,)) for i in chat_ids]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    assert sorted(results) == ["full", "full", "won", "won"]
    with app.app_context():
        (mine,) = [o for o in get_state().presence.operators() if o.id == mette.id]
        assert (mine.active_chats, mine.max_chats) == (2, 2)


def test_a_transfer_to_a_full_colleague_waits_for_room(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    anna = make_operator(name="Anna")
    bo = make_operator(name="Bo", max_chats=1)
    first, second = operator_socket(anna), operator_socket(bo)
    online(second)
    offered = start_chat(visitor_socket())
    bos_own = start_chat(visitor_socket(), "Til Bo")
    accepted(first, offered)
    accepted(second, bos_own)
    first.send(type="transfer", conversation=offered, operator=bo.id)
    offer = second.expect("transfer")
    second.send(type="transfer-answer", transfer=offer["id"], accept=True)
    error = second.expect("error")
    assert (error["code"], error["message"]) == ("full", FULL)
    with app.app_context():
        assert get_state().conversations.get(offered).operator_id == anna.id
    # The offer is still open: once Bo has room, he takes it.
    second.send(type="end", conversation=bos_own)
    second.expect("ended", id=bos_own)
    second.send(type="transfer-answer", transfer=offer["id"], accept=True)
    assert second.expect("assigned", id=offered)["operator_id"] == bo.id


def invite_from_the_list(app: Flask, staff: t.Any, operator: t.Any) -> int:
    """A visitor browses the shop, and ``operator`` (``staff``'s) invites them."""
    client = app.test_client()
    client.get("/livehelp/widget/status?pid=abcdef1234&page=http://shop/")
    with app.app_context():
        get_state().visitors.flush_beats()
        state = get_state()
        visitor_id = state.visitors.on_site(state.operators.get(operator.id))[0]["id"]
    staff.send(type="invite", visitor=visitor_id, message="Kan jeg hjælpe?")
    return t.cast(int, visitor_id)


def test_a_full_operator_cannot_invite(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    mette = make_operator(name="Mette", max_chats=1)
    staff = operator_socket(mette)
    accepted(staff, start_chat(visitor_socket()))
    invite_from_the_list(app, staff, mette)
    error = staff.expect("error")
    assert (error["code"], error["message"]) == ("full", FULL)
    client = app.test_client()
    assert "invitation" not in client.get("/livehelp/widget/status?pid=abcdef1234").json


@pytest.mark.livehelp(auto_assign=True)
def test_an_invited_chat_goes_the_usual_way_when_the_inviter_filled_up(
    app: Flask, visitor_socket: t.Any, operator_socket: t.Any, make_operator: t.Any
) -> None:
    mette = make_operator(name="Mette", max_chats=1)
    bo = make_operator(name="Bo")
    staff, colleague = operator_socket(mette), operator_socket(bo)
    online(staff)
    online(colleague)
    invite_from_the_list(app, staff, mette)
    staff.expect("notice")
    # Meanwhile Mette takes another chat, and has no room left.
    accepted(staff, start_chat(visitor_socket()))
    visitor = visitor_socket()
    visitor.send(type="hello", pid="abcdef1234", page="http://shop/")
    visitor.expect("welcome")
    visitor.send(type="start", id="q1", body="Ja tak", invited=True)
    conversation_id = visitor.expect("ack")["conversation"]
    routed = colleague.expect("routed", id=conversation_id)
    assert routed["requested_operator_id"] == bo.id
    assert not [f for f in staff.quiet() if f["type"] == "routed"]
