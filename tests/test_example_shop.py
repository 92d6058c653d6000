"""The example shop works, and carries the widget the documented way."""

from __future__ import annotations

import gc
import runpy

import pytest
from flask import Flask

from servers import GUNICORN_SETTINGS


@pytest.mark.parametrize("lang", ["en", "da"])
def test_every_shop_page_answers_with_the_widget_tag(shop: Flask, lang: str) -> None:
    client = shop.test_client()
    for path in ("/", "/product/regnjakke-blaa", "/cart", "/login"):
        page = client.get(f"{path}?lang={lang}")
        assert page.status_code == 200, path
        assert '<script src="/livehelp/static/livehelp/loader.js?v=' in page.text
        assert f"&#34;lang&#34;:&#34;{lang}&#34;" in page.text
    assert "Regnjakke, blå" in client.get("/?lang=da").text


def test_the_shop_login_and_the_panel_login_are_separate(shop: Flask) -> None:
    client = shop.test_client()
    assert client.get("/livehelp/panel/").status_code == 302
    login_page = client.get("/livehelp/panel/login")
    # The host's CSRFProtect covers our forms too; we render its token as well.
    assert 'name="csrf_token"' in login_page.text
    assert 'name="_lh_csrf"' in login_page.text


def test_the_shop_reads_its_mail_server_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from example_shop import create_app

    monkeypatch.setenv("SHOP_MAIL_SERVER", "smtp.example.com")
    monkeypatch.setenv("SHOP_MAIL_PORT", "2525")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert (app.config["MAIL_SERVER"], app.config["MAIL_PORT"]) == (
        "smtp.example.com",
        2525,
    )
    assert app.extensions["mail"].server == "smtp.example.com"


def test_the_gunicorn_settings_leave_what_was_loaded_out_of_full_collections() -> None:
    """What a full collection walks, and holds the worker for, after the hook."""
    hook = runpy.run_path(str(GUNICORN_SETTINGS))["post_worker_init"]
    walked_before = len(gc.get_objects())
    try:
        hook(None)
        walked_after = len(gc.get_objects())
        assert gc.get_freeze_count() >= walked_before / 2
    finally:
        gc.unfreeze()
    assert walked_after < walked_before / 10
