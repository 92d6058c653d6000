"""The history lists exported as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import collections.abc as c
import csv
import datetime as dt
import io
import itertools

from ...i18n import _lh
from ...models import OperatorMixin
from .filters import HistoryFilter
from .filters import HistoryRow
from .lists import HistoryLists
from .wording import moments_in
from .wording import name_of

#: Cells a spreadsheet would run as a formula, unless defused.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class HistoryExport(HistoryLists):
    """Every chat a filter finds, as CSV lines streamed as they are read."""

    def export_csv(
        self,
        viewer: OperatorMixin,
        query: HistoryFilter,
        *,
        timezone: str | None = None,
        now: dt.datetime | None = None,
    ) -> c.Iterator[str]:
        """The chats of ``query`` as CSV lines, read as they are written.

        The header is translated now, in the caller's language, even when
        the lines are streamed after the request's view has returned.
        """
        header = _csv_line(
            [
                _lh("Chat"),
                _lh("Customer"),
                _lh("E-mail"),
                _lh("Department"),
                _lh("Operator"),
                _lh("Status"),
                _lh("Started"),
                _lh("Ended"),
                _lh("Duration (seconds)"),
                _lh("First response (seconds)"),
                _lh("Tags"),
            ]
        )
        rows = self.each(viewer, query, timezone=timezone, now=now)
        moment = moments_in(timezone, iso=True)
        return itertools.chain([header], (_csv_row(row, moment) for row in rows))


def _csv_row(row: HistoryRow, moment: c.Callable[..., str]) -> str:
    conversation = row.conversation
    first = conversation.first_response_at
    return _csv_line(
        [
            conversation.id,
            conversation.visitor_name or "",
            conversation.visitor_email or "",
            name_of(conversation.department),
            name_of(conversation.operator),
            conversation.status,
            moment(conversation.created_at),
            moment(conversation.ended_at),
            int(row.duration.total_seconds()),
            ""
            if first is None
            else int((first - conversation.created_at).total_seconds()),
            ", ".join(tag.name for tag in conversation.tags),
        ]
    )


def _csv_line(cells: list[object]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([defuse(cell) for cell in cells])
    return out.getvalue()


def defuse(cell: object) -> object:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell
