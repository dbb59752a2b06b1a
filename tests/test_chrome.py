"""The console's chrome with DEBUG off, as production runs: error pages with a way back, the
favicon, and the Content-Security-Policy on every kind of response."""

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns
from tests.test_every_page import MARKER, InvalidVariables
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory


def _boom(request):
    raise RuntimeError("a bug")


def _ok(request):
    return HttpResponse("ok")


# tests.test_chrome as a URLconf: the app's URLs and one view that fails.
urlpatterns = [path("boom/", _boom), path("ok/", _ok), *app_urlpatterns]


@pytest.fixture
def strict(settings):
    import copy

    recorder = InvalidVariables()
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["OPTIONS"]["string_if_invalid"] = recorder
    settings.TEMPLATES = templates
    return recorder


@pytest.fixture
def ws():
    return workspace_create(slug="acme", name="Acme Sales")


def member(ws, role, username="rita"):
    user = UserFactory(username=username)
    membership_add(workspace=ws, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def _csp(response) -> dict:
    header = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_debug_is_off_as_in_production():
    assert settings.DEBUG is False


@pytest.mark.django_db
def test_404_in_a_workspace_says_what_happened_and_leads_back_to_the_queue(ws, strict):
    client = member(ws, "reviewer")
    response = client.get("/w/acme/threads/999999/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "This page does not exist" in page and "/w/acme/threads/999999/" in page
    assert 'href="/w/acme/review/"' in page and "Back to the Acme Sales review queue" in page
    assert 'href="/"' in page
    assert MARKER not in page and strict.ours() == []
    assert "'self'" in _csp(response)["script-src"]


@pytest.mark.django_db
def test_404_signed_out_and_for_another_workspace_leads_home(ws, strict):
    response = Client().get("/no/such/page/")
    assert response.status_code == 404 and 'href="/"' in response.content.decode()
    workspace_create(slug="globex", name="Globex")
    other = member(ws, "reviewer").get("/w/globex/review/")  # not a member: 404, and no Globex link
    assert other.status_code == 404
    assert "Globex" not in other.content.decode() and "review queue" not in other.content.decode()
    assert strict.ours() == []


@pytest.mark.django_db
def test_403_explains_the_role_and_leads_back(ws, strict):
    from jobs.tests.factories import JobFactory

    with workspace_context(ws):
        job = JobFactory(workspace=ws, status="failed")
    response = member(ws, "viewer", "vic").post(f"/w/acme/jobs/{job.pk}/retry/")
    page = response.content.decode()
    assert response.status_code == 403
    assert "You are not allowed to do this" in page and "Viewers read only" in page
    assert 'href="/w/acme/review/"' in page and 'href="/accounts/login/"' in page
    assert strict.ours() == []
    assert "Content-Security-Policy" in response.headers


@pytest.mark.django_db
def test_csrf_failure_says_the_form_expired_and_offers_to_sign_in_again(ws, strict):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "rita", "password": "x"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "This form has expired" in page and "Nothing was saved" in page
    assert 'href="/accounts/login/"' in page and "Sign in again" in page
    assert "CSRF verification failed" not in page  # not Django's bare page
    assert MARKER not in page and strict.ours() == []
    assert "Content-Security-Policy" in response.headers


@pytest.mark.django_db
@pytest.mark.urls("tests.test_chrome")
def test_500_page_is_ours_and_sends_the_csp(ws):
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page and 'href="/"' in page
    assert "threadline.css" in page and "favicon.svg" in page
    assert "'self'" in _csp(response)["script-src"]


def test_500_page_renders_without_the_database_or_context_processors(strict):
    """No django_db mark: any query here raises, as it would with the database down."""
    from django.views.defaults import server_error

    response = server_error(RequestFactory().get("/boom/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    assert strict.ours() == []


@pytest.mark.django_db
def test_favicon_is_linked_from_every_layout_and_answers_at_favicon_ico(ws, client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg["Content-Type"].startswith("image/svg+xml")
    icon = 'rel="icon" href="/static/favicon.svg"'
    assert icon in client.get("/accounts/login/").content.decode()
    assert icon in member(ws, "reviewer").get("/w/acme/review/").content.decode()
    assert icon in client.get("/admin/login/").content.decode()
    assert icon in client.get("/no/such/page/").content.decode()


@pytest.mark.django_db
@pytest.mark.urls("tests.test_chrome")
def test_every_response_sends_the_csp_and_the_message_frame_keeps_its_stricter_one(ws, client):
    expected = {
        "script-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'self'"],
        "form-action": ["'self'"],
    }
    reviewer = member(ws, "reviewer")
    for response in (
        client.get("/accounts/login/"),
        client.get("/admin/login/"),
        client.get("/ok/"),  # a plain HttpResponse too, not only templates
        reviewer.get("/w/acme/review/"),
        reviewer.get("/w/acme/review/dashboard/"),
    ):
        csp = _csp(response)
        assert {key: csp.get(key) for key in expected} == expected, response.request["PATH_INFO"]
        assert "'unsafe-inline'" not in csp["style-src"]
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws)
        message = MessageFactory(workspace=ws, thread=thread, html="<p>Hello</p>")
    frame = reviewer.get(f"/w/acme/threads/messages/{message.pk}/html/")
    assert frame["Content-Security-Policy"].startswith("default-src 'none'")
    assert "script-src" not in frame["Content-Security-Policy"]


def test_no_template_has_inline_scripts_handlers_or_style_attributes():
    """What the CSP would block, searched in every template of ours."""
    import re

    pattern = re.compile(r"<script(?![^>]*\bsrc=)|\son[a-z]+\s*=|\sstyle\s*=|javascript:", re.I)
    roots = [settings.BASE_DIR / "templates"] + [
        settings.BASE_DIR / app / "templates" for app in settings.INSTALLED_APPS
    ]
    found = [
        f"{path.relative_to(settings.BASE_DIR)}:{n}: {line.strip()}"
        for root in roots
        if root.is_dir()
        for path in sorted(root.rglob("*.html"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
