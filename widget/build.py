"""Build the widget and panel assets into the package: ``python widget/build.py``.

The sources in ``widget/src`` are plain JavaScript and CSS that browsers run
as they are; the build only minifies them into
``src/flask_livehelp/static/livehelp`` (committed, so installing needs no
build step). ``--check`` fails when the committed files are out of date, as a
test does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import rcssmin
import rjsmin

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "src"
TARGET = ROOT.parent / "src" / "flask_livehelp" / "static" / "livehelp"
ASSETS = ("loader.js", "chat.js", "chat.css", "panel.js", "panel.css")


def build(name: str) -> str:
    """The minified text of one asset."""
    text = (SOURCE / name).read_text(encoding="utf-8")
    if name.endswith(".js"):
        return rjsmin.jsmin(text, keep_bang_comments=False).strip() + "\n"
    return rcssmin.cssmin(text).strip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        built = build(name)
        path = TARGET / name
        if path.exists() and path.read_text(encoding="utf-8") == built:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(built, encoding="utf-8")
    if args.check and stale:
        print("Out of date, run 'python widget/build.py':", ", ".join(stale))
        return 1
    print("Built:" if stale else "Up to date.", ", ".join(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
