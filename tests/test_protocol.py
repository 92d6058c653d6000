"""Inbound frames are checked before any handler sees them."""

from __future__ import annotations

import pytest

from flask_livehelp.protocol import FrameError
from flask_livehelp.protocol import OPERATOR_FRAMES
from flask_livehelp.protocol import parse_frame
from flask_livehelp.protocol import VISITOR_FRAMES

LIMITS = {"MAX_MESSAGE_LENGTH": 20, "MAX_NAME_LENGTH": 10}


def parse(text: str | bytes, specs=VISITOR_FRAMES):  # type: ignore[no-untyped-def]
    return parse_frame(text, specs, LIMITS.__getitem__)


def test_a_valid_message() -> None:
    frame = parse('{"type": "message", "id": "a-1", "body": "Hej, har I den?"}')
    assert frame.type == "message"
    assert frame["id"] == "a-1" and frame["body"] == "Hej, har I den?"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "bad-frame"),
        (b"\x00binary", "bad-frame"),
        ("[1, 2]", "bad-frame"),
        ('{"no": "type"}', "bad-frame"),
        ('{"type": "shutdown"}', "unknown-type"),
        ('{"type": "message", "body": "hi"}', "bad-field"),
        ('{"type": "message", "id": "a", "body": 5}', "bad-field"),
        ('{"type": "message", "id": "a", "body": "   "}', "bad-field"),
        ('{"type": "message", "id": "a", "body": "x' + "y" * 30 + '"}', "too-long"),
        ('{"type": "message", "id": "<script>", "body": "hi"}', "bad-field"),
        ('{"type": "message", "id": "' + "a" * 65 + '", "body": "hi"}', "too-long"),
        ('{"type": "typing", "state": "yes"}', "bad-field"),
        (
            '{"type": "start", "id": "a", "body": "hi", "name": "far too long a name"}',
            "too-long",
        ),
        ('{"type": "hello", "after": -1}', "bad-field"),
        ('{"type": "hello", "after": true}', "bad-field"),
    ],
)
def test_bad_frames_are_refused_with_a_code(text: str, code: str) -> None:
    with pytest.raises(FrameError) as refused:
        parse(text)
    assert refused.value.code == code


def test_a_message_id_may_not_end_in_a_line_break() -> None:
    with pytest.raises(FrameError) as refused:
        parse('{"type": "message", "id": "a-1\\n", "body": "hi"}')
    assert refused.value.code == "bad-field"


def test_the_refusal_names_the_frame_it_answers() -> None:
    with pytest.raises(FrameError) as refused:
        parse('{"type": "message", "id": "m-7", "body": "' + "x" * 30 + '"}')
    assert refused.value.ref == "m-7"


def test_control_characters_are_removed_from_text() -> None:
    frame = parse(
        '{"type": "message", "id": "a", "body": "hi\\u0000\\u001b[31m\\nthere"}'
    )
    assert frame["body"] == "hi[31m\nthere"


def test_operator_status_must_be_a_known_one() -> None:
    assert (
        parse('{"type": "status", "state": "away"}', OPERATOR_FRAMES)["state"] == "away"
    )
    with pytest.raises(FrameError):
        parse('{"type": "status", "state": "invisible"}', OPERATOR_FRAMES)


@pytest.mark.parametrize(
    "address",
    ["karen@example.com\n", "karen@example.com\nBcc: all@example.com", "a b@x.dk"],
)
def test_an_email_address_with_line_breaks_or_spaces_is_not_valid(address: str) -> None:
    from flask_livehelp.addresses import valid_email

    assert not valid_email(address)
    assert valid_email("karen@example.com")
