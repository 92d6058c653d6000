"""Full-text search in the chats' messages, on PostgreSQL and SQLite."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from .base import HistoryBase


class FullTextSearch(HistoryBase):
    """The chats whose messages hold every word of a search."""

    def _hits(self, words: list[str]) -> sa.CTE:
        """The ids of chats whose messages hold every word, as a CTE."""
        message = self.models.message
        if self._dialect() == "postgresql":
            # Each word through the index, then the chats that have them all.
            selects = [self._holding(word) for word in words]
            combined: sa.Select[int] | sa.CompoundSelect[int] = (
                selects[0].distinct() if len(selects) == 1 else sa.intersect(*selects)
            )
            # Found first, then joined: otherwise the planner may walk every
            # chat by date and test each one against the index.
            return combined.cte("livehelp_hits").prefix_with("MATERIALIZED")
        # Without an index every word costs a scan; so the longest (likely the
        # rarest) word is scanned for, and the others are only looked for in
        # the messages of the chats it found.
        first, *others = sorted(words, key=len, reverse=True)
        hits = self._holding(first).distinct()
        for word in others:
            hits = (
                self._holding(word).where(message.conversation_id.in_(hits)).distinct()
            )
        return hits.cte("livehelp_hits")

    def _holding(self, word: str) -> sa.Select[int]:
        message = self.models.message
        return sa.select(message.conversation_id).where(
            message.kind == "text", self._matches(message.body, word)
        )

    def _matches(
        self, column: sa_orm.InstrumentedAttribute[str], word: str
    ) -> sa.ColumnElement[bool]:
        if self._dialect() == "postgresql":
            # Only word characters reach to_tsquery, so its syntax cannot be
            # injected; ":*" makes it match word beginnings.
            vector = sa.func.to_tsvector(sa.literal_column("'simple'"), column)
            wanted = sa.func.to_tsquery(sa.literal_column("'simple'"), word + ":*")
            return vector.bool_op("@@")(wanted)
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matched: sa.ColumnElement[bool] = column.like(f"%{escaped}%", escape="\\")
        return matched
