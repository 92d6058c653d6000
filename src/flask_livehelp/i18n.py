"""The ``flask_livehelp`` message domain, used by every string we show."""

from __future__ import annotations

import contextlib
import os
import typing as t

from babel import support
from flask import current_app
from flask import Flask
from flask_babel import Domain
from flask_babel import force_locale
from flask_babel import get_locale
from flask_babel.speaklater import LazyString

DOMAIN = "flask_livehelp"
BUILTIN_DIRECTORY = os.path.join(os.path.dirname(__file__), "translations")


def N_(message: str) -> str:
    """Mark ``message`` for extraction only; it is translated where it is used."""
    return message


def has_babel() -> bool:
    return "babel" in current_app.extensions


class LiveHelpDomain(Domain):  # type: ignore[misc]
    """Our own catalog, in the locale the host's Flask-Babel selector picks.

    A host that never called ``Babel(app)`` gets the English source strings.
    """

    @classmethod
    def for_app(cls, app: Flask) -> LiveHelpDomain:
        directories = [
            BUILTIN_DIRECTORY
            if name == "builtin"
            # Relative to the app, like BABEL_TRANSLATION_DIRECTORIES.
            else os.path.join(app.root_path, name)
            for name in app.config["LIVEHELP_TRANSLATION_DIRECTORIES"]
        ]
        # Babel merges catalogs in order and later ones win, so a host
        # directory listed after "builtin" overrides our strings.
        return cls(translation_directories=directories, domain=DOMAIN)

    def get_translations(self) -> support.NullTranslations:
        """Our catalogs for the current locale, merged; later directories win.

        Flask-Babel's own merge takes the plural rule of the last directory
        even when that one has no catalog for the locale, which would give a
        French "0 chats" as soon as a host adds a directory of its own.
        """
        locale = get_locale()
        if locale is None:
            return support.NullTranslations()
        key = (str(locale), DOMAIN)
        if key not in self.cache:
            spoken = self.speaks(locale.language)
            wanted = [locale] if spoken == locale.language else [spoken]
            merged = support.Translations(domain=DOMAIN)
            for directory in self.translation_directories:
                found = support.Translations.load(directory, wanted, DOMAIN)
                if isinstance(found, support.Translations):
                    merged.merge(found)
                    merged.plural = found.plural
            self.cache[key] = merged
        return t.cast(support.NullTranslations, self.cache[key])

    def gettext(self, string: str, **variables: object) -> str:
        if not has_babel():
            return string % variables if variables else string
        return t.cast(str, super().gettext(string, **variables))

    def ngettext(
        self, singular: str, plural: str, num: int, **variables: object
    ) -> str:
        if not has_babel():
            variables.setdefault("num", num)
            return (singular if num == 1 else plural) % variables
        return t.cast(str, super().ngettext(singular, plural, num, **variables))

    def languages(self) -> list[str]:
        """The languages some catalog of ours exists for, English first.

        Read once per process, as Flask-Babel reads the catalogs themselves.
        """
        if self._languages is None:
            self._languages = self._find_languages()
        return self._languages

    _languages: list[str] | None = None

    def speaks(self, language: str) -> str:
        """The language we show for ``language``: it, or the shop's default.

        A language no catalog of ours has (a shop in Bulgarian) falls back to
        the app's ``BABEL_DEFAULT_LOCALE`` when we have that, else English,
        and pages say which one they are in.
        """
        if language in self.languages():
            return language
        default = current_app.config.get("BABEL_DEFAULT_LOCALE") or "en"
        base = default.replace("-", "_").split("_")[0].lower()
        return base if base in self.languages() else "en"

    def _find_languages(self) -> list[str]:
        found = {"en"}
        for directory in self.translation_directories:
            if not os.path.isdir(directory):
                continue
            for name in os.listdir(directory):
                mo = os.path.join(directory, name, "LC_MESSAGES", f"{DOMAIN}.mo")
                if os.path.exists(mo):
                    found.add(name)
        return ["en", *sorted(found - {"en"})]


def _domain() -> LiveHelpDomain:
    return t.cast(LiveHelpDomain, current_app.extensions["livehelp"].domain)


def _lh(string: str, **variables: object) -> str:
    """Translate ``string`` in the ``flask_livehelp`` domain."""
    return _domain().gettext(string, **variables)


def _lhn(singular: str, plural: str, num: int, **variables: object) -> str:
    """Translate a string with a plural form in the ``flask_livehelp`` domain."""
    return _domain().ngettext(singular, plural, num, **variables)


def lazy_lh(string: str, **variables: object) -> LazyString:
    """Like :func:`_lh`, translated when the string is used."""
    return LazyString(_lh, string, **variables)


def current_language() -> str:
    """The language our strings are shown in now, e.g. ``"da"``.

    The host's locale selector decides; a language we have no catalog for
    gives the shop's default language (see :meth:`LiveHelpDomain.speaks`).
    """
    if not has_babel():
        return "en"
    locale = get_locale()
    return _domain().speaks(locale.language) if locale is not None else "en"


def known_language(lang: str | None) -> str | None:
    """``lang`` reduced to a language we can show, else ``None``.

    Without Flask-Babel that is none: the host gets English.
    """
    if not lang or not has_babel():
        return None
    base = lang.replace("-", "_").split("_")[0].lower()
    return base if base in _domain().languages() else None


def in_language(lang: str | None) -> t.ContextManager[None]:
    """Show our strings in ``lang`` inside the block, if Flask-Babel is set up."""
    if lang and has_babel():
        return t.cast(t.ContextManager[None], force_locale(lang))
    return contextlib.nullcontext()
