"""The permission matrix: every panel route and operator socket event, for each
role, in its own department and in another, allowed or refused as specified.

Two departments: A ("Salg") and B ("B2B"). The chats asked about are in A and
belong to ``owner``. The people:

=============  ========  ==========
who            role      department
=============  ========  ==========
owner          operator  A (has the chats)
colleague      operator  A
outsider       operator  B
manager        manager   A
other_manager  manager   B
admin          admin     B (admins see every department)
=============  ========  ==========

A refusal is a 403 page (or an ``error`` frame on the socket), never a page
that quietly shows less. To add a route or an event, add a row; the coverage
tests fail while one is missing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
import typing as t
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
import sqlalchemy as sa
from flask import Flask
from simple_websocket import ConnectionClosed

from conftest import panel_cookie
from conftest import PASSWORD
from conftest import signed_in_client
from conftest import Socket
from flask_livehelp import get_state
from flask_livehelp.hub import STAFF_CHANNEL
from flask_livehelp.models import utcnow
from flask_livehelp.protocol import OPERATOR_FRAMES
from flask_livehelp.protocol import REPLY
from flask_livehelp.protocol import STAFF_FRAMES
from flask_livehelp.services.visitors import Beat
from staff import chat
from staff import csrf_of
from staff import department
from staff import listed

PEOPLE = ("owner", "colleague", "outsider", "manager", "other_manager", "admin")
EVERYONE = frozenset(PEOPLE)
MANAGERS = frozenset({"manager", "other_manager", "admin"})
OVERSEE_A = frozenset({"manager", "admin"})
#: Who may read a finished or active chat of ``owner`` in department A.
READ_CHAT = frozenset({"owner", "manager", "admin"})
#: Staff who serve department A, and admins.
SERVE_A = frozenset({"owner", "colleague", "manager", "admin"})
ADMINS = frozenset({"admin"})
_unique = itertools.count(1)

pytestmark = pytest.mark.livehelp(
    mail_send_now="off",
    push_origins=["http://localhost"],
    reply_address="reply+{token}@shop.example",
)


@dataclasses.dataclass
class World:
    app: Flask
    people: dict[str, t.Any]
    a: int
    b: int

    def targets(self) -> Targets:
        return Targets(self)


class Targets:
    """Fresh things to act on, made only when a row asks for them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.app = world.app

    @property
    def owner(self) -> t.Any:
        return self.world.people["owner"]

    @property
    def a(self) -> int:
        return self.world.a

    @property
    def b(self) -> int:
        return self.world.b

    @property
    def finished(self) -> int:
        return chat(self.app, operator=self.owner, department_id=self.a)

    @property
    def active(self) -> int:
        return chat(self.app, operator=self.owner, department_id=self.a, end=False)

    @property
    def queued(self) -> int:
        return chat(self.app, department_id=self.a, end=False)

    @property
    def offline(self) -> int:
        with self.app.test_request_context():
            result = get_state().offline.submit(
                client_id=f"offline{next(_unique)}",
                body="Har I den i blå?",
                email=f"karen{next(_unique)}@example.com",
                department_id=self.a,
            )
            return t.cast(int, result.conversation_id)

    @property
    def mail(self) -> int:
        """A mail of the outbox: the one an offline message wrote."""
        conversation_id = self.offline
        with self.app.app_context():
            state = get_state()
            (first, *_) = state.mail.for_conversation(conversation_id)
            return t.cast(int, first.id)

    @property
    def subject(self) -> int:
        with self.app.app_context():
            made = get_state().operators.create_operator(
                name="Subject",
                email=f"subject{next(_unique)}@example.com",
                password=None,
                department_ids=[self.a],
            )
            return t.cast(int, made.id)

    @property
    def offer(self) -> int:
        """A chat of ``owner`` offered to department A."""
        conversation_id = self.active
        with self.app.app_context():
            state = get_state()
            owner = state.operators.get(self.owner.id)
            offer = state.transfers.offer(
                owner, conversation_id, to_department_id=self.a, note="Retur"
            )
            return t.cast(int, offer.id)

    @property
    def visitor(self) -> int:
        """A visitor browsing the shop, not chatting."""
        with self.app.app_context():
            state = get_state()
            presence_id = f"browsing{next(_unique):08d}"
            state.visitors.beat(
                presence_id,
                Beat(
                    page="http://localhost/",
                    title=None,
                    referrer=None,
                    locale="da",
                    user_agent=None,
                    ip_address=None,
                    at=utcnow(),
                ),
            )
            state.visitors.flush_beats()
            model = state.models.visitor
            row = state.db.session.execute(
                sa.select(model.id).where(model.presence_id == presence_id)
            ).scalar_one()
            return t.cast(int, row)

    @property
    def canned(self) -> int:
        with self.app.app_context():
            row = get_state().knowledge.save_canned(
                None, name=f"c{next(_unique)}", lang="", body="Et øjeblik", by=None
            )
            return t.cast(int, row.id)

    @property
    def article(self) -> int:
        with self.app.app_context():
            row = get_state().knowledge.save_article(
                None,
                title="Retur",
                body="",
                url="/retur",
                lang="",
                keywords="",
                by=None,
            )
            return t.cast(int, row.id)


@pytest.fixture
def world(app: Flask, livehelp: t.Any, make_operator: t.Any) -> World:
    # A translation service, so "translate" is about permission, not set-up.
    livehelp.translator(lambda text, target, source: text)
    a, b = department(app, "Salg"), department(app, "B2B")
    roles = {
        "owner": ("operator", a),
        "colleague": ("operator", a),
        "outsider": ("operator", b),
        "manager": ("manager", a),
        "other_manager": ("manager", b),
        "admin": ("admin", b),
    }
    people = {
        who: make_operator(
            name=who.replace("_", " ").title(),
            role=role,
            department_ids=[department_id],
            # The matrix asks who may, not how many: nobody runs out of room.
            max_chats=50,
        )
        for who, (role, department_id) in roles.items()
    }
    return World(app, people, a, b)


# The HTTP routes.


@dataclasses.dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    path: t.Callable[[Targets], str]
    allowed: frozenset[str]
    data: t.Callable[[Targets], dict[str, t.Any]] = lambda _: {}
    #: The status of an allowed request; refused ones are 403.
    ok: int | None = None

    @property
    def success(self) -> int:
        return self.ok or (200 if self.method == "GET" else 302)

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint}"


def operator_form(x: Targets) -> dict[str, t.Any]:
    return {
        "name": "New",
        "email": f"new{next(_unique)}@example.com",
        "password": "a good password",
        "role": "operator",
        "max_chats": "3",
        "departments": str(x.a),
    }


ROUTES = [
    Route("livehelp.panel.index", "GET", lambda x: "/livehelp/panel/", EVERYONE),
    Route(
        "livehelp.panel.logout", "POST", lambda x: "/livehelp/panel/logout", EVERYONE
    ),
    Route(
        "livehelp.account.password",
        "GET",
        lambda x: "/livehelp/account/password",
        EVERYONE,
    ),
    Route(
        "livehelp.account.password",
        "POST",
        lambda x: "/livehelp/account/password",
        EVERYONE,
        lambda x: {
            "current": PASSWORD,
            "new": "another secret",
            "again": "another secret",
        },
    ),
    Route(
        "livehelp.history.index",
        "GET",
        lambda x: "/livehelp/history/?view=completed",
        EVERYONE,
    ),
    Route(
        "livehelp.history.index",
        "GET",
        lambda x: "/livehelp/history/?view=active",
        EVERYONE,
    ),
    Route(
        "livehelp.history.index",
        "GET",
        lambda x: "/livehelp/history/?view=all",
        MANAGERS,
    ),
    Route(
        "livehelp.history.index",
        "GET",
        lambda x: f"/livehelp/history/?view=all&department={x.a}",
        OVERSEE_A,
    ),
    Route(
        "livehelp.history.index",
        "GET",
        lambda x: f"/livehelp/history/?operator={x.owner.id}",
        frozenset({"owner"}) | MANAGERS,
    ),
    Route(
        "livehelp.history.export",
        "GET",
        lambda x: "/livehelp/history/export.csv",
        EVERYONE,
    ),
    Route(
        "livehelp.history.export",
        "GET",
        lambda x: "/livehelp/history/export.csv?view=all",
        MANAGERS,
    ),
    Route(
        "livehelp.history.transcript",
        "GET",
        lambda x: f"/livehelp/history/{x.finished}",
        READ_CHAT,
    ),
    Route(
        "livehelp.history.transcript_text",
        "GET",
        lambda x: f"/livehelp/history/{x.finished}.txt",
        READ_CHAT,
    ),
    Route(
        "livehelp.history.erase",
        "GET",
        lambda x: f"/livehelp/history/{x.finished}/erase",
        OVERSEE_A,
    ),
    Route(
        "livehelp.history.erase",
        "POST",
        lambda x: f"/livehelp/history/{x.finished}/erase",
        OVERSEE_A,
    ),
    Route(
        "livehelp.history.actions",
        "POST",
        lambda x: "/livehelp/history/actions",
        OVERSEE_A,
        lambda x: {"action": "delete", "ids": [str(x.finished)]},
    ),
    Route(
        "livehelp.history.actions",
        "POST",
        lambda x: "/livehelp/history/actions",
        READ_CHAT,
        lambda x: {
            "action": "transfer",
            "ids": [str(x.active)],
            "to": f"department:{x.b}",
        },
    ),
    Route("livehelp.report.index", "GET", lambda x: "/livehelp/report/", MANAGERS),
    Route(
        "livehelp.report.index",
        "GET",
        lambda x: f"/livehelp/report/?department={x.a}",
        OVERSEE_A,
    ),
    Route("livehelp.admin.index", "GET", lambda x: "/livehelp/admin/", MANAGERS),
    Route(
        "livehelp.admin.operators", "GET", lambda x: "/livehelp/admin/operators", ADMINS
    ),
    Route(
        "livehelp.admin.new_operator",
        "GET",
        lambda x: "/livehelp/admin/operators/new",
        ADMINS,
    ),
    Route(
        "livehelp.admin.new_operator",
        "POST",
        lambda x: "/livehelp/admin/operators/new",
        ADMINS,
        operator_form,
    ),
    Route(
        "livehelp.admin.edit_operator",
        "GET",
        lambda x: f"/livehelp/admin/operators/{x.subject}",
        ADMINS,
    ),
    Route(
        "livehelp.admin.edit_operator",
        "POST",
        lambda x: f"/livehelp/admin/operators/{x.subject}",
        ADMINS,
        lambda x: {**operator_form(x), "password": ""},
    ),
    Route(
        "livehelp.admin.deactivate",
        "POST",
        lambda x: f"/livehelp/admin/operators/{x.subject}/deactivate",
        ADMINS,
    ),
    Route(
        "livehelp.admin.activate",
        "POST",
        lambda x: f"/livehelp/admin/operators/{x.subject}/activate",
        ADMINS,
    ),
    Route(
        "livehelp.admin.reset_password",
        "POST",
        lambda x: f"/livehelp/admin/operators/{x.subject}/password",
        ADMINS,
        lambda x: {"password": "a brand new one"},
    ),
    Route(
        "livehelp.admin.departments",
        "GET",
        lambda x: "/livehelp/admin/departments",
        ADMINS,
    ),
    Route(
        "livehelp.admin.departments",
        "POST",
        lambda x: "/livehelp/admin/departments",
        ADMINS,
        lambda x: {"name": f"Afdeling {next(_unique)}", "is_active": "1"},
    ),
    Route(
        "livehelp.admin.departments",
        "GET",
        lambda x: f"/livehelp/admin/departments/{x.a}",
        ADMINS,
    ),
    Route(
        "livehelp.admin.departments",
        "POST",
        lambda x: f"/livehelp/admin/departments/{x.a}",
        ADMINS,
        lambda x: {"name": "Salg", "is_active": "1"},
    ),
    Route("livehelp.admin.widget", "GET", lambda x: "/livehelp/admin/widget", ADMINS),
    Route(
        "livehelp.admin.widget",
        "POST",
        lambda x: "/livehelp/admin/widget?lang=en",
        ADMINS,
        lambda x: {
            "color": "#123456",
            "position": "right",
            "ask_name": "optional",
            "ask_email": "optional",
        },
    ),
    Route(
        "livehelp.admin.settings", "GET", lambda x: "/livehelp/admin/settings", ADMINS
    ),
    Route(
        "livehelp.admin.settings",
        "POST",
        lambda x: "/livehelp/admin/settings",
        ADMINS,
        lambda x: {
            "QUEUE_TIMEOUT_SECONDS": "240",
            "IDLE_SECONDS": "120",
            "INACTIVE_CLOSE_SECONDS": "1800",
        },
    ),
    Route(
        "livehelp.admin.canned",
        "GET",
        lambda x: "/livehelp/admin/canned",
        MANAGERS,
    ),
    Route(
        "livehelp.admin.canned",
        "POST",
        lambda x: "/livehelp/admin/canned",
        MANAGERS,
        lambda x: {"name": f"c{next(_unique)}", "lang": "", "body": "Et øjeblik"},
    ),
    Route(
        "livehelp.admin.canned",
        "GET",
        lambda x: f"/livehelp/admin/canned/{x.canned}",
        MANAGERS,
    ),
    Route(
        "livehelp.admin.canned",
        "POST",
        lambda x: f"/livehelp/admin/canned/{x.canned}",
        MANAGERS,
        lambda x: {"name": f"c{next(_unique)}", "lang": "", "body": "Et øjeblik"},
    ),
    Route(
        "livehelp.admin.delete_canned",
        "POST",
        lambda x: f"/livehelp/admin/canned/{x.canned}/delete",
        MANAGERS,
    ),
    Route(
        "livehelp.admin.articles",
        "GET",
        lambda x: "/livehelp/admin/articles",
        ADMINS,
    ),
    Route(
        "livehelp.admin.articles",
        "POST",
        lambda x: "/livehelp/admin/articles",
        ADMINS,
        lambda x: {
            "title": "Retur",
            "url": "/retur",
            "lang": "",
            "keywords": "",
            "body": "",
        },
    ),
    Route(
        "livehelp.admin.articles",
        "GET",
        lambda x: f"/livehelp/admin/articles/{x.article}",
        ADMINS,
    ),
    Route(
        "livehelp.admin.articles",
        "POST",
        lambda x: f"/livehelp/admin/articles/{x.article}",
        ADMINS,
        lambda x: {
            "title": "Retur",
            "url": "/retur",
            "lang": "",
            "keywords": "",
            "body": "",
        },
    ),
    Route(
        "livehelp.admin.delete_article",
        "POST",
        lambda x: f"/livehelp/admin/articles/{x.article}/delete",
        ADMINS,
    ),
    Route("livehelp.admin.audit_log", "GET", lambda x: "/livehelp/admin/audit", ADMINS),
    Route(
        "livehelp.admin.erase_customer",
        "GET",
        lambda x: "/livehelp/admin/erase",
        ADMINS,
    ),
    Route(
        "livehelp.admin.erase_customer",
        "POST",
        lambda x: "/livehelp/admin/erase",
        ADMINS,
        lambda x: {"email": "karen@example.com"},
    ),
    # The offline messages (issue 5): staff who serve the department answer.
    Route("livehelp.offline.index", "GET", lambda x: "/livehelp/offline/", EVERYONE),
    Route(
        "livehelp.offline.detail",
        "GET",
        lambda x: f"/livehelp/offline/{x.offline}",
        SERVE_A,
    ),
    Route(
        "livehelp.offline.answer",
        "POST",
        lambda x: f"/livehelp/offline/{x.offline}/answer",
        SERVE_A,
        lambda x: {
            "body": "Tak for beskeden, den har vi.",
            "form_id": f"f{next(_unique)}",
        },
    ),
    # Managers see the outbox of their departments' mails; admins all of it.
    Route(
        "livehelp.offline.outbox",
        "GET",
        lambda x: "/livehelp/offline/outbox",
        MANAGERS,
    ),
    Route(
        "livehelp.offline.retry",
        "POST",
        lambda x: f"/livehelp/offline/outbox/{x.mail}/retry",
        OVERSEE_A,
    ),
]

#: Routes that are not the staff's: the login form, what visitors and mail
#: servers call (tested in their own modules), the panel socket (below).
NOT_STAFF_ROUTES = {
    "livehelp.static",
    "livehelp.panel.login",
    "livehelp.panel.operator_socket",
    "livehelp.offline.message",
    "livehelp.offline.inbound",
}


def test_every_staff_route_has_rows_in_the_matrix(app: Flask) -> None:
    rules = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("livehelp.")
        and not rule.endpoint.startswith("livehelp.widget.")
        and rule.endpoint not in NOT_STAFF_ROUTES
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    covered = {(route.endpoint, route.method) for route in ROUTES}
    assert rules - covered == set(), "add rows to ROUTES in tests/test_roles.py"
    assert covered - rules == set()


def _client(app: Flask, person: t.Any | None) -> t.Any:
    """A browser signed in as ``person`` (sign-in itself: tests/test_accounts.py)."""
    if person is not None:
        return signed_in_client(app, person.id, person.session_key)
    client = app.test_client()
    client.get("/livehelp/panel/login")  # a CSRF token, as a browser has
    client.csrf = csrf_of(client, "/livehelp/panel/login")
    return client


def _request(client: t.Any, route: Route, targets: Targets) -> t.Any:
    path = route.path(targets)
    if route.method == "GET":
        response = client.get(path)
    else:
        response = client.post(
            path, data={"_lh_csrf": client.csrf, **route.data(targets)}
        )
    # Read to the end: a streamed answer (the CSV) holds its request till then.
    response.get_data()
    response.close()
    return response


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_route(world: World, route: Route) -> None:
    got, expected = {}, {}
    for who in PEOPLE:
        client = _client(world.app, world.people[who])
        response = _request(client, route, world.targets())
        got[who] = response.status_code
        expected[who] = route.success if who in route.allowed else 403
        if got[who] == 403:
            assert "<html" in response.text.lower()  # a page that says why
    anonymous = _request(_client(world.app, None), route, world.targets())
    got["anonymous"], expected["anonymous"] = anonymous.status_code, 302
    assert anonymous.location is None or anonymous.location.startswith(
        "/livehelp/panel/login"
    )
    assert got == expected


# The operator socket.


@dataclasses.dataclass(frozen=True)
class Event:
    type: str
    #: The frame, given fresh targets.
    frame: t.Callable[[Targets], dict[str, t.Any]]
    allowed: frozenset[str]
    #: The frame type an allowed sender gets back.
    answer: str

    def __str__(self) -> str:
        return self.type


EVENTS = [
    Event("hello", lambda x: {}, EVERYONE, "hello"),
    Event("status", lambda x: {"state": "away"}, EVERYONE, "status"),
    Event("accept", lambda x: {"conversation": x.queued}, SERVE_A, "assigned"),
    Event(
        "message",
        lambda x: {"conversation": x.active, "id": f"m{next(_unique)}", "body": "Hej"},
        frozenset({"owner"}),
        "ack",
    ),
    Event(
        "typing",
        lambda x: {"conversation": x.active, "state": True},
        frozenset({"owner"}),
        "typing",
    ),
    Event("end", lambda x: {"conversation": x.active}, READ_CHAT, "ended"),
    Event(
        "sync",
        lambda x: {"conversation": x.active, "after": 0},
        READ_CHAT,
        "conversation",
    ),
    Event(
        "tags",
        lambda x: {"conversation": x.active, "names": ["retur"]},
        READ_CHAT,
        "conversation",
    ),
    # The owner hands on their chat; a manager or admin of its department may
    # move it too; nobody else.
    Event(
        "transfer",
        lambda x: {"conversation": x.active, "department": x.a, "note": "Retur"},
        READ_CHAT,
        "notice",
    ),
    # An offer to department A: for those who serve it (not the one who made
    # it) and admins.
    Event(
        "transfer-answer",
        lambda x: {"transfer": x.offer, "accept": True},
        frozenset({"colleague", "manager", "admin"}),
        "assigned",
    ),
    # Only the operator who has the chat shows the customer a page.
    Event(
        "push",
        lambda x: {"conversation": x.active, "url": "http://localhost/kurv"},
        frozenset({"owner"}),
        "message",
    ),
    Event(
        "transcript",
        lambda x: {"conversation": x.active, "to": "me"},
        READ_CHAT,
        "notice",
    ),
    Event("visitors", lambda x: {}, EVERYONE, "visitors"),
    Event(
        "translate",
        lambda x: {"conversation": x.active, "seq": 1},
        READ_CHAT,
        "translation",
    ),
    Event(
        "invite",
        lambda x: {"visitor": x.visitor, "message": "Kan jeg hjælpe?"},
        EVERYONE,
        "notice",
    ),
]
#: Events of the live panel without rows yet: move each into EVENTS.
PENDING_EVENTS: set[str] = set()


def test_every_socket_event_has_a_row_in_the_matrix() -> None:
    events = set(OPERATOR_FRAMES) - {"ping"}
    covered = {event.type for event in EVENTS}
    assert events - covered - PENDING_EVENTS == set(), "add rows to EVENTS"
    assert covered <= events


@pytest.mark.parametrize("event", EVENTS, ids=str)
def test_socket_event(
    world: World, live_server: t.Any, sockets: list[Socket], event: Event
) -> None:
    got, expected = {}, {}
    for who in PEOPLE:
        frame = event.frame(world.targets())
        client = _client(world.app, world.people[who])
        socket = Socket(
            live_server.ws_url("/livehelp/panel/ws"), {"Cookie": panel_cookie(client)}
        )
        sockets.append(socket)
        socket.expect("hello")
        socket.send(type=event.type, **frame)
        answer = _answer(socket, event.answer)
        got[who] = answer
        expected[who] = "allowed" if who in event.allowed else "refused"
        socket.close()
    assert got == expected


def _answer(socket: t.Any, success: str) -> str:
    """``allowed`` when the success frame comes, ``refused`` on an error frame."""
    for _ in range(60):
        frame = socket.receive(timeout=5)
        if frame["type"] == "error":
            assert frame["code"] in ("not-allowed", "not-yours", "signed-out")
            return "refused"
        if frame["type"] == success:
            return "allowed"
    raise AssertionError(f"Neither {success} nor error came.")


# What the panels are told: every frame type the server sends them.

#: Who hears of a chat of ``owner`` in department A as it changes.
HEAR_OF_A = SERVE_A


def _person(x: Targets, who: str) -> t.Any:
    """``who``'s operator row, in the current app context."""
    return get_state().operators.get(x.world.people[who].id)


def _started(x: Targets, **fields: t.Any) -> int:
    """A chat a visitor starts in department A."""
    with x.app.app_context():
        state = get_state()
        visitor, _ = state.visitors.create(
            ip_address=None, user_agent=None, locale="da"
        )
        conversation, _ = state.conversations.start(
            visitor.id,
            client_id=f"q{next(_unique)}",
            body="Hej, har I den i blå?",
            department_id=x.a,
            **fields,
        )
        return t.cast(int, conversation.id)


def _transferred(x: Targets, panels: dict[str, Socket]) -> int:
    offer = x.offer
    with x.app.app_context():
        state = get_state()
        return t.cast(int, state.transfers.accept(_person(x, "colleague"), offer).id)


def _answered(x: Targets, panels: dict[str, Socket]) -> int:
    conversation_id = x.offline
    with x.app.app_context():
        get_state().offline.answer(_person(x, "owner"), conversation_id, "Ja.")
    return conversation_id


def _replied(x: Targets, panels: dict[str, Socket]) -> int:
    conversation_id = x.offline
    with x.app.app_context():
        state = get_state()
        token = state.conversations.get(conversation_id).reply_token
        mail = EmailMessage()
        mail["From"] = "karen@example.com"
        mail["To"] = f"reply+{token}@shop.example"
        mail["Subject"] = "Re: Har I den i blå?"
        mail["Message-ID"] = make_msgid(domain="example.com")
        mail.set_content("Tak, så tager jeg den.")
        assert state.inbound.receive(mail.as_bytes()).outcome == "appended"
    return conversation_id


def _offered(to: str) -> t.Callable[[Targets, dict[str, Socket]], int]:
    """The owner offers their chat to department ``to`` or to a colleague."""

    def offer(x: Targets, panels: dict[str, Socket]) -> int:
        conversation_id = x.active
        with x.app.app_context():
            state = get_state()
            target: dict[str, t.Any] = {"to_department_id": getattr(x, to, None)}
            if to in PEOPLE:
                state.presence.set_status(x.world.people[to].id, "online")
                target = {"to_operator_id": x.world.people[to].id}
            state.transfers.offer(_person(x, "owner"), conversation_id, **target)
        return conversation_id

    return offer


def _declined(x: Targets, panels: dict[str, Socket]) -> int:
    conversation_id = _offered("colleague")(x, panels)
    with x.app.app_context():
        state = get_state()
        offer = state.transfers.open_for(_person(x, "colleague"))[0]
        state.transfers.decline(_person(x, "colleague"), offer.id)
    return conversation_id


def _invitation_declined(x: Targets, panels: dict[str, Socket]) -> None:
    visitor_id = x.visitor
    with x.app.app_context():
        state = get_state()
        state.visitors.invite(_person(x, "owner"), visitor_id, "Kan jeg hjælpe?")
        presence_id = state.db.session.get(state.models.visitor, visitor_id).presence_id
        state.visitors.answer_invitation(presence_id, accepted=False)


def _in_active_chat(
    act: t.Callable[[t.Any, t.Any], None],
) -> t.Callable[[Targets, dict[str, Socket]], int]:
    """``act(state, conversation)`` in an active chat of the owner."""

    def cause(x: Targets, panels: dict[str, Socket]) -> int:
        conversation_id = x.active
        with x.app.app_context():
            state = get_state()
            act(state, state.conversations.get(conversation_id))
        return conversation_id

    return cause


def _as_owner(act: t.Callable[[t.Any, t.Any], None]) -> t.Callable[..., None]:
    def cause(x: Targets, panels: dict[str, Socket]) -> None:
        with x.app.app_context():
            act(get_state(), x.owner.id)

    return cause


def _queue_moved(x: Targets, panels: dict[str, Socket]) -> int:
    """A colleague looks at a waiting chat; the queue moves ahead of it."""
    ahead, waiting = x.queued, x.queued
    panels["colleague"].send(type="sync", conversation=waiting, after=0)
    panels["colleague"].expect("synced", conversation=waiting)
    with x.app.app_context():
        get_state().conversations.accept(_person(x, "owner"), ahead)
    return waiting


def _in_context(x: Targets, act: t.Callable[[t.Any], object]) -> None:
    with x.app.app_context():
        act(get_state())


def _hub_down_and_up(x: Targets, panels: dict[str, Socket]) -> None:
    hub = get_state(x.app).hub
    hub._health_changed(False)
    hub._health_changed(True)


@dataclasses.dataclass(frozen=True)
class Told:
    type: str
    #: Makes the server send it, about a chat of department A (its id) or
    #: about no chat (``None``), while everyone's panel is open.
    cause: t.Callable[[Targets, dict[str, Socket]], int | None]
    #: Whose panels get it.
    receivers: frozenset[str]

    def __str__(self) -> str:
        return self.type


TOLD = [
    Told(
        "presence", _as_owner(lambda s, me: s.presence.set_status(me, "away")), EVERYONE
    ),
    Told("hub", _hub_down_and_up, EVERYONE),
    Told(
        "settings",
        lambda x, _: _in_context(x, lambda s: s.settings.set("IDLE_SECONDS", 300)),
        EVERYONE,
    ),
    Told("queued", lambda x, _: x.queued, HEAR_OF_A),
    Told("accepted", lambda x, _: x.active, HEAR_OF_A),
    Told("ended", lambda x, _: x.finished, HEAR_OF_A),
    Told("transferred", _transferred, HEAR_OF_A),
    Told("offline", lambda x, _: x.offline, HEAR_OF_A),
    Told("answered", _answered, HEAR_OF_A),
    Told("reply", _replied, HEAR_OF_A),
    Told("transfer", _offered("a"), HEAR_OF_A),
    # Offered to department B: its staff hear of it, not A's.
    Told("transfer", _offered("b"), frozenset({"outsider", "other_manager", "admin"})),
    Told("transfer", _offered("colleague"), frozenset({"colleague"})),
    Told("assigned", lambda x, _: x.active, frozenset({"owner"})),
    Told(
        "unassigned",
        _in_active_chat(lambda s, c: s.conversations.release_chats(c.operator_id)),
        frozenset({"owner"}),
    ),
    Told(
        "routed",
        lambda x, _: _started(x, requested_operator_id=x.owner.id),
        frozenset({"owner"}),
    ),
    Told(
        "status",
        _as_owner(lambda s, me: s.presence.set_status(me, "away")),
        frozenset({"owner"}),
    ),
    Told(
        "signed-out",
        _as_owner(lambda s, me: s.operators.sign_out_everywhere(me)),
        frozenset({"owner"}),
    ),
    Told("transfer-declined", _declined, frozenset({"owner"})),
    Told("invitation-declined", _invitation_declined, frozenset({"owner"})),
    # On the chat's own channels: only the panels that follow it.
    Told(
        "message",
        _in_active_chat(
            lambda s, c: s.conversations.post_by_visitor(
                c.visitor_id, c.id, client_id=f"v{next(_unique)}", body="Tak"
            )
        ),
        frozenset({"owner"}),
    ),
    Told(
        "typing",
        _in_active_chat(lambda s, c: s.conversations.typing(c.id, "visitor", True)),
        frozenset({"owner"}),
    ),
    Told(
        "conversation",
        _in_active_chat(
            lambda s, c: s.conversations.set_tags(
                s.operators.get(c.operator_id), c.id, ["retur"]
            )
        ),
        frozenset({"owner"}),
    ),
    Told("queue", _queue_moved, frozenset({"colleague"})),
]
#: Answers to a panel's own frame that are no row of EVENTS.
OTHER_REPLIES = {"error": "any refusal", "pong": "ping", "synced": "sync's backlog"}


def test_every_staff_frame_type_has_rows_in_the_matrix() -> None:
    """A new frame type for panels needs its audience, and rows that prove it."""
    told = {row.type for row in TOLD}
    replies = {name for name, audience in STAFF_FRAMES.items() if audience == REPLY}
    assert told == set(STAFF_FRAMES) - replies, "add rows to TOLD"
    assert replies == {event.answer for event in EVENTS} - told | set(OTHER_REPLIES)


def _panels(
    world: World, sockets: list[Socket], live_server: t.Any
) -> dict[str, Socket]:
    panels = {}
    for who in PEOPLE:
        client = _client(world.app, world.people[who])
        socket = Socket(
            live_server.ws_url("/livehelp/panel/ws"), {"Cookie": panel_cookie(client)}
        )
        sockets.append(socket)
        socket.expect("hello")
        panels[who] = socket
    _heard(panels)  # what opening the others said
    return panels


Heard = dict[str, list[dict[str, t.Any]]]


def _heard(
    panels: dict[str, Socket], awaited: t.Callable[[Heard], bool] = lambda _: True
) -> Heard:
    """What each panel got, also one closed after it (signed out): read
    from all of them until none has heard anything for 0.2 s, and what is
    ``awaited`` has come (for up to 5 s: a loaded machine may be slower)."""
    heard: Heard = {who: [] for who in panels}
    last = time.monotonic()
    deadline = last + 5
    while time.monotonic() - last < 0.2 or (
        not awaited(heard) and time.monotonic() < deadline
    ):
        for who, socket in panels.items():
            try:
                while (text := socket.ws.receive(timeout=0)) is not None:
                    heard[who].append(json.loads(text))
                    last = time.monotonic()
            except ConnectionClosed:
                pass
        time.sleep(0.01)
    return heard


def _about(frame: dict[str, t.Any], conversation_id: int | None) -> bool:
    return conversation_id is None or conversation_id in (
        frame.get("id"),
        frame.get("conversation"),
    )


@pytest.mark.parametrize("told", TOLD, ids=str)
def test_staff_frame(
    world: World, live_server: t.Any, sockets: list[Socket], told: Told
) -> None:
    panels = _panels(world, sockets, live_server)
    conversation_id = told.cause(world.targets(), panels)

    def receivers(heard: Heard) -> set[str]:
        return {
            who
            for who, frames in heard.items()
            if any(
                frame["type"] == told.type and _about(frame, conversation_id)
                for frame in frames
            )
        }

    # Who else hears it hears it at the same time as those who must.
    heard = _heard(panels, lambda heard: receivers(heard) >= told.receivers)
    assert receivers(heard) == told.receivers


def test_a_frame_type_nobody_listed_reaches_no_panel(
    world: World,
    live_server: t.Any,
    sockets: list[Socket],
    caplog: pytest.LogCaptureFixture,
) -> None:
    panels = _panels(world, sockets, live_server)
    surprise = {"type": "surprise", "department_id": None, "email": "k@example.com"}
    get_state(world.app).hub.publish(STAFF_CHANNEL, surprise)
    assert not [
        who
        for who, frames in _heard(panels).items()
        if any(frame["type"] == "surprise" for frame in frames)
    ]
    assert "not allowed by protocol.STAFF_FRAMES" in caplog.text


# Staff in no department.


def test_an_operator_in_no_department_serves_none_once_the_shop_has_some(
    world: World, make_operator: t.Any, operator_socket: t.Any
) -> None:
    floater = make_operator(name="Floater")
    floating_manager = make_operator(name="Floating Manager", role="manager")
    panel = operator_socket(floater)
    panel.send(type="status", state="online")
    panel.expect("status", chosen="online")
    x = world.targets()
    waiting, finished = x.queued, x.finished
    # Department A's customers are not theirs: not heard of, not to be taken.
    assert "queued" not in [frame["type"] for frame in panel.quiet()]
    panel.send(type="accept", conversation=waiting)
    assert panel.expect("error")["code"] == "not-allowed"
    with world.app.app_context():
        state = get_state()
        assert state.conversations.queue_for(state.operators.get(floater.id)) == []
        # Online, but not for department A's widget.
        assert state.presence.widget_state(x.a).state == "offline"
        assert state.presence.widget_state().state == "online"
    # A manager in no department oversees none.
    everything = _client(world.app, floating_manager).get("/livehelp/history/?view=all")
    assert finished not in listed(everything.text)


def test_visitors_on_the_site_show_only_the_chats_one_hears_of(
    world: World, live_server: t.Any, sockets: list[Socket]
) -> None:
    x = world.targets()
    chatting, browsing = x.queued, x.visitor
    with world.app.app_context():
        chatter = get_state().conversations.get(chatting).visitor_id
    seen = {}
    for who, panel in _panels(world, sockets, live_server).items():
        panel.send(type="visitors")
        seen[who] = {v["id"] for v in panel.expect("visitors")["items"]}
    assert {who for who in PEOPLE if chatter in seen[who]} == HEAR_OF_A
    # Who only browses the shop is on everyone's list, to be invited.
    assert all(browsing in seen[who] for who in PEOPLE)


def test_moving_an_operator_to_another_department_hands_their_chats_on(
    world: World, visitor_socket: t.Any, operator_socket: t.Any
) -> None:
    owner = world.people["owner"]
    visitor = visitor_socket()
    visitor.send(type="hello")
    visitor.expect("welcome")
    visitor.send(type="start", id="q1", body="Hej, min ordre?", department=world.a)
    conversation_id = visitor.expect("ack", id="q1")["conversation"]
    with world.app.app_context():
        state = get_state()
        state.conversations.accept(state.operators.get(owner.id), conversation_id)
    visitor.expect("conversation", status="active")
    colleague = operator_socket(world.people["colleague"])

    admin = _client(world.app, world.people["admin"])
    moved = admin.post(
        f"/livehelp/admin/operators/{owner.id}",
        data={
            "_lh_csrf": admin.csrf,
            "name": owner.name,
            "email": owner.email,
            "role": "operator",
            "max_chats": "3",
            "departments": str(world.b),
        },
    )
    assert moved.status_code == 302
    # The customer is told and waits for department A's next operator.
    visitor.expect("message", kind="event", body="returned")
    visitor.expect("conversation", status="queued")
    colleague.expect("queued", id=conversation_id)
    # Signed in again, the owner neither reads nor writes it.
    panel = operator_socket(owner)
    panel.send(type="sync", conversation=conversation_id, after=0)
    assert panel.expect("error")["code"] == "not-allowed"
    panel.send(type="message", conversation=conversation_id, id="m1", body="Hej")
    assert panel.expect("error")["code"] in ("not-allowed", "not-yours")
