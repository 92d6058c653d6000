"""The Redis hub: events between processes, one connection each, outages.

Each test runs its own redis-server, so it can stop it and start it again.
Two hubs (or two apps, each with its own server) stand in for two worker
processes; tests/test_deployment.py runs real gunicorn processes.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import json
import os
import queue
import signal
import threading
import time
import typing as t

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from conftest import _empty
from conftest import LiveServer
from conftest import login
from conftest import make_app
from conftest import need
from conftest import panel_cookie
from conftest import Socket
from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp import redis_hub
from flask_livehelp.hub import HEALTH_CHANNEL
from flask_livehelp.redis_hub import RedisHub
from flask_livehelp.services.limits import Limit
from flask_livehelp.services.limits import Limits
from flask_livehelp.services.limits import RedisCounts
from flask_livehelp.services.limits import SharedSockets
from servers import REDIS_SERVER
from servers import RedisServer
from servers import wait_until


@pytest.fixture
def redis_server() -> c.Iterator[RedisServer]:
    need(REDIS_SERVER is not None, "redis-server (apt-get install redis-server)")
    server = RedisServer().start()
    yield server
    server.close()


class Inbox:
    """Collects what a hub subscriber gets, for waiting on it."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, dict[str, t.Any]]] = queue.Queue()

    def __call__(self, channel: str, text: str) -> None:
        self.events.put((channel, json.loads(text)))

    def next(self, timeout: float = 5) -> tuple[str, dict[str, t.Any]]:
        return self.events.get(timeout=timeout)

    def empty_after(self, seconds: float = 0.3) -> bool:
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def hubs(redis_server: RedisServer) -> c.Iterator[c.Callable[..., RedisHub]]:
    made: list[RedisHub] = []

    def make(prefix: str = "shop-a:") -> RedisHub:
        hub = RedisHub(redis_server.url, prefix=prefix)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()


def subscribers(server: RedisServer, channel: str) -> int:
    client = redis.Redis(port=server.port)
    try:
        return t.cast(int, dict(client.pubsub_numsub(channel))[channel.encode()])
    finally:
        client.close()


def test_an_event_reaches_the_other_process_and_the_own_once(
    hubs: t.Any,
) -> None:
    here, there = hubs(), hubs()
    local, remote = Inbox(), Inbox()
    here.subscribe(local, "conversation:1")
    there.subscribe(remote, "conversation:1", "staff")
    here.publish("conversation:1", {"type": "message", "body": "Hej æøå"})
    here.publish("conversation:2", {"type": "message", "body": "not for them"})
    assert remote.next() == ("conversation:1", {"type": "message", "body": "Hej æøå"})
    assert local.next() == ("conversation:1", {"type": "message", "body": "Hej æøå"})
    # Nothing twice (the own event coming back from Redis is skipped), and
    # nothing of channels nobody subscribed to.
    assert local.empty_after() and remote.empty_after()


def test_two_shops_on_one_redis_never_mix(hubs: t.Any) -> None:
    shop_a, shop_b = hubs("shop-a:"), hubs("shop-b:")
    inbox = Inbox()
    shop_b.subscribe(inbox, "staff")
    shop_a.publish("staff", {"type": "queued", "id": 7})
    assert inbox.empty_after(0.5)


def test_one_redis_subscription_per_channel_and_process(
    hubs: t.Any, redis_server: RedisServer
) -> None:
    hub = hubs()
    first = hub.subscribe(Inbox(), "conversation:5")
    second = hub.subscribe(Inbox(), "conversation:5")
    # Redis has confirmed before subscribe() returns.
    assert subscribers(redis_server, "shop-a:conversation:5") == 1
    first.close()
    assert subscribers(redis_server, "shop-a:conversation:5") == 1
    second.close()
    wait_until(
        lambda: subscribers(redis_server, "shop-a:conversation:5") == 0,
        5,
        "the last subscriber leaving unsubscribes",
    )
    # The health channel stays within the process.
    hub.subscribe(Inbox(), HEALTH_CHANNEL)
    assert subscribers(redis_server, "shop-a:hub") == 0


def test_an_outage_is_announced_and_the_hub_recovers(
    hubs: t.Any, redis_server: RedisServer
) -> None:
    here, there = hubs(), hubs()
    health, remote, local = Inbox(), Inbox(), Inbox()
    there.subscribe(health, HEALTH_CHANNEL)
    there.subscribe(remote, "conversation:9")
    here.subscribe(local, "conversation:9")

    redis_server.stop()
    assert health.next() == (HEALTH_CHANNEL, {"type": "hub", "state": "down"})
    assert not there.is_healthy()
    wait_until(lambda: not here.is_healthy(), 5, "both hubs noticing the outage")
    # Publishing during the outage neither fails nor waits; this process's
    # own subscribers still get the event.
    here.publish("conversation:9", {"type": "message", "seq": 4})
    assert local.next() == ("conversation:9", {"type": "message", "seq": 4})
    # Whoever subscribes during the outage hears of it at once.
    late = Inbox()
    there.subscribe(late, HEALTH_CHANNEL)
    assert late.next(timeout=0.1)[1] == {"type": "hub", "state": "down"}

    redis_server.start()
    assert health.next(timeout=10) == (HEALTH_CHANNEL, {"type": "hub", "state": "up"})
    wait_until(here.is_healthy, 10, "the publishing hub reconnecting")
    # Subscriptions were renewed: events cross again.
    here.publish("conversation:9", {"type": "message", "seq": 5})
    assert remote.next() == ("conversation:9", {"type": "message", "seq": 5})


def test_a_hub_started_while_redis_is_down_says_so_and_comes_up(
    redis_server: RedisServer,
) -> None:
    redis_server.stop()
    hub = RedisHub(redis_server.url, prefix="shop-a:")
    try:
        health = Inbox()
        hub.subscribe(health, HEALTH_CHANNEL)
        assert health.next(timeout=1)[1] == {"type": "hub", "state": "down"}
        redis_server.start()
        assert health.next(timeout=10)[1] == {"type": "hub", "state": "up"}
        assert hub.is_healthy()
    finally:
        hub.close()


def crossed(hubs: t.Any, channel: str) -> tuple[RedisHub, RedisHub, Inbox, Inbox]:
    """Two processes' hubs, ``here`` and ``there``, and the inboxes of here's
    health and of there's subscriber to ``channel``, once an event crossed
    (so both listen, and here's publisher has its connection)."""
    here, there = hubs(), hubs()
    health, remote = Inbox(), Inbox()
    here.subscribe(health, HEALTH_CHANNEL)
    there.subscribe(remote, channel)
    here.publish(channel, {"type": "message", "seq": 0})
    assert remote.next()[1]["seq"] == 0
    return here, there, health, remote


def test_a_publishing_connection_redis_closed_is_replaced_without_a_loss(
    hubs: t.Any, redis_server: RedisServer
) -> None:
    here, _, health, remote = crossed(hubs, "conversation:8")
    # Redis closes every connection but the subscribers' (an idle time-out
    # or an admin would): the publisher's had every command answered.
    admin = redis.Redis(port=redis_server.port)
    try:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    finally:
        admin.close()
    # The next event finds the connection closed before it is written into
    # it, and goes out on a new one; nothing was lost, so nothing to announce.
    here.publish("conversation:8", {"type": "message", "seq": 2})
    assert remote.next()[1]["seq"] == 2
    assert health.empty_after() and here.is_healthy()


def test_a_burst_of_events_arrives_in_the_other_process_in_order_and_once(
    hubs: t.Any,
) -> None:
    here, there = hubs(), hubs()
    local, remote = Inbox(), Inbox()
    channels = ["conversation:1", "conversation:1:staff", "staff"]
    here.subscribe(local, *channels)
    there.subscribe(remote, *channels)
    # Many at once, as a busy process publishes: several go in one round trip.
    sent = [
        (channel, {"type": "message", "seq": seq})
        for seq in range(600)
        for channel in channels[: 1 + seq % 3]
    ]
    for channel, event in sent:
        here.publish(channel, event)
    for inbox in (remote, local):
        got = [inbox.next() for _ in sent]
        for channel in channels:
            assert [e for c, e in got if c == channel] == [
                e for c, e in sent if c == channel
            ]
    assert remote.empty_after() and local.empty_after()


def test_a_process_of_the_last_release_reads_what_this_one_sends(
    hubs: t.Any, redis_server: RedisServer
) -> None:
    """While a deploy replaces processes one by one, old and new share Redis:
    each event stays one message, the sender's mark and the event's JSON,
    also when a burst goes out in one round trip."""
    client = redis.Redis(port=redis_server.port)
    older = client.pubsub()
    older.subscribe("shop-a:conversation:7")
    assert older.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
    here = hubs()
    sent = [{"type": "message", "seq": seq} for seq in range(50)]
    for event in sent:
        here.publish("conversation:7", event)
    got = []
    while len(got) < len(sent) and (message := older.get_message(timeout=5)):
        mark, _, text = message["data"].decode().partition(" ")
        assert len(mark) == 16 and mark.isalnum()
        got.append(json.loads(text))
    older.close()
    client.close()
    assert got == sent


def test_what_a_process_published_before_it_closed_still_arrives(
    hubs: t.Any,
) -> None:
    here, there = hubs(), hubs()
    remote = Inbox()
    there.subscribe(remote, "conversation:6")
    for seq in range(200):
        here.publish("conversation:6", {"type": "message", "seq": seq})
    here.close()
    assert [remote.next()[1]["seq"] for _ in range(200)] == list(range(200))


@contextlib.contextmanager
def frozen(server: RedisServer) -> c.Iterator[None]:
    """Redis stops answering without closing a connection, as a hung server."""
    os.kill(server.pid(), signal.SIGSTOP)
    try:
        yield
    finally:
        if server.process is not None:  # not crashed meanwhile
            os.kill(server.pid(), signal.SIGCONT)


def test_publishing_never_waits_for_a_redis_that_does_not_answer(
    hubs: t.Any, redis_server: RedisServer
) -> None:
    here, there = hubs(), hubs()
    health, local, remote = Inbox(), Inbox(), Inbox()
    here.subscribe(health, HEALTH_CHANNEL)
    here.subscribe(local, "conversation:3")
    there.subscribe(remote, "conversation:3")
    with frozen(redis_server):
        publisher = threading.Thread(
            target=here.publish, args=("conversation:3", {"type": "message", "seq": 1})
        )
        publisher.start()
        # Back at once (Redis would take its whole time-out to fail), and
        # this process's subscribers have the event.
        publisher.join(timeout=1)
        assert not publisher.is_alive()
        assert local.next() == ("conversation:3", {"type": "message", "seq": 1})
        assert health.next() == (HEALTH_CHANNEL, {"type": "hub", "state": "down"})
    assert health.next(timeout=10) == (HEALTH_CHANNEL, {"type": "hub", "state": "up"})
    wait_until(there.is_healthy, 10, "the other hub being up too")
    here.publish("conversation:3", {"type": "message", "seq": 2})
    # What Redis read before it hung may come late; a client keeps a message
    # once by its sequence number.
    while remote.next()[1]["seq"] != 2:
        pass


def test_a_queue_redis_cannot_keep_up_with_is_dropped_and_the_hub_says_so(
    hubs: t.Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_hub, "MAX_QUEUED_EVENTS", 5)
    here = hubs()
    health = Inbox()
    here.subscribe(health, HEALTH_CHANNEL)
    with frozen(redis_server):
        for seq in range(20):
            here.publish("conversation:4", {"type": "message", "seq": seq})
        # Said at once, not after Redis's time-out.
        assert health.next(timeout=0.5)[1] == {"type": "hub", "state": "down"}
        assert not here.is_healthy()
    assert health.next(timeout=10)[1] == {"type": "hub", "state": "up"}


def test_events_cross_at_once_after_redis_crashed_with_events_unanswered(
    hubs: t.Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The publisher reads Redis's answers with its next batch, not by a clock.
    monkeypatch.setattr(redis_hub, "ANSWER_WAIT_SECONDS", 60)
    here, there, health, remote = crossed(hubs, "conversation:2")
    with frozen(redis_server):
        here.publish("conversation:2", {"type": "message", "seq": 2})
        # Written, and never to be answered: Redis crashes before reading it.
        wait_until(lambda: here._unanswered == 1, 5, "the event written to Redis")
        redis_server.stop(crash=True)
    redis_server.start()
    assert health.next(timeout=10)[1] == {"type": "hub", "state": "down"}
    assert health.next(timeout=10)[1] == {"type": "hub", "state": "up"}
    wait_until(there.is_healthy, 10, "the other hub being up too")
    # The crash was announced, and clients asked for what they missed: the
    # next channel opened and the next event find the hub up, and cross.
    late = Inbox()
    here.subscribe(late, "conversation:3")
    assert subscribers(redis_server, "shop-a:conversation:3") == 1
    there.publish("conversation:3", {"type": "message", "seq": 1})
    assert late.next() == ("conversation:3", {"type": "message", "seq": 1})
    here.publish("conversation:2", {"type": "message", "seq": 3})
    assert remote.next() == ("conversation:2", {"type": "message", "seq": 3})
    assert health.empty_after() and here.is_healthy()


def test_a_channel_opened_while_events_cannot_reach_redis_is_subscribed_by_up(
    hubs: t.Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that hears "up" asks for what it missed, and counts on
    hearing everything from then on: a channel opened during the outage is
    subscribed before "up" is said, or another process's event right after
    it would pass its socket by."""
    monkeypatch.setattr(redis_hub, "MAX_QUEUED_EVENTS", 5)
    monkeypatch.setattr(redis_hub, "SUBSCRIBE_WAIT_SECONDS", 0.2)
    # The listener would bring its subscriptions in line anyway when it
    # pings; this long, a lost wake-up shows.
    monkeypatch.setattr(redis_hub, "PING_SECONDS", 60)
    here, there, health, _ = crossed(hubs, "conversation:4")
    late = Inbox()
    subscribed_at_up = []

    def note_subscribers(channel: str, text: str) -> None:
        if json.loads(text)["state"] == "up":
            count = subscribers(redis_server, "shop-a:conversation:5")
            subscribed_at_up.append(count)

    here.subscribe(note_subscribers, HEALTH_CHANNEL)
    with frozen(redis_server):
        # More than the sockets hold unread: the publisher waits on Redis,
        # and what is queued behind it is dropped.
        event = {"type": "message", "body": "x" * 1_000_000}
        for seq in range(1, 30):
            here.publish("conversation:4", {**event, "seq": seq})
        assert health.next()[1] == {"type": "hub", "state": "down"}
        # Its subscription waits for Redis, which does not answer.
        here.subscribe(late, "conversation:5")
    assert health.next(timeout=10)[1] == {"type": "hub", "state": "up"}
    wait_until(lambda: subscribed_at_up, 5, '"up" to reach every subscriber')
    assert subscribed_at_up == [1]
    there.publish("conversation:5", {"type": "message", "seq": 1})
    assert late.next() == ("conversation:5", {"type": "message", "seq": 1})


def test_a_second_subscriber_also_waits_until_redis_sends_the_channel(
    hubs: t.Any,
) -> None:
    """A second socket of the process following a chat whose first is still
    waiting for Redis (another tab, or the operator accepting it) sends its
    backlog next, as the first does: it may not go on before Redis sends
    this process the channel, or another process's message would pass it by."""
    here, there, _, _ = crossed(hubs, "conversation:1")
    for attempt in range(10):
        channel = f"conversation:{100 + attempt}"
        first, second = Inbox(), Inbox()
        opener = threading.Thread(target=here.subscribe, args=(first, channel))
        opener.start()
        wait_until(
            lambda channel=channel: channel in here._subscribers, 5, "the first one"
        )
        here.subscribe(second, channel)
        there.publish(channel, {"type": "message", "seq": attempt})
        assert second.next() == (channel, {"type": "message", "seq": attempt})
        opener.join()


# Two apps, each with its own server, on one database and one Redis: a
# customer on one, an operator on the other.


class Site:
    def __init__(self, app: Flask, server: LiveServer) -> None:
        self.app = app
        self.server = server


@pytest.fixture
def two_sites(
    request: pytest.FixtureRequest, redis_server: RedisServer, database_uri: str
) -> c.Iterator[tuple[Site, Site]]:
    marker = request.node.get_closest_marker("livehelp")
    settings = marker.kwargs if marker else {}
    sites = []
    for _ in range(2):
        db = SQLAlchemy()
        app = make_app(
            database_uri, db, LiveHelp(db=db), hub_url=redis_server.url, **settings
        )
        sites.append(Site(app, LiveServer(app)))
    yield sites[0], sites[1]
    for site in sites:
        site.server.stop()
        get_state(site.app).jobs.stop()
        get_state(site.app).hub.close()
    for site in reversed(sites):
        # The first app drops the tables, after the second let go of them.
        with site.app.app_context():
            _empty(get_state(site.app).db)


@pytest.fixture
def connect(
    sockets: list[Socket],
) -> c.Callable[..., Socket]:
    def open_socket(site: Site, path: str, **headers: str) -> Socket:
        socket = Socket(site.server.ws_url(path), headers)
        sockets.append(socket)
        return socket

    return open_socket


def operator_on(site: Site, connect: t.Any) -> Socket:
    with site.app.app_context():
        get_state().operators.create_operator(
            name="Mette", email="mette@example.com", password="correct horse"
        )
    client = site.app.test_client()
    assert login(client, "mette@example.com").status_code == 302
    socket = connect(site, "/livehelp/panel/ws", Cookie=panel_cookie(client))
    socket.hello = socket.expect("hello")  # type: ignore[attr-defined]
    socket.send(type="status", state="online")
    return socket


def customer_chat(site: Site) -> int:
    """The one chat of the site."""
    with site.app.app_context():
        state = get_state()
        model = state.models.conversation
        return t.cast(int, state.db.session.execute(sa.select(model.id)).scalar_one())


def test_a_customer_on_one_process_chats_with_an_operator_on_the_other(
    two_sites: tuple[Site, Site], connect: t.Any
) -> None:
    shop_a, shop_b = two_sites
    operator = operator_on(shop_b, connect)
    customer = connect(shop_a, "/livehelp/widget/ws")
    customer.send(type="hello", page="https://shop.test/regnjakke")
    customer.expect("welcome")
    customer.send(type="start", id="q1", body="Har I den i blå?")
    conversation = customer.expect("ack", id="q1")["conversation"]

    queued = operator.expect("queued", id=conversation)
    assert queued["preview"] == "Har I den i blå?"
    operator.send(type="accept", conversation=conversation)
    operator.expect("assigned", id=conversation)
    assert customer.expect("conversation", status="active")["operator"] == "Mette"

    operator.send(type="typing", conversation=conversation, state=True)
    assert customer.expect("typing")["author"] == "operator"
    operator.send(type="message", conversation=conversation, id="o1", body="Ja, i M")
    assert customer.expect("message", id="o1")["body"] == "Ja, i M"
    customer.send(type="message", id="q2", body="Tak!")
    assert operator.expect("message", id="q2")["body"] == "Tak!"


def test_what_the_customer_says_right_after_the_accept_reaches_the_operator(
    two_sites: tuple[Site, Site], connect: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop_a, shop_b = two_sites
    operator = operator_on(shop_b, connect)
    customer = connect(shop_a, "/livehelp/widget/ws")
    customer.send(type="hello")
    customer.expect("welcome")
    customer.send(type="start", id="q1", body="Hej?")
    conversation = customer.expect("ack", id="q1")["conversation"]
    operator.expect("queued", id=conversation)
    # The operator's process is busy for a moment after telling the customer.
    presence = get_state(shop_b.app).presence
    announce = presence.announce

    def busy(operator_id: int) -> None:
        time.sleep(0.5)
        announce(operator_id)

    monkeypatch.setattr(presence, "announce", busy)
    operator.send(type="accept", conversation=conversation)
    customer.expect("conversation", status="active")
    customer.send(type="typing", state=True)
    assert operator.expect("typing", conversation=conversation)["author"] == "visitor"


def test_sockets_hear_of_an_outage_and_resume_without_losing_a_message(
    two_sites: tuple[Site, Site], connect: t.Any, redis_server: RedisServer
) -> None:
    shop_a, shop_b = two_sites
    operator = operator_on(shop_b, connect)
    customer = connect(shop_a, "/livehelp/widget/ws")
    customer.send(type="hello")
    token = customer.expect("welcome")["token"]
    customer.send(type="start", id="q1", body="Hej")
    conversation = customer.expect("ack", id="q1")["conversation"]
    operator.send(type="accept", conversation=conversation)
    operator.expect("assigned", id=conversation)
    operator.send(type="sync", conversation=conversation, after=0)
    seen = operator.expect("message", conversation=conversation, body="accepted")

    redis_server.stop()
    assert customer.expect("hub") == {"type": "hub", "state": "down"}
    assert operator.expect("hub") == {"type": "hub", "state": "down"}
    # The customer writes on; the message is stored and acknowledged.
    customer.send(type="message", id="q2", body="Er I der stadig?")
    stored = customer.expect("ack", id="q2")
    assert stored["seq"] == seen["seq"] + 1

    redis_server.start()
    assert customer.expect("hub", timeout=10)["state"] == "up"
    assert operator.expect("hub", timeout=10)["state"] == "up"
    # What the panel missed comes back by sequence number, as the panel asks
    # for it when it hears "up".
    operator.send(type="sync", conversation=conversation, after=seen["seq"])
    missed = operator.expect("message", id="q2")
    assert (missed["seq"], missed["body"]) == (stored["seq"], "Er I der stadig?")
    # A customer who lost the socket meanwhile resumes from their last number.
    customer.close()
    again = connect(shop_a, "/livehelp/widget/ws")
    again.send(type="hello", token=token, conversation=conversation, after=1)
    again.expect("welcome")
    assert [again.expect("message")["seq"] for _ in range(2)] == [2, 3]
    # And events cross between the processes again.
    operator.send(type="message", conversation=conversation, id="o1", body="Ja!")
    assert again.expect("message", id="o1")["body"] == "Ja!"


def test_a_socket_opened_during_an_outage_says_so_and_chats_on(
    two_sites: tuple[Site, Site], connect: t.Any, redis_server: RedisServer
) -> None:
    shop_a, _ = two_sites
    redis_server.stop()
    with shop_a.app.app_context():
        hub = get_state(shop_a.app).hub
        wait_until(lambda: not hub.is_healthy(), 10, "the hub seeing Redis gone")
    customer = connect(shop_a, "/livehelp/widget/ws")
    # Told at once, instead of a socket that closes without a word.
    assert customer.receive() == {"type": "hub", "state": "down"}
    customer.send(type="hello")
    customer.expect("welcome")
    customer.send(type="start", id="q1", body="Er der nogen?")
    customer.expect("ack", id="q1")
    # The panel too: told, then its hello with the chat waiting.
    operator = operator_on(shop_a, connect)
    assert [c["id"] for c in operator.hello["queue"]] == [customer_chat(shop_a)]
    redis_server.start()
    assert customer.expect("hub", timeout=10)["state"] == "up"


def test_sockets_opened_at_once_on_a_fresh_process_all_start_up(
    two_sites: tuple[Site, Site],
) -> None:
    """The first socket connects the hub; those right behind it wait for that,
    instead of taking the hub for down (and, before, dying of it)."""
    shop_a, _ = two_sites
    opened: list[Socket] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            socket = Socket(shop_a.server.ws_url("/livehelp/widget/ws"))
            opened.append(socket)
            socket.send(type="hello")
            frame = socket.receive()
            assert frame["type"] == "welcome", frame
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    for socket in opened:
        socket.close()
    assert errors == [] and len(opened) == 20


@pytest.mark.livehelp(visitor_messages_per_minute=3)
def test_a_visitors_limit_holds_across_two_processes(
    two_sites: tuple[Site, Site], connect: t.Any
) -> None:
    shop_a, shop_b = two_sites
    first = connect(shop_a, "/livehelp/widget/ws")
    first.send(type="hello")
    token = first.expect("welcome")["token"]
    first.send(type="start", id="q1", body="Hej")
    first.expect("ack", id="q1")
    first.send(type="message", id="m2", body="To")
    first.expect("ack", id="m2")
    other = connect(shop_b, "/livehelp/widget/ws")
    other.send(type="hello", token=token)
    other.expect("welcome")
    other.send(type="message", id="m3", body="Tre")
    other.expect("ack", id="m3")
    other.send(type="message", id="m4", body="Fire")
    assert other.expect("error")["code"] == "too-fast"


def test_the_sockets_of_a_process_that_died_stop_counting(
    redis_server: RedisServer,
) -> None:
    sockets = SharedSockets(redis_server.url, "livehelp-test:")
    client = redis.Redis.from_url(redis_server.url)
    # A process killed with -9 while it held three of the address's sockets:
    # its count stays, its alive key does not.
    client.hset("livehelp-test:sockets:203.0.113.7", "gone:1", 3)
    client.set("livehelp-test:alive:other:2", 1)
    client.hset("livehelp-test:sockets:203.0.113.7", "other:2", 2)
    # Three allowed: the live process's two and this one.
    assert sockets.enter("203.0.113.7", 3)
    assert not sockets.enter("203.0.113.7", 3)
    # The dead process's sockets are taken off; a live one's count.
    held = set(client.hkeys("livehelp-test:sockets:203.0.113.7"))
    assert held == {b"other:2", sockets._holder().encode()}
    sockets.leave("203.0.113.7")
    assert client.hget("livehelp-test:sockets:203.0.113.7", sockets._holder()) is None


def test_a_socket_leaving_never_takes_a_socket_opening_beside_it_off_the_count(
    redis_server: RedisServer,
) -> None:
    """One process's sockets open and close at once, on many greenlets or
    threads: the count Redis holds for the process is never short of the
    sockets open, or the address gets more than its limit across processes."""
    sockets = SharedSockets(redis_server.url, "livehelp-test:")
    client = redis.Redis.from_url(redis_server.url)
    key, holder = "livehelp-test:sockets:203.0.113.9", sockets._holder()
    short: list[int] = []

    def come_and_go() -> None:
        for _ in range(400):
            sockets.enter("203.0.113.9", 100)
            sockets.leave("203.0.113.9")

    def stay_and_count() -> None:
        for _ in range(400):
            sockets.enter("203.0.113.9", 100)
            # This socket is open: the process's count holds it.
            if int(client.hget(key, holder) or 0) < 1:
                short.append(1)
            sockets.leave("203.0.113.9")

    threads = [threading.Thread(target=f) for f in (come_and_go, stay_and_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert short == [], f"{len(short)} of 400 times an open socket was not counted"
    assert client.hget(key, holder) is None


def test_the_sockets_of_a_fresh_process_share_one_redis_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sockets opened at once on a fresh process each made a client of their
    own, and a client replaced and collected closed its connections under
    whoever still used it: now and then a visitor's hello failed with
    "server-error" (test_sockets_opened_at_once_on_a_fresh_process_...)."""
    counts = RedisCounts("redis://127.0.0.1:1/0", "livehelp-test:")
    made: list[redis.Redis] = []
    from_url = redis.Redis.from_url

    def slowly(*args: t.Any, **kwargs: t.Any) -> redis.Redis:
        time.sleep(0.05)  # the moment the sockets raced through
        made.append(from_url(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(redis.Redis, "from_url", slowly)
    barrier = threading.Barrier(10)
    got: list[redis.Redis] = []

    def take() -> None:
        barrier.wait()
        got.append(counts.client())

    threads = [threading.Thread(target=take) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 1
    assert len(got) == 10 and all(client is made[0] for client in got)


@pytest.fixture
def limits_of_two(redis_server: RedisServer) -> c.Iterator[tuple[Limits, Limits]]:
    """The limits of two processes, counted in one Redis."""
    counts = [RedisCounts(redis_server.url, "livehelp-test:") for _ in range(2)]
    yield Limits(counts[0]), Limits(counts[1])
    for each in counts:
        each.close()


def test_limits_go_on_counting_in_redis_after_it_closed_their_connection(
    redis_server: RedisServer,
    limits_of_two: tuple[Limits, Limits],
    caplog: pytest.LogCaptureFixture,
) -> None:
    one, other = limits_of_two
    check = [Limit("VISITOR_MESSAGES_PER_MINUTE", 8, 2, 60)]
    assert one.exceeded(check) is None
    # Redis closes the kept connections (an idle time-out or an admin would).
    admin = redis.Redis(port=redis_server.port)
    try:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    finally:
        admin.close()
    # Still counted in Redis, where the other process sees it: the second
    # is within the limit, the third in the other process is past it.
    assert one.exceeded(check) is None
    assert other.exceeded(check) == check[0]
    assert "Redis is away" not in caplog.text


def test_a_messages_limits_are_counted_in_one_round_trip_and_hold(
    limits_of_two: tuple[Limits, Limits], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message counts against the visitor and the address: both in one
    write, not a round trip each on the socket's way to storing it."""
    one, other = limits_of_two
    checks = [
        Limit("VISITOR_MESSAGES_PER_MINUTE", 7, 3, 60),
        Limit("MESSAGES_PER_MINUTE_PER_IP", "203.0.113.7", 4, 60),
    ]
    round_trips = []
    send = redis.connection.Connection.send_packed_command

    def counted(connection: t.Any, packed: t.Any, *args: t.Any, **kw: t.Any) -> t.Any:
        sent = b"".join(packed)
        counts = sent.count(b"\r\nINCR\r\n"), sent.count(b"\r\nEXPIRE\r\n")
        if counts != (0, 0):  # not the connection's own greeting
            round_trips.append(counts)
        return send(connection, packed, *args, **kw)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counted)
    assert one.exceeded(checks) is None
    # INCR and EXPIRE for each of the two limits, sent together.
    assert round_trips == [(2, 2)]
    assert other.exceeded(checks) is None
    assert one.exceeded(checks) is None
    # The fourth message of the visitor passes their limit of three, in
    # whichever process; the address's fourth is still within its four.
    assert other.exceeded(checks) == checks[0]
    # A limit off (0) or nobody to count (no address known) is not counted.
    assert one.exceeded([Limit("OFF", 7, 0, 60), Limit("X", None, 1, 60)]) is None
