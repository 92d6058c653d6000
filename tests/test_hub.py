"""The in-process hub: the only path events take between connections."""

from __future__ import annotations

import json

from flask_livehelp.hub import Hub


def test_subscribers_get_events_of_their_channels_only() -> None:
    hub = Hub()
    got: list[tuple[str, dict]] = []
    subscription = hub.subscribe(
        lambda ch, text: got.append((ch, json.loads(text))), "a"
    )
    hub.publish("a", {"n": 1})
    hub.publish("b", {"n": 2})
    subscription.add("b")
    hub.publish("b", {"n": 3})
    subscription.discard("a")
    hub.publish("a", {"n": 4})
    assert got == [("a", {"n": 1}), ("b", {"n": 3})]


def test_closed_subscription_gets_nothing_and_channel_is_forgotten() -> None:
    hub = Hub()
    got: list[str] = []
    subscription = hub.subscribe(lambda ch, text: got.append(text), "a", "b")
    subscription.close()
    hub.publish("a", {})
    assert got == []
    assert hub._subscribers == {}


def test_a_closed_subscription_takes_no_channel_again() -> None:
    """An event being delivered to a socket as it closes may follow a chat
    (an operator's new one): the closed subscription must not come back to
    the hub, or it would be kept, and followed in Redis, for good."""
    hub = Hub()
    got: list[str] = []
    subscription = hub.subscribe(lambda ch, text: got.append(text), "a")
    subscription.close()
    subscription.add("b")
    hub.publish("b", {})
    assert got == []
    assert hub._subscribers == {}
    assert subscription.channels == set()


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    hub = Hub()
    got: list[str] = []

    def broken(channel: str, text: str) -> None:
        raise OSError("socket gone")

    hub.subscribe(broken, "a")
    hub.subscribe(lambda ch, text: got.append(text), "a")
    hub.publish("a", {"x": "æøå"})
    assert json.loads(got[0]) == {"x": "æøå"}
