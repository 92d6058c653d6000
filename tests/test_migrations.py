"""The shipped Alembic migrations: from the first schema, with chats, to now.

Run on SQLite and, with ``--db postgresql``, on PostgreSQL.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import re
import typing as t
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import schema_v1
from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp import migrations

FIRST = "0001"


def host_app(database_uri: str, **livehelp: t.Any) -> Flask:
    """A host app whose tables nobody has created yet."""
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_uri, TESTING=True)
    db = SQLAlchemy()
    db.init_app(app)
    LiveHelp(app, db=db, **livehelp)
    return app


@pytest.fixture
def make_app(empty_database_uri: str) -> c.Iterator[c.Callable[..., Flask]]:
    database_uri = empty_database_uri
    made: list[Flask] = []

    def make(**livehelp: t.Any) -> Flask:
        app = host_app(database_uri, **livehelp)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            get_state(app).db.session.remove()
            for made_engine in get_state(app).db.engines.values():
                made_engine.dispose()


def differences(app: Flask, metadata: sa.MetaData | None = None) -> list[t.Any]:
    """What the database lacks or has beyond ``metadata`` (default: our models)."""
    with app.app_context():
        options = migrations.configure_options(app)
        metadata = metadata or ours_alone(app, options["target_metadata"])
        with options["engine"].connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    key: options[key]
                    for key in ("include_name", "compare_type", "version_table")
                },
            )
            with warnings.catch_warnings():
                # SQLite cannot reflect PostgreSQL's expression indexes (the
                # full-text index is made on PostgreSQL only): nothing to compare.
                warnings.filterwarnings(
                    "ignore", "autogenerate skipping metadata-specified expression"
                )
                return list(compare_metadata(context, metadata))


def ours_alone(app: Flask, metadata: sa.MetaData) -> sa.MetaData:
    """Our tables out of the metadata they share with the host's."""
    prefix = get_state(app).extension.table_prefix
    alone = sa.MetaData()
    for table in metadata.sorted_tables:
        if table.name.startswith(prefix):
            table.to_metadata(alone)
    return alone


def table_names(app: Flask) -> set[str]:
    with app.app_context():
        return set(sa.inspect(get_state(app).db.engine).get_table_names())


def test_the_migrations_make_exactly_what_the_models_declare(
    make_app: t.Any,
) -> None:
    """Fails when the models changed without a revision; see the module docs
    of flask_livehelp.migrations for the command that writes one."""
    app = make_app()
    migrations.upgrade(app)
    assert differences(app) == []
    assert migrations.current_revision(app) == _head()


def test_the_first_revision_is_the_first_schema(make_app: t.Any) -> None:
    app = make_app()
    migrations.upgrade(app, FIRST)
    first = SQLAlchemy()
    schema_v1.build_models(first)
    assert differences(app, first.metadata) == []


def _head() -> str:
    from alembic.script import ScriptDirectory

    return t.cast(str, ScriptDirectory(str(migrations.DIRECTORY)).get_current_head())


# An upgrade from the first schema, holding chats.

NOW = dt.datetime(2026, 3, 1, 12, 0)


def fill_first_schema(database_uri: str) -> dict[int, list[tuple[int, str, str]]]:
    """Tables as Flask-LiveHelp 0.1 made them, with two chats; returns them."""
    db = SQLAlchemy()
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri
    db.init_app(app)
    models = schema_v1.build_models(db)
    transcripts = {
        1: [
            (1, "visitor", "Hej, har I regnjakken i blå?"),
            (2, "system", "accepted"),
            (3, "operator", "Ja, i str. M og L."),
            (4, "visitor", "Tak! Så tager jeg en M."),
        ],
        2: [(1, "visitor", "Hvornår åbner I på lørdag?")],
    }
    with app.app_context():
        db.create_all()
        session = db.session
        session.add(
            models.operator(
                id=1, name="Mette", email="mette@example.com", session_key="k" * 32
            )
        )
        session.add(models.visitor(id=1, token_hash="a" * 64))
        session.add(models.visitor(id=2, token_hash="b" * 64))
        for number, status in ((1, "ended"), (2, "queued")):
            session.add(
                models.conversation(
                    id=number,
                    visitor_id=number,
                    operator_id=1 if status == "ended" else None,
                    status=status,
                    last_seq=len(transcripts[number]),
                )
            )
        session.flush()
        for conversation_id, lines in transcripts.items():
            for seq, author, body in lines:
                session.add(
                    models.message(
                        conversation_id=conversation_id,
                        seq=seq,
                        client_id=f"c{seq}" if author != "system" else None,
                        author=author,
                        kind="event" if author == "system" else "text",
                        body=body,
                        created_at=NOW.replace(tzinfo=dt.UTC),
                    )
                )
        session.commit()
        session.remove()
        db.engine.dispose()
    return transcripts


def test_an_upgrade_keeps_every_chat_and_message(
    make_app: t.Any, database_uri: str
) -> None:
    transcripts = fill_first_schema(database_uri)
    app = make_app()
    runner = app.test_cli_runner()
    # Tables made by create_all carry no revision: the upgrade says what to do.
    refused = runner.invoke(args=["livehelp", "db-upgrade"])
    assert refused.exit_code != 0 and "db-stamp" in refused.output
    assert runner.invoke(args=["livehelp", "db-stamp", FIRST]).exit_code == 0
    upgraded = runner.invoke(args=["livehelp", "db-upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert _head() in upgraded.output
    assert differences(app) == []

    with app.app_context():
        state = get_state()
        for conversation_id, lines in transcripts.items():
            messages = state.conversations.messages_after(conversation_id, 0)
            assert [(m.seq, m.author, m.body) for m in messages] == lines
            assert {(m.via, m.staff_only) for m in messages} == {("chat", False)}
            assert messages[0].created_at == NOW.replace(tzinfo=dt.UTC)
        # The waiting chat goes on where it was.
        message, stored = state.conversations.post_by_visitor(
            2, 2, client_id="c2", body="Er der nogen?"
        )
        assert (stored, message.seq) == (True, 2)
        assert state.visitors.from_token(None) is None
        assert state.db.session.get(state.models.visitor, 1).pages_seen == 0


def test_a_downgrade_takes_the_tables_back(make_app: t.Any) -> None:
    app = make_app()
    migrations.upgrade(app)
    migrations.downgrade(app, FIRST)
    first = SQLAlchemy()
    schema_v1.build_models(first)
    assert differences(app, first.metadata) == []
    migrations.downgrade(app, "base")
    assert table_names(app) == {"livehelp_alembic_version"}


def test_the_host_tables_and_version_table_are_left_alone(
    make_app: t.Any,
) -> None:
    app = make_app()
    with app.app_context():
        engine = get_state(app).db.engine
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE product (id INTEGER PRIMARY KEY)"))
            connection.execute(
                sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))")
            )
            connection.execute(sa.text("INSERT INTO alembic_version VALUES ('h0st')"))
    migrations.upgrade(app)
    migrations.downgrade(app, "base")
    assert {"product", "alembic_version"} <= table_names(app)
    with app.app_context(), get_state(app).db.engine.connect() as connection:
        host_version = connection.execute(sa.text("SELECT * FROM alembic_version"))
        assert host_version.scalar_one() == "h0st"


def test_another_table_prefix_migrates_too(make_app: t.Any) -> None:
    app = make_app(table_prefix="shop_chat_")
    migrations.upgrade(app)
    assert differences(app) == []
    names = table_names(app)
    assert "shop_chat_conversation" in names and "shop_chat_alembic_version" in names
    assert not any(name.startswith("livehelp_") for name in names)


# Hosts with Flask-Migrate.


def flask_migrate_for(
    app: Flask, directory: Path, *, include: bool = True, with_product: bool = True
) -> t.Any:
    """Flask-Migrate set up on ``app`` the way a shop does, with a model of its own.

    ``include``: the one line docs/deployment.md asks for.
    """
    flask_migrate = pytest.importorskip("flask_migrate")
    db = get_state(app).db
    if with_product:

        class Product(db.Model):  # type: ignore[name-defined, misc]
            id = sa.Column(sa.Integer, primary_key=True)
            name = sa.Column(sa.String(80))

    migrate = flask_migrate.Migrate(app, db)
    if include:
        migrate.configure(migrations.include_in)
    with app.app_context():
        flask_migrate.init(str(directory))
    # Its logging setup would silence every logger of the test session.
    env = directory / "env.py"
    env.write_text(env.read_text().replace("fileConfig(", "(lambda name: 0)("))
    return flask_migrate


def revision_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("*.py"))


# Flask-Migrate 4.1's env.py template tries the deprecated get_engine() first.
pytestmark_flask_migrate = pytest.mark.filterwarnings(
    "ignore:'get_engine' is deprecated:DeprecationWarning"
)


@pytestmark_flask_migrate
def test_a_host_with_flask_migrate_upgrades_our_branch_too(
    make_app: t.Any, tmp_path: Path
) -> None:
    app = make_app()
    directory = tmp_path / "migrations"
    flask_migrate = flask_migrate_for(app, directory, with_product=False)
    with app.app_context():
        flask_migrate.upgrade(str(directory), "heads")
    assert differences(app) == []
    db = get_state(app).db
    with app.app_context(), db.engine.connect() as connection:
        versions = connection.execute(
            sa.text("SELECT version_num FROM alembic_version")
        )
        assert versions.scalars().all() == [_head()]


@pytestmark_flask_migrate
@pytest.mark.parametrize("earlier", [False, True], ids=["new-host", "host-revisions"])
def test_the_hosts_revisions_stay_in_its_folder_after_its_own_head(
    make_app: t.Any, tmp_path: Path, earlier: bool
) -> None:
    """flask db migrate with our branch included: never into our package."""
    app = make_app()
    directory = tmp_path / "migrations"
    flask_migrate = flask_migrate_for(app, directory)
    ours = revision_files(migrations.VERSIONS)
    with app.app_context():
        if earlier:
            flask_migrate.revision(str(directory), message="the shop's first")
        # Autogenerate wants the database at every head first, ours included.
        flask_migrate.upgrade(str(directory), "heads")
        flask_migrate.migrate(str(directory), message="products")
        flask_migrate.upgrade(str(directory), "heads")
    assert revision_files(migrations.VERSIONS) == ours
    written = revision_files(directory / "versions")
    assert len(written) == (2 if earlier else 1)
    products = next(path for path in (directory / "versions").glob("*products.py"))
    text = products.read_text()
    # Only the host's table: ours are made by our own revisions.
    assert "'product'" in text and "livehelp_" not in text
    # Based on the host's own head, or starting the host's branch: never
    # after a revision of ours.
    down = re.search(r"^down_revision = (.+)$", text, re.M)
    assert down is not None
    if earlier:
        first = next((directory / "versions").glob("*the_shop_s_first.py"))
        own = re.search(r"^revision = (.+)$", first.read_text(), re.M)
        assert own is not None and down.group(1) == own.group(1)
    else:
        assert down.group(1) == "None"
    assert differences(app) == []
    assert {"product", "livehelp_conversation"} <= table_names(app)


@pytestmark_flask_migrate
# SQLite cannot reflect the full-text index; Alembic says so, and goes on.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified")
def test_a_host_without_the_include_hook_gets_a_revision_that_runs(
    make_app: t.Any, tmp_path: Path
) -> None:
    """Our tables land in the host's own revision then, and it must work."""
    app = make_app()
    directory = tmp_path / "migrations"
    flask_migrate = flask_migrate_for(app, directory, include=False)
    with app.app_context():
        flask_migrate.migrate(str(directory), message="everything")
        [written] = list((directory / "versions").glob("*.py"))
        assert "flask_livehelp" not in written.read_text()
        flask_migrate.upgrade(str(directory))
    assert {"product", "livehelp_conversation"} <= table_names(app)
