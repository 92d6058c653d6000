"""What operators and visitors are helped with: canned responses and help articles.

Canned responses are ready answers an operator inserts by name; help
articles are suggested to visitors while they type their question. A host
with its own help centre registers a search of its own with
:meth:`flask_livehelp.LiveHelp.help_article_search`.
"""

from __future__ import annotations

import collections.abc as c
import logging
import re
import typing as t

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..errors import NotFound
from ..errors import Refused
from ..i18n import N_
from ..models import CannedResponseMixin
from ..models import HelpArticleMixin
from ..models import OperatorMixin
from . import audit
from . import Service

log = logging.getLogger(__name__)

#: The host's search: ``(question, lang, limit)`` to a list of dicts with
#: ``title``, ``url`` and ``excerpt`` (or ``body``).
#: The host's dicts are read through str() and checks (see _host_suggestions).
ArticleSearch = c.Callable[[str, str, int], "c.Iterable[t.Mapping[str, t.Any]]"]

CANNED_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
LANG = re.compile(r"([a-z]{2,3}([_-][A-Za-z0-9]{2,8})?)?")
WORD = re.compile(r"\w{3,}", re.UNICODE)
MAX_BODY = 4000
MAX_ARTICLE_BODY = 20000
EXCERPT = 160
#: Words too common to tell articles apart.
STOP_WORDS = frozenset(
    "the and for you your have has was are can not but with what how when where"
    " why who this that there from they them our out any all get got would could"
    " should hello please thanks thank"
    " og jeg det der til har kan ikke med hvad hvor hvordan hvornår hej tak den"
    " som fra min mit mine vil skal eller men når".split()
)
#: How much a word found in each field counts.
WEIGHTS = (("title", 3), ("keywords", 2), ("body", 1))


class KnowledgeService(Service):
    # Canned responses.

    def canned_responses(self) -> list[CannedResponseMixin]:
        model = self.models.canned_response
        query = sa.select(model).order_by(model.name, model.lang)
        return list(self.session.execute(query).scalars())

    def canned(self, canned_id: int) -> CannedResponseMixin:
        row = self.session.get(self.models.canned_response, canned_id)
        if row is None:
            raise NotFound("no-canned", N_("No such canned response."))
        return row

    def canned_for(self, lang: str | None) -> list[CannedResponseMixin]:
        """The responses an operator writing in ``lang`` may insert, by name.

        A response written for ``lang`` wins over the one of the same name for
        every language (``lang=""``).
        """
        model = self.models.canned_response
        langs = ["", lang] if lang else [""]
        rows = self.session.execute(
            sa.select(model).where(model.lang.in_(langs)).order_by(model.name)
        ).scalars()
        chosen: dict[str, CannedResponseMixin] = {}
        for row in rows:
            if row.name not in chosen or row.lang:
                chosen[row.name] = row
        return [chosen[name] for name in sorted(chosen, key=str.lower)]

    def save_canned(
        self,
        canned_id: int | None,
        *,
        name: str,
        lang: str,
        body: str,
        by: OperatorMixin | None,
    ) -> CannedResponseMixin:
        """Create (``canned_id=None``) or change a canned response."""
        name, lang, body = name.strip().lstrip("#"), _lang(lang), body.strip()
        if not CANNED_NAME.fullmatch(name):
            raise Refused(
                "bad-name",
                N_("A name has 1 to 64 letters, digits, dots, dashes or underscores."),
            )
        _check_text(body, MAX_BODY)
        model = self.models.canned_response
        row = model() if canned_id is None else self.canned(canned_id)
        row.name, row.lang, row.body = name, lang, body
        self.session.add(row)
        self._commit_unique(N_("A canned response with this name and language exists."))
        self._audit(by, "canned-saved", f"canned:{row.id} {name}")
        return row

    def delete_canned(self, canned_id: int, *, by: OperatorMixin | None) -> None:
        row = self.canned(canned_id)
        self.session.delete(row)
        self.session.add(
            audit.entry(
                self.models, by, "canned-deleted", f"canned:{row.id} {row.name}"
            )
        )
        self.session.commit()

    # Help articles.

    def articles(self) -> list[HelpArticleMixin]:
        model = self.models.help_article
        query = sa.select(model).order_by(model.lang, model.title)
        return list(self.session.execute(query).scalars())

    def article(self, article_id: int) -> HelpArticleMixin:
        row = self.session.get(self.models.help_article, article_id)
        if row is None:
            raise NotFound("no-article", N_("No such help article."))
        return row

    def save_article(
        self,
        article_id: int | None,
        *,
        title: str,
        body: str,
        url: str | None,
        lang: str,
        keywords: str,
        is_active: bool = True,
        by: OperatorMixin | None,
    ) -> HelpArticleMixin:
        """Create (``article_id=None``) or change a help article."""
        title, body = title.strip(), body.strip()
        url, keywords = (url or "").strip() or None, keywords.strip()
        if not title or len(title) > 200:
            raise Refused("bad-title", N_("Give a title of at most 200 characters."))
        if len(body) > MAX_ARTICLE_BODY:
            raise Refused("too-long", N_("The text is too long."))
        if len(keywords) > 500:
            raise Refused("too-long", N_("The keywords are too long."))
        if url is not None and not _safe_url(url):
            raise Refused(
                "bad-url",
                N_("The link must start with https://, http:// or / (a shop page)."),
            )
        model = self.models.help_article
        row = model() if article_id is None else self.article(article_id)
        row.title, row.body, row.url = title, body, url
        row.lang, row.keywords, row.is_active = _lang(lang), keywords, is_active
        self.session.add(row)
        self.session.flush()
        self.session.add(
            audit.entry(self.models, by, "article-saved", f"article:{row.id} {title}")
        )
        self.session.commit()
        return row

    def delete_article(self, article_id: int, *, by: OperatorMixin | None) -> None:
        row = self.article(article_id)
        self.session.delete(row)
        target = f"article:{row.id} {row.title}"
        self.session.add(audit.entry(self.models, by, "article-deleted", target))
        self.session.commit()

    def suggest(
        self, question: str, lang: str, limit: int = 3
    ) -> list[dict[str, object]]:
        """Help articles that match the words of a visitor's question, best first.

        Each is a dict with ``title``, ``url`` and ``excerpt``. The host's
        search, when registered, answers instead of ours.
        """
        limit = max(0, min(limit, 10))
        question = question[:1000]
        if not limit or not question.strip():
            return []
        search = current_app.extensions["livehelp"].extension.article_search
        if search is not None:
            return self._host_suggestions(search, question, lang, limit)
        words = _words(question)
        if not words:
            return []
        scored = [
            (score, article)
            for article in self._articles_for(lang)
            if (score := _score(article, words)) > 0
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1].title.lower()))
        return [_suggestion(a.title, a.url, a.body, a.id) for _, a in scored[:limit]]

    def _articles_for(self, lang: str) -> list[HelpArticleMixin]:
        model = self.models.help_article
        langs = {"", lang, lang.split("_")[0].split("-")[0]} if lang else {""}
        query = sa.select(model).where(model.is_active, model.lang.in_(langs))
        return list(self.session.execute(query).scalars())

    @staticmethod
    def _host_suggestions(
        search: ArticleSearch, question: str, lang: str, limit: int
    ) -> list[dict[str, object]]:
        try:
            found = list(search(question, lang, limit))[:limit]
        except Exception:
            # A broken help centre must not break the chat window.
            log.exception("The host's help article search failed.")
            return []
        suggestions = []
        for item in found:
            title, url = item.get("title"), item.get("url")
            if not title or (url and not _safe_url(str(url))):
                continue
            body = item.get("excerpt") or item.get("body") or ""
            suggestions.append(_suggestion(str(title), url, str(body), item.get("id")))
        return suggestions

    # Internals.

    def _commit_unique(self, message: str) -> None:
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            raise Refused("taken", message) from None

    def _audit(self, actor: OperatorMixin | None, action: str, target: str) -> None:
        self.session.add(audit.entry(self.models, actor, action, target))
        self.session.commit()


def _lang(lang: str | None) -> str:
    lang = (lang or "").strip()
    if not LANG.fullmatch(lang):
        raise Refused("bad-lang", N_("Unknown language."))
    return lang


def _check_text(body: str, maximum: int) -> None:
    if not body:
        raise Refused("empty", N_("Write a text."))
    if len(body) > maximum:
        raise Refused("too-long", N_("The text is too long."))


def _safe_url(url: str) -> bool:
    """A link shown to visitors: the web or a shop page, never ``javascript:``."""
    if len(url) > 2000 or any(ch.isspace() for ch in url):
        return False
    if url.lower().startswith(("https://", "http://")):
        return True
    return url.startswith("/") and not url.startswith(("//", "/\\"))


def _words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP_WORDS}


def _score(article: HelpArticleMixin, words: set[str]) -> int:
    score = 0
    for field, weight in WEIGHTS:
        found = _words(getattr(article, field) or "")
        # A question word that begins an article word counts too ("jakke" for
        # "jakker"), so plurals and inflections still match.
        score += weight * sum(
            1
            for word in words
            if word in found or any(f.startswith(word) for f in found)
        )
    return score


def _suggestion(
    title: str, url: str | None, body: str, article_id: object
) -> dict[str, object]:
    excerpt = " ".join(body.split())
    if len(excerpt) > EXCERPT:
        excerpt = excerpt[: EXCERPT - 1].rsplit(" ", 1)[0] + "…"
    return {"id": article_id, "title": title, "url": url, "excerpt": excerpt}
