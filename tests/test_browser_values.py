"""Values read like values, in headless Chromium against a live server (issue 13).

The deal page shows money and stage labels and no bar for a readiness never computed; its
evidence links land on the quote, marked; the thread page lists its values with their states
and links; the CRM page shows a pending write right after an approval; the edit form starts
from 60000, not 60000.0.
"""

import re

import pytest

from deals.services import deal_facts_update
from deals.tests.factories import DealFactory
from extraction.tests.factories import FieldValueFactory
from tests.browser import requires_chromium
from tests.test_values_pages import QUOTE, budget_thread
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long browser password"
# Enough text before the quote that landing on it needs a scroll.
TEXT = "Hi Sam,\n" + "A line of small talk.\n" * 60 + "Our budget is $60,000 \nfor this year.\nThanks, Dana"


@pytest.fixture
def workspace():
    ws = workspace_create(slug="acme", name="Acme Sales")
    user = UserFactory(username="rita")
    user.set_password(PASSWORD)
    user.save()
    membership_add(workspace=ws, user=user, role="reviewer")
    return ws


def log_in(page, live_server):
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/acme/review/$"))


def budget(ws, *, status="proposed"):
    """A thread linked to a HubSpot deal in stage qualifiedtobuy, its budget cited with a
    trailing space, far enough down its message that landing on it needs a scroll."""
    deal, thread, message, _, item = budget_thread(
        ws, status=status, text=TEXT, item_status="open" if status == "proposed" else "approved"
    )
    return deal, thread, message, item


def test_deal_page_shows_money_stage_label_and_no_bar_when_not_computed(page, live_server, workspace):
    deal, *_ = budget(workspace, status="verified")
    deal_facts_update(workspace_id=workspace.pk, deal_id=deal.pk)
    with workspace_context(workspace):
        DealFactory(workspace=workspace, title="Fresh deal")  # readiness never computed
    log_in(page, live_server)

    page.goto(f"{live_server.url}/w/acme/deals/{deal.pk}/")
    facts = page.locator("#readiness-bant table.keys").inner_text()
    assert "$60,000" in facts and "amount" not in facts and "60000" not in facts
    assert page.locator(".deal-stage").inner_text() == "Qualified to buy"
    assert "qualifiedtobuy" not in page.content()
    assert page.locator("blockquote.quote a.evidence-link").first.inner_text() == f"“{QUOTE}”"

    page.goto(f"{live_server.url}/w/acme/deals/")
    fresh = page.locator("tr", has_text="Fresh deal")
    assert fresh.locator("meter").count() == 0
    assert "not computed" in fresh.inner_text() and "0%" not in fresh.inner_text()
    assert "Qualified to buy" in fresh.inner_text()


def test_an_evidence_link_lands_on_its_quote_highlighted(page, live_server, workspace):
    deal, thread, message, _ = budget(workspace, status="verified")
    deal_facts_update(workspace_id=workspace.pk, deal_id=deal.pk)
    log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/deals/{deal.pk}/")

    page.locator("a.evidence-link").first.click()
    page.wait_for_url(re.compile(rf"/w/acme/threads/{thread.pk}/\?mark="))
    mark = page.locator("mark.evidence")
    assert mark.count() == 1
    assert mark.inner_text() == QUOTE  # no trailing space or line break inside the highlight
    assert page.evaluate("location.hash") == f"#{mark.get_attribute('id')}"
    assert mark.evaluate("el => el.matches(':target')")
    assert mark.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"  # :target is styled
    box = mark.bounding_box()
    assert box is not None and 0 <= box["y"] < page.viewport_size["height"]  # scrolled into view
    assert page.evaluate("window.scrollY") > 0


def test_thread_page_lists_values_with_states_and_links(page, live_server, workspace):
    deal, thread, _, item = budget(workspace)
    with workspace_context(workspace):
        FieldValueFactory(
            workspace=workspace,
            run__thread=thread,
            field_key="authority",
            field_value_json={"name": "Maria Lopez", "title": "CFO"},
            status="verified",
        )
        FieldValueFactory(
            workspace=workspace, run__thread=thread, field_key="need", field_value_json="forecast", status="rejected"
        )
    log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/threads/{thread.pk}/")

    rows = page.locator("#values tbody tr")
    assert rows.count() == 3
    budget_row = page.locator("#values tr[data-field=budget]")
    assert "$60,000" in budget_row.inner_text() and "waiting for review" in budget_row.inner_text()
    assert "approved by a reviewer" in page.locator("#values tr[data-field=authority]").inner_text()
    assert "rejected" in page.locator("#values tr[data-field=need]").inner_text()
    assert page.locator("#deal a.deal-link").inner_text() == "Northwind pilot"

    budget_row.locator("a.review-item-link").click()
    page.wait_for_url(re.compile(rf"/w/acme/review/items/{item.pk}/"))
    page.goto(f"{live_server.url}/w/acme/threads/{thread.pk}/")
    page.locator("#deal a.deal-link").click()
    page.wait_for_url(re.compile(rf"/w/acme/deals/{deal.pk}/$"))


def test_crm_page_shows_the_pending_write_right_after_an_approval(page, live_server, workspace):
    _, thread, _, item = budget(workspace)
    log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/review/items/{item.pk}/")
    page.keyboard.press("a")  # approve: the CRM write waits for the undo window
    page.wait_for_url(re.compile(r"/w/acme/review/(\?.*)?$"))  # the queue: no item is left
    assert "Approved." in page.locator(".flash").inner_text()

    page.goto(f"{live_server.url}/w/acme/crm/threads/{thread.pk}/")
    pending = page.locator("#pending-writes")
    assert pending.is_visible()
    text = pending.inner_text()
    assert "once the undo window has passed" in text and "Northwind budget" in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(in \d+", text)
    assert "update_deal" in text and "60,000" in text
    assert page.locator("#no-writes").inner_text() == "No CRM writes recorded yet."


def test_the_edit_form_starts_from_a_plain_amount(page, live_server, workspace):
    _, _, _, item = budget(workspace)
    log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/review/items/{item.pk}/")
    page.keyboard.press("e")
    assert page.locator("#edit-form input[name=amount]").input_value() == "60000"
