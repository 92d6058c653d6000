"""The docs, tried: the quickstart as a new user follows it, and the settings table.

The quickstart test writes the files of docs/quickstart.md into an empty
folder, runs its commands with the ``flask`` command of this environment, and
has a chat in Chromium on the app it started. Nothing is taken from the
repository but the installed package, so a step missing from the page fails
here.
"""

from __future__ import annotations

import ast
import collections.abc as c
import fnmatch
import importlib.metadata
import os
import re
import secrets
import shlex
import subprocess
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.support import Translations
from blinker import NamedSignal
from flask import Flask
from playwright.sync_api import expect

import flask_livehelp
from browser import accept_first
from browser import ask
from browser import chat
from browser import launcher
from browser import reply
from browser import shop_state
from browser import sign_in
from flask_livehelp import signals
from flask_livehelp.config import DEFAULTS
from flask_livehelp.i18n import BUILTIN_DIRECTORY
from flask_livehelp.i18n import DOMAIN
from flask_livehelp.services.settings import EDITABLE
from flask_livehelp.views.widget import TEXTS
from servers import free_port
from servers import VENV_BIN
from servers import wait_until

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
QUICKSTART = DOCS / "quickstart.md"
CONFIGURATION = DOCS / "configuration.md"
PASSWORD = "a long operator password"


# Reading Markdown.

CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: The first line of a block that is a whole file: "# shop.py" or "{# x.html #}".
FILE_NAME = re.compile(r"^(?:# |\{# )([\w./-]+\.\w+)(?: #\})?$")


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """Every fenced block of ``path`` as ``(language, text)``."""
    return [(m.group(1), m.group(2)) for m in CODE_BLOCK.finditer(path.read_text())]


def files_of(blocks: c.Iterable[tuple[str, str]]) -> dict[str, str]:
    """The blocks that start by naming their file, by that name."""
    files = {}
    for _, text in blocks:
        match = FILE_NAME.match(text.split("\n", 1)[0])
        if match:
            files[match.group(1)] = text
    return files


def commands_of(blocks: c.Iterable[tuple[str, str]]) -> list[list[str]]:
    """The shell commands of the ``bash`` blocks, in order."""
    return [
        shlex.split(line)
        for language, text in blocks
        if language == "bash"
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


# The quickstart.


class Quickstart:
    """The quickstart's app in ``folder``, set up by the page's commands."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.server: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.operator_email = ""

    def run(self, command: list[str]) -> None:
        program, *arguments = command
        if program == "pip":
            self.check_installed(arguments)
        elif program == "flask" and arguments[-1] == "run":
            self.serve(arguments)
        elif program == "flask":
            self.flask(arguments)
        else:
            raise AssertionError(f"The quickstart runs {command}; teach this test.")

    @staticmethod
    def check_installed(arguments: list[str]) -> None:
        assert arguments[0] == "install"
        for name in arguments[1:]:
            # Raises for a name that is not a package installed here.
            importlib.metadata.distribution(name)

    def flask(self, arguments: list[str]) -> None:
        if "create-operator" in arguments:
            self.operator_email = arguments[arguments.index("--email") + 1]
        done = subprocess.run(
            [str(VENV_BIN / "flask"), *arguments],
            cwd=self.folder,
            env=self.env,
            # The password prompt, twice, as a person types it.
            input=f"{PASSWORD}\n{PASSWORD}\n",
            capture_output=True,
            text=True,
            timeout=60,
            # Without a terminal, so the prompt reads the input above.
            start_new_session=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def serve(self, arguments: list[str]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = (self.folder / "server.log").open("wb")
        self.server = subprocess.Popen(
            [str(VENV_BIN / "flask"), *arguments, "--port", str(port)],
            cwd=self.folder,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, 30, f"the quickstart app at {self.url}")

    def answers(self) -> bool:
        assert self.server is not None
        if self.server.poll() is not None:
            raise AssertionError(self.server_log())
        try:
            with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def server_log(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=15)
        if self.server is not None:
            self.log.close()


@pytest.fixture
def quickstart(tmp_path: Path, postgres_database: str | None) -> c.Iterator[Quickstart]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env["FLASK_SECRET_KEY"] = secrets.token_hex(16)
    if postgres_database:
        # The page's from_prefixed_env() reads this; by default it is SQLite.
        env["FLASK_SQLALCHEMY_DATABASE_URI"] = postgres_database
    app = Quickstart(tmp_path / "myshop", env)
    app.folder.mkdir()
    yield app
    app.stop()
    if postgres_database:
        drop_tables(postgres_database)


def drop_tables(uri: str) -> None:
    engine = sa.create_engine(uri)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    engine.dispose()


def database_of(app: Quickstart) -> str:
    return app.env.get(
        "FLASK_SQLALCHEMY_DATABASE_URI",
        f"sqlite:///{app.folder / 'instance' / 'shop.db'}",
    )


def signed_in_customer(app: Quickstart, name: str, email: str) -> str:
    """A customer of the shop, signed in by Flask-Login: the session cookie."""
    engine = sa.create_engine(database_of(app))
    with engine.begin() as connection:
        customer_id = connection.execute(
            sa.text("INSERT INTO customer (name, email) VALUES (:n, :e) RETURNING id"),
            {"n": name, "e": email},
        ).scalar_one()
    engine.dispose()
    # What Flask-Login keeps in the shop's session once the customer signed in.
    signer = Flask("cookie")
    signer.secret_key = app.env["FLASK_SECRET_KEY"]
    serializer = signer.session_interface.get_signing_serializer(signer)  # type: ignore[attr-defined]
    return t.cast(str, serializer.dumps({"_user_id": str(customer_id)}))


def danish(msgid: str) -> str:
    catalog = Translations.load(BUILTIN_DIRECTORY, ["da"], DOMAIN)
    return t.cast(str, catalog.gettext(msgid))


@pytest.mark.browser
def test_the_quickstart_gives_a_fresh_app_a_working_chat(
    quickstart: Quickstart, new_page: t.Callable[..., t.Any]
) -> None:
    blocks = code_blocks(QUICKSTART)
    for name, text in files_of(blocks).items():
        path = quickstart.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for command in commands_of(blocks):
        quickstart.run(command)
    assert quickstart.server is not None, "The quickstart never starts the app."
    page = QUICKSTART.read_text()
    panel_path, shop_path = re.findall(r"<http://127\.0\.0\.1:5000(/[^>]*)>", page)
    assert panel_path == "/livehelp/panel/"
    assert f'"{TEXTS["online"]}"' in page

    operator = new_page()
    operator.goto(quickstart.url + panel_path)
    sign_in(operator, quickstart.url, quickstart.operator_email, PASSWORD)
    operator.click("[data-status=online]")

    # A Danish customer, signed in to the shop with Flask-Login.
    customer = new_page(locale="da-DK")
    cookie = signed_in_customer(quickstart, "Karen Holm", "karen@example.com")
    customer.context.add_cookies(
        [{"name": "session", "value": cookie, "url": quickstart.url}]
    )
    customer.goto(quickstart.url + shop_path)
    shop_state(customer, "online")
    expect(launcher(customer)).to_have_text(danish(TEXTS["online"]))
    ask(customer, "Har I regnjakken i blå?")

    accept_first(operator)
    # The page's visitor_context hook told the panel who this is.
    expect(operator.locator("#lh-chat-title")).to_have_text("Karen Holm")
    expect(operator.locator("#lh-facts")).to_contain_text("karen@example.com")
    expect(operator.locator("#lh-log")).to_contain_text("Har I regnjakken i blå?")
    reply(operator, "Ja, i alle størrelser.")
    expect(chat(customer).locator("#lh-log")).to_contain_text("Ja, i alle størrelser.")
    assert "Traceback" not in quickstart.server_log()


# The configuration reference.

#: A row of the reference: | `LIVEHELP_KEY` | `default` | meaning |
SETTING_ROW = re.compile(r"^\| `LIVEHELP_(\w+)` \| `([^`]*)` \| (.*) \|$", re.MULTILINE)


def documented_settings() -> list[tuple[str, str, str]]:
    return SETTING_ROW.findall(CONFIGURATION.read_text())


def test_every_setting_is_documented_with_its_default() -> None:
    rows = documented_settings()
    names = [name for name, _, _ in rows]
    assert sorted(set(names)) == sorted(names), "A setting is documented twice."
    missing = sorted(set(DEFAULTS) - set(names))
    assert not missing, f"Add these to docs/configuration.md: {missing}"
    unknown = sorted(set(names) - set(DEFAULTS))
    assert not unknown, (
        f"docs/configuration.md documents what the code lacks: {unknown}"
    )
    for name, default, meaning in rows:
        assert ast.literal_eval(default) == DEFAULTS[name], (
            f"LIVEHELP_{name}: the docs say {default}, the code {DEFAULTS[name]!r}"
        )
        assert meaning.strip(), f"LIVEHELP_{name} has no meaning in the docs."


def test_the_settings_marked_panel_are_the_ones_the_panel_changes() -> None:
    marked = {
        name for name, _, meaning in documented_settings() if "**panel**" in meaning
    }
    assert marked == set(EDITABLE)


def test_the_reference_test_notices_an_undocumented_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(DEFAULTS, "BRAND_NEW_SETTING", 1)
    with pytest.raises(AssertionError, match="LIVEHELP_BRAND_NEW_SETTING|BRAND_NEW"):
        test_every_setting_is_documented_with_its_default()


# Customising: the signals and templates it lists.

CUSTOMISING = DOCS / "customising.md"
TEMPLATES = Path(flask_livehelp.__file__).parent / "templates"


def table_rows(path: Path, header: str) -> list[list[str]]:
    """The cells of the table under ``| header |``, row by row."""
    text = path.read_text()
    start = text.index(f"| {header} |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_the_signals_table_names_each_signal_with_its_arguments() -> None:
    documented = {}
    for name, arguments in table_rows(CUSTOMISING, "signal"):
        # `conversation`, `reason`: `"visitor"` -> conversation, reason
        keywords = re.findall(r"`(\w+)`", arguments)
        documented[name.strip("`")] = keywords
    shipped = {
        name: value
        for name, value in vars(signals).items()
        if isinstance(value, NamedSignal)
    }
    assert set(documented) == set(shipped)
    for name, keywords in documented.items():
        for keyword in keywords:
            # Each signal's own doc names the arguments its receivers get.
            assert f"``{keyword}``" in (shipped[name].__doc__ or ""), (name, keyword)


def test_the_widget_texts_table_lists_every_text() -> None:
    keys = [
        key
        for first, _ in table_rows(CUSTOMISING, "key")
        for key in re.findall(r"`(\w+)`", first)
    ]
    assert sorted(keys) == sorted(TEXTS)


def test_the_templates_table_covers_every_template() -> None:
    listed = [row[0].strip("`") for row in table_rows(CUSTOMISING, "template")]
    for pattern in listed:
        assert list(TEMPLATES.glob(pattern)), f"No template {pattern}"
    for path in TEMPLATES.rglob("*"):
        name = path.relative_to(TEMPLATES).as_posix()
        if path.is_file() and not path.name.startswith("_"):
            assert any(fnmatch.fnmatch(name, p) for p in listed), name


# Links.

LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)


def anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``document``."""
    text = CODE_BLOCK.sub("", document.read_text())
    return {
        re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        for heading in HEADING.findall(text)
    }


@pytest.mark.parametrize(
    "document",
    sorted([*DOCS.glob("*.md"), ROOT / "README.md", ROOT / "CHANGES.md"]),
    ids=lambda path: path.name,
)
def test_every_link_between_the_documents_leads_somewhere(document: Path) -> None:
    for link in LINK.findall(CODE_BLOCK.sub("", document.read_text())):
        if re.match(r"^[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (document.parent / path) if path else document
        assert target.exists(), f"{document.name} -> {link}"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"{document.name} -> {link}"


def test_the_docs_index_lists_every_guide() -> None:
    index = (DOCS / "index.md").read_text()
    for guide in DOCS.glob("*.md"):
        if guide.name != "index.md":
            assert f"]({guide.name})" in index, f"docs/index.md lacks {guide.name}"
    readme = (ROOT / "README.md").read_text()
    assert "](docs/index.md)" in readme
