"""Canned responses (managers too) and help articles."""

from __future__ import annotations

import typing as t

from flask import flash
from flask import redirect
from flask import url_for
from flask.typing import ResponseReturnValue

from ...auth import current_operator
from ...auth import role_required
from ...i18n import _lh
from ...i18n import N_
from ...state import get_state
from .forms import flag_field
from .forms import saved_form
from .forms import text_field


class _CannedFields(t.TypedDict):
    name: str
    lang: str
    body: str


def _canned_fields() -> _CannedFields:
    return {
        "name": text_field("name", 64),
        "lang": text_field("lang", 16),
        "body": text_field("body", 4000),
    }


@role_required("manager")
def canned(canned_id: int | None = None) -> ResponseReturnValue:
    """The canned responses, with a form for a new one or the one chosen."""
    knowledge = get_state().knowledge
    return saved_form(
        "livehelp/admin/canned.html",
        lambda: knowledge.save_canned(
            canned_id, by=current_operator(), **_canned_fields()
        ),
        lambda _: url_for("livehelp.admin.canned"),
        N_("The canned response is saved."),
        responses=knowledge.canned_responses(),
        languages=get_state().domain.languages(),
        subject=None if canned_id is None else knowledge.canned(canned_id),
    )


@role_required("manager")
def delete_canned(canned_id: int) -> ResponseReturnValue:
    get_state().knowledge.delete_canned(canned_id, by=current_operator())
    flash(_lh("The canned response is deleted."), "livehelp-info")
    return redirect(url_for("livehelp.admin.canned"))


class _ArticleFields(t.TypedDict):
    title: str
    body: str
    url: str | None
    lang: str
    keywords: str
    is_active: bool


def _article_fields() -> _ArticleFields:
    return {
        "title": text_field("title", 200),
        "body": text_field("body"),
        "url": text_field("url", 2000) or None,
        "lang": text_field("lang", 16),
        "keywords": text_field("keywords", 500),
        "is_active": flag_field("is_active"),
    }


@role_required("admin")
def articles(article_id: int | None = None) -> ResponseReturnValue:
    """The help articles, with a form for a new one or the one chosen."""
    knowledge = get_state().knowledge
    return saved_form(
        "livehelp/admin/articles.html",
        lambda: knowledge.save_article(
            article_id, by=current_operator(), **_article_fields()
        ),
        lambda _: url_for("livehelp.admin.articles"),
        N_("The help article is saved."),
        articles=knowledge.articles(),
        languages=get_state().domain.languages(),
        subject=None if article_id is None else knowledge.article(article_id),
    )


@role_required("admin")
def delete_article(article_id: int) -> ResponseReturnValue:
    get_state().knowledge.delete_article(article_id, by=current_operator())
    flash(_lh("The help article is deleted."), "livehelp-info")
    return redirect(url_for("livehelp.admin.articles"))
