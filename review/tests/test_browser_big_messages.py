"""A huge message in Chromium: the thread page shows its first characters with a note, and the
review item page still highlights evidence that lies far beyond the cut."""

import re

import pytest

from review.tests.test_big_messages import evidence_item
from tests.browser import requires_chromium
from threads.services import message_ingest
from threads.tests.mail import mail
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long browser password"
LINE = "We are reviewing the proposal with the team and will come back to you.\n"
BUDGET = "Our budget is $40,000 for this year."
BODY = "Hi Sam,\n" + LINE * 40_000 + BUDGET + "\n" + LINE * 10_000 + "Thanks, Dana\n"


@pytest.fixture
def big_item(settings):
    settings.THREADLINE_BODY_DISPLAY_MAX_CHARS = 2000
    ws = workspace_create(slug="acme", name="Acme Sales")
    user = UserFactory(username="rita")
    user.set_password(PASSWORD)
    user.save()
    membership_add(workspace=ws, user=user, role="reviewer")
    result = message_ingest(workspace=ws, raw=mail("huge@x", body=BODY), source="test")
    item, reply, _ = evidence_item(ws, result.message_pk, result.thread_id, [BUDGET])
    return result.thread_id, item, len(reply)


def test_big_message_thread_page_and_evidence_beyond_the_cut(page, live_server, big_item):
    thread_id, item, length = big_item
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/acme/review/$"))

    response = page.goto(f"{live_server.url}/w/acme/threads/{thread_id}/")
    assert len(response.body()) < 20_000
    note = page.locator(".cut-note").first
    assert note.is_visible()
    assert f"showing the first 2,000 of {length:,} characters" in note.inner_text()
    assert page.locator("a.raw-download").first.is_visible()

    response = page.goto(f"{live_server.url}/w/acme/review/items/{item.pk}/")
    assert len(response.body()) < 30_000
    mark = page.locator("mark.evidence")
    assert mark.count() == 1 and mark.inner_text() == BUDGET
    mark.scroll_into_view_if_needed()
    assert mark.is_visible()
    box = mark.bounding_box()
    assert box["width"] > 50 and box["height"] > 5
    assert page.locator(".gap").first.is_visible()
