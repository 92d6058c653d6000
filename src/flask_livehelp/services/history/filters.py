"""What a history list asks for, and what it gets back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from ...models import ConversationMixin

VIEWS = ("active", "completed", "all")
SORTS = (
    "customer",
    "email",
    "department",
    "operator",
    "started",
    "duration",
    "idle",
    "tags",
    "status",
)
#: Words of a search that count, and how long each may be.
MAX_WORDS = 5
MAX_WORD = 100
SEARCH_WORD = re.compile(r"\w+", re.UNICODE)


@dataclasses.dataclass
class HistoryFilter:
    """What a history list shows: a view, filters, a search and a sort."""

    #: ``active`` (my active chats), ``completed`` (my finished chats) or
    #: ``all`` (every chat the viewer oversees; managers and admins).
    view: str = "completed"
    status: str | None = None
    operator_id: int | None = None
    department_id: int | None = None
    tag: str | None = None
    #: Days in the viewer's time zone, both included.
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    search: str = ""
    sort: str = "started"
    descending: bool = True

    def words(self) -> list[str]:
        found = SEARCH_WORD.findall(self.search.lower())
        return [w[:MAX_WORD] for w in dict.fromkeys(found)][:MAX_WORDS]


@dataclasses.dataclass
class HistoryRow:
    conversation: ConversationMixin
    #: From the start to the end, or to now while it goes on.
    duration: dt.timedelta
    #: Since the last thing said, for active chats only.
    idle: dt.timedelta | None


@dataclasses.dataclass
class HistoryPage:
    rows: list[HistoryRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))
