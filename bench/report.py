"""Tables as Markdown, so they print well and paste into docs/benchmarks.md."""

from __future__ import annotations

import re
import typing as t


def table(
    title: str, headers: t.Sequence[str], rows: t.Sequence[t.Sequence[t.Any]]
) -> str:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [
        max(len(header), *(len(row[n]) for row in cells)) if cells else len(header)
        for n, header in enumerate(headers)
    ]

    def line(values: t.Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True))
            + " |"
        )

    divider = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join(
        [f"### {title}", "", line(headers), divider, *map(line, cells), ""]
    )


def percentile(values: t.Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.0f} µs"


def kb(size: float | None) -> str:
    return "-" if size is None else f"{size / 1024:.1f} KB"


def ratio(value: float | None, baseline: float | None) -> str:
    if value is None or not baseline:
        return "-"
    return f"{value / baseline:.1f}×"


def slug(label: str) -> str:
    """``label`` as a file name: lower case, words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
