"""The ``flask livehelp`` commands."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask

from flask_livehelp import get_state


def test_init_db_creates_only_our_tables(app: Flask) -> None:
    state = get_state(app)
    with app.app_context():
        state.db.drop_all()
        before = set(sa.inspect(state.db.engine).get_table_names())
    result = app.test_cli_runner().invoke(args=["livehelp", "init-db"])
    assert result.exit_code == 0, result.output
    assert "tables are ready" in result.output
    with app.app_context():
        created = set(sa.inspect(state.db.engine).get_table_names()) - before
    assert "livehelp_conversation" in created
    assert all(name.startswith("livehelp_") for name in created)


def test_create_operator_prompts_for_the_password(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=[
            "livehelp",
            "create-operator",
            "--name",
            "Mette",
            "--email",
            "Mette@Example.com",
            "--role",
            "manager",
            "--receives-offline",
        ],
        input="secret password\nsecret password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created manager Mette <mette@example.com>" in result.output
    assert "secret password" not in result.output
    with app.app_context():
        state = get_state()
        operator = state.operators.find_by_email("mette@example.com")
        assert operator.role == "manager" and operator.receives_offline
        assert state.operators.authenticate("mette@example.com", "secret password")


def test_create_operator_has_no_password_option(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=[
            "livehelp",
            "create-operator",
            "--name",
            "X",
            "--email",
            "x@example.com",
            "--password",
            "on the command line",
        ],
    )
    assert result.exit_code != 0
    assert "No such option" in result.output


def test_create_operator_refuses_bad_input_clearly(app: Flask) -> None:
    runner = app.test_cli_runner()
    weak = runner.invoke(
        args=["livehelp", "create-operator", "--name", "X", "--email", "x@example.com"],
        input="short\nshort\n",
    )
    assert weak.exit_code == 1
    assert "at least 8 characters" in weak.output
    bad_email = runner.invoke(
        args=[
            "livehelp",
            "create-operator",
            "--name",
            "X",
            "--email",
            "not-an-address",
        ],
        input="long enough\nlong enough\n",
    )
    assert "not a valid e-mail address" in bad_email.output


def test_list_operators(app: Flask, make_operator: object) -> None:
    runner = app.test_cli_runner()
    assert (
        "No operators yet" in runner.invoke(args=["livehelp", "list-operators"]).output
    )
    make_operator(
        name="Mette",
        email="mette@example.com",
        role="admin",  # type: ignore[operator]
        receives_offline=True,
    )
    output = runner.invoke(args=["livehelp", "list-operators"]).output
    assert (
        "Mette <mette@example.com>  admin, offline, receives offline messages" in output
    )


def shop_departments(app: Flask, make_operator: t.Any, *names: str) -> None:
    with app.app_context():
        operators = get_state().operators
        admin = make_operator(name="Admin", email="admin@example.com", role="admin")
        for name in names:
            operators.save_department(None, name=name, email=None, by=admin)


def test_create_operator_puts_them_in_departments(
    app: Flask, make_operator: t.Any
) -> None:
    shop_departments(app, make_operator, "Salg", "Service", "Lager")
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "livehelp",
            "create-operator",
            "--name",
            "Mette",
            "--email",
            "mette@example.com",
            "--department",
            "salg",
            "--department",
            "Service",
        ],
        input="long enough\nlong enough\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        operator = get_state().operators.find_by_email("mette@example.com")
        assert sorted(d.name for d in operator.departments) == ["Salg", "Service"]
    listed = runner.invoke(args=["livehelp", "list-operators"]).output
    assert (
        "Mette <mette@example.com>  operator, offline, departments: Salg, Service"
        in listed
    )


def test_create_operator_in_a_shop_with_departments_must_name_one(
    app: Flask, make_operator: t.Any
) -> None:
    """An operator in no department answers no chat once the shop has some:
    the command says so, and which there are, before asking for a password."""
    shop_departments(app, make_operator, "Salg", "Service")
    runner = app.test_cli_runner()
    base = ["livehelp", "create-operator", "--name", "X", "--email", "x@example.com"]
    none = runner.invoke(args=base, input="long enough\nlong enough\n")
    assert none.exit_code == 2
    assert "Choose at least one department" in none.output
    assert "Salg, Service" in none.output
    assert "Password" not in none.output
    unknown = runner.invoke(
        args=[*base, "--department", "Lager"], input="long enough\nlong enough\n"
    )
    assert unknown.exit_code == 2
    assert "no department 'Lager'; the shop has: Salg, Service." in unknown.output
    with app.app_context():
        assert get_state().operators.find_by_email("x@example.com") is None
