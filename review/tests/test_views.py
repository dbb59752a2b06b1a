"""The console's pages and actions through Django's test client (the browser tests drive Chromium)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from extraction.models import FieldValue
from extraction.tests.factories import FieldValueFactory
from review.models import ReviewItem
from review.tests.factories import ReviewItemFactory
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEXT = "Thanks Sam. Our budget is $40,000 for this year and the CFO signs off."


@pytest.fixture
def ws():
    return workspace_create(slug="acme", name="Acme Sales")


def member(ws, username, role):
    user = UserFactory(username=username)
    membership_add(workspace=ws, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client, user


def make_item(ws, reason="low_confidence", created_at=None, field="budget"):
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws, subject="Pricing for Acme")
        message = MessageFactory(workspace=ws, thread=thread, reply_text=TEXT, text=TEXT)
        start = TEXT.index("budget is $40,000")
        evidence = [{"message_id": message.pk, "start": start, "end": start + 17, "quote": "budget is $40,000"}]
        value = FieldValueFactory(
            workspace=ws, run__thread=thread, thread=thread, field_key=field, evidence_json=evidence
        )
        item = ReviewItemFactory(
            workspace=ws,
            thread=thread,
            field_value=value,
            reason=reason,
            payload_json={
                "field": field,
                "proposed_value": {"amount": 40000, "currency": "USD"},
                "confidence": 0.62,
                "evidence": evidence,
                "grounded": True,
                "other_values": [],
            },
        )
        if created_at:
            ReviewItem.objects.filter(pk=item.pk).update(created_at=created_at)
            item.refresh_from_db()
    return item


def url(name, ws, **kwargs):
    return reverse(f"review:{name}", kwargs={"workspace_slug": ws.slug, **kwargs})


def test_queue_lists_open_items_with_counts_per_reason(ws, django_assert_max_num_queries):
    client, _ = member(ws, "rita", "reviewer")
    for reason in ("low_confidence", "low_confidence", "conflict"):
        make_item(ws, reason=reason)
    # 17: a page the items I did not skip leave short also reads the ones I skipped.
    with django_assert_max_num_queries(17):
        page = client.get(url("queue", ws)).content.decode()
    assert page.count("data-href=") == 3
    assert re.search(r"<strong>2</strong> Low confidence", page)
    assert re.search(r"<strong>1</strong> Conflicts with a verified value", page)


def test_queue_query_count_does_not_grow_with_the_page(ws, django_assert_max_num_queries):
    client, _ = member(ws, "rita", "reviewer")
    for _ in range(30):
        make_item(ws)
    with django_assert_max_num_queries(16):
        assert client.get(url("queue", ws)).status_code == 200


def test_queue_filters_and_keyset_pages(ws):
    client, _ = member(ws, "rita", "reviewer")
    now = timezone.now()
    items = [make_item(ws, created_at=now - timedelta(minutes=i)) for i in range(55)]
    make_item(ws, reason="conflict")
    first = client.get(url("queue", ws), {"reason": "low_confidence"}).content.decode()
    assert first.count("data-href=") == 50
    next_url = re.search(r'href="([^"]+after=[^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(next_url).content.decode()
    assert second.count("data-href=") == 5
    shown = set(map(int, re.findall(r"/items/(\d+)/", first + second)))
    assert shown == {i.pk for i in items}


def test_queue_filters_by_age_and_assignee(ws):
    client, user = member(ws, "rita", "reviewer")
    old = make_item(ws, created_at=timezone.now() - timedelta(hours=30))
    make_item(ws)
    page = client.get(url("queue", ws), {"older_than_hours": 24}).content.decode()
    assert set(map(int, re.findall(r"/items/(\d+)/", page))) == {old.pk}
    with workspace_context(ws):
        ReviewItem.objects.filter(pk=old.pk).update(assigned_to=user)
    page = client.get(url("queue", ws), {"assignee": "me"}).content.decode()
    assert set(map(int, re.findall(r"/items/(\d+)/", page))) == {old.pk}


def test_item_page_highlights_the_evidence_and_claims_the_item(ws, django_assert_max_num_queries):
    client, user = member(ws, "rita", "reviewer")
    item = make_item(ws)
    with django_assert_max_num_queries(21):
        page = client.get(url("item", ws, pk=item.pk)).content.decode()
    assert '<mark class="evidence">budget is $40,000</mark>' in page
    assert "62% confidence" in page
    with workspace_context(ws):
        item.refresh_from_db()
    assert item.assigned_to == user and item.claimed_until > timezone.now()


def test_another_reviewer_sees_who_holds_the_item(ws):
    rita, _ = member(ws, "rita", "reviewer")
    rob, _ = member(ws, "rob", "reviewer")
    item = make_item(ws)
    rita.get(url("item", ws, pk=item.pk))
    page = rob.get(url("item", ws, pk=item.pk)).content.decode()
    assert "rita is reviewing this item" in page
    assert "Approve <kbd>a</kbd>" not in page


def test_approve_opens_the_next_item_and_offers_undo(ws):
    client, _ = member(ws, "rita", "reviewer")
    older = make_item(ws, created_at=timezone.now() - timedelta(minutes=5))
    newer = make_item(ws)
    response = client.post(url("decide", ws, pk=newer.pk), {"action": "approve", "version": 0})
    assert response.status_code == 302 and response["Location"].endswith(f"/items/{older.pk}/")
    page = client.get(response["Location"]).content.decode()
    assert "Approved." in page and url("undo", ws, pk=newer.pk) in page
    with workspace_context(ws):
        assert FieldValue.objects.get(pk=newer.field_value_id).status == "verified"


def test_resolving_an_item_someone_else_resolved_shows_a_message_and_changes_nothing(ws):
    rita, _ = member(ws, "rita", "reviewer")
    rob, _ = member(ws, "rob", "reviewer")
    item = make_item(ws)
    rita.post(url("decide", ws, pk=item.pk), {"action": "approve", "version": 0})
    response = rob.post(url("decide", ws, pk=item.pk), {"action": "reject", "version": 0}, follow=True)
    assert "rita already approved this item; nothing was changed." in response.content.decode()
    with workspace_context(ws):
        assert ReviewItem.objects.get(pk=item.pk).status == "approved"


def test_edit_validates_the_value_for_its_type(ws):
    client, _ = member(ws, "rita", "reviewer")
    item = make_item(ws)
    response = client.post(
        url("decide", ws, pk=item.pk), {"action": "edit", "version": 0, "amount": "lots", "currency": "GBP"}
    )
    # Post/Redirect/Get: back on the item's page, which shows the error by the field and what was typed.
    assert response.status_code == 302
    assert response["Location"] == url("item", ws, pk=item.pk) + "#edit-form"
    page = client.get(response["Location"]).content.decode()
    assert re.search(r'name="amount"[^>]*value="lots"[^>]*aria-invalid="true"', page)
    assert (
        '<p class="error field-error" id="error-amount" role="alert">amount: &#x27;lots&#x27; is not an amount</p>'
        in page
    )
    assert "<option selected>GBP</option>" in page
    assert 'id="edit-form" class="edit"  data-action="edit"' in page  # shown, not hidden
    # The error is shown once: a reload shows the proposed value again and nothing was decided.
    again = client.get(response["Location"]).content.decode()
    assert "is not an amount" not in again and 'value="40000"' in again
    with workspace_context(ws):
        assert ReviewItem.objects.get(pk=item.pk).status == "open"
    response = client.post(
        url("decide", ws, pk=item.pk), {"action": "edit", "version": 0, "amount": "45,000", "currency": "EUR"}
    )
    assert response.status_code == 302
    with workspace_context(ws):
        assert FieldValue.objects.get(status="verified").field_value_json == {"amount": 45000.0, "currency": "EUR"}


def test_undo_reopens_the_item(ws):
    client, _ = member(ws, "rita", "reviewer")
    item = make_item(ws)
    client.post(url("decide", ws, pk=item.pk), {"action": "reject", "version": 0})
    response = client.post(url("undo", ws, pk=item.pk), follow=True)
    assert "Undone" in response.content.decode()
    with workspace_context(ws):
        assert ReviewItem.objects.get(pk=item.pk).status == "open"
        assert FieldValue.objects.get(pk=item.field_value_id).status == "proposed"


def test_viewers_read_but_cannot_decide(ws):
    client, _ = member(ws, "vic", "viewer")
    item = make_item(ws)
    page = client.get(url("item", ws, pk=item.pk)).content.decode()
    assert "Approve <kbd>a</kbd>" not in page
    assert client.post(url("decide", ws, pk=item.pk), {"action": "approve", "version": 0}).status_code == 403
    with workspace_context(ws):
        assert ReviewItem.objects.get(pk=item.pk).status == "open"


def test_every_form_needs_csrf(ws):
    user = UserFactory(username="rita")
    membership_add(workspace=ws, user=user, role="reviewer")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    item = make_item(ws)
    assert client.post(url("decide", ws, pk=item.pk), {"action": "approve", "version": 0}).status_code == 403
    assert client.post(url("undo", ws, pk=item.pk)).status_code == 403


def test_non_members_and_other_workspaces_see_nothing(ws):
    other = workspace_create(slug="globex", name="Globex")
    client, _ = member(other, "gus", "admin")
    item = make_item(ws)
    assert client.get(url("queue", ws)).status_code == 404
    assert client.get(reverse("review:item", kwargs={"workspace_slug": "globex", "pk": item.pk})).status_code == 404


def test_dashboard_figures(ws):
    client, _ = member(ws, "rita", "reviewer")
    first = make_item(ws, created_at=timezone.now() - timedelta(hours=5))
    make_item(ws, reason="conflict")
    client.post(url("decide", ws, pk=first.pk), {"action": "approve", "version": 0})
    page = client.get(url("dashboard", ws)).content.decode()
    assert '<div class="big" id="open-total">1</div>' in page
    assert 'data-reviewer="rita">1<' in page
    assert 'data-reason="conflict">1<' in page


def test_home_takes_a_reviewer_to_the_queue(ws):
    client, _ = member(ws, "rita", "reviewer")
    assert client.get("/")["Location"] == url("queue", ws)


def test_admin_actions_use_the_same_decisions_and_link_to_the_console(ws):
    admin_client, admin_user = member(ws, "ada", "admin")  # neither staff nor a superuser
    items = [make_item(ws), make_item(ws)]
    changelist = reverse("admin:review_reviewitem_changelist")
    page = admin_client.get(changelist).content.decode()
    assert url("item", ws, pk=items[0].pk) in page
    admin_client.post(changelist, {"action": "approve_selected", "_selected_action": [i.pk for i in items]})
    with workspace_context(ws):
        assert set(ReviewItem.objects.values_list("status", flat=True)) == {"approved"}
        assert set(FieldValue.objects.values_list("status", flat=True)) == {"verified"}
        assert ReviewItem.objects.filter(resolved_by=admin_user).count() == 2
