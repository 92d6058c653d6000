"""Operator accounts: sign-in limits, session fixation, passwords, deactivation,
and signing in through the host's own staff accounts."""

from __future__ import annotations

import importlib.util
import typing as t

import pytest
from flask import Flask
from flask import session
from simple_websocket import ConnectionClosed

from conftest import login
from conftest import need
from conftest import PASSWORD
from flask_livehelp import get_state
from flask_livehelp import Refused
from staff import csrf_of


def test_too_many_failed_sign_ins_lock_the_address_even_with_the_right_password(
    app: Flask, operator: t.Any
) -> None:
    client = app.test_client()
    for _ in range(5):
        assert login(client, operator.email, "wrong password").status_code == 401
    locked = login(client, operator.email)
    assert locked.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.text
    assert client.get("/livehelp/panel/").status_code == 302
    # An unknown address is locked the same way, so the answer tells nothing.
    for _ in range(5):
        login(client, "nobody@example.com", "guess")
    assert login(client, "nobody@example.com", "guess").status_code == 429


def test_a_success_resets_the_count_for_the_address(
    app: Flask, operator: t.Any
) -> None:
    client = app.test_client()
    for _ in range(4):
        login(client, operator.email, "wrong password")
    assert login(client, operator.email).status_code == 302
    other = app.test_client()
    for _ in range(4):
        assert login(other, operator.email, "wrong password").status_code == 401
    assert login(other, operator.email).status_code == 302


@pytest.mark.livehelp(login_max_failures_per_ip=3)
def test_one_ip_address_trying_many_addresses_is_locked(
    app: Flask, operator: t.Any
) -> None:
    client = app.test_client()
    for n in range(3):
        assert login(client, f"guess{n}@example.com", "x").status_code == 401
    assert login(client, operator.email).status_code == 429
    # From another IP address the operator still signs in.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    assert login(elsewhere, operator.email).status_code == 302


def test_signing_in_leaves_the_server_side_session_and_a_planted_cookie_worthless(
    app: Flask, operator: t.Any, tmp_path: t.Any
) -> None:
    """Against session fixation: a panel cookie known before sign-in is worthless,
    and the shop's server-side session goes on as it was."""
    need(
        importlib.util.find_spec("flask_session") is not None,
        "Flask-Session, a real server-side session (pip install flask-session)",
    )
    from cachelib import FileSystemCache
    from flask_session import Session

    app.config.update(
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(str(tmp_path / "sessions")),
    )
    Session(app)

    @app.get("/shop/cart")
    def cart() -> str:
        session["cart"] = ["regnjakke"]
        return "ok"

    victim = app.test_client()
    victim.get("/shop/cart")
    shop_session = victim.get_cookie("session").value
    victim.get("/livehelp/panel/login")
    planted = victim.get_cookie("livehelp_panel", path="/livehelp").value
    assert login(victim, operator.email).status_code == 302
    after = victim.get_cookie("livehelp_panel", path="/livehelp").value
    assert after != planted
    assert victim.get_cookie("session").value == shop_session
    assert victim.get("/livehelp/panel/").status_code == 200
    with victim.session_transaction() as saved:
        assert saved["cart"] == ["regnjakke"]  # the shop's own session goes on
    attacker = app.test_client()
    attacker.set_cookie("livehelp_panel", planted, path="/livehelp")
    assert attacker.get("/livehelp/panel/").status_code == 302


def test_changing_the_password_signs_out_other_sessions(
    app: Flask, operator: t.Any
) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    login(here, operator.email)
    login(elsewhere, operator.email)
    token = csrf_of(here, "/livehelp/account/password")
    wrong = here.post(
        "/livehelp/account/password",
        data={
            "_lh_csrf": token,
            "current": "nope",
            "new": "a new secret",
            "again": "a new secret",
        },
    )
    assert wrong.status_code == 403
    assert "Your current password is not right." in wrong.text
    mismatch = here.post(
        "/livehelp/account/password",
        data={
            "_lh_csrf": token,
            "current": PASSWORD,
            "new": "a new secret",
            "again": "another",
        },
    )
    assert mismatch.status_code == 400
    short = here.post(
        "/livehelp/account/password",
        data={"_lh_csrf": token, "current": PASSWORD, "new": "short", "again": "short"},
    )
    assert short.status_code == 400
    assert "at least 8 characters" in short.text
    changed = here.post(
        "/livehelp/account/password",
        data={
            "_lh_csrf": token,
            "current": PASSWORD,
            "new": "a new secret",
            "again": "a new secret",
        },
    )
    assert changed.status_code == 302
    assert here.get("/livehelp/panel/").status_code == 200
    assert elsewhere.get("/livehelp/panel/").status_code == 302
    assert login(app.test_client(), operator.email).status_code == 401
    assert login(app.test_client(), operator.email, "a new secret").status_code == 302


def test_a_deactivated_operator_loses_the_panel_and_the_socket_at_once(
    app: Flask, operator: t.Any, make_operator: t.Any, operator_socket: t.Any
) -> None:
    admin = make_operator(name="Adam", role="admin")
    panel = app.test_client()
    login(panel, operator.email)
    socket = operator_socket(operator)
    with app.app_context():
        get_state().operators.deactivate(
            operator.id, by=get_state().operators.get(admin.id)
        )
    socket.expect("signed-out")
    with pytest.raises(ConnectionClosed):
        for _ in range(20):
            socket.ws.receive(timeout=5)
    assert panel.get("/livehelp/panel/").status_code == 302
    assert login(app.test_client(), operator.email).status_code == 401
    with app.app_context():
        entries, _ = get_state().audit.entries(action="operator-deactivated")
        assert entries[0].actor_name == "Adam"


def test_an_admin_cannot_lock_the_shop_out(app: Flask, make_operator: t.Any) -> None:
    admin = make_operator(name="Adam", role="admin")
    with app.app_context():
        operators = get_state().operators
        me = operators.get(admin.id)
        with pytest.raises(Exception, match="own account"):
            operators.deactivate(admin.id, by=me)
        with pytest.raises(Exception, match="at least one active admin"):
            operators.update(admin.id, by=me, role="manager")


# The host's own staff accounts.


@pytest.fixture
def staff_login(app: Flask, livehelp: t.Any) -> dict[str, t.Any]:
    """A host whose staff sign in to the shop; the panel follows them."""
    signed_in: dict[str, t.Any] = {}

    @livehelp.operator_loader
    def load() -> t.Any:
        return dict(signed_in) if signed_in else None

    return signed_in


def test_the_hosts_staff_use_the_panel_without_a_second_password(
    app: Flask, staff_login: dict[str, t.Any]
) -> None:
    client = app.test_client()
    assert client.get("/livehelp/panel/").status_code == 302
    staff_login.update(
        id="u-17", name="Sofie", email="Sofie@Shop.example", role="manager"
    )
    page = client.get("/livehelp/panel/")
    assert page.status_code == 200
    assert "Sofie" in page.text
    assert client.get("/livehelp/history/?view=all").status_code == 200
    with app.app_context():
        operator = get_state().operators.find_by_email("sofie@shop.example")
        assert (operator.external_id, operator.role, operator.password_hash) == (
            "u-17",
            "manager",
            None,
        )
        first_id = operator.id
    staff_login.update(name="Sofie Hansen", role="operator")
    client.get("/livehelp/panel/")
    with app.app_context():
        again = get_state().operators.find_by_email("sofie@shop.example")
        assert (again.id, again.name, again.role) == (
            first_id,
            "Sofie Hansen",
            "operator",
        )
    assert client.get("/livehelp/history/?view=all").status_code == 403
    # Deactivated in the panel wins over the host's say-so.
    with app.app_context():
        get_state().operators.deactivate(first_id, by=None)
    assert client.get("/livehelp/panel/").status_code == 302


def test_an_existing_operator_is_linked_by_e_mail(
    app: Flask, operator: t.Any, staff_login: dict[str, t.Any]
) -> None:
    staff_login.update(id="42", name="Mette", email=operator.email)
    assert app.test_client().get("/livehelp/panel/").status_code == 200
    with app.app_context():
        linked = get_state().operators.get(operator.id)
        assert linked.external_id == "42"
    # Another host id with the same address does not take the account over.
    staff_login.update(id="43")
    assert app.test_client().get("/livehelp/panel/").status_code == 302


def test_a_loader_returning_something_else_is_a_clear_setup_error(
    app: Flask, livehelp: t.Any
) -> None:
    livehelp.operator_loader(lambda: "mette")
    with pytest.raises(TypeError, match="operator_loader must return"):
        app.test_client().get("/livehelp/panel/")


def test_an_operator_may_have_any_real_address(state: t.Any) -> None:
    """The same check as for customers: an apostrophe, an IDN domain."""
    for address in ("o'brien@example.com", "sofie@bøger.dk"):
        made = state.operators.create_operator(
            name="Staff", email=address, password="correct horse"
        )
        assert made.email == address
    with pytest.raises(Refused):
        state.operators.create_operator(
            name="Eve", email="eve@example.com\nBcc: x@example.com", password=None
        )
