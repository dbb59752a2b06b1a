"""The admin in Chromium as a workspace admin (not staff, not a superuser) and as a reviewer."""

import re

import pytest

from tests.browser import requires_chromium
from workspaces.models import Policy
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long browser password"


@pytest.fixture
def workspace():
    ws = workspace_create(slug="acme", name="Acme Sales")
    for username, role in (("ada", "admin"), ("rita", "reviewer")):
        user = UserFactory(username=username)
        user.set_password(PASSWORD)
        user.save()
        assert not (user.is_staff or user.is_superuser)
        membership_add(workspace=ws, user=user, role=role)
    return ws


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/acme/review/$"))


def test_a_workspace_admin_reaches_the_policy_from_the_console_by_clicking(page, live_server, workspace):
    log_in(page, live_server, "ada")
    page.click("header nav >> text=Admin")
    page.wait_for_url(re.compile(r"/admin/$"))
    assert "permission to view or edit anything" not in page.content()

    page.click("#content-main >> a:text-is('Policies')")
    page.wait_for_url(re.compile(r"/admin/workspaces/policy/$"))
    page.click("#result_list tbody th a")  # the workspace's one policy
    page.wait_for_url(re.compile(r"/admin/workspaces/policy/\d+/change/$"))

    page.fill("#id_policy", '{"min_confidence": 1.7}')
    page.click("input[name=_save]")
    assert "min_confidence: must be between 0 and 1" in page.locator(".errorlist").inner_text()
    page.fill("#id_policy", '{"min_confidence": 0.65}')
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/admin/workspaces/policy/$"))
    assert "Policy validated and saved." in page.locator(".messagelist").inner_text()
    with workspace_context(workspace):
        assert Policy.objects.get(workspace=workspace).policy["min_confidence"] == 0.65

    page.click("#result_list tbody th a")
    page.click(".breadcrumbs >> text=Workspaces")  # was a 404 for workspace admins
    page.wait_for_url(re.compile(r"/admin/workspaces/$"))
    assert page.locator("#content h1").inner_text() == "Workspaces administration"
    for name in ("Memberships", "Policies", "Audit events", "Workspaces"):
        assert page.locator(f"#content-main th a:text-is('{name}')").count() == 1, name


def test_a_reviewer_sees_no_admin_link_and_is_sent_back_from_the_admin(page, live_server, workspace):
    log_in(page, live_server, "rita")
    assert page.locator("header nav >> text=Admin").count() == 0
    page.goto(f"{live_server.url}/admin/workspaces/policy/")
    page.wait_for_url(re.compile(r"/w/acme/review/$"))
    flash = page.locator(".flash").inner_text()
    assert "The admin is for workspace admins; your role in Acme Sales is reviewer" in flash
