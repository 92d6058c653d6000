"""What an anonymous attacker tries: headers, sessions, input and limits."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from conftest import login
from flask_livehelp.views.responses import PUBLIC

STAFF_HEADERS = {
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def staff_urls(app: Flask) -> list[tuple[str, str, str]]:
    """Every staff route of ours, as (endpoint, method, URL) with made-up ids."""
    found = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("livehelp.") or rule.endpoint in PUBLIC:
            continue
        if getattr(rule, "websocket", False):
            continue
        values = {name: 1 for name in rule.arguments}
        method = "GET" if "GET" in (rule.methods or ()) else "POST"
        found.append((rule.endpoint, method, adapter.build(rule.endpoint, values)))
    return sorted(found)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "admin"])
def test_every_staff_route_may_not_be_framed_cached_or_inject_scripts(
    app: Flask, make_operator: t.Any, signed_in: bool
) -> None:
    client = app.test_client()
    if signed_in:
        admin = make_operator(role="admin")
        assert login(client, admin.email).status_code == 302
    urls = staff_urls(app)
    assert len(urls) > 30
    for endpoint, method, url in urls:
        response = client.open(url, method=method)
        for name, value in STAFF_HEADERS.items():
            assert response.headers.get(name) == value, (endpoint, name)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy, endpoint
        assert "'unsafe-inline'" not in policy, endpoint


def test_json_answers_are_not_sniffed(app: Flask) -> None:
    client = app.test_client()
    for path in ("/livehelp/widget/status", "/livehelp/widget/suggest?q=jakke"):
        response = client.get(path)
        assert response.mimetype == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
