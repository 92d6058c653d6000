"""``bench.wsgi:app``: the benchmark shop, configured from the environment."""

from __future__ import annotations

from bench.app import from_environment

app = from_environment()
