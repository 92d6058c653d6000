"""The background loop and its leases; the settings admins change."""

from __future__ import annotations

import collections.abc as c
import threading
import typing as t

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from conftest import login
from conftest import make_app
from conftest import printed_by
from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp import Refused
from flask_livehelp.background import hold_lease
from flask_livehelp.background import Jobs


def test_due_jobs_run_on_their_schedule(app: Flask) -> None:
    jobs = Jobs()
    ran: list[str] = []
    jobs.add("fast", 1.0, lambda state: ran.append("fast"))
    jobs.add("slow", 60.0, lambda state: ran.append("slow"))
    assert set(jobs.run_due(app, now=100.0)) == {"fast", "slow"}
    assert jobs.run_due(app, now=100.5) == []
    assert jobs.run_due(app, now=101.2) == ["fast"]
    assert ran.count("fast") == 2 and ran.count("slow") == 1


def test_a_failing_job_does_not_stop_the_loop(app: Flask) -> None:
    jobs = Jobs()
    ran: list[str] = []

    def broken(state: t.Any) -> None:
        raise RuntimeError("boom")

    jobs.add("broken", 1.0, broken)
    jobs.add("fine", 1.0, lambda state: ran.append("fine"))
    jobs.run_due(app, now=5.0)
    assert ran == ["fine"]


#: Four jobs due together in a gevent worker, each holding its thread for
#: 50 ms as a job's queries on SQLite do, and a request ready every 5 ms;
#: prints the longest a request waited, in ms.
JOBS_IN_A_GEVENT_WORKER = """
from gevent import monkey
monkey.patch_all()
import time
import gevent
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_livehelp import LiveHelp
from flask_livehelp.background import Jobs

db = SQLAlchemy()
app = Flask("shop")
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
db.init_app(app)
LiveHelp(app, db=db)

def hold(state):
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:
        pass

jobs = Jobs()
for name in "abcd":
    jobs.add(name, 5, hold)
waits = []

def request():
    while True:
        ready = time.perf_counter() + 0.005
        gevent.sleep(0.005)
        waits.append(time.perf_counter() - ready)

gevent.spawn(request)
gevent.sleep(0.02)
jobs.run_due(app)
gevent.sleep(0.02)
print(round(max(waits) * 1000))
"""


def test_jobs_due_together_hold_up_a_gevent_worker_one_at_a_time() -> None:
    longest_wait = int(printed_by(JOBS_IN_A_GEVENT_WORKER))
    # One job's 50 ms and the loop's slack; all four together held it 200.
    assert longest_wait < 120, longest_wait


def test_one_process_holds_a_lease_at_a_time(app: Flask) -> None:
    """Eight "processes" race for the lease; exactly one gets it."""
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def race(holder: str) -> None:
        with app.app_context():
            state = get_state()
            barrier.wait()
            if hold_lease(state, "fetch-mail", 60, holder):
                winners.append(holder)
            state.db.session.remove()

    threads = [threading.Thread(target=race, args=(f"p{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    with app.app_context():
        state = get_state()
        assert hold_lease(state, "fetch-mail", 60, winners[0])  # the holder renews
        assert not hold_lease(state, "fetch-mail", 60, "someone else")
        assert hold_lease(state, "fetch-mail", -1, winners[0])  # let it lapse
        assert hold_lease(state, "fetch-mail", 60, "someone else")


def test_settings_from_the_panel_win_over_config_per_language(state: t.Any) -> None:
    settings = state.settings
    assert settings.get("WIDGET_POSITION") == "right"
    settings.set("WIDGET_POSITION", "left")
    assert settings.get("WIDGET_POSITION") == "left"
    settings.set("WIDGET_TEXTS", {"offline": "Skriv til os"}, lang="da")
    assert settings.get("WIDGET_TEXTS", "da") == {"offline": "Skriv til os"}
    assert settings.get("WIDGET_TEXTS", "en") == {}
    settings.set("WIDGET_TEXTS", None, lang="da")
    assert settings.get("WIDGET_TEXTS", "da") == {}


def test_unknown_or_mistyped_settings_are_refused(state: t.Any) -> None:
    with pytest.raises(Refused):
        state.settings.set("SECRET_KEY", "x")
    with pytest.raises(Refused):
        state.settings.set("QUEUE_TIMEOUT_SECONDS", "soon")


def test_the_app_registers_its_background_jobs(app: Flask) -> None:
    names = get_state(app).jobs.names()
    assert {"queue-timeouts", "inactive-chats", "presence", "visitor-beats"} <= set(
        names
    )


# Several processes on one database.


@pytest.fixture
def second_process(app: Flask, database_uri: str) -> c.Iterator[Flask]:
    """The same shop in another process: its own app, hub and jobs."""
    db = SQLAlchemy()
    other = make_app(database_uri, db, LiveHelp(db=db))
    yield other
    get_state(other).jobs.stop()
    get_state(other).hub.close()


def _admin_page(app: Flask, make_operator: t.Any, name: str = "Adam") -> str:
    admin = make_operator(name=name, role="admin")
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return t.cast(str, client.get("/livehelp/admin/").text)


NOT_HEARD = "events do not travel between them"


def test_two_processes_without_a_hub_between_them_are_told_loudly(
    app: Flask,
    second_process: Flask,
    make_operator: t.Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A process heard from only before this one started: a worker restarted.
    get_state(second_process).jobs.run_all(second_process)
    get_state(app).jobs.run_all(app)
    assert NOT_HEARD not in _admin_page(app, make_operator)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    # It is alive beside this one, and events do not reach it.
    get_state(second_process).jobs.run_all(second_process)
    get_state(app).jobs.run_all(app)
    assert NOT_HEARD in _admin_page(app, make_operator, "Bo")
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors and "Set LIVEHELP_HUB_URL" in errors[0]
    # Joined by a hub that carries events between them (Redis): no news.
    get_state(app).hub.reaches_other_processes = True
    assert NOT_HEARD not in _admin_page(app, make_operator, "Anna")
