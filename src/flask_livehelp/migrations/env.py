"""Alembic's environment for our own tables: the app's engine, our version table.

Only our tables (the app's table prefix) are compared and migrated; the
host's tables and its ``alembic_version`` are never touched.
"""

from __future__ import annotations

from alembic import context
from flask import current_app

from flask_livehelp.migrations import configure_options

options = configure_options(current_app)
engine = options.pop("engine")

if context.is_offline_mode():
    context.configure(url=engine.url, literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()
else:
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
