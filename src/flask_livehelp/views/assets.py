"""Our static files, under names that change when they do."""

from __future__ import annotations

import hashlib
import os
from functools import cache

from flask import url_for

STATIC = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static", "livehelp")


@cache
def asset_version(name: str) -> str:
    """A short hash of a static file, so browsers may cache it for long."""
    with open(os.path.join(STATIC, name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:10]


def asset_url(name: str) -> str:
    return url_for(
        "livehelp.static", filename=f"livehelp/{name}", v=asset_version(name)
    )
