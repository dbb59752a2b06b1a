"""The review console's issue-13 fixes in headless Chromium, as a reviewer who is not staff:
the edit form's visibility, a refused edit, edited values, skip, u on a decided item, bulk
decisions with one undo, and the dashboard's line per reviewer. Each failed on the code before."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from review.models import ReviewItem
from review.tests.test_browser import PASSWORD, log_in, make_item, status_of
from tests.browser import requires_chromium
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workspace():
    """Acme, with rita: a reviewer, not staff (as review/tests/test_browser.py signs in)."""
    ws = workspace_create(slug="acme", name="Acme Sales")
    user = UserFactory(username="rita")
    user.set_password(PASSWORD)
    user.save()
    membership_add(workspace=ws, user=user, role="reviewer")
    assert not (user.is_staff or user.is_superuser)
    return ws


def item_url(live_server, item, query=""):
    return f"{live_server.url}/w/acme/review/items/{item.pk}/{query}"


def test_the_edit_form_is_hidden_until_e_and_esc_hides_it_again(page, live_server, workspace):
    item = make_item(workspace, "Edit me")
    log_in(page, live_server)
    page.goto(item_url(live_server, item))
    form = page.locator("#edit-form")
    assert not form.is_visible()  # was always shown: form.edit { display: flex } beat [hidden]
    page.keyboard.press("e")
    assert form.is_visible()
    assert page.locator("#edit-form input[name=amount]").evaluate("el => el === document.activeElement")
    page.keyboard.press("Escape")
    assert not form.is_visible()
    page.keyboard.press("e")
    assert form.is_visible()


def test_a_refused_edit_stays_on_the_item_keeps_what_was_typed_and_says_why_by_the_field(page, live_server, workspace):
    item = make_item(workspace, "Edit me")
    log_in(page, live_server)
    page.goto(item_url(live_server, item, "?reason=low_confidence"))
    page.keyboard.press("e")
    page.locator("#edit-form input[name=amount]").fill("sixty grand")
    page.locator("#edit-form select[name=currency]").select_option("EUR")
    with page.expect_navigation():
        page.locator("#edit-form input[name=amount]").press("Enter")
    # Back on the item's own URL (not /decide/), filters kept, the form open with what was typed.
    assert re.search(rf"/w/acme/review/items/{item.pk}/\?reason=low_confidence#edit-form$", page.url)
    assert page.locator("#edit-form").is_visible()
    assert page.locator("#edit-form input[name=amount]").input_value() == "sixty grand"
    assert page.locator("#edit-form select[name=currency]").input_value() == "EUR"
    error = page.locator("#error-amount")
    assert error.inner_text() == "amount: 'sixty grand' is not an amount"
    assert page.locator("#edit-form input[name=amount]").get_attribute("aria-describedby") == "error-amount"
    # A reload is a GET: nothing is posted again, the item is still open.
    response = page.reload()
    assert response.request.method == "GET" and response.status == 200
    assert status_of(workspace, item)[0] == "open"
    page.keyboard.press("e")
    page.locator("#edit-form input[name=amount]").fill("60,000")
    with page.expect_navigation():
        page.locator("#edit-form input[name=amount]").press("Enter")
    assert status_of(workspace, item)[0] == "approved"


def test_an_edited_value_shows_on_its_page_and_in_the_approved_list(page, live_server, workspace):
    item = make_item(workspace, "Edit me")
    log_in(page, live_server)
    page.goto(item_url(live_server, item))
    page.keyboard.press("e")
    page.locator("#edit-form input[name=amount]").fill("52,500")
    page.locator("#edit-form select[name=currency]").select_option("EUR")
    with page.expect_navigation():
        page.locator("#edit-form input[name=amount]").press("Enter")
    page.goto(item_url(live_server, item))
    assert page.locator("#decided-value").inner_text() == "€52,500"
    assert page.locator(".decision .tag.edited").inner_text() == "edited"
    assert page.locator("#proposed-value").inner_text() == "$40,000"
    page.goto(f"{live_server.url}/w/acme/review/?status=approved")
    row = page.locator(f"tr[data-item='{item.pk}']")
    assert row.locator("a.decided").inner_text() == "€52,500"
    assert row.locator(".tag.edited").is_visible() and row.locator("del.was").inner_text() == "$40,000"


def row_items(page) -> list[int]:
    """The queue's rows, as the ids of the items they open, top first."""
    hrefs = page.locator("tr[data-href]").evaluate_all("rows => rows.map(r => r.dataset.href)")
    return [int(re.search(r"/items/(\d+)/", href).group(1)) for href in hrefs]


def test_skip_frees_the_item_moves_it_behind_the_others_and_says_so(page, live_server, workspace):
    older, newer = make_item(workspace, "Older"), make_item(workspace, "Newer")
    log_in(page, live_server)
    assert row_items(page) == [newer.pk, older.pk]
    page.goto(item_url(live_server, newer))
    page.keyboard.press("s")
    page.wait_for_url(re.compile(rf"/items/{older.pk}/"))
    assert "comes after the others in your queue" in page.locator(".flash").inner_text()
    with workspace_context(workspace):
        newer.refresh_from_db()
    assert (newer.status, newer.assigned_to_id, newer.claimed_until) == ("open", None, None)
    page.goto(f"{live_server.url}/w/acme/review/")
    assert row_items(page) == [older.pk, newer.pk]
    assert page.locator("tr[data-href]").nth(1).locator(".tag.skipped").inner_text() == "skipped"
    page.locator("select[name=status]").select_option("skipped")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=skipped"))
    assert row_items(page) == [newer.pk]


def test_u_on_a_decided_item_s_page_undoes_that_item(page, live_server, workspace):
    first, second = make_item(workspace, "First"), make_item(workspace, "Second")
    log_in(page, live_server)
    page.goto(item_url(live_server, first, "?status=all"))
    with page.expect_navigation():
        page.keyboard.press("a")  # first approved (the oldest: the queue comes next)
    page.goto(item_url(live_server, second, "?status=all"))
    with page.expect_navigation():
        page.keyboard.press("a")  # second approved; "all" goes on to the first, decided, with the flash for the second
    assert re.search(rf"/items/{first.pk}/\?status=all$", page.url)
    assert page.locator('.flash [data-key="u"]').count() == 1  # the flash offers to undo the second
    with page.expect_navigation():  # back to the same URL: wait for the new page, not the URL
        page.keyboard.press("u")  # on the first's page: undo the first (the flash's button came first before)
    assert re.search(rf"/items/{first.pk}/", page.url)
    assert "Undone" in page.locator(".flash").inner_text()
    assert status_of(workspace, first)[0] == "open" and status_of(workspace, second)[0] == "approved"


def test_u_after_the_undo_window_says_why_instead_of_nothing(page, live_server, workspace):
    item = make_item(workspace, "Long ago")
    log_in(page, live_server)
    page.goto(item_url(live_server, item))
    page.keyboard.press("a")
    page.wait_for_url(re.compile(r"/w/acme/review/$"))
    with workspace_context(workspace):
        ReviewItem.objects.filter(pk=item.pk).update(resolved_at=timezone.now() - timedelta(hours=2))
    page.goto(item_url(live_server, item))
    note = page.locator('[data-key-note="u"]')
    assert not note.is_visible()
    page.keyboard.press("u")
    assert note.is_visible() and "the undo window (600 s) has passed" in note.inner_text()


def test_bulk_approve_by_keyboard_with_one_undo_keeps_the_filters(page, live_server, workspace):
    items = [make_item(workspace, f"Deal {i}") for i in range(3)]
    conflict = make_item(workspace, "Conflict", reason="conflict")
    log_in(page, live_server)
    query = "?reason=low_confidence&sort=oldest"
    page.goto(f"{live_server.url}/w/acme/review/{query}")
    assert page.locator("tr[data-href]").count() == 3
    for key in ("j", "x", "j", "j", "x"):  # the oldest and the newest of the three
        page.keyboard.press(key)
    assert page.locator("#bulk-count").inner_text() == "2 selected:"
    with page.expect_navigation():
        page.keyboard.press("Shift+A")
    assert page.url.endswith(f"/w/acme/review/{query}")
    assert "Approved 2 items. Press u to undo them all." in page.locator(".flash").inner_text()
    assert [status_of(workspace, i)[0] for i in items] == ["approved", "open", "approved"]
    assert page.locator("tr[data-href]").count() == 1  # the open ones, as filtered
    with page.expect_navigation():
        page.keyboard.press("u")
    assert page.url.endswith(f"/w/acme/review/{query}")
    assert "Undone: 2 items open again." in page.locator(".flash").inner_text()
    assert [status_of(workspace, i)[0] for i in items] == ["open", "open", "open"]
    assert status_of(workspace, conflict)[0] == "open"
    # Reject by mouse: tick one box, press the button.
    page.locator(f"tr[data-item='{items[1].pk}'] input[type=checkbox]").check()
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("Reject selected")).click()
    assert status_of(workspace, items[1])[0] == "rejected"
    assert page.url.endswith(f"/w/acme/review/{query}")


def test_the_dashboard_counts_rejections_and_shows_each_reviewer_s_line(page, live_server, workspace):
    first, second = make_item(workspace, "First"), make_item(workspace, "Second")
    log_in(page, live_server)
    page.goto(item_url(live_server, second))
    page.keyboard.press("r")
    page.wait_for_url(re.compile(rf"/items/{first.pk}/"))
    page.keyboard.press("a")
    page.wait_for_url(re.compile(r"/w/acme/review/$"))
    page.goto(f"{live_server.url}/w/acme/review/items/{first.pk}/")
    with page.expect_navigation():
        page.keyboard.press("u")
    assert "Undone" in page.locator(".flash").inner_text()
    page.goto(f"{live_server.url}/w/acme/review/dashboard/")
    assert page.locator(".reviewer-count[data-reviewer='rita']").text_content() == "2"  # the rejection counts
    line = page.locator("#reviewer-figures tr[data-reviewer='rita']")
    assert line.locator(".decided").inner_text() == "2"
    assert line.locator(".undone").inner_text() == "1"
    assert re.fullmatch(r"\d+\.\d", line.locator(".median").inner_text())
