"""Administration in the panel: operators, departments, settings, canned responses,
help articles and the audit log."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from conftest import login
from flask_livehelp import get_state
from flask_livehelp import Refused
from staff import csrf_of
from staff import department


@pytest.fixture
def admin(make_operator: t.Any) -> t.Any:
    return make_operator(name="Adam", email="adam@example.com", role="admin")


@pytest.fixture
def client(app: Flask, admin: t.Any) -> t.Any:
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return client


def post(client: t.Any, path: str, **data: t.Any) -> t.Any:
    return client.post(
        path, data={"_lh_csrf": csrf_of(client, "/livehelp/admin/"), **data}
    )


def operator_form(**changes: t.Any) -> dict[str, t.Any]:
    form = {
        "name": "Sofie",
        "email": "sofie@example.com",
        "password": "sofies secret",
        "role": "operator",
        "max_chats": "4",
        "receives_offline": "1",
        "locale": "da",
        "timezone": "Europe/Copenhagen",
        "forward_addresses": "sofie@home.example\nbutik@example.com",
    }
    form.update(changes)
    return form


def test_an_admin_creates_an_operator_who_then_signs_in(
    app: Flask, client: t.Any
) -> None:
    sales = department(app, "Salg")
    created = post(
        client,
        "/livehelp/admin/operators/new",
        departments=str(sales),
        **operator_form(),
    )
    assert created.status_code == 302
    with app.app_context():
        sofie = get_state().operators.find_by_email("sofie@example.com")
        assert (sofie.role, sofie.max_chats, sofie.receives_offline) == (
            "operator",
            4,
            True,
        )
        assert (sofie.locale, sofie.timezone) == ("da", "Europe/Copenhagen")
        assert sofie.forward_addresses == ["sofie@home.example", "butik@example.com"]
        assert [d.name for d in sofie.departments] == ["Salg"]
    assert (
        login(app.test_client(), "sofie@example.com", "sofies secret").status_code
        == 302
    )
    listing = client.get("/livehelp/admin/operators")
    assert "Sofie" in listing.text and "Salg" in listing.text


def test_a_refused_form_comes_back_with_what_was_typed_and_why(
    app: Flask, client: t.Any
) -> None:
    for changes, reason in (
        ({"email": "not an address"}, "This is not a valid e-mail address."),
        ({"password": "short"}, "at least 8 characters"),
        ({"max_chats": "99"}, "from 1 to 50"),
        ({"timezone": "Mars/Olympus"}, "Unknown time zone."),
        ({"forward_addresses": "a@b.example\nnope"}, "nope is not a valid e-mail"),
        ({"role": "king"}, "unknown value"),
    ):
        response = post(
            client, "/livehelp/admin/operators/new", **operator_form(**changes)
        )
        assert response.status_code == 400, changes
        assert reason in response.text
        assert 'value="Sofie"' in response.text
    with app.app_context():
        assert get_state().operators.find_by_email("sofie@example.com") is None
    post(client, "/livehelp/admin/operators/new", **operator_form())
    taken = post(client, "/livehelp/admin/operators/new", **operator_form())
    assert taken.status_code == 400
    assert "An operator with this e-mail exists." in taken.text


def test_once_the_shop_has_departments_an_operator_needs_one(
    app: Flask, client: t.Any, operator: t.Any
) -> None:
    # In no department they would serve none of the shop's chats.
    free = post(client, "/livehelp/admin/operators/new", **operator_form())
    assert free.status_code == 302
    sales = department(app, "Salg")
    for path, email in (
        ("/livehelp/admin/operators/new", "sofie2@example.com"),
        (f"/livehelp/admin/operators/{operator.id}", operator.email),
    ):
        refused = post(client, path, **operator_form(email=email))
        assert refused.status_code == 400
        assert "Choose at least one department." in refused.text
    chosen = post(
        client,
        f"/livehelp/admin/operators/{operator.id}",
        **operator_form(email=operator.email, departments=str(sales)),
    )
    assert chosen.status_code == 302


def test_editing_an_operator_and_the_audit_log(
    app: Flask, client: t.Any, operator: t.Any
) -> None:
    support = department(app, "Kundeservice")
    response = post(
        client,
        f"/livehelp/admin/operators/{operator.id}",
        **operator_form(
            name="Mette Jensen",
            email=operator.email,
            role="manager",
            max_chats="2",
            receives_offline="",
            departments=str(support),
        ),
    )
    assert response.status_code == 302
    with app.app_context():
        mette = get_state().operators.get(operator.id)
        assert (mette.name, mette.role, mette.max_chats) == (
            "Mette Jensen",
            "manager",
            2,
        )
        assert [d.id for d in mette.departments] == [support]
    log = client.get("/livehelp/admin/audit")
    assert "operator-changed" in log.text and "Adam" in log.text
    # The role changed, so Mette's open sessions start again with the new one.
    assert login(app.test_client(), operator.email).status_code == 302


def test_reset_password_and_deactivate_from_the_operators_page(
    app: Flask, client: t.Any, operator: t.Any
) -> None:
    theirs = app.test_client()
    login(theirs, operator.email)
    reset = post(
        client,
        f"/livehelp/admin/operators/{operator.id}/password",
        password="brand new one",
    )
    assert reset.status_code == 302
    assert theirs.get("/livehelp/panel/").status_code == 302
    assert login(app.test_client(), operator.email, "brand new one").status_code == 302
    post(client, f"/livehelp/admin/operators/{operator.id}/deactivate")
    assert login(app.test_client(), operator.email, "brand new one").status_code == 401
    post(client, f"/livehelp/admin/operators/{operator.id}/activate")
    assert login(app.test_client(), operator.email, "brand new one").status_code == 302
    page = client.get(f"/livehelp/admin/operators/{operator.id}")
    assert "Deactivate" in page.text


def test_departments(app: Flask, client: t.Any) -> None:
    created = post(
        client,
        "/livehelp/admin/departments",
        name="Retur",
        email="retur@example.com",
        is_active="1",
    )
    assert created.status_code == 302
    twice = post(client, "/livehelp/admin/departments", name="Retur", is_active="1")
    assert twice.status_code == 400
    assert "A department with this name exists." in twice.text
    with app.app_context():
        (retur,) = get_state().operators.departments()
        assert retur.email == "retur@example.com"
    post(
        client,
        f"/livehelp/admin/departments/{retur.id}",
        name="Returneringer",
        email="",
    )
    with app.app_context():
        (renamed,) = get_state().operators.departments()
        assert (renamed.name, renamed.email, renamed.is_active) == (
            "Returneringer",
            None,
            False,
        )


def test_widget_settings_and_texts_per_language(app: Flask, client: t.Any) -> None:
    form = {
        "color": "#aa3300",
        "position": "left",
        "ask_name": "required",
        "ask_email": "hidden",
        "text_offline": "Vi er her ikke lige nu - skriv til os",
        "text_title": "",
    }
    bad = post(client, "/livehelp/admin/widget?lang=da", **{**form, "color": "red"})
    assert bad.status_code == 400
    assert "#rrggbb" in bad.text
    saved = post(client, "/livehelp/admin/widget?lang=da", **form)
    assert saved.status_code == 302
    with app.test_request_context():
        settings = get_state().settings
        # Colour and position are the Danish pages' own, as the texts are.
        assert settings.get("WIDGET_COLOR", "da") == "#aa3300"
        assert settings.get("WIDGET_POSITION", "da") == "left"
        assert settings.get("WIDGET_COLOR", "en") == "#1d6b3a"
        assert settings.get("WIDGET_POSITION", "en") == "right"
        assert settings.get("WIDGET_ASK_NAME") == "required"
        assert settings.get("WIDGET_TEXTS", "da") == {
            "offline": "Vi er her ikke lige nu - skriv til os"
        }
        from flask_livehelp.views.widget import widget_texts

        assert widget_texts("da")["offline"] == "Vi er her ikke lige nu - skriv til os"
        assert widget_texts("en")["offline"] == "Offline - send a message"
    page = client.get("/livehelp/admin/widget?lang=da")
    assert "Vi er her ikke lige nu - skriv til os" in page.text
    assert client.get("/livehelp/admin/widget?lang=xx").status_code == 400


def test_mailbox_time_outs_and_retention(app: Flask, client: t.Any) -> None:
    form = {
        "OFFLINE_MAILBOX": "butik@example.com",
        "QUEUE_TIMEOUT_SECONDS": "300",
        "IDLE_SECONDS": "60",
        "INACTIVE_CLOSE_SECONDS": "0",
        "REQUIRE_TAG": "1",
        "HISTORY_RETENTION_DAYS": "365",
    }
    assert post(client, "/livehelp/admin/settings", **form).status_code == 302
    with app.app_context():
        settings = get_state().settings
        assert settings.get("OFFLINE_MAILBOX") == "butik@example.com"
        assert settings.get("QUEUE_TIMEOUT_SECONDS") == 300
        assert settings.get("INACTIVE_CLOSE_SECONDS") == 0
        assert settings.get("REQUIRE_TAG") is True
        assert settings.get("AUTO_ASSIGN") is False
        assert settings.get("HISTORY_RETENTION_DAYS") == 365
    for key, value in (
        ("OFFLINE_MAILBOX", "not-an-address"),
        ("QUEUE_TIMEOUT_SECONDS", "-5"),
        ("HISTORY_RETENTION_DAYS", "0"),
    ):
        refused = post(client, "/livehelp/admin/settings", **{**form, key: value})
        assert refused.status_code == 400, key
    kept = post(
        client, "/livehelp/admin/settings", **{**form, "HISTORY_RETENTION_DAYS": ""}
    )
    assert kept.status_code == 302
    with app.app_context():
        assert get_state().settings.get("HISTORY_RETENTION_DAYS") is None


def test_open_panels_hear_the_settings_they_go_by_at_once(
    app: Flask, client: t.Any, make_operator: t.Any, operator_socket: t.Any
) -> None:
    staff = operator_socket(make_operator(name="Mette"))
    form = {
        "QUEUE_TIMEOUT_SECONDS": "300",
        "IDLE_SECONDS": "45",
        "INACTIVE_CLOSE_SECONDS": "1800",
        "REQUIRE_TAG": "1",
    }
    assert post(client, "/livehelp/admin/settings", **form).status_code == 302
    staff.expect(
        "settings",
        settings={"idle_seconds": 45, "require_tag": True, "queue_timeout": 300},
    )
    # What the panel does not go by is no news to it.
    post(client, "/livehelp/admin/settings", **{**form, "INACTIVE_CLOSE_SECONDS": "60"})
    assert [f for f in staff.quiet() if f["type"] == "settings"] == []


def test_managers_keep_the_canned_responses(app: Flask, make_operator: t.Any) -> None:
    manager = make_operator(name="Lone", role="manager")
    client = app.test_client()
    login(client, manager.email)
    for name, lang, body in (
        ("generic_OneMoment", "", "One moment, please."),
        ("generic_OneMoment", "da", "Et øjeblik, tak."),
        ("generic_anythingElse", "", "Anything else, {visitor_name}?"),
    ):
        response = post(
            client, "/livehelp/admin/canned", name=name, lang=lang, body=body
        )
        assert response.status_code == 302
    twice = post(
        client, "/livehelp/admin/canned", name="generic_OneMoment", lang="da", body="x"
    )
    assert twice.status_code == 400
    assert "exists" in twice.text
    bad = post(client, "/livehelp/admin/canned", name="no spaces", lang="", body="x")
    assert bad.status_code == 400
    with app.app_context():
        knowledge = get_state().knowledge
        danish = {r.name: r.body for r in knowledge.canned_for("da")}
        assert danish == {
            "generic_OneMoment": "Et øjeblik, tak.",
            "generic_anythingElse": "Anything else, {visitor_name}?",
        }
        english = {r.name: r.body for r in knowledge.canned_for("en")}
        assert english["generic_OneMoment"] == "One moment, please."
        doomed = next(r.id for r in knowledge.canned_responses() if r.lang == "da")
    assert post(client, f"/livehelp/admin/canned/{doomed}/delete").status_code == 302
    with app.app_context():
        assert len(get_state().knowledge.canned_responses()) == 2
    # The rest of the administration is for admins.
    assert client.get("/livehelp/admin/operators").status_code == 403
    assert client.get("/livehelp/admin/articles").status_code == 403


def test_help_articles_suggested_by_the_words_of_a_question(
    app: Flask, client: t.Any
) -> None:
    for title, url, keywords, lang in (
        ("Returnering og bytte", "/hjaelp/retur", "retur bytte pakke", "da"),
        ("Levering og fragt", "https://shop.example/levering", "levering fragt", "da"),
        ("Returns and exchanges", "/help/returns", "return exchange", "en"),
    ):
        response = post(
            client,
            "/livehelp/admin/articles",
            title=title,
            url=url,
            keywords=keywords,
            lang=lang,
            body=f"Alt om {title.lower()}.",
            is_active="1",
        )
        assert response.status_code == 302
    evil = post(
        client,
        "/livehelp/admin/articles",
        title="Klik her",
        url="javascript:alert(1)",
        lang="",
        keywords="",
        body="",
        is_active="1",
    )
    assert evil.status_code == 400
    with app.app_context():
        knowledge = get_state().knowledge
        found = knowledge.suggest("Hvordan kan jeg bytte min jakke?", "da")
        assert [s["title"] for s in found] == ["Returnering og bytte"]
        assert found[0]["url"] == "/hjaelp/retur"
        assert knowledge.suggest("When is my parcel delivered?", "da") == []
        assert [s["title"] for s in knowledge.suggest("exchange please", "en")] == [
            "Returns and exchanges"
        ]
        assert knowledge.suggest("", "da") == []


def test_the_host_may_answer_suggestions_from_its_own_help_centre(
    app: Flask, livehelp: t.Any
) -> None:
    asked = []

    @livehelp.help_article_search
    def search(question: str, lang: str, limit: int) -> list[dict[str, t.Any]]:
        asked.append((question, lang, limit))
        return [
            {
                "title": "Størrelsesguide",
                "url": "https://shop.example/str",
                "body": "Mål dig selv " * 40,
            },
            {"title": "Bad link", "url": "javascript:alert(1)"},
        ]

    with app.app_context():
        found = get_state().knowledge.suggest("Hvilken størrelse?", "da", limit=2)
    assert asked == [("Hvilken størrelse?", "da", 2)]
    assert [s["title"] for s in found] == ["Størrelsesguide"]
    assert len(found[0]["excerpt"]) <= 160

    @livehelp.help_article_search
    def broken(question: str, lang: str, limit: int) -> list[dict[str, t.Any]]:
        raise ConnectionError("the help centre is down")

    with app.app_context():
        assert get_state().knowledge.suggest("Hvilken størrelse?", "da") == []


def test_erasing_a_customer_by_e_mail(app: Flask, client: t.Any, admin: t.Any) -> None:
    from staff import chat

    first = chat(app, operator=admin, email="karen@example.com", name="Karen")
    second = chat(app, operator=admin, email="Karen@Example.com", name="Karen K.")
    other = chat(app, operator=admin, email="ole@example.com", name="Ole")
    response = post(client, "/livehelp/admin/erase", email="karen@example.com")
    assert response.status_code == 302
    assert "Chats with personal data erased: 2." in client.get(response.location).text
    with app.app_context():
        session, model = get_state().db.session, get_state().models.conversation
        assert session.get(model, first).visitor_email is None
        assert session.get(model, second).visitor_name is None
        assert session.get(model, other).visitor_name == "Ole"


def test_services_refuse_bad_values_without_http(app: Flask, admin: t.Any) -> None:
    with app.app_context():
        knowledge = get_state().knowledge
        with pytest.raises(Refused, match="too long"):
            knowledge.save_canned(None, name="x", lang="", body="x" * 5000, by=None)
        with pytest.raises(Refused, match="Unknown language"):
            knowledge.save_canned(None, name="x", lang="<script>", body="x", by=None)


def test_admins_are_told_when_mail_cannot_go_out(app: Flask, client: t.Any) -> None:
    assert "Mail cannot go out" not in client.get("/livehelp/admin/").text
    app.extensions["mail"].default_sender = None
    page = client.get("/livehelp/admin/").text
    assert "Mail cannot go out" in page and "no sender address is set" in page
    del app.extensions["mail"]
    assert "the app has no Flask-Mail" in client.get("/livehelp/admin/").text
