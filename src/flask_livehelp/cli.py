"""The ``flask livehelp`` command group."""

from __future__ import annotations

import time
import typing as t

import click
from flask import current_app
from flask import Flask
from flask.cli import AppGroup

from . import migrations
from .errors import Refused
from .models import ROLES
from .state import get_state

livehelp = AppGroup("livehelp", help="Manage Flask-LiveHelp: tables and operators.")


def _app() -> Flask:
    """The app the command runs for (``flask --app``), not its proxy."""
    return t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]


@livehelp.command("init-db")
def init_db() -> None:
    """Create the Flask-LiveHelp tables that do not exist yet.

    For apps without migrations; ``db.create_all()`` creates them too.
    """
    state = get_state()
    tables = [
        table
        for table in state.db.metadata.sorted_tables
        if table.name.startswith(state.extension.table_prefix)
    ]
    engine = state.db.engines[state.extension.bind_key]
    state.db.metadata.create_all(engine, tables=tables)
    click.echo(f"Flask-LiveHelp tables are ready ({len(tables)} tables).")


@livehelp.command("create-operator")
@click.option("--name", prompt=True, help="The name customers see.")
@click.option("--email", prompt=True, help="The operator signs in with this address.")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="operator",
    show_default=True,
    help="operator: own chats; manager: their departments; admin: everything.",
)
@click.option(
    "--max-chats", type=click.IntRange(1, 50), default=None, help="Chats at once."
)
@click.option(
    "--receives-offline/--no-receives-offline",
    default=False,
    help="Mail this operator the messages left while nobody is online.",
)
@click.option(
    "--department",
    "departments",
    multiple=True,
    metavar="NAME",
    help="A department the operator works in; repeat it for more. Required "
    "once the shop has departments: one in none would answer no chat.",
)
def create_operator(
    name: str,
    email: str,
    role: str,
    max_chats: int | None,
    receives_offline: bool,
    departments: tuple[str, ...],
) -> None:
    """Create an operator account. The password is asked for, never passed."""
    # Before the password is asked for, so that it is not typed in vain.
    department_ids = _department_ids(departments)
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        operator = get_state().operators.create_operator(
            name=name,
            email=email,
            password=password,
            role=role,
            max_chats=max_chats,
            receives_offline=receives_offline,
            department_ids=department_ids,
        )
    except Refused as refusal:
        raise click.ClickException(str(refusal)) from None
    click.echo(f"Created {operator.role} {operator.name} <{operator.email}>.")


def _department_ids(names: tuple[str, ...]) -> list[int]:
    """The ids of the departments named (in any case), by the admin form's rule."""
    known = {d.name.casefold(): d for d in get_state().operators.departments()}
    listed = ", ".join(d.name for d in known.values())
    unknown = [name for name in names if name.strip().casefold() not in known]
    if unknown:
        raise click.BadParameter(
            f"no department {unknown[0]!r}; the shop has: {listed or 'none'}.",
            param_hint="'--department'",
        )
    if known and not names:
        raise click.UsageError(
            f"Choose at least one department with --department (the shop has: "
            f"{listed}); an operator in none answers no chat."
        )
    return sorted({known[name.strip().casefold()].id for name in names})


@livehelp.command("list-operators")
def list_operators() -> None:
    """Show every operator account."""
    operators = get_state().operators.all()
    if not operators:
        click.echo("No operators yet. Add one with 'flask livehelp create-operator'.")
        return
    for operator in operators:
        flags = [operator.role, operator.status]
        if operator.receives_offline:
            flags.append("receives offline messages")
        if not operator.is_active:
            flags.append("deactivated")
        if operator.departments:
            names = sorted(department.name for department in operator.departments)
            flags.append(f"departments: {', '.join(names)}")
        click.echo(
            f"{operator.id:>4}  {operator.name} <{operator.email}>  {', '.join(flags)}"
        )


@livehelp.command("run-jobs")
@click.argument("names", nargs=-1)
def run_jobs(names: tuple[str, ...]) -> None:
    """Run the background jobs once (all, or the ones named)."""
    jobs = get_state().jobs
    for name in names or jobs.names():
        if name not in jobs.names():
            raise click.BadParameter(
                f"no job {name!r}; jobs: {', '.join(jobs.names())}"
            )
        jobs.run(_app(), name)
        click.echo(f"Ran {name}.")


@livehelp.command("worker")
def worker() -> None:
    """Run the background loop in the foreground, for LIVEHELP_JOBS = "off"."""
    app = _app()
    jobs = get_state().jobs
    click.echo(f"Running {', '.join(jobs.names()) or 'no jobs'}. Stop with Ctrl+C.")
    try:
        while True:
            jobs.run_due(app)
            time.sleep(app.config["LIVEHELP_JOBS_TICK_SECONDS"])
    except KeyboardInterrupt:
        pass


# Schema migrations (Alembic), kept in our own version table.


@livehelp.command("db-upgrade")
@click.argument("revision", default="heads")
def db_upgrade(revision: str) -> None:
    """Bring the Flask-LiveHelp tables up to REVISION (default: the latest)."""
    try:
        migrations.upgrade(_app(), revision)
    except migrations.UnversionedDatabase as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Flask-LiveHelp tables at {migrations.current_revision(_app())}.")


@livehelp.command("db-downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Take the Flask-LiveHelp tables back to REVISION ('base' drops them)."""
    migrations.downgrade(_app(), revision)
    click.echo(f"Flask-LiveHelp tables at {migrations.current_revision(_app())}.")


@livehelp.command("db-stamp")
@click.argument("revision")
def db_stamp(revision: str) -> None:
    """Record that the tables are at REVISION, without changing them."""
    migrations.stamp(_app(), revision)
    click.echo(f"Flask-LiveHelp tables recorded at {revision}.")


@livehelp.command("db-current")
def db_current() -> None:
    """Show the revision the Flask-LiveHelp tables are at."""
    revision = migrations.current_revision(_app())
    click.echo(revision or "No revision recorded.")


@livehelp.command("db-revision")
@click.option("-m", "--message", required=True, help="What the revision changes.")
def db_revision(message: str) -> None:
    """Write the next revision: what the models have and the database lacks.

    Maintainers of Flask-LiveHelp use 'python -m flask_livehelp.migrations
    revision -m ...', which needs no database of its own.
    """
    path = migrations.make_revision(_app(), message)
    click.echo(f"Wrote {path}.")


@livehelp.command("fetch-mail")
def fetch_mail() -> None:
    """Read the replies in the LIVEHELP_IMAP_URL mailbox into their conversations."""
    try:
        counts = get_state().inbound.fetch()
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    if not counts:
        click.echo("No new mail.")
        return
    click.echo(", ".join(f"{count} {outcome}" for outcome, count in counts.items()))


@livehelp.command("send-mail")
def send_mail() -> None:
    """Send the mails in the outbox that are due now."""
    sent = get_state().mail.send_due()
    click.echo(f"Sent {sent} mails.")


@livehelp.command("purge")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Delete finished chats older than this. Default: the retention setting.",
)
def purge(days: int | None) -> None:
    """Delete finished chats past the retention, with their messages, for good."""
    state = get_state()
    if days is None and state.settings.get("HISTORY_RETENTION_DAYS") is None:
        raise click.ClickException(
            "No retention is set. Pass --days N, or set LIVEHELP_HISTORY_RETENTION_DAYS"
            " (or the retention in the panel's administration)."
        )
    deleted = state.history.purge(days)
    click.echo(f"Deleted {deleted} chats.")
