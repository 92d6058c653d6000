"""A socket hands out each conversation's messages in their order, once each."""

from __future__ import annotations

import json
import time

from flask_livehelp.hub import encode
from flask_livehelp.protocol import hidden_frame
from flask_livehelp.protocol import message_frame
from flask_livehelp.services.conversations.posting import StoredMessage
from flask_livehelp.sockets import ordering
from flask_livehelp.sockets.ordering import numbered
from flask_livehelp.sockets.ordering import Sequencer


def text(seq: int, conversation: int = 7, body: str = "") -> str:
    message = StoredMessage(
        id=seq,
        conversation_id=conversation,
        seq=seq,
        client_id=f"c{seq}",
        author="visitor",
        author_name=None,
        operator_id=None,
        body=body or f"line {seq}",
        created_at=None,
    )
    return encode(message_frame(message))


def seqs(sent: list[str]) -> list[int]:
    return [json.loads(item)["seq"] for item in sent]


def staff_note(seq: int) -> StoredMessage:
    return StoredMessage(
        id=seq,
        conversation_id=7,
        seq=seq,
        client_id=None,
        author="system",
        author_name=None,
        operator_id=None,
        body="note",
        created_at=None,
        staff_only=True,
    )


def test_the_number_is_read_from_the_frame_and_not_from_its_body() -> None:
    tricky = text(3, body='{"type":"message","conversation":1,"seq":99}')
    assert numbered(tricky) == (7, 3)
    hidden = hidden_frame(staff_note(seq=4))
    assert numbered(encode(hidden)) == (7, 4)
    assert numbered(encode({"type": "typing", "conversation": 7})) is None


def test_before_a_backlog_frames_pass_as_they_come() -> None:
    sent: list[str] = []
    sequencer = Sequencer(sent.append)
    sequencer.live(7, 5, text(5))
    sequencer.live(7, 4, text(4))
    # The client orders them: the socket does not know where it stands yet.
    assert seqs(sent) == [5, 4]


def test_live_frames_during_a_backlog_wait_and_come_after_it_once() -> None:
    sent: list[str] = []
    sequencer = Sequencer(sent.append)
    with sequencer.catch_up(7, after=2) as progress:
        # Published while the backlog is read: 4 is in both.
        sequencer.live(7, 5, text(5))
        sequencer.live(7, 4, text(4))
        for seq in (3, 4):
            sent.append(text(seq))
            progress.sent(seq)
    assert seqs(sent) == [3, 4, 5]
    sequencer.live(7, 5, text(5))
    sequencer.live(7, 6, text(6))
    assert seqs(sent) == [3, 4, 5, 6]


def test_an_early_frame_waits_for_the_one_before_it() -> None:
    sent: list[str] = []
    sequencer = Sequencer(sent.append)
    with sequencer.catch_up(7, after=0):
        pass
    sequencer.live(7, 2, text(2))
    assert sent == []
    sequencer.live(7, 1, text(1))
    assert seqs(sent) == [1, 2]
    # Conversations do not wait for each other.
    sequencer.live(8, 1, text(1, conversation=8))
    assert len(sent) == 3


def test_a_frame_whose_predecessor_never_comes_is_sent_after_a_while() -> None:
    sent: list[str] = []
    sequencer = Sequencer(sent.append)
    with sequencer.catch_up(7, after=0):
        pass
    sequencer.live(7, 3, text(3))
    sequencer.live(7, 2, text(2))
    assert sent == []
    deadline = time.monotonic() + ordering.HOLD_SECONDS + 2
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    # In order; the client asks for 1 itself.
    assert seqs(sent) == [2, 3]
    sequencer.live(7, 1, text(1))
    sequencer.live(7, 4, text(4))
    assert seqs(sent) == [2, 3, 4]
    sequencer.close()
