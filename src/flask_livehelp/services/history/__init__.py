"""Chat history: finding chats again, reading, exporting, deleting and erasing them.

Every query here starts from what the viewer may see (:mod:`.access`) and
leaves out deleted chats, so a list, a search, an export and a transcript
never show more than the single checks would allow.

Full-text search looks for every word of the query in the chat's messages:
PostgreSQL matches word beginnings through a GIN index on
``to_tsvector('simple', body)``; SQLite matches any part of a word with
``LIKE`` (a scan, fast enough at 100,000 chats; see ``bench/history.py``).
"""

from __future__ import annotations

from .deleting import HistoryChanges
from .export import HistoryExport
from .retention import Retention


class HistoryService(HistoryExport, HistoryChanges, Retention):
    """Chat history; each job in a module of its own.

    :mod:`.lists` (finding chats, with :mod:`.full_text` and :mod:`.sorting`),
    :mod:`.transcripts` (one chat), :mod:`.export` (CSV), :mod:`.deleting`
    (deleting chats, erasing customers) and :mod:`.retention` (the purge);
    :mod:`.filters` holds what a list asks for, :mod:`.wording` a
    transcript in words.
    """


__all__ = ["HistoryService"]
