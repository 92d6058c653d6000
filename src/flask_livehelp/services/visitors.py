"""Shop visitors: anonymous, known by a token they keep, and seen on the site.

Every open shop page reports itself with the widget's status request (a
"beat"). Beats are only collected in memory there, and written to the
database in one batch by the background loop, so the status request stays
as cheap as a plain page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import threading

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..errors import NotFound
from ..errors import Refused
from ..hub import operator_channel
from ..i18n import N_
from ..models import OperatorMixin
from ..models import utcnow
from ..models import VisitorMixin
from . import access
from . import Basics
from . import load
from . import Service

#: A visitor counts as on the site while a page of theirs reported this recently.
ON_SITE_SECONDS = 90
#: The visitor list shows who was there this recently.
LISTED_MINUTES = 30
#: A visitor's hello notes the time again only after this long, unless it
#: brings news; their open pages' status requests say it more often.
SEEN_AGAIN_SECONDS = 30
MAX_INVITATION = 500


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Beat:
    """One report of an open shop page."""

    page: str | None
    title: str | None
    referrer: str | None
    locale: str | None
    user_agent: str | None
    ip_address: str | None
    at: dt.datetime


class VisitorService(Service):
    def __init__(self, *args: *Basics) -> None:
        super().__init__(*args)
        #: Per browser tab: its latest beat, and each page it showed since the
        #: last flush (a quick visitor sees several between two flushes).
        self._beats: dict[str, tuple[Beat, list[str]]] = {}
        self._beats_lock = threading.Lock()
        #: Invitations waiting in this process's view: presence id -> offer.
        self._invitations: dict[str, dict[str, object]] = {}

    # The chat's visitor.

    def create(
        self,
        *,
        ip_address: str | None,
        user_agent: str | None,
        locale: str | None,
        page: str | None = None,
        presence_id: str | None = None,
    ) -> tuple[VisitorMixin, str]:
        """The visitor who opens the chat, with the secret token that identifies them.

        A visitor already seen browsing (by ``presence_id``) is the same person
        and keeps their row. So is one whose first ``welcome`` was lost on the
        way: a tab that asks again before it ever chatted gets a new token for
        the same row, the lost one no longer works.
        """
        # Twice at most: two sockets of one tab may ask at the same moment,
        # and the second then finds the row the first one made.
        for attempt in range(2):
            token = secrets.token_urlsafe(32)
            visitor = self._row_for(presence_id)
            visitor.token_hash = hash_token(token)
            visitor.ip_address = ip_address
            visitor.user_agent = (user_agent or "")[:400] or None
            visitor.locale = locale
            visitor.current_page = page or visitor.current_page
            visitor.last_seen_at = utcnow()
            try:
                self.session.commit()
            except IntegrityError:
                self.session.rollback()
                if attempt:
                    raise
            else:
                break
        return visitor, token

    def _row_for(self, presence_id: str | None) -> VisitorMixin:
        """The row a new chat of this tab takes: its own, or a new one."""
        visitor = self._unclaimed(presence_id)
        if visitor is None:
            # A tab id that another visitor row holds stays with that row.
            taken = self._by_presence(presence_id) is not None
            visitor = self.models.visitor(
                presence_id=None if taken else presence_id, pages_seen=1
            )
            self.session.add(visitor)
        return visitor

    def _by_presence(self, presence_id: str | None) -> VisitorMixin | None:
        if not presence_id:
            return None
        model = self.models.visitor
        return self.session.execute(
            sa.select(model).where(model.presence_id == presence_id)
        ).scalar_one_or_none()

    def _browsing(self, presence_id: str | None) -> VisitorMixin | None:
        """The row of a visitor seen browsing who has not opened the chat yet."""
        visitor = self._by_presence(presence_id)
        return visitor if visitor is not None and visitor.token_hash is None else None

    def _unclaimed(self, presence_id: str | None) -> VisitorMixin | None:
        """This tab's visitor row, if nothing was ever said with its token."""
        visitor = self._by_presence(presence_id)
        if visitor is None or visitor.token_hash is None:
            return visitor
        conversation = self.models.conversation
        chatted = self.session.execute(
            sa.select(sa.exists().where(conversation.visitor_id == visitor.id))
        ).scalar_one()
        return None if chatted else visitor

    def from_token(self, token: str | None) -> VisitorMixin | None:
        if not token:
            return None
        model = self.models.visitor
        query = sa.select(model).where(model.token_hash == hash_token(token))
        return self.session.execute(query).scalar_one_or_none()

    def seen(
        self,
        visitor_id: int,
        page: str | None,
        *,
        presence_id: str | None = None,
        identity: dict[str, object] | None = None,
        timezone: str | None = None,
    ) -> None:
        """The chat's visitor is back: note the page and who the shop says they are.

        Nothing is written for a visitor seen moments ago with nothing new to
        note: after a deploy every open widget says hello at once, and their
        pages' status requests keep the time they were seen fresh anyway.

        :param timezone: Their browser's time zone, checked by the caller.
        """
        visitor = self.row(self.models.visitor, visitor_id)
        now = utcnow()
        news = {
            column: value
            for column, value in (
                ("current_page", page),
                ("timezone", timezone),
                ("shop_identity", identity),
            )
            if value and getattr(visitor, column) != value
        }
        tab = presence_id if presence_id != visitor.presence_id else None
        recently = dt.timedelta(seconds=SEEN_AGAIN_SECONDS)
        if not news and not tab and now - visitor.last_seen_at < recently:
            return
        visitor.last_seen_at = now
        for column, value in news.items():
            setattr(visitor, column, value)
        if tab:
            self._adopt(visitor, tab)
        self.session.commit()

    def _adopt(self, visitor: VisitorMixin, presence_id: str) -> None:
        """Take over the browsing row of the same person in a new tab."""
        browsing = self._browsing(presence_id)
        if browsing is not None and browsing.id != visitor.id:
            visitor.pages_seen += browsing.pages_seen
            self.session.delete(browsing)
            self.session.flush()
        owner = self.session.execute(
            sa.select(self.models.visitor.id).where(
                self.models.visitor.presence_id == presence_id
            )
        ).scalar_one_or_none()
        if owner is None:
            visitor.presence_id = presence_id

    # Beats.

    def beat(self, presence_id: str, beat: Beat) -> None:
        """Note an open shop page; written to the database by :meth:`flush_beats`."""
        with self._beats_lock:
            pages = self._beats.get(presence_id, (beat, []))[1]
            if beat.page and (not pages or pages[-1] != beat.page):
                pages.append(beat.page)
            self._beats[presence_id] = (beat, pages)

    def flush_beats(self) -> int:
        """Write the collected beats in one go; returns how many."""
        with self._beats_lock:
            beats, self._beats = self._beats, {}
        if not beats:
            return 0
        model = self.models.visitor
        known = {
            visitor.presence_id: visitor
            for visitor in self.session.execute(
                sa.select(model).where(model.presence_id.in_(beats))
            ).scalars()
        }
        for presence_id, (beat, pages) in beats.items():
            visitor = known.get(presence_id)
            if visitor is None:
                visitor = model(
                    presence_id=presence_id, pages_seen=0, first_seen_at=beat.at
                )
                self.session.add(visitor)
            self._apply(visitor, beat, pages)
        try:
            self.session.commit()
        except IntegrityError:
            # Another process added one of these visitors meanwhile; their
            # next beat lands on that row.
            self.session.rollback()
        return len(beats)

    @staticmethod
    def _apply(visitor: VisitorMixin, beat: Beat, pages: list[str]) -> None:
        for page in pages:
            if page != visitor.current_page:
                visitor.current_page = page
                visitor.pages_seen += 1
        if beat.title:
            visitor.page_title = beat.title
        if beat.referrer and not visitor.referrer:
            visitor.referrer = beat.referrer
        visitor.locale = beat.locale or visitor.locale
        visitor.user_agent = beat.user_agent or visitor.user_agent
        visitor.ip_address = beat.ip_address or visitor.ip_address
        visitor.last_seen_at = max(beat.at, visitor.last_seen_at or beat.at)

    def on_site(
        self, operator: OperatorMixin, now: dt.datetime | None = None
    ) -> list[dict[str, object]]:
        """Who is on the site: those here now first, then the most recent.

        A visitor in a chat ``operator`` does not hear of (another
        department's) is not theirs to see.
        """
        now = now or utcnow()
        model, chats = self.models.visitor, self.models.conversation
        # At most one open chat per visitor (a unique index says so).
        chat = (
            sa.select(
                chats.id, chats.visitor_id, chats.department_id, chats.operator_id
            )
            .where(chats.status.in_(("queued", "active")), chats.deleted_at.is_(None))
            .subquery()
        )
        rows = self.session.execute(
            sa.select(model, chat.c.id, chat.c.department_id, chat.c.operator_id)
            .outerjoin(chat, chat.c.visitor_id == model.id)
            .where(
                model.last_seen_at >= now - dt.timedelta(minutes=LISTED_MINUTES),
                model.erased_at.is_(None),
            )
            .order_by(model.last_seen_at.desc())
            .limit(200)
        ).all()
        here = now - dt.timedelta(seconds=ON_SITE_SECONDS)
        listed = [
            self._listed(visitor, chat_id, visitor.last_seen_at >= here)
            for visitor, chat_id, department_id, operator_id in rows
            if chat_id is None or access.hears_of(operator, department_id, operator_id)
        ]
        # "In site" first, then by how recently they were seen.
        return sorted(listed, key=lambda v: not v["on_site"])

    @staticmethod
    def _listed(
        visitor: VisitorMixin, conversation_id: int | None, on_site: bool
    ) -> dict[str, object]:
        identity = visitor.shop_identity or {}
        return {
            "id": visitor.id,
            "name": identity.get("name") or visitor.name,
            "page": visitor.current_page,
            "title": visitor.page_title,
            "pages": visitor.pages_seen,
            "since": visitor.first_seen_at.isoformat().replace("+00:00", "Z"),
            "seen": visitor.last_seen_at.isoformat().replace("+00:00", "Z"),
            "referrer": visitor.referrer,
            "lang": visitor.locale,
            "on_site": on_site,
            "conversation": conversation_id,
            "invited": visitor.invited_at is not None,
        }

    # Invitations.

    def invite(
        self, operator: OperatorMixin, visitor_id: int, message: str | None
    ) -> None:
        """Ask a visitor on the site to chat; the widget shows it until answered."""
        visitor = self.session.get(self.models.visitor, visitor_id)
        if visitor is None or visitor.presence_id is None:
            raise NotFound("no-visitor", N_("This visitor has left."))
        text = (message or "").strip()[:MAX_INVITATION]
        if not text:
            raise Refused("bad-field", N_("Write what the visitor should see."))
        if not load.has_room(self.session, self.models, operator.id):
            # The chat would come to them, and they could not take it.
            raise load.full(operator.max_chats)
        visitor.invitation = text
        visitor.invited_at = utcnow()
        visitor.invited_by_id = operator.id
        self.session.commit()
        self.load_invitations()

    def load_invitations(self) -> None:
        """Refresh this process's view of open invitations (a background job,
        every second: one query, however many operators invited)."""
        visitor, operator = self.models.visitor, self.models.operator
        rows = self.session.execute(
            sa.select(
                visitor.presence_id,
                operator.name,
                visitor.invited_by_id,
                visitor.invitation,
            )
            .outerjoin(operator, visitor.invited_by_id == operator.id)
            .where(visitor.invited_at.is_not(None))
        )
        self._invitations = {
            presence_id: {
                "operator": name,
                "operator_id": operator_id,
                "message": message,
            }
            for presence_id, name, operator_id, message in rows
            if presence_id
        }

    def invitation_for(self, presence_id: str | None) -> dict[str, object] | None:
        """The open invitation of a browser tab, from memory (no query)."""
        return self._invitations.get(presence_id) if presence_id else None

    def answer_invitation(self, presence_id: str, *, accepted: bool) -> int | None:
        """Clear an invitation; returns the inviting operator's id, if any."""
        model = self.models.visitor
        visitor = self.session.execute(
            sa.select(model).where(model.presence_id == presence_id)
        ).scalar_one_or_none()
        if visitor is None or visitor.invited_at is None:
            return None
        operator_id: int | None = visitor.invited_by_id
        visitor.invitation = visitor.invited_at = visitor.invited_by_id = None
        self.session.commit()
        self._invitations.pop(presence_id, None)
        if operator_id is not None and not accepted:
            self.hub.publish(
                operator_channel(operator_id),
                {"type": "invitation-declined", "visitor": visitor.id},
            )
        return operator_id
