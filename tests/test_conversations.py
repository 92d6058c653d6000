"""The chat's rules, tested through the services alone (no HTTP)."""

from __future__ import annotations

import threading
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from conftest import statements_of
from flask_livehelp import get_state
from flask_livehelp import NotAllowed
from flask_livehelp import Refused
from flask_livehelp import signals


@pytest.fixture
def visitor(state: t.Any) -> t.Any:
    visitor, _token = state.visitors.create(
        ip_address="10.0.0.1", user_agent="pytest", locale="da"
    )
    return visitor


def start(
    state: t.Any,
    visitor: t.Any,
    body: str = "Hej, har I den i blå?",
    client_id: str = "c1",
) -> tuple[t.Any, t.Any]:
    return state.conversations.start(visitor.id, client_id=client_id, body=body)


def test_start_stores_the_question_as_message_one_and_queues(
    state: t.Any, visitor: t.Any, events: list
) -> None:
    conversation, message = start(state, visitor)
    assert conversation.status == "queued"
    assert (message.seq, message.author, message.body) == (
        1,
        "visitor",
        "Hej, har I den i blå?",
    )
    queued = [e for ch, e in events if ch == "staff" and e["type"] == "queued"]
    assert queued[0]["id"] == conversation.id
    assert queued[0]["preview"] == "Hej, har I den i blå?"


def test_a_resent_start_finds_the_same_conversation(
    state: t.Any, visitor: t.Any
) -> None:
    first, message = start(state, visitor)
    again, same = start(state, visitor)
    assert (again.id, same.id) == (first.id, message.id)
    assert (
        state.db.session.scalar(
            sa.select(sa.func.count()).select_from(state.models.conversation)
        )
        == 1
    )


def test_one_open_chat_per_visitor(state: t.Any, visitor: t.Any) -> None:
    start(state, visitor)
    with pytest.raises(Refused) as refused:
        start(state, visitor, client_id="other")
    assert refused.value.code == "already-open"


def test_a_resent_message_is_stored_once_and_acknowledged_the_same(
    state: t.Any, visitor: t.Any
) -> None:
    conversation, _ = start(state, visitor)
    first, created = state.conversations.post_by_visitor(
        visitor.id, conversation.id, client_id="m2", body="Er den vandtæt?"
    )
    again, created_again = state.conversations.post_by_visitor(
        visitor.id, conversation.id, client_id="m2", body="Er den vandtæt?"
    )
    assert (created, created_again) == (True, False)
    assert (again.id, again.seq) == (first.id, first.seq) == (again.id, 2)
    assert len(state.conversations.messages_after(conversation.id, 0)) == 2


def test_a_resend_leaves_no_gap_and_is_answered_after_the_chat_ended(
    state: t.Any, visitor: t.Any
) -> None:
    """A client that lost the acknowledgement resends, perhaps too late."""
    conversation, _ = start(state, visitor)
    post = state.conversations.post_by_visitor
    first, _ = post(visitor.id, conversation.id, client_id="m2", body="Vandtæt?")
    post(visitor.id, conversation.id, client_id="m2", body="Vandtæt?")
    after, created = post(visitor.id, conversation.id, client_id="m3", body="Tak")
    assert (created, after.seq) == (True, 3)
    state.conversations.end(conversation.id, by="visitor")
    again, created = post(visitor.id, conversation.id, client_id="m2", body="Vandtæt?")
    assert (created, again.id, again.seq) == (False, first.id, 2)
    with pytest.raises(Refused) as refused:
        post(visitor.id, conversation.id, client_id="m4", body="Hallo?")
    assert refused.value.code == "ended"


def test_sequence_numbers_have_no_gaps_under_concurrent_writers(
    app: Flask, database_kind: str
) -> None:
    """Visitor and operator writing at the same moment get 2, 3, 4... in order."""
    with app.app_context():
        state = get_state()
        visitor, _ = state.visitors.create(
            ip_address=None, user_agent=None, locale=None
        )
        operator = state.operators.create_operator(
            name="Op", email="op@example.com", password="long enough"
        )
        conversation, _ = start(state, visitor)
        state.conversations.accept(operator, conversation.id)
        ids = (visitor.id, conversation.id, operator.id)

    def write(author: str, count: int) -> None:
        with app.app_context():
            services = get_state()
            for n in range(count):
                if author == "visitor":
                    services.conversations.post_by_visitor(
                        ids[0], ids[1], client_id=f"v{n}", body=f"v{n}"
                    )
                else:
                    op = services.operators.get(ids[2])
                    services.conversations.post_by_operator(
                        op, ids[1], client_id=f"o{n}", body=f"o{n}"
                    )
                services.db.session.remove()

    writers = [
        threading.Thread(target=write, args=(who, 15))
        for who in ("visitor", "operator")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    with app.app_context():
        seqs = [m.seq for m in get_state().conversations.messages_after(ids[1], 0)]
    assert seqs == list(range(1, 33))  # question + accepted event + 30 messages


def test_accept_is_atomic_one_winner_one_clear_refusal(
    state: t.Any, visitor: t.Any, make_operator: t.Any
) -> None:
    anna, bo = make_operator(name="Anna"), make_operator(name="Bo")
    conversation, _ = start(state, visitor)
    state.conversations.accept(anna, conversation.id)
    with pytest.raises(Refused) as refused:
        state.conversations.accept(bo, conversation.id)
    assert refused.value.code == "taken"
    assert state.conversations.get(conversation.id).operator_id == anna.id


def start_in_two_tabs(app: Flask, visitor_id: int, round_: int) -> list[str]:
    """Two tabs of one visitor send their first question at the same moment."""
    results: list[str] = []
    barrier = threading.Barrier(2)

    def start_in_tab(tab: int) -> None:
        with app.app_context():
            services = get_state()
            barrier.wait()
            try:
                services.conversations.start(
                    visitor_id, client_id=f"r{round_}t{tab}", body="Hej"
                )
                results.append("started")
            except Refused as refusal:
                results.append(refusal.code)
            finally:
                services.db.session.remove()

    tabs = [threading.Thread(target=start_in_tab, args=(n,)) for n in (1, 2)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    return sorted(results)


def test_two_tabs_starting_a_chat_at_once_leave_one_open_chat(app: Flask) -> None:
    with app.app_context():
        state = get_state()
        visitor, _ = state.visitors.create(
            ip_address=None, user_agent=None, locale=None
        )
        visitor_id = visitor.id
    for round_ in range(5):
        assert start_in_two_tabs(app, visitor_id, round_) == ["already-open", "started"]
        with app.app_context():
            conversations = get_state().conversations
            open_one = conversations.open_for_visitor(visitor_id)
            conversations.end(open_one.id, by="visitor")


def test_accept_at_the_same_moment_in_threads(
    app: Flask, make_operator: t.Any, database_kind: str
) -> None:
    operators = [make_operator(name=f"Op {n}") for n in range(4)]
    with app.app_context():
        state = get_state()
        visitor, _ = state.visitors.create(
            ip_address=None, user_agent=None, locale=None
        )
        conversation_id = start(state, visitor)[0].id
    results: list[str] = []
    barrier = threading.Barrier(len(operators))

    def accept(operator_id: int) -> None:
        with app.app_context():
            services = get_state()
            operator = services.operators.get(operator_id)
            barrier.wait()
            try:
                services.conversations.accept(operator, conversation_id)
                results.append("won")
            except Refused as refusal:
                results.append(refusal.code)

    threads = [threading.Thread(target=accept, args=(o.id,)) for o in operators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["taken", "taken", "taken", "won"]


def test_only_the_owner_answers(
    state: t.Any, visitor: t.Any, make_operator: t.Any
) -> None:
    anna, bo = make_operator(name="Anna"), make_operator(name="Bo")
    conversation, _ = start(state, visitor)
    with pytest.raises(NotAllowed):
        state.conversations.post_by_operator(
            anna, conversation.id, client_id="x", body="Not mine yet"
        )
    state.conversations.accept(anna, conversation.id)
    with pytest.raises(NotAllowed):
        state.conversations.post_by_operator(
            bo, conversation.id, client_id="y", body="Not mine"
        )
    message, _ = state.conversations.post_by_operator(
        anna, conversation.id, client_id="z", body="Ja!"
    )
    assert message.author_name == "Anna"


def test_a_visitor_reaches_only_their_own_conversations(
    state: t.Any, visitor: t.Any
) -> None:
    conversation, _ = start(state, visitor)
    stranger, _ = state.visitors.create(ip_address=None, user_agent=None, locale=None)
    with pytest.raises(Refused) as refused:
        state.conversations.post_by_visitor(
            stranger.id, conversation.id, client_id="x", body="hijack"
        )
    assert refused.value.code == "no-conversation"


def test_ending_writes_an_event_and_missed_when_nobody_took_it(
    state: t.Any, visitor: t.Any, operator: t.Any
) -> None:
    conversation, _ = start(state, visitor)
    ended = state.conversations.end(conversation.id, by="visitor")
    assert (ended.status, ended.ended_by) == ("missed", "visitor")
    other, _ = state.visitors.create(ip_address=None, user_agent=None, locale=None)
    chat, _ = start(state, other, client_id="q2")
    state.conversations.accept(operator, chat.id)
    ended = state.conversations.end(chat.id, by="operator", operator=operator)
    assert ended.status == "ended"
    kinds = [(m.kind, m.body) for m in state.conversations.messages_after(chat.id, 0)]
    assert kinds == [
        ("text", "Hej, har I den i blå?"),
        ("event", "accepted"),
        ("event", "ended"),
    ]
    with pytest.raises(Refused) as refused:
        state.conversations.post_by_visitor(
            other.id, chat.id, client_id="late", body="Hello?"
        )
    assert refused.value.code == "ended"


def test_completed_chats_of_an_operator(
    state: t.Any, operator: t.Any, make_operator: t.Any
) -> None:
    other = make_operator()
    for n, who in enumerate([operator, operator, other]):
        visitor, _ = state.visitors.create(
            ip_address=None, user_agent=None, locale=None
        )
        chat, _ = start(state, visitor, client_id=f"q{n}")
        state.conversations.accept(who, chat.id)
        state.conversations.end(chat.id, by="operator", operator=who)
    mine, total = state.conversations.completed_for(operator)
    assert total == 2 and all(c.operator_id == operator.id for c in mine)


def test_signals_tell_the_host_what_happened(
    app: Flask, state: t.Any, visitor: t.Any, operator: t.Any
) -> None:
    heard: list[tuple[str, t.Any]] = []
    receivers = {
        signal: (
            lambda name: lambda sender, **kw: heard.append((name, sender, sorted(kw)))
        )(signal.name)
        for signal in (
            signals.conversation_started,
            signals.message_posted,
            signals.conversation_accepted,
            signals.conversation_ended,
        )
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    try:
        conversation, _ = start(state, visitor)
        state.conversations.accept(operator, conversation.id)
        state.conversations.end(conversation.id, by="operator", operator=operator)
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)
    assert [name for name, *_ in heard] == [
        "livehelp-conversation-started",
        "livehelp-message-posted",
        "livehelp-conversation-accepted",
        "livehelp-conversation-ended",
    ]
    assert all(sender is app for _, sender, _ in heard)
    assert heard[2][2] == ["conversation", "operator"]
    assert heard[3][2] == ["conversation", "reason"]


def test_accepting_costs_the_same_with_five_or_twenty_waiting(
    state: t.Any, make_operator: t.Callable[..., t.Any], events: list[t.Any]
) -> None:
    """Everyone still waiting hears their new place: one query for all."""
    operator = state.operators.get(make_operator().id)
    state.presence.set_status(operator.id, "online")

    def queue_of(size: int) -> list[int]:
        ids = []
        for number in range(size):
            visitor, _ = state.visitors.create(
                ip_address=None, user_agent=None, locale="da"
            )
            chat, _ = state.conversations.start(
                visitor.id, client_id=f"q{number}", body="Hej?"
            )
            ids.append(chat.id)
        return ids

    costs = []
    for size in (5, 20):
        first, *waiting = queue_of(size)
        operator = state.operators.get(operator.id)
        costs.append(statements_of(state, state.conversations.accept, operator, first))
        places = {
            event["conversation"]: event["position"]
            for _, event in events
            if event.get("type") == "queue"
        }
        # Everyone behind moved up one place, in the order they came.
        assert [places[chat] for chat in waiting] == list(range(1, len(waiting) + 1))
        for chat in waiting:
            state.conversations.end(chat, by="visitor")
        events.clear()
    assert costs[0] == costs[1]
