"""Make the next revision from the models: ``python -m flask_livehelp.migrations``.

It upgrades a scratch SQLite database to the latest revision and writes what
the models have beyond it into ``versions/``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from flask import Flask

from flask_livehelp import LiveHelp
from flask_livehelp.migrations import make_revision
from flask_livehelp.migrations import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m flask_livehelp.migrations")
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="write the next revision")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument(
        "--database",
        help="an empty database to compare in (default: a scratch SQLite file);"
        " PostgreSQL sees PostgreSQL-only parts such as expression indexes",
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        app = Flask("flask_livehelp_migrations")
        app.config["LIVEHELP_DATABASE_URI"] = arguments.database or (
            "sqlite:///" + str(Path(directory) / "scratch.sqlite3")
        )
        LiveHelp(app)
        upgrade(app)
        path = make_revision(app, arguments.message)
    print(f"Wrote {path}. Read it through before you commit it.")


if __name__ == "__main__":
    main()
