"""Translations: the shipped catalogs, the host's own, and who decides the language.

The catalog checks (``-k catalog``, also run by ``scripts/translations check``)
keep the catalogs shippable: compiled, complete, and with the placeholders
of the English source. The others show what a customer, an operator and a
mail reader get in a language, in a host that adds languages of its own, and
in a host without Flask-Babel.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import typing as t
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy

from conftest import LiveServer
from conftest import login
from conftest import Socket
from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp.formatting import format_duration
from flask_livehelp.formatting import format_moment
from flask_livehelp.i18n import _lhn
from flask_livehelp.i18n import known_language

ROOT = pathlib.Path(__file__).parent.parent
SHIPPED = ROOT / "src" / "flask_livehelp" / "translations"
TEMPLATE = SHIPPED / "flask_livehelp.pot"
HOST = pathlib.Path(__file__).parent / "translations"
#: Every language we ship, complete.
LANGUAGES = ["da", "de", "es", "fr", "nb", "nl", "sv"]
#: ``%(name)s`` for Python and the widget's script, ``{name}`` for canned responses.
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
STATUS = "/livehelp/widget/status"
FRAME = "/livehelp/widget/frame"


def catalog_files(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(directory.glob("*/LC_MESSAGES/flask_livehelp.po"))


def read_catalog(path: pathlib.Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=path.parent.parent.name)


def entries(catalog: Catalog) -> list[t.Any]:
    return [message for message in catalog if message.id]


def msgids(catalog: Catalog) -> set[t.Any]:
    return {message.id for message in entries(catalog)}


def forms(message: t.Any) -> list[str]:
    return (
        list(message.string) if isinstance(message.string, tuple) else [message.string]
    )


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


# The catalogs.


def test_we_ship_a_catalog_for_every_language() -> None:
    assert [path.parent.parent.name for path in catalog_files(SHIPPED)] == LANGUAGES


def as_tuple(text: t.Any) -> t.Any:
    """A plural entry's forms, which read_mo gives as a list."""
    return tuple(text) if isinstance(text, list | tuple) else text


def compiled_meaning(mo: t.BinaryIO) -> dict[str, t.Any]:
    """What a compiled catalog says: its messages, plural rule and language.

    Not its bytes, which name the Babel that wrote them (``Generated-By``).
    """
    catalog = read_mo(mo)
    return {
        "language": dict(catalog.mime_headers).get("Language"),
        "plural_forms": catalog.plural_forms,
        "messages": {
            (as_tuple(message.id), message.context): as_tuple(message.string)
            for message in entries(catalog)
        },
    }


@pytest.mark.parametrize("directory", [SHIPPED, HOST], ids=["shipped", "host"])
def test_every_compiled_catalog_is_current_with_its_po(
    directory: pathlib.Path,
) -> None:
    """A .po edited without ``scripts/translations compile`` fails here."""
    sources = catalog_files(directory)
    assert sources
    for po in sources:
        mo = po.with_suffix(".mo")
        assert mo.exists(), f"{mo} is missing: run scripts/translations compile"
        fresh = io.BytesIO()
        write_mo(fresh, read_catalog(po))
        fresh.seek(0)
        with mo.open("rb") as committed:
            assert compiled_meaning(committed) == compiled_meaning(fresh), (
                f"{mo} is out of date with its .po: run scripts/translations compile"
            )
    compiled = sorted(directory.glob("*/LC_MESSAGES/flask_livehelp.mo"))
    assert compiled == [po.with_suffix(".mo") for po in sources]


def test_a_stale_compiled_catalog_is_found(tmp_path: pathlib.Path) -> None:
    """The freshness check above sees a changed translation and a fuzzy one."""
    catalog = read_catalog(SHIPPED / "da" / "LC_MESSAGES" / "flask_livehelp.po")
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    before = compiled_meaning(compiled)
    first = entries(catalog)[0]
    first.string = "Noget helt andet"
    changed = io.BytesIO()
    write_mo(changed, catalog)
    changed.seek(0)
    assert compiled_meaning(changed) != before
    first.flags.add("fuzzy")
    fuzzy = io.BytesIO()
    write_mo(fuzzy, catalog)
    fuzzy.seek(0)
    assert (as_tuple(first.id), None) not in compiled_meaning(fuzzy)["messages"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_shipped_catalog_translates_every_string_and_nothing_is_fuzzy(
    lang: str,
) -> None:
    catalog = read_catalog(SHIPPED / lang / "LC_MESSAGES" / "flask_livehelp.po")
    with TEMPLATE.open("rb") as file:
        template = read_po(file)
    # Updated from the current template: no string missing, none left over.
    assert msgids(catalog) == msgids(template), (
        "run scripts/translations update, then translate"
    )
    assert not catalog.obsolete
    assert not catalog.fuzzy
    untranslated = [m.id for m in entries(catalog) if not all(forms(m))]
    assert untranslated == []
    fuzzy = [m.id for m in entries(catalog) if m.fuzzy]
    assert fuzzy == []


#: The plural rule each shipped language uses: gettext's conventional rules
#: (docs/translating.md), written in each .po's header. Not Babel's CLDR data,
#: which changes between Babel releases (CLDR 46 gave French and Spanish a third
#: form for millions).
PLURAL_RULES = {
    "da": "nplurals=2; plural=(n != 1);",
    "de": "nplurals=2; plural=(n != 1);",
    "es": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
    "nb": "nplurals=2; plural=(n != 1);",
    "nl": "nplurals=2; plural=(n != 1);",
    "sv": "nplurals=2; plural=(n != 1);",
}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_shipped_catalog_has_the_plural_rule_of_its_language(lang: str) -> None:
    po = SHIPPED / lang / "LC_MESSAGES" / "flask_livehelp.po"
    catalog = read_catalog(po)
    assert catalog.plural_forms == PLURAL_RULES[lang]
    with po.with_suffix(".mo").open("rb") as mo:
        assert read_mo(mo).plural_forms == PLURAL_RULES[lang]
    for message in entries(catalog):
        assert len(forms(message)) == (
            catalog.num_plurals if message.pluralizable else 1
        )


@pytest.mark.parametrize(
    "path",
    catalog_files(SHIPPED) + catalog_files(HOST),
    ids=lambda path: f"{path.parts[-4]}/{path.parts[-3]}",
)
def test_catalog_translations_keep_the_placeholders_of_the_source(
    path: pathlib.Path,
) -> None:
    catalog = read_catalog(path)
    wrong = []
    for message in entries(catalog):
        if message.pluralizable:
            singular, plural = message.id
            allowed = [placeholders(singular), placeholders(plural)]
        else:
            allowed = [placeholders(message.id)]
        for form in forms(message):
            if form and placeholders(form) not in allowed:
                wrong.append((message.id, form))
            if form and "python-format" in message.flags:
                # Formatting must work the way _lh and _lhn do it.
                values = {k: 1 for k in re.findall(r"%\((\w+)\)", form)}
                form % values
    assert wrong == []
    # Babel's own checks: conversions and the number of plural forms.
    assert [(m.id, errors) for m, errors in catalog.check()] == []


def test_catalog_template_has_every_string_of_the_code(tmp_path: pathlib.Path) -> None:
    """A string added to the code without updating the catalogs fails here."""
    fresh = tmp_path / "fresh.pot"
    subprocess.run(
        [str(ROOT / "scripts" / "translations"), "extract", str(fresh)],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    with fresh.open("rb") as file:
        extracted = read_po(file)
    with TEMPLATE.open("rb") as file:
        committed = read_po(file)
    added = msgids(extracted) - msgids(committed)
    gone = msgids(committed) - msgids(extracted)
    assert (added, gone) == (set(), set()), (
        "run scripts/translations update, translate the new strings, then compile"
    )


def test_catalog_marks_in_our_templates_are_all_in_our_domain() -> None:
    """``_()`` and ``{% trans %}`` would use the host's domain, not our catalog."""
    templates = ROOT / "src" / "flask_livehelp" / "templates"
    host_domain = re.compile(r"\{%-?\s*trans\b|(?<![\w.])_\(|(?<![\w.])n?gettext\(")
    found = [
        str(path.relative_to(templates))
        for path in sorted(templates.rglob("*.*"))
        if host_domain.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []


# The language of the widget, the panel and the mails.


def test_the_widget_speaks_the_page_language(app: Flask) -> None:
    client = app.test_client()
    danish = client.get(STATUS, query_string={"lang": "da"}).json
    assert (danish["lang"], danish["label"]) == (
        "da",
        "Sælger er offline - send en besked",
    )
    german = client.get(STATUS, query_string={"lang": "de-AT"}).json
    assert german["label"] == "Offline - senden Sie uns eine Nachricht"
    frame = client.get(FRAME, query_string={"lang": "fr"}).text
    assert '<html lang="fr">' in frame
    assert "Comment pouvons-nous vous aider\u00a0?" in frame
    # A language nobody has a catalog for is English, not an error.
    unknown = client.get(STATUS, query_string={"lang": "xx"}).json
    assert (unknown["lang"], unknown["label"]) == ("en", "Offline - send a message")


def test_the_host_locale_selector_decides_without_a_page_language(app: Flask) -> None:
    # The app fixture's selector reads ?locale=.
    status = app.test_client().get(STATUS, query_string={"locale": "sv"}).json
    assert status["label"] == "Offline - skicka ett meddelande"


@pytest.mark.parametrize(
    ("default", "spoken", "offline"),
    [
        ("da", "da", "Sælger er offline - send en besked"),
        ("en", "en", "Offline - send a message"),
        ("bg", "en", "Offline - send a message"),
    ],
)
def test_a_shop_language_we_lack_falls_back_to_the_shops_default_visibly(
    app: Flask, default: str, spoken: str, offline: str
) -> None:
    """The host's selector says Bulgarian: the widget speaks, and says it
    speaks, the shop's default language (English if we lack that too)."""
    app.config["BABEL_DEFAULT_LOCALE"] = default
    client = app.test_client()
    status = client.get(STATUS, query_string={"locale": "bg"}).json
    assert (status["lang"], status["label"]) == (spoken, offline)
    frame = client.get(FRAME, query_string={"locale": "bg"}).text
    assert f'<html lang="{spoken}">' in frame
    with app.test_request_context("/", query_string={"locale": "bg"}):
        tag = str(app.jinja_env.globals["livehelp_widget"]())
    assert f"&#34;lang&#34;:&#34;{spoken}&#34;" in tag


def test_a_chat_speaks_the_page_language_over_its_socket(
    app: Flask, live_server: LiveServer, sockets: list[Socket]
) -> None:
    frame = app.test_client().get(FRAME, query_string={"lang": "da"}).text
    settings = json.loads(re.search(r'id="lh-settings">(.*?)</script>', frame).group(1))
    socket_url = urlsplit(settings["socket"])
    assert (socket_url.path, socket_url.query) == ("/livehelp/widget/ws", "lang=da")

    danish = Socket(live_server.ws_url(f"{socket_url.path}?{socket_url.query}"))
    sockets.append(danish)
    danish.send(type="message", id="m1", body="Hej")
    assert danish.expect("error")["message"] == "Sig hej først."
    danish.send(type="hello")
    danish.expect("welcome")
    danish.send(type="start", id="q1", body="Har I regnjakken i blå?")
    danish.expect("ack", id="q1")
    with app.app_context():
        model = get_state(app).models.conversation
        [conversation] = get_state(app).db.session.scalars(sa.select(model))
        assert conversation.locale == "da"


def test_admin_texts_of_a_language_win_over_the_catalog(app: Flask) -> None:
    with app.app_context():
        get_state(app).settings.set(
            "WIDGET_TEXTS",
            {"offline": "Skriv til Nordlys - vi svarer i morgen", "title": ""},
            lang="da",
        )
    client = app.test_client()
    assert (
        client.get(STATUS, query_string={"lang": "da"}).json["label"]
        == "Skriv til Nordlys - vi svarer i morgen"
    )
    frame = client.get(FRAME, query_string={"lang": "da"}).text
    assert "Skriv til Nordlys - vi svarer i morgen" in frame
    # An empty text keeps ours; other languages keep the catalog's.
    assert "<title>Chat med os</title>" in frame
    assert (
        client.get(STATUS, query_string={"lang": "nb"}).json["label"]
        == "Avlogget - send en melding"
    )


def test_an_operator_sees_the_panel_in_their_own_language(
    app: Flask, make_operator: t.Callable[..., t.Any]
) -> None:
    danish = make_operator(name="Mette", email="mette@example.com", locale="da")
    english = make_operator(name="Jens", email="jens@example.com")
    client = app.test_client()
    login(client, danish.email)
    page = client.get("/livehelp/panel/").text
    assert '<html lang="da"' in page
    assert "Tilbage om fem minutter" in page and "Aktive chats" in page
    other = app.test_client()
    login(other, english.email)
    assert "Back in five minutes" in other.get("/livehelp/panel/").text


def test_the_panel_socket_speaks_the_operator_language(
    make_operator: t.Callable[..., t.Any], operator_socket: t.Callable[..., t.Any]
) -> None:
    danish = operator_socket(make_operator(name="Mette", locale="da"))
    danish.send(type="message", conversation=999, id="m1", body="Hej")
    assert danish.expect("error")["message"] == "Denne chat findes ikke."


def test_dates_durations_and_plurals_follow_the_reader(app: Flask) -> None:
    moment = dt.datetime(2026, 11, 22, 19, 5, tzinfo=dt.UTC)
    with app.test_request_context(query_string={"locale": "da"}):
        # Copenhagen is an hour ahead of UTC in November; Danes write 20.05.
        assert format_moment(moment, "Europe/Copenhagen") == "22. nov. 2026 20.05.00"
        assert format_duration(dt.timedelta(minutes=3)) == "3 minutter"
        assert _lhn("%(num)d chat found.", "%(num)d chats found.", 2) == (
            "2 chats fundet."
        )
    with app.test_request_context(query_string={"locale": "en"}):
        assert format_moment(moment, "Europe/London") == "Nov 22, 2026, 7:05:00\u202fPM"
        assert format_duration(dt.timedelta(minutes=3)) == "3 minutes"


# Catalogs of the host's own (tests/translations is the app fixture's folder).


def test_without_the_host_directory_our_own_wording_stays(app: Flask) -> None:
    status = app.test_client().get(STATUS, query_string={"lang": "da"}).json
    assert status["label"] == "Sælger er offline - send en besked"
    with app.app_context():
        assert known_language("fi") is None


@pytest.mark.livehelp(translation_directories=["builtin", "translations"])
def test_the_host_catalog_overrides_one_of_our_strings(app: Flask) -> None:
    client = app.test_client()
    status = client.get(STATUS, query_string={"lang": "da"}).json
    assert status["label"] == "Butikken holder lukket - skriv til os"
    # The host's catalog has only that string: the rest are still ours.
    frame = client.get(FRAME, query_string={"lang": "da"}).text
    assert "<title>Chat med os</title>" in frame


@pytest.mark.livehelp(translation_directories=["builtin", "translations"])
def test_the_host_adds_a_language_we_do_not_ship(app: Flask) -> None:
    client = app.test_client()
    status = client.get(STATUS, query_string={"lang": "fi"}).json
    assert (status["lang"], status["label"]) == (
        "fi",
        "Emme ole paikalla - lähetä viesti",
    )
    frame = client.get(FRAME, query_string={"lang": "fi_FI"}).text
    assert '<html lang="fi">' in frame
    assert "Miten voimme auttaa?" in frame
    # What the host did not translate is English.
    assert "Your name (optional)" in frame
    with app.test_request_context(query_string={"locale": "fi"}):
        assert _lhn("%(num)d chat found.", "%(num)d chats found.", 3) == (
            "3 keskustelua löytyi."
        )


@pytest.mark.livehelp(translation_directories=["builtin", "translations"])
def test_a_host_directory_keeps_the_plural_rule_of_our_catalog(app: Flask) -> None:
    """The host has no French catalog; French still says "0 conversation"."""
    with app.test_request_context(query_string={"locale": "fr"}):
        assert _lhn("%(num)d chat found.", "%(num)d chats found.", 0) == (
            "0 conversation trouvée."
        )
        assert _lhn("%(num)d chat found.", "%(num)d chats found.", 2) == (
            "2 conversations trouvées."
        )


# A host without Flask-Babel.


@pytest.fixture
def babel_free_app(database_uri: str) -> t.Iterator[Flask]:
    """A shop with a database and mail but no ``Babel(app)``."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test",
        SQLALCHEMY_DATABASE_URI=database_uri,
        MAIL_DEFAULT_SENDER="shop@example.com",
        LIVEHELP_MAIL_SEND_NOW="off",
        LIVEHELP_OFFLINE_MAILBOX="kundeservice@shop.example",
    )
    db = SQLAlchemy()
    db.init_app(app)
    Mail(app)
    LiveHelp(app, db=db)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        for engine in db.engines.values():
            engine.dispose()
    get_state(app).hub.close()


def test_a_host_without_babel_gets_english_everywhere(babel_free_app: Flask) -> None:
    app = babel_free_app
    assert "babel" not in app.extensions
    with app.app_context():
        get_state(app).operators.create_operator(
            name="Mette",
            email="mette@example.com",
            password="correct horse",
            locale="da",
            receives_offline=True,
        )
    client = app.test_client()

    status = client.get(STATUS, query_string={"lang": "da"})
    assert status.status_code == 200
    assert (status.json["lang"], status.json["label"]) == (
        "en",
        "Offline - send a message",
    )
    frame = client.get(FRAME, query_string={"lang": "da"})
    assert frame.status_code == 200
    assert '<html lang="en">' in frame.text and "How can we help you?" in frame.text

    assert login(client, "mette@example.com").status_code == 302
    panel = client.get("/livehelp/panel/")
    assert panel.status_code == 200
    assert "Back in five minutes" in panel.text

    sent = client.post(
        "/livehelp/offline/message?lang=da",
        json={"id": "m1", "body": "Hej", "email": "soren@example.dk"},
    )
    assert sent.status_code == 201
    with app.app_context():
        state = get_state(app)
        mails = state.db.session.scalars(sa.select(state.models.mail)).all()
        subjects = sorted((mail.kind, mail.subject) for mail in mails)
    # Mette asked for Danish, but without Babel there is only English.
    assert set(subjects) == {
        ("copy", "We have received your message"),
        ("offline", "Offline message from a customer"),
    }
