"""The widget's colours: text that stays readable on the shop's colour."""

from __future__ import annotations

import re

HEX = re.compile(r"#([0-9a-fA-F]{6})")
WHITE = "#ffffff"
BLACK = "#1b1f23"


def luminance(colour: str) -> float:
    """The relative luminance of ``#rrggbb`` (WCAG 2)."""
    found = HEX.fullmatch(colour)
    if not found:
        raise ValueError(f"{colour!r} is not a #rrggbb colour.")
    digits = found.group(1)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [
        c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    """The WCAG contrast ratio of two ``#rrggbb`` colours, 1 to 21."""
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def ink_on(colour: str) -> str:
    """The text colour for ``colour``: white where it is readable, else near-black.

    An admin may choose any colour for the button and the chat's header; the
    words on it must still meet WCAG AA (4.5:1), so light colours get dark text.
    """
    try:
        if contrast(WHITE, colour) >= 4.5:
            return WHITE
    except ValueError:
        return WHITE
    return BLACK
