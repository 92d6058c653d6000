"""A deployment as docs/deployment.md describes it, for the tests that run one.

A pytest plugin (conftest's ``pytest_plugins``): PostgreSQL, Redis and SMTP
for one test module, and what a deployment does from the command line.
Skipped locally when PostgreSQL or Redis is missing; CI has both.
"""

from __future__ import annotations

import collections.abc as c
import http.cookiejar
import os
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import need
from conftest import PG_SERVER
from mailservers import SMTPServer
from servers import Gunicorn
from servers import REDIS_SERVER
from servers import RedisServer
from servers import VENV_BIN
from staff import csrf_in

TESTS = Path(__file__).parent
OPERATOR = {"email": "mette@example.com", "password": "correct horse"}


@pytest.fixture(scope="module")
def postgres() -> c.Iterator[str]:
    """A database of its own on the machine's PostgreSQL, whatever --db says."""
    name = f"livehelp_deploy_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        need(False, f"PostgreSQL at {PG_SERVER} ({error.orig})")
    url = sa.engine.make_url(PG_SERVER).set(
        database=name, drivername="postgresql+psycopg"
    )
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def redis_server() -> c.Iterator[RedisServer]:
    need(REDIS_SERVER is not None, "redis-server (apt-get install redis-server)")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def mailbox() -> c.Iterator[SMTPServer]:
    server = SMTPServer().start()
    yield server
    server.stop()


def base_environment(
    postgres: str, redis: RedisServer, mailbox: SMTPServer
) -> dict[str, str]:
    """The shop's settings, as a deployment passes them in the environment."""
    return {
        "SHOP_SQLALCHEMY_DATABASE_URI": postgres,
        "SHOP_LIVEHELP_HUB_URL": redis.url,
        "SHOP_LIVEHELP_HUB_PREFIX": f"test-{uuid.uuid4().hex[:6]}:",
        "SHOP_LIVEHELP_OFFLINE_MAILBOX": '"shop@example.com"',
        "SHOP_MAIL_SERVER": "127.0.0.1",
        "SHOP_MAIL_PORT": str(mailbox.port),
        "SHOP_MAIL_DEFAULT_SENDER": '"shop@example.com"',
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }


def flask(environment: dict[str, str], *args: str, stdin: str = "") -> str:
    """Run ``flask --app deployed_app ...`` as the deployment recipe does."""
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "deployed_app", *args],
        env={**os.environ, **environment},
        cwd=TESTS,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def create_operator(
    environment: dict[str, str],
    name: str = "Mette",
    email: str = OPERATOR["email"],
    max_chats: int = 3,
) -> None:
    """``flask livehelp create-operator``, an admin with the test password."""
    password = OPERATOR["password"]
    flask(
        environment,
        "livehelp",
        "create-operator",
        "--name",
        name,
        "--email",
        email,
        "--role",
        "admin",
        "--max-chats",
        str(max_chats),
        stdin=f"{password}\n{password}\n",
    )


def no_tracebacks(*servers: Gunicorn) -> None:
    for server in servers:
        assert "Traceback" not in server.log(), server.log()


def sign_in(server: Gunicorn, email: str = OPERATOR["email"]) -> str:
    """Sign in through the login form; returns the Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(server.url + "/livehelp/panel/login").read().decode()
    fields = {"email": email, "password": OPERATOR["password"]}
    form = urllib.parse.urlencode({**fields, "_lh_csrf": csrf_in(page)}).encode()
    opener.open(server.url + "/livehelp/panel/login", data=form)
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


def stored(postgres: str, conversation_id: int) -> list[tuple[int, str, str]]:
    engine = sa.create_engine(postgres)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT seq, author, body FROM livehelp_message"
                    " WHERE conversation_id = :id ORDER BY seq"
                ),
                {"id": conversation_id},
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()
