"""Skip, bulk decisions with one undo, decided values and the per-reviewer figures (issue 13),
on the real database as the app role, as reviewers who are not staff and as viewers."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from extraction.models import FieldValue
from extraction.tests.factories import FieldValueFactory
from review import selectors
from review.models import ReviewItem
from review.services import (
    ReviewConflict,
    ReviewInvalid,
    review_batch_undo,
    review_item_claim,
    review_item_resolve,
    review_item_skip,
    review_item_undo,
    review_items_resolve_bulk,
)
from review.tests.factories import ReviewItemFactory
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import audit_event_record, membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws():
    return workspace_create(slug="acme", name="Acme")


@pytest.fixture
def people(ws):
    rita, rob, vic = UserFactory(username="rita"), UserFactory(username="rob"), UserFactory(username="vic")
    membership_add(workspace=ws, user=rita, role="reviewer")
    membership_add(workspace=ws, user=rob, role="reviewer")
    membership_add(workspace=ws, user=vic, role="viewer")
    assert not (rita.is_staff or rita.is_superuser)
    return rita, rob, vic


def item_for(ws, minutes_ago=0, amount=40000, reason="low_confidence"):
    with workspace_context(ws):
        value = FieldValueFactory(
            workspace=ws,
            status=FieldValue.Status.PROPOSED,
            field_key="budget",
            field_value_json={"amount": amount, "currency": "USD"},
        )
        item = ReviewItemFactory(
            workspace=ws,
            thread=value.thread,
            field_value=value,
            reason=reason,
            payload_json={"field": "budget", "proposed_value": value.field_value_json, "confidence": 0.6},
        )
        ReviewItem.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
        item.refresh_from_db()
    return item


def queue_ids(user, **filters):
    items, _ = selectors.queue_items(filters=selectors.QueueFilters(**filters), user=user)
    return [i.pk for i in items]


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def url(name, ws, **kwargs):
    return reverse(f"review:{name}", kwargs={"workspace_slug": ws.slug, **kwargs})


# --- skip ---------------------------------------------------------------------------------


def test_skip_frees_the_item_and_puts_it_behind_the_others_for_me_only(ws, people):
    rita, rob, _ = people
    newest, middle, oldest = item_for(ws, 0), item_for(ws, 5), item_for(ws, 10)
    with workspace_context(ws):
        assert review_item_claim(item=newest, user=rita)
        review_item_skip(item=newest, user=rita)
        newest.refresh_from_db()
        assert (newest.status, newest.assigned_to, newest.claimed_until) == ("open", None, None)
        assert newest.skipped_by == [rita.pk]
        event = AuditEvent.objects.get(type="review_item.skipped")
        assert event.actor == rita and event.data_json == {"review_item_id": newest.pk}
        assert queue_ids(rita) == [middle.pk, oldest.pk, newest.pk]
        assert queue_ids(rita, sort="oldest") == [oldest.pk, middle.pk, newest.pk]
        assert queue_ids(rob) == [newest.pk, middle.pk, oldest.pk]  # rob did not skip it
        # The skipped filter: open items someone passed on.
        assert queue_ids(rob, status="skipped") == [newest.pk]
        # Skipping twice records me once; rob can take it now that rita let it go.
        review_item_skip(item=newest, user=rita)
        assert ReviewItem.objects.get(pk=newest.pk).skipped_by == [rita.pk]
        assert review_item_claim(item=newest, user=rob)


def test_skip_of_an_item_someone_else_holds_changes_nothing(ws, people):
    rita, rob, _ = people
    item = item_for(ws)
    with workspace_context(ws):
        review_item_claim(item=item, user=rob)
        with pytest.raises(ReviewConflict, match="rob is reviewing this item"):
            review_item_skip(item=item, user=rita)
        item.refresh_from_db()
        assert (item.assigned_to, item.skipped_by) == (rob, [])
        assert not AuditEvent.objects.filter(type="review_item.skipped").exists()


def test_skipped_rows_page_after_the_others(ws, people):
    rita, _, _ = people
    items = [item_for(ws, minutes) for minutes in range(5)]
    with workspace_context(ws):
        review_item_skip(item=items[1], user=rita)
        filters = selectors.QueueFilters()
        first, cursor = selectors.queue_items(filters=filters, user=rita, limit=2)
        second, cursor2 = selectors.queue_items(filters=filters, user=rita, cursor=cursor, limit=2)
        third, cursor3 = selectors.queue_items(filters=filters, user=rita, cursor=cursor2, limit=2)
        order = [i.pk for i in first + second + third]
        assert order == [items[0].pk, items[2].pk, items[3].pk, items[4].pk, items[1].pk] and cursor3 is None
        # j/k walk the same order: the skipped item is last, after the oldest.
        assert selectors.queue_neighbours(item=items[4], filters=filters, user=rita) == (items[3].pk, items[1].pk)
        items[1].refresh_from_db()
        assert selectors.queue_neighbours(item=items[1], filters=filters, user=rita) == (items[4].pk, None)


def test_skip_by_post_moves_on_says_so_and_viewers_cannot(ws, people):
    rita, _, vic = people
    first, second = item_for(ws, 0), item_for(ws, 5)
    client = client_for(rita)
    client.get(url("item", ws, pk=first.pk))
    response = client.post(
        url("decide", ws, pk=first.pk), {"action": "skip", "version": 0, "reason": "low_confidence"}, follow=True
    )
    assert response.redirect_chain[-1][0] == url("item", ws, pk=second.pk) + "?reason=low_confidence"
    assert "comes after the others in your queue" in response.content.decode()
    assert client_for(vic).post(url("decide", ws, pk=second.pk), {"action": "skip", "version": 0}).status_code == 403
    with workspace_context(ws):
        assert ReviewItem.objects.get(pk=second.pk).skipped_by == []
    queue = client.get(url("queue", ws), {"status": "skipped"}).content.decode()
    assert re.findall(r'data-item="(\d+)"', queue) == [str(first.pk)]


# --- bulk -----------------------------------------------------------------------------------


def test_bulk_approve_decides_the_selected_and_one_undo_reopens_them_all(ws, people):
    rita, rob, _ = people
    a, b, held, stale = item_for(ws, 0), item_for(ws, 1), item_for(ws, 2), item_for(ws, 3)
    with workspace_context(ws):
        review_item_claim(item=held, user=rob)
        result = review_items_resolve_bulk(
            items=[(a.pk, 0), (b.pk, 0), (held.pk, 0), (stale.pk, 7)], reviewer=rita, decision="approve"
        )
        assert result["decided"] == [a.pk, b.pk]
        assert dict(result["refused"]) == {
            held.pk: "rob is reviewing this item right now. Nothing was changed.",
            stale.pk: "This item changed since you opened it; nothing was changed. Look again before deciding.",
        }
        statuses = dict(ReviewItem.objects.values_list("pk", "status"))
        assert [statuses[i.pk] for i in (a, b, held, stale)] == ["approved", "approved", "open", "open"]
        assert FieldValue.objects.get(pk=a.field_value_id).status == "verified"
        assert AuditEvent.objects.filter(type="review_item.approved", actor=rita).count() == 2
        assert AuditEvent.objects.get(type="review_items.bulk_decided").data_json["review_item_ids"] == [a.pk, b.pk]
        with pytest.raises(ReviewInvalid, match="only the reviewer who decided"):
            review_batch_undo(batch=result["batch"], user=rob)
        assert review_batch_undo(batch=result["batch"], user=rita) == [b.pk, a.pk]
        assert set(ReviewItem.objects.values_list("status", flat=True)) == {"open"}
        assert set(FieldValue.objects.values_list("status", flat=True)) == {"proposed"}
        with pytest.raises(ReviewInvalid, match="no decision left to undo"):
            review_batch_undo(batch=result["batch"], user=rita)


def test_bulk_reject_and_what_it_refuses(ws, people):
    rita, _, _ = people
    value, association = item_for(ws), item_for(ws, reason="association")
    with workspace_context(ws):
        with pytest.raises(ReviewInvalid, match="select at least one item"):
            review_items_resolve_bulk(items=[], reviewer=rita, decision="reject")
        with pytest.raises(ReviewInvalid, match="approve or reject"):
            review_items_resolve_bulk(items=[(value.pk, 0)], reviewer=rita, decision="edit")
        result = review_items_resolve_bulk(items=[(value.pk, 0), (association.pk, 0)], reviewer=rita, decision="reject")
        assert result["decided"] == [value.pk]
        assert result["refused"] == [(association.pk, "a deal association is decided on its own page")]
        assert FieldValue.objects.get(pk=value.field_value_id).status == "rejected"
        assert ReviewItem.objects.get(pk=association.pk).status == "open"


def test_bulk_undo_after_the_window_is_refused(ws, people):
    rita, _, _ = people
    item = item_for(ws)
    with workspace_context(ws):
        batch = review_items_resolve_bulk(items=[(item.pk, 0)], reviewer=rita, decision="approve")["batch"]
        ReviewItem.objects.filter(pk=item.pk).update(resolved_at=timezone.now() - timedelta(hours=1))
        with pytest.raises(ReviewInvalid, match="undo window"):
            review_batch_undo(batch=batch, user=rita)
        assert ReviewItem.objects.get(pk=item.pk).status == "approved"


def test_bulk_by_post_keeps_the_filters_and_the_page_and_undo_keeps_them_too(ws, people):
    rita, _, vic = people
    a, b = item_for(ws, 0), item_for(ws, 1)
    client = client_for(rita)
    queue = client.get(url("queue", ws), {"reason": "low_confidence", "sort": "oldest"}).content.decode()
    boxes = re.findall(r'name="item" value="(\d+:\d+)" form="bulk-form"', queue)
    assert boxes == [f"{b.pk}:0", f"{a.pk}:0"]
    assert re.search(r'<input type="hidden" name="sort" value="oldest">', queue)
    form = {"action": "approve", "item": boxes, "reason": "low_confidence", "sort": "oldest", "after": "abc"}
    response = client.post(url("bulk", ws), form)
    assert response["Location"] == url("queue", ws) + "?reason=low_confidence&sort=oldest&after=abc"
    page = client.get(url("queue", ws) + "?reason=low_confidence&sort=oldest").content.decode()
    batch = re.search(r"/batches/([0-9a-f]+)/undo/", page).group(1)
    assert "Approved 2 items. Press u to undo them all." in page
    assert "Undo all <kbd>u</kbd>" in page
    response = client.post(url("undo-batch", ws, batch=batch), {"reason": "low_confidence", "sort": "oldest"})
    assert response["Location"] == url("queue", ws) + "?reason=low_confidence&sort=oldest"
    with workspace_context(ws):
        assert set(ReviewItem.objects.values_list("status", flat=True)) == {"open"}
    # A viewer sees no bulk form and cannot post one.
    assert 'id="bulk-form"' not in client_for(vic).get(url("queue", ws)).content.decode()
    vic_post = client_for(vic).post(url("bulk", ws), {"action": "approve", "item": [f"{a.pk}:1"]})
    assert vic_post.status_code == 403
    assert client_for(vic).post(url("undo-batch", ws, batch=batch)).status_code == 403
    with workspace_context(ws):
        assert set(ReviewItem.objects.values_list("status", flat=True)) == {"open"}


def test_reason_links_keep_the_other_filters(ws, people):
    rita, _, _ = people
    item_for(ws)
    page = client_for(rita).get(url("queue", ws), {"sort": "oldest", "assignee": "me"}).content.decode()
    assert 'href="/w/acme/review/?reason=conflict&amp;assignee=me&amp;sort=oldest"' in page


# --- decided values -----------------------------------------------------------------------


def test_an_edited_value_shows_on_its_page_and_in_the_approved_and_edited_lists(ws, people):
    rita, _, _ = people
    edited, approved = item_for(ws, 0, amount=40000), item_for(ws, 1, amount=12000)
    with workspace_context(ws):
        review_item_resolve(
            item_id=edited.pk, reviewer=rita, decision="edit", version=0, value={"amount": 52500, "currency": "EUR"}
        )
        review_item_resolve(item_id=approved.pk, reviewer=rita, decision="approve", version=0)
    client = client_for(rita)
    page = client.get(url("item", ws, pk=edited.pk)).content.decode()
    assert '<span class="value" id="decided-value">€52,500</span>' in page
    assert '<span class="tag edited">edited</span>' in page
    assert 'proposed: <del id="proposed-value">$40,000</del>' in page
    listing = client.get(url("queue", ws), {"status": "approved"}).content.decode()
    assert re.search(
        r'class="decided">€52,500</a> <span class="tag edited">edited</span> <del class="was">\$40,000', listing
    )
    assert ">$12,000</a>" in listing  # approved as proposed: the proposed value, not marked
    only_edited = client.get(url("queue", ws), {"status": "edited"}).content.decode()
    assert re.findall(r'data-item="(\d+)"', only_edited) == [str(edited.pk)]


def test_an_edit_decided_before_values_were_kept_reads_it_from_the_audit_log(ws, people):
    rita, _, _ = people
    item = item_for(ws)
    with workspace_context(ws):
        review_item_resolve(
            item_id=item.pk, reviewer=rita, decision="edit", version=0, value={"amount": 9000, "currency": "USD"}
        )
        item.refresh_from_db()
        payload = {**item.payload_json}
        del payload["last_decision"]["value"]  # as an older build stored it
        ReviewItem.objects.filter(pk=item.pk).update(payload_json=payload)
        assert queue_ids(rita, status="approved") == [item.pk]
        listed, _ = selectors.queue_items(filters=selectors.QueueFilters(status="approved"), user=rita)
    page = client_for(rita).get(url("item", ws, pk=item.pk)).content.decode()
    assert '<span class="value" id="decided-value">$9,000</span>' in page
    assert listed[0].decided == {
        "value": {"amount": 9000, "currency": "USD"},
        "edited": True,
        "proposed": {"amount": 40000, "currency": "USD"},
    }


# --- the dashboard's line per reviewer -------------------------------------------------------


def test_reviewer_figures_count_every_decision_time_them_and_count_undos(ws, people):
    rita, rob, _ = people
    items = [item_for(ws, i) for i in range(4)]
    with workspace_context(ws):
        for item, seconds in zip(items[:3], (30, 10, 20), strict=True):
            assert review_item_claim(item=item, user=rita)
            ReviewItem.objects.filter(pk=item.pk).update(claimed_at=timezone.now() - timedelta(seconds=seconds))
        review_item_resolve(item_id=items[0].pk, reviewer=rita, decision="approve", version=0)
        review_item_resolve(item_id=items[1].pk, reviewer=rita, decision="reject", version=0)
        review_item_resolve(
            item_id=items[2].pk, reviewer=rita, decision="edit", version=0, value={"amount": 1, "currency": "USD"}
        )
        review_item_undo(item_id=items[1].pk, user=rita)
        review_items_resolve_bulk(items=[(items[3].pk, 0)], reviewer=rob, decision="reject")  # never opened: not timed
        # Rejections audited as "review_item.rejectd" (reported against an earlier build) count too.
        audit_event_record(workspace_id=ws.pk, type="review_item.rejectd", actor=rob, data={"review_item_id": 0})
        rows = selectors.reviewer_figures(since=timezone.now() - timedelta(hours=1))
        assert AuditEvent.objects.filter(type="review_item.rejected").count() == 2
    by_name = {r["actor__username"]: r for r in rows}
    assert by_name["rita"]["n"] == 3 and by_name["rita"]["undone"] == 1
    assert 19 <= by_name["rita"]["median_seconds"] <= 22  # the median of about 30, 10 and 20
    assert by_name["rob"] == {"actor__username": "rob", "n": 2, "undone": 0, "median_seconds": None}
    page = client_for(rita).get(url("dashboard", ws)).content.decode()
    assert 'data-reviewer="rita">3<' in page
    line = re.search(r'<tr data-reviewer="rita">(.*?)</tr>', page, re.S).group(1)
    assert re.search(r'class="n decided">3<', line) and re.search(r'class="n undone">1<', line)
    assert re.search(r'class="n median"[^>]*>(19|2[0-2])\.\d<', line)


def test_a_renewed_claim_keeps_its_start_and_a_new_one_restarts_it(ws, people):
    rita, rob, _ = people
    item = item_for(ws)
    with workspace_context(ws):
        review_item_claim(item=item, user=rita)
        started = ReviewItem.objects.get(pk=item.pk).claimed_at
        review_item_claim(item=item, user=rita)
        assert ReviewItem.objects.get(pk=item.pk).claimed_at == started
        ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
        review_item_claim(item=item, user=rob)
        assert ReviewItem.objects.get(pk=item.pk).claimed_at > started


def test_the_cached_filter_form_shows_each_request_its_own_filters(ws, people):
    """The queue's filter form is a cached fragment ({% cache %}), keyed by what it shows."""
    rita, _rob, _vic = people
    client = Client()
    client.force_login(rita)
    url = reverse("review:queue", kwargs={"workspace_slug": ws.slug})
    approved = client.get(url, {"status": "approved"}).content.decode()
    rejected = client.get(url, {"status": "rejected", "sort": "oldest"}).content.decode()
    again = client.get(url, {"status": "approved"}).content.decode()  # from the cache now
    assert '<option value="approved" selected>' in again and '<option value="oldest" selected>' not in again
    assert '<option value="approved" selected>' in approved and '<option value="rejected" selected>' not in approved
    assert '<option value="rejected" selected>' in rejected and '<option value="approved" selected>' not in rejected
    assert '<option value="oldest" selected>' in rejected and '<option value="oldest" selected>' not in approved
