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

import collections.abc as c
import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import sqlalchemy as sa
from alembic import __version__ as alembic_version
from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations.ops import MigrationScript
from alembic.script import ScriptDirectory
from alembic.script import write_hooks
from flask import current_app
from flask import Flask
from flask import has_app_context

from ..state import get_state

DIRECTORY = Path(__file__).parent
#: Where our revision scripts are; give it to a host's ``version_locations``.
VERSIONS = DIRECTORY / "versions"
#: The Alembic branch label of our revisions.
BRANCH = "livehelp"
DEFAULT_PREFIX = "livehelp_"
#: The installed Alembic's version, as numbers.
ALEMBIC = tuple(int(part) for part in alembic_version.split(".")[:2])


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

    For Flask-Migrate: ``Migrate(app, db).configure(include_in)``. Our
    revisions are the branch :data:`BRANCH` beside the host's own; ``flask db
    upgrade heads`` applies both. The host's ``flask db migrate`` then leaves
    our tables to our revisions, and writes its own revisions into its own
    folder, after its own head (never after ours).
    """
    locations = config.get_main_option("version_locations")
    host = locations or os.path.join(
        t.cast(str, config.get_main_option("script_location")), "versions"
    )
    if str(VERSIONS) not in host:
        # Alembic 1.16 splits on path_separator; older ones read another name.
        separator = "path_separator" if ALEMBIC >= (1, 16) else "version_path_separator"
        config.set_main_option(separator, "os")
        config.set_main_option("version_locations", f"{host}{os.pathsep}{VERSIONS}")
        # Also "flask db revision" runs env.py then, so the host's revision
        # goes where _after_host_head puts it.
        config.set_main_option("revision_environment", "true")
    migrate = current_app.extensions.get("migrate") if has_app_context() else None
    if migrate is not None:
        _join(migrate.configure_args, os.path.abspath(host.split(os.pathsep)[0]))
    return config


# ``options``: Flask-Migrate's configure_args, the host's callbacks in it.
def _join(options: dict[str, t.Any], host_versions: str) -> None:
    """Flask-Migrate's ``context.configure`` options, made to know our branch."""
    if getattr(options.get("process_revision_directives"), "livehelp", False):
        return
    prefix = get_state(current_app).extension.table_prefix
    host_include = options.get("include_name")
    host_include_object = options.get("include_object")
    host_render = options.get("render_item")
    host_directives = options.get("process_revision_directives")

    def include_name(
        name: str | None, kind: str, parent_names: c.Mapping[str, str | None]
    ) -> bool:
        # Our revisions make our tables; the host's autogenerate leaves them.
        if kind == "table" and name and name.startswith(prefix):
            return False
        return host_include(name, kind, parent_names) if host_include else True

    # Alembic passes schema items of several kinds.
    def include_object(
        item: t.Any, name: str | None, kind: str, reflected: bool, other: t.Any
    ) -> bool:
        table = item if kind == "table" else getattr(item, "table", None)
        if table is not None and table.name.startswith(prefix):
            return False
        if host_include_object is None:
            return True
        return bool(host_include_object(item, name, kind, reflected, other))

    def render_item(
        kind: str, item: object, context: AutogenContext
    ) -> str | t.Literal[False]:
        ours = _render_item(kind, item, context)
        if ours is False and host_render is not None:
            return t.cast("str | t.Literal[False]", host_render(kind, item, context))
        return ours

    # Alembic's process_revision_directives, as the host may have it.
    def place(context: t.Any, revision: t.Any, directives: list[t.Any]) -> None:
        if host_directives is not None:
            host_directives(context, revision, directives)
        elif getattr(context.config.cmd_opts, "autogenerate", False):
            # What Flask-Migrate's own hook does: no empty revisions.
            if directives and directives[0].upgrade_ops.is_empty():
                directives[:] = []
        for script in directives:
            _after_host_head(context.script, script, host_versions)

    place.livehelp = True  # type: ignore[attr-defined]
    options.update(
        include_name=include_name,
        include_object=include_object,
        render_item=render_item,
        process_revision_directives=place,
    )


def _after_host_head(
    scripts: ScriptDirectory, script: MigrationScript, host_versions: str
) -> None:
    """Base a host's new revision on the host's own head, in its own folder.

    Alembic would put it after the only head it finds (ours, for a host
    without revisions) and into that head's folder: our package.
    """
    heads = [
        head
        for head in scripts.get_revisions("heads")
        if head is not None and not Path(head.path).is_relative_to(VERSIONS)
    ]
    if script.head in (None, "head", "heads"):
        if len(heads) == 1:
            script.head = heads[0].revision
        elif not heads:
            script.head = "base"
    script.version_path = host_versions


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


# Keyword arguments of alembic's context.configure, each of its own type.
def configure_options(app: Flask) -> dict[str, t.Any]:
    """What ``env.py`` gives ``context.configure``, plus the ``engine``."""
    state = get_state(app)
    prefix = state.extension.table_prefix
    metadata = state.models.operator.__table__.metadata

    def ours(
        name: str | None, kind: str, parent_names: c.Mapping[str, str | None]
    ) -> bool:
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
    kind: str, item: object, autogen_context: AutogenContext
) -> str | t.Literal[False]:
    # A revision must not import our models, which change: a type of ours
    # is written as the plain SQLAlchemy type it stores.
    if kind == "type" and isinstance(item, sa.types.TypeDecorator):
        return f"sa.{item.impl_instance!r}"
    return False


#: A quoted name that holds the default prefix, as Alembic renders it.
_PREFIXED_LITERAL = re.compile(r"'([^'\n]*?)" + DEFAULT_PREFIX + r"([^'\n]*)'")


@write_hooks.register("livehelp_prefix")
def use_prefix_variable(filename: str, options: c.Mapping[str, object]) -> None:
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
