"""The review console in a real browser: Debian's Chromium, headless, against a live server."""

import re

import pytest

from deals.models import AssociationCandidate, ThreadLink
from deals.tests.factories import DealFactory
from extraction.models import FieldValue
from extraction.tests.factories import FieldValueFactory
from review.models import ReviewItem
from review.services import review_item_open
from tests.browser import requires_chromium
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long browser password"
TEXT = "Hi Sam,\nOur budget is $40,000 for this year, and the CFO signs off.\nThanks, Dana"


@pytest.fixture
def workspace():
    ws = workspace_create(slug="acme", name="Acme Sales")
    user = UserFactory(username="rita")
    user.set_password(PASSWORD)
    user.save()
    membership_add(workspace=ws, user=user, role="reviewer")
    return ws


def make_item(ws, subject, amount=40000, reason="low_confidence"):
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws, subject=subject)
        message = MessageFactory(workspace=ws, thread=thread, reply_text=TEXT, text=TEXT)
        start = TEXT.index("budget is $40,000")
        evidence = [{"message_id": message.pk, "start": start, "end": start + 17, "quote": "budget is $40,000"}]
        value = FieldValueFactory(
            workspace=ws,
            run__thread=thread,
            thread=thread,
            field_key="budget",
            field_value_json={"amount": amount, "currency": "USD"},
            evidence_json=evidence,
        )
        return ReviewItem.objects.create(
            workspace=ws,
            thread=thread,
            field_value=value,
            reason=reason,
            payload_json={
                "field": "budget",
                "proposed_value": {"amount": amount, "currency": "USD"},
                "confidence": 0.6,
                "evidence": evidence,
                "grounded": True,
                "other_values": [],
            },
        )


def log_in(page, live_server):
    page.goto(f"{live_server.url}/")  # not signed in: the login page
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/acme/review/$"))


def status_of(ws, item):
    with workspace_context(ws):
        item.refresh_from_db()
        return item.status, FieldValue.objects.filter(thread=item.thread).order_by("pk").values_list(
            "status", flat=True
        )[::1]


def test_log_in_and_walk_the_queue_by_keyboard(page, live_server, workspace):
    first, second = make_item(workspace, "First deal"), make_item(workspace, "Second deal")
    log_in(page, live_server)
    assert page.locator("tr[data-href]").count() == 2
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/items/{first.pk}/"))  # newest first: the second row is the older item
    assert page.locator("mark.evidence").inner_text() == "budget is $40,000"
    page.keyboard.press("k")
    page.wait_for_url(re.compile(rf"/items/{second.pk}/"))


def test_approve_by_keyboard_then_undo(page, live_server, workspace):
    older, newer = make_item(workspace, "Older"), make_item(workspace, "Newer")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/review/items/{newer.pk}/")
    page.keyboard.press("a")
    page.wait_for_url(re.compile(rf"/items/{older.pk}/"))  # the next item opens
    assert "Approved." in page.locator(".flash").inner_text()
    assert status_of(workspace, newer) == ("approved", ["verified"])
    page.keyboard.press("u")
    page.wait_for_url(re.compile(rf"/items/{newer.pk}/"))
    assert "Undone" in page.locator(".flash").inner_text()
    assert status_of(workspace, newer) == ("open", ["proposed"])


def test_edit_a_value_then_approve(page, live_server, workspace):
    item = make_item(workspace, "Edit me")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/review/items/{item.pk}/")
    page.keyboard.press("e")
    amount = page.locator("#edit-form input[name=amount]")
    assert amount.is_visible() and amount.evaluate("el => el === document.activeElement")
    amount.fill("not money")
    page.keyboard.press("Enter")
    assert "is not an amount" in page.locator("#edit-form .error").inner_text()
    page.locator("#edit-form input[name=amount]").fill("52,500")
    page.locator("#edit-form select[name=currency]").select_option("EUR")
    page.locator("#edit-form input[name=amount]").press("Enter")
    page.wait_for_url(re.compile(r"/w/acme/review/(\?.*)?$"))
    with workspace_context(workspace):
        verified = FieldValue.objects.get(thread=item.thread, status="verified")
    assert verified.field_value_json == {"amount": 52500.0, "currency": "EUR"}


def test_resolve_an_association_candidate_by_mouse(page, live_server, workspace):
    with workspace_context(workspace):
        thread = ThreadFactory(workspace=workspace, subject="Renewal for Acme West")
        MessageFactory(workspace=workspace, thread=thread, reply_text="Let's talk about the west renewal.")
        east, west = (
            DealFactory(workspace=workspace, title="Acme East expansion"),
            DealFactory(workspace=workspace, title="Acme West renewal"),
        )
        rows = [
            {"deal_id": east.pk, "score": 0.72, "signals": {"domain": 1.0, "title": 0.31}},
            {"deal_id": west.pk, "score": 0.70, "signals": {"domain": 1.0, "title": 0.88}},
        ]
        candidate = AssociationCandidate.objects.create(workspace=workspace, thread=thread, candidates_json=rows)
        titles = {east.pk: east.title, west.pk: west.title}
        item, _ = review_item_open(  # as deals support opens it
            workspace_id=workspace.pk,
            reason=ReviewItem.Reason.ASSOCIATION,
            subject=f"association:{candidate.pk}",
            thread_id=thread.pk,
            association_candidate_id=candidate.pk,
            payload={"candidates": [{**r, "title": titles[r["deal_id"]], "stage": "negotiation"} for r in rows]},
        )
    log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/review/items/{item.pk}/")
    assert page.locator(".candidate").count() == 2
    page.locator(".candidate", has_text="Acme West renewal").locator("input[type=radio]").check()
    page.get_by_role("button", name=re.compile("Link to selected deal")).click()
    page.wait_for_url(re.compile(r"/w/acme/review/"))
    with workspace_context(workspace):
        link = ThreadLink.objects.get(thread=thread)
        candidate.refresh_from_db()
    assert (link.deal_id, link.linked_by, candidate.decision) == (west.pk, "reviewer", "deal")


def test_dashboard_renders_its_charts(page, live_server, workspace):
    make_item(workspace, "One"), make_item(workspace, "Two", reason="conflict")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/review/dashboard/")
    assert page.locator("#open-total").inner_text() == "2"
    assert page.locator("svg[aria-label='Open items by reason'] rect.bar").count() == len(ReviewItem.Reason.choices)
