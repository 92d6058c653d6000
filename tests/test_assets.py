"""The shipped front-end files are the built form of widget/src."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_build():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "widget_build", ROOT / "widget" / "build.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_static_files_are_built_from_the_current_sources() -> None:
    build = load_build()
    stale = [
        name
        for name in build.ASSETS
        if (build.TARGET / name).read_text(encoding="utf-8") != build.build(name)
    ]
    assert stale == [], "Run 'python widget/build.py' and commit the result."


def test_no_script_of_ours_posts_a_message_to_any_origin() -> None:
    """postMessage(..., "*") would hand the chat's words to any page that frames it."""
    build = load_build()
    for name in build.ASSETS:
        text = (build.TARGET / name).read_text(encoding="utf-8")
        assert '"*")' not in text and "'*')" not in text, name


def test_the_loader_every_shop_page_loads_stays_within_2_kb_gzipped() -> None:
    """The budget of docs/benchmarks.md: the loader is on every page of the shop."""
    build = load_build()
    loader = (build.TARGET / "loader.js").read_bytes()
    assert len(gzip.compress(loader, 9)) <= 2048
