"""Setting the extension up: init_app, config, and living beside the host's db."""

from __future__ import annotations

import copy
import os
import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp.config import ConfigError
from flask_livehelp.config import DEFAULTS
from flask_livehelp.sockets.reader import reader_thread
from flask_livehelp.views.handshake import server_options


def test_defaults_are_written_into_config_and_host_values_kept(app: Flask) -> None:
    for key in DEFAULTS:
        assert f"LIVEHELP_{key}" in app.config
    assert app.config["LIVEHELP_URL_PREFIX"] == "/livehelp"
    # The app fixture sets this one itself; init_app must not overwrite it.
    assert app.config["LIVEHELP_STATUS_POLL_SECONDS"] == 1


def test_default_lists_are_not_shared_between_apps(tmp_path: os.PathLike[str]) -> None:
    first, second = Flask("first"), Flask("second")
    for app in (first, second):
        app.config["LIVEHELP_DATABASE_URI"] = "sqlite://"
        LiveHelp(app)
    first.config["LIVEHELP_ALLOWED_ORIGINS"].append("https://evil.example")
    assert second.config["LIVEHELP_ALLOWED_ORIGINS"] == []


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("JOBS", "threads", "one of 'auto', 'thread', 'off'"),
        ("WIDGET_ASK_NAME", "requried", "one of 'optional', 'required', 'hidden'"),
        ("MAIL_SEND_NOW", "later", "one of 'thread', 'inline', 'off'"),
        ("ALLOWED_ORIGINS", ["shop.example"], "origins like 'https://shop.example'"),
        ("PUSH_ORIGINS", ["https://shop.example/cart"], "origins like"),
        ("HEARTBEAT_SECONDS", "10", "a number, 0 or more"),
        ("AUTO_ASSIGN", "yes", "True or False"),
    ],
)
def test_a_setting_with_a_value_it_cannot_take_is_refused_at_init_app(
    key: str, value: object, says: str
) -> None:
    app = Flask("shop")
    app.config.update(LIVEHELP_DATABASE_URI="sqlite://", **{f"LIVEHELP_{key}": value})
    with pytest.raises(ConfigError) as refused:
        LiveHelp(app)
    assert f"LIVEHELP_{key}" in str(refused.value)
    assert repr(value if not isinstance(value, list) else value[0]) in str(
        refused.value
    )
    assert says in str(refused.value)


def test_an_unknown_setting_is_named_with_the_one_it_looks_like(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask("shop")
    app.config.update(LIVEHELP_DATABASE_URI="sqlite://", LIVEHELP_HEARTBEAT_SECOND=5)
    with caplog.at_level("WARNING", logger="flask_livehelp"):
        LiveHelp(app)
    assert (
        "LIVEHELP_HEARTBEAT_SECOND is not a Flask-LiveHelp setting."
        " Did you mean LIVEHELP_HEARTBEAT_SECONDS?"
    ) in caplog.text


def test_the_hosts_own_requests_and_database_settings_are_left_alone(
    tmp_path: t.Any,
) -> None:
    app = Flask("shop")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/shop.db",
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        LIVEHELP_JOBS="thread",
    )
    db = SQLAlchemy()
    db.init_app(app)
    before = copy.deepcopy(dict(app.config))
    LiveHelp(app, db=db)
    # No hook of ours on the host's own requests.
    assert app.before_request_funcs.get(None, []) == []
    assert app.after_request_funcs.get(None, []) == []
    # The host's database settings are as they were.
    for key in before:
        if key.startswith("SQLALCHEMY_"):
            assert app.config[key] == before[key], key
    # The background loop starts with the first request of ours.
    app.test_client().get("/livehelp/widget/status")
    state = get_state(app)
    assert state.jobs.running()
    state.jobs.stop()


def test_the_host_gets_no_socket_options_it_did_not_set(app: Flask) -> None:
    # Our sockets get their options per socket (views/handshake.py).
    assert "SOCK_SERVER_OPTIONS" not in app.config


def test_the_hosts_own_socket_options_are_left_as_they_were(tmp_path: t.Any) -> None:
    app = Flask("shop")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/shop.db",
        SOCK_SERVER_OPTIONS={"ping_interval": 25, "max_message_size": 4096},
    )
    before = copy.deepcopy(app.config["SOCK_SERVER_OPTIONS"])
    LiveHelp(app)
    assert app.config["SOCK_SERVER_OPTIONS"] == before
    with app.test_request_context():
        # Ours take the host's options, and our reader where the host chose none.
        assert server_options() == {**before, "thread_class": reader_thread}


def test_second_init_app_on_one_app_is_refused(app: Flask, livehelp: LiveHelp) -> None:
    with pytest.raises(RuntimeError, match="already set up"):
        livehelp.init_app(app)
    with pytest.raises(RuntimeError, match="already set up"):
        LiveHelp().init_app(app)


def test_state_is_kept_in_app_extensions(app: Flask, livehelp: LiveHelp) -> None:
    state = app.extensions["livehelp"]
    assert get_state(app) is state
    assert state.extension is livehelp
    assert not hasattr(livehelp, "app")


def test_get_state_without_init_app_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="init_app"):
        get_state(Flask("bare"))


def test_host_db_not_set_up_on_the_app_is_a_clear_error() -> None:
    db = SQLAlchemy()
    app = Flask("host")
    with pytest.raises(RuntimeError, match="db.init_app"):
        LiveHelp(app, db=db)


def test_one_extension_serves_two_apps_independently(
    tmp_path: os.PathLike[str],
) -> None:
    """An app factory called twice: separate databases, hubs and operators."""
    db = SQLAlchemy()
    livehelp = LiveHelp(db=db)

    def create_app(name: str) -> Flask:
        app = Flask(name)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/{name}.db"
        db.init_app(app)
        livehelp.init_app(app)
        with app.app_context():
            db.create_all()
        return app

    shop_a, shop_b = create_app("a"), create_app("b")
    with shop_a.app_context():
        get_state().operators.create_operator(
            name="Anna", email="anna@example.com", password="long enough"
        )
    with shop_b.app_context():
        assert get_state().operators.all() == []
    assert get_state(shop_a).hub is not get_state(shop_b).hub
    assert get_state(shop_a).models is get_state(shop_b).models


def test_tables_live_beside_host_models_with_the_same_names(
    tmp_path: os.PathLike[str],
) -> None:
    """The host has its own Message and Conversation models on the same db."""
    db = SQLAlchemy()

    class Conversation(db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "conversation"
        id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)

    class Message(db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "message"
        id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
        text: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(50))

    livehelp = LiveHelp(db=db)
    app = Flask("host")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/host.db"
    db.init_app(app)
    livehelp.init_app(app)
    with app.app_context():
        db.create_all()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"conversation", "message"} <= tables
        assert {
            "livehelp_conversation",
            "livehelp_message",
            "livehelp_operator",
        } <= tables
        db.session.add(Message(text="the host's own"))
        db.session.commit()
        assert db.session.scalar(sa.select(Message.text)) == "the host's own"
        assert livehelp.models is not None
        assert livehelp.models.message.__name__ == "LiveHelpMessage"


def test_registered_host_db_is_used_when_none_is_given(
    tmp_path: os.PathLike[str],
) -> None:
    db = SQLAlchemy()
    app = Flask("host")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/host.db"
    db.init_app(app)
    LiveHelp(app)
    assert get_state(app).db is db


def test_host_without_a_database_gets_sqlite_in_the_instance_folder(
    tmp_path: os.PathLike[str],
) -> None:
    app = Flask("bare", instance_path=str(tmp_path / "instance"))
    LiveHelp(app)
    with app.app_context():
        state = get_state()
        state.db.create_all()
        state.operators.create_operator(
            name="Solo", email="solo@example.com", password="long enough"
        )
        assert state.db.engine.url.database == str(
            tmp_path / "instance" / "livehelp.sqlite3"
        )
        mode = state.db.session.execute(sa.text("PRAGMA journal_mode")).scalar()
        assert mode == "wal"
    assert os.path.exists(tmp_path / "instance" / "livehelp.sqlite3")


@pytest.mark.parametrize(
    ("tune", "journal", "synchronous"), [(True, "wal", 1), (False, "delete", 2)]
)
def test_the_hosts_sqlite_database_is_tuned_unless_told_not(
    tmp_path: os.PathLike[str], tune: bool, journal: str, synchronous: int
) -> None:
    # A commit waiting for the disk would hold up every chat in a gevent worker.
    db = SQLAlchemy()
    app = Flask("host")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/host.db"
    app.config["LIVEHELP_TUNE_SQLITE"] = tune
    db.init_app(app)
    LiveHelp(app, db=db)
    with app.app_context():
        found = [
            db.session.execute(sa.text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous")
        ]
    assert found == [journal, synchronous]


def test_table_prefix_is_configurable(tmp_path: os.PathLike[str]) -> None:
    db = SQLAlchemy()
    app = Flask("host")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/host.db"
    db.init_app(app)
    LiveHelp(app, db=db, table_prefix="chat_")
    with app.app_context():
        db.create_all()
        assert "chat_conversation" in sa.inspect(db.engine).get_table_names()


def test_websocket_routes_are_registered(app: Flask) -> None:
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    assert rules["livehelp.widget.visitor_socket"].websocket
    assert rules["livehelp.panel.operator_socket"].websocket


def test_a_plain_get_on_a_socket_url_is_refused(app: Flask) -> None:
    assert app.test_client().get("/livehelp/widget/ws").status_code == 400


@pytest.mark.livehelp(url_prefix="/help")
def test_url_prefix_is_configurable(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/help/widget/status").status_code == 200
    assert client.get("/livehelp/widget/status").status_code == 404
