"""What text from visitors (and anyone else) may hold before we keep it.

Control characters have no place in a name or a chat message: C0 and DEL
confuse terminals, logs and mail clients, and C1 (NEL, CSI...) does the same
in the few places that still read it. A lone surrogate is no character at
all: no database or mail can store it. And a message of nothing but
invisible characters (zero-width spaces, a byte-order mark, a word joiner)
would be an empty bubble.
"""

from __future__ import annotations

import re
import unicodedata

#: C0 (but tab and newline), DEL and C1.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SURROGATES = re.compile(r"[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds half of a UTF-16 pair, which JSON lets through."""
    return SURROGATES.search(text) is not None


def without_controls(text: str) -> str:
    return CONTROL_CHARACTERS.sub("", text)


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: spaces and invisible format characters."""
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in text)


def plain(text: str) -> str:
    """What may be kept of text we did not check at the door (a mail, a
    query string): without control characters, a lone surrogate (an
    undecodable byte of a mail) shown as the replacement character."""
    return without_controls(SURROGATES.sub("\ufffd", text))


#: FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE (Unicode's bidi isolates).
ISOLATE = "\u2068"
END_ISOLATE = "\u2069"


def isolated(text: object) -> str:
    """``text`` set apart for plain-text mails, line by line (an isolate ends
    with its line): an Arabic or Hebrew name or message then neither turns the
    words around it back to front, nor is turned itself. HTML mails use
    ``<bdi>`` and ``dir="auto"`` instead.
    """
    if text is None or text == "":
        return ""
    return "\n".join(
        f"{ISOLATE}{line}{END_ISOLATE}" if line else line
        for line in str(text).split("\n")
    )
