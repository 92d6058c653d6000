"""Alembic migrations of Flask-LiveHelp's tables, shipped with the package.

Two ways to use them:

* On their own: ``flask livehelp db-upgrade``. The applied revision is kept in
  our own version table (``livehelp_alembic_version``), so a host's
  ``alembic_version`` is never touched.
* From the host's Flask-Migrate or Alembic: ``migrate.configure(include_in)``
  (or :data:`VERSIONS` in the host's ``version_locations``), then upgrade
  ``heads``; our revisions are the branch :data:`BRANCH`. See
  ``docs/deployment.md``.

Maintainers make the next revision from the models with one command::

    python -m flask_livehelp.migrations revision -m "what changed"
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script import write_hooks
from flask import current_app
from flask import Flask

from ..state import get_state

DIRECTORY = Path(__file__).parent
#: Where our revision scripts are; give it to a host's ``version_locations``.
VERSIONS = DIRECTORY / "versions"
#: The Alembic branch label of our revisions.
BRANCH = "livehelp"
DEFAULT_PREFIX = "livehelp_"


def table_prefix() -> str:
    """The table prefix of the app being migrated; revision scripts call it."""
    try:
        return get_state(current_app).extension.table_prefix
    except RuntimeError:
        # No app, or an app without Flask-LiveHelp: the default names.
        return DEFAULT_PREFIX


def version_table(prefix: str) -> str:
    return f"{prefix}alembic_version"


def alembic_config(app: Flask) -> Config:
    """An Alembic configuration for our tables in ``app``'s database."""
    config = Config()
    config.set_main_option("script_location", str(DIRECTORY))
    config.set_section_option("post_write_hooks", "hooks", "livehelp_prefix")
    config.set_section_option(
        "post_write_hooks", "livehelp_prefix.type", "livehelp_prefix"
    )
    config.attributes["app"] = app
    return config


def include_in(config: Config) -> Config:
    """Add our revisions to a host's Alembic configuration.

    For Flask-Migrate: ``Migrate(app, db).configure(include_in)``.
    """
    host = config.get_main_option("version_locations") or os.path.join(
        t.cast(str, config.get_main_option("script_location")), "versions"
    )
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", f"{host}{os.pathsep}{VERSIONS}")
    return config


def upgrade(app: Flask, revision: str = "heads") -> None:
    with app.app_context():
        _refuse_unversioned(app)
        command.upgrade(alembic_config(app), revision)


def downgrade(app: Flask, revision: str) -> None:
    with app.app_context():
        command.downgrade(alembic_config(app), revision)


def stamp(app: Flask, revision: str) -> None:
    """Record ``revision`` as applied without running it."""
    with app.app_context():
        command.stamp(alembic_config(app), revision)


def current_revision(app: Flask) -> str | None:
    """The applied revision, or ``None`` for a database without one."""
    from alembic.migration import MigrationContext

    with app.app_context():
        options = configure_options(app)
        with options["engine"].connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": options["version_table"]}
            )
            return context.get_current_revision()


def make_revision(app: Flask, message: str) -> Path:
    """Write the next revision script: what the models have and the database lacks."""
    config = alembic_config(app)
    heads = ScriptDirectory.from_config(config).get_heads()
    number = len(list(ScriptDirectory.from_config(config).walk_revisions())) + 1
    with app.app_context():
        script = command.revision(
            config,
            message=message,
            autogenerate=True,
            rev_id=f"{number:04d}",
            head=heads[0] if heads else "base",
            # The first revision starts our branch; later ones inherit it.
            branch_label=None if heads else BRANCH,
        )
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


class UnversionedDatabase(RuntimeError):
    """Our tables exist, but no revision was recorded for them."""


def _refuse_unversioned(app: Flask) -> None:
    options = configure_options(app)
    inspector = sa.inspect(options["engine"])
    names = set(inspector.get_table_names())
    prefix = options["version_table"].removesuffix("alembic_version")
    if options["version_table"] not in names and f"{prefix}operator" in names:
        raise UnversionedDatabase(
            "The Flask-LiveHelp tables exist but carry no revision (they were"
            " made by db.create_all() or 'flask livehelp init-db'). Record"
            " which schema they have with 'flask livehelp db-stamp REVISION'"
            " (0001 for Flask-LiveHelp 0.1's first schema, 'heads' if they"
            " match this version), then upgrade."
        )


def configure_options(app: Flask) -> dict[str, t.Any]:
    """What ``env.py`` gives ``context.configure``, plus the ``engine``."""
    state = get_state(app)
    prefix = state.extension.table_prefix
    metadata = state.models.operator.__table__.metadata

    def ours(name: str | None, kind: str, parent_names: t.Any) -> bool:
        # Our tables only: never compare or change the host's.
        return kind != "table" or bool(name and name.startswith(prefix))

    return {
        "engine": state.db.engines[state.extension.bind_key],
        "target_metadata": metadata,
        "version_table": version_table(prefix),
        "include_name": ours,
        # SQLite alters a table by copying it.
        "render_as_batch": True,
        "compare_type": True,
        "render_item": _render_item,
    }


def _render_item(
    kind: str, item: t.Any, autogen_context: t.Any
) -> str | t.Literal[False]:
    # A revision must not import our models, which change: a type of ours
    # is written as the plain SQLAlchemy type it stores.
    if kind == "type" and isinstance(item, sa.types.TypeDecorator):
        return f"sa.{item.impl_instance!r}"
    return False


#: A quoted name that holds the default prefix, as Alembic renders it.
_PREFIXED_LITERAL = re.compile(r"'([^'\n]*?)" + DEFAULT_PREFIX + r"([^'\n]*)'")


@write_hooks.register("livehelp_prefix")
def use_prefix_variable(filename: str, options: dict[str, t.Any]) -> None:
    """Write our table names as ``f'{P}name'``, so any prefix migrates."""
    path = Path(filename)
    text = path.read_text()
    path.write_text(_PREFIXED_LITERAL.sub(r"f'\1{P}\2'", text))
    # Alembic's layout is not ours; tidy it where ruff is installed.
    here = os.path.dirname(sys.executable)
    ruff = shutil.which("ruff") or shutil.which("ruff", path=here)
    if ruff:
        subprocess.run([ruff, "check", "--fix", "--quiet", str(path)], check=False)
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False)
