"""The review item page's own statements and its parts written in Python (issue 15): j/k in
the queue's order under every filter, the item read with its history and messages in one
statement by their indexes, dates as the ``date`` filter writes them, and everything escaped.
On the real database as the app role, under row-level security."""

import datetime
import itertools
import zoneinfo
from datetime import timedelta

import pytest
from django.db import connection
from django.template.defaultfilters import date as date_filter
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from review import selectors
from review.item_page import local_date
from review.models import ReviewItem
from review.services import review_item_skip
from review.tests.factories import ReviewItemFactory
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import audit_event_record, membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws():
    return workspace_create(slug="acme", name="Acme")


@pytest.fixture
def people(ws):
    rita, rob = UserFactory(username="rita"), UserFactory(username="rob")
    membership_add(workspace=ws, user=rita, role="reviewer")
    membership_add(workspace=ws, user=rob, role="reviewer")
    return rita, rob


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def a_queue(ws, rita, rob) -> None:
    """Items of every kind the filters tell apart: reasons, fields, open and decided (some by
    an edit), assigned to rita, to rob or nobody, hours old or new, two with the same
    created_at (the id decides), some skipped by rita; and another workspace's items."""
    now = timezone.now()
    kinds = itertools.product(
        ("low_confidence", "conflict"), ("budget", "authority"), ("open", "open", "approved"), (rita, rob, None)
    )
    with workspace_context(ws):
        for n, (reason, field, status, assignee) in enumerate(kinds):
            payload = {"field": field, "proposed_value": n, "confidence": 0.5}
            if status == "approved":
                payload["last_decision"] = {"decision": "edit" if n % 2 else "approve", "value": n + 1}
            item = ReviewItemFactory(workspace=ws, reason=reason, status=status, payload_json=payload)
            ReviewItem.objects.filter(pk=item.pk).update(
                assigned_to=assignee, created_at=now - timedelta(hours=n % 7, minutes=n if n % 5 else 0)
            )
        for item in ReviewItem.objects.filter(status="open").order_by("pk")[::4]:
            ReviewItem.objects.filter(pk=item.pk).update(assigned_to=None)
            review_item_skip(item=ReviewItem.objects.get(pk=item.pk), user=rita)
    other = workspace_create(slug="other", name="Other")
    with workspace_context(other):
        for _ in range(3):
            ReviewItemFactory(workspace=other, payload_json={"field": "budget", "proposed_value": 1})


FILTERS = [
    *(
        {"status": status, "sort": sort}
        for status in ("open", "all", "skipped", "edited", "approved")
        for sort in ("newest", "oldest")
    ),
    *(
        {"status": status, "sort": sort, **extra}
        for status in ("open", "all")
        for sort in ("newest", "oldest")
        for extra in (
            {"reason": "conflict"},
            {"field": "authority"},
            {"assignee": "me"},
            {"assignee": "unassigned"},
            {"older_than_hours": 3},
            {"reason": "low_confidence", "field": "budget", "assignee": "unassigned", "older_than_hours": 2},
        )
    ),
]


def test_j_and_k_walk_the_queue_order_under_every_filter(ws, people):
    """Prev and next of every item the queue shows are its neighbours in the queue's own
    order (queue_items, paged through): the filters, the sort, the id between equal times,
    the items I skipped last, and nothing of another workspace."""
    rita, rob = people
    a_queue(ws, rita, rob)
    checked = 0
    with workspace_context(ws):
        for spec in FILTERS:
            filters = selectors.QueueFilters(**spec)
            order, cursor = [], None
            while True:
                page, cursor = selectors.queue_items(filters=filters, user=rita, cursor=cursor, limit=7)
                order += page
                if cursor is None:
                    break
            for n, item in enumerate(order):
                expected = (order[n - 1].pk if n else None, order[n + 1].pk if n + 1 < len(order) else None)
                got = selectors.queue_neighbours(item=ReviewItem.objects.get(pk=item.pk), filters=filters, user=rita)
                assert got == expected, (spec, n, [i.pk for i in order])
                checked += 1
    assert checked > 200


def test_the_item_is_read_with_its_history_and_messages_in_one_statement(ws, people):
    """One statement reads the item, its thread's subject, its history and its messages."""
    rita, _ = people
    with workspace_context(ws):
        threads = [ThreadFactory(workspace=ws, subject=f"Thread {n}") for n in range(30)]
        items = []
        for thread in threads:
            MessageFactory(workspace=ws, thread=thread, reply_text="First")
            MessageFactory(workspace=ws, thread=thread, reply_text="Second")
            item = ReviewItemFactory(workspace=ws, thread=thread)
            audit_event_record(workspace_id=ws.pk, type="review_item.opened", data={"review_item_id": item.pk})
            items.append(item)
        target = items[12]
        audit_event_record(
            workspace_id=ws.pk, type="review_item.skipped", actor=rita, data={"review_item_id": target.pk}
        )
        with CaptureQueriesContext(connection) as captured:
            item = selectors.item_for_page(pk=target.pk)
        assert len(captured.captured_queries) == 1
        assert item.thread_subject == "Thread 12" and item.assignee_name is None
        assert [(e.type, e.actor_name) for e in item.history] == [
            ("review_item.opened", None),
            ("review_item.skipped", "rita"),
        ]
        assert [row[1] for row in item.message_rows] == ["Hello", "Hello"]
        assert [entry["segments"][0].text for entry in selectors.item_messages(item=item)] == ["First", "Second"]
    # Which index reads the history is checked on analyzed tables in test_page_costs.py (the
    # planner's choice on these small, never analyzed ones depends on what earlier tests left).


def test_an_item_of_another_workspace_or_none_is_not_found(ws, people):
    rita, _ = people
    other = workspace_create(slug="other", name="Other")
    with workspace_context(other):
        theirs = ReviewItemFactory(workspace=other)
    client = client_for(rita)
    for pk in (theirs.pk, theirs.pk + 1000):
        assert client.get(reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": pk})).status_code == 404
    with workspace_context(ws):
        assert selectors.item_for_page(pk=theirs.pk) is None


def test_the_pages_dates_read_as_the_date_filter_writes_them():
    moments = [
        datetime.datetime(2026, 1, 1, 0, 5, tzinfo=datetime.UTC) + timedelta(days=k, minutes=k * 37)
        for k in range(0, 400, 9)
    ]
    for language, zone in itertools.product(("en", "de", "fr", "ja"), ("UTC", "America/New_York", "Asia/Kolkata")):
        with translation.override(language), timezone.override(zoneinfo.ZoneInfo(zone)):
            for moment, format_string in itertools.product(moments, ("c", "M j, Y H:i", "M j H:i")):
                expected = date_filter(timezone.template_localtime(moment), format_string)
                assert local_date(moment, format_string) == expected, (language, zone, format_string)
    assert local_date(None, "c") == ""


def test_what_the_item_page_writes_itself_is_escaped_and_the_evidence_marked(ws, people):
    rita, _ = people
    text = "Hi <team>, our budget is $40,000 & the CFO's call."
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws, subject="Pricing <b>now</b>")
        message = MessageFactory(
            workspace=ws, thread=thread, reply_text=text, text=text, from_name="Ana <i>", folder="INBOX/<x>"
        )
        start = text.index("budget is $40,000")
        item = ReviewItemFactory(
            workspace=ws,
            thread=thread,
            payload_json={
                "field": "budget",
                "proposed_value": {"amount": 40000, "currency": "USD"},
                "confidence": 0.6,
                "evidence": [{"message_id": message.pk, "start": start, "end": start + 17}],
            },
        )
        audit_event_record(
            workspace_id=ws.pk, type="review_item.<opened>", actor=rita, data={"review_item_id": item.pk}
        )
    page = client_for(rita).get(reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": item.pk}))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Pricing &lt;b&gt;now&lt;/b&gt;" in html and "<b>now" not in html
    assert "<strong>Ana &lt;i&gt;</strong>" in html and 'title="Mail folder">INBOX/&lt;x&gt;</span>' in html
    assert (
        '<pre class="body">Hi &lt;team&gt;, our <mark class="evidence">budget is $40,000</mark>'
        " &amp; the CFO&#x27;s call.</pre>"
    ) in html
    assert "review_item.&lt;opened&gt; by rita</li>" in html
    assert f'id="message-{message.pk}"' in html
    decide = reverse("review:decide", kwargs={"workspace_slug": ws.slug, "pk": item.pk})
    assert html.count(f'action="{decide}"') == 4  # approve, reject, skip, edit (assigned to rita by opening it)


def test_the_item_pages_links_carry_the_filters(ws, people):
    rita, _ = people
    with workspace_context(ws):
        older, newer = ReviewItemFactory(workspace=ws), ReviewItemFactory(workspace=ws)
        ReviewItem.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    query = "status=all&sort=oldest"
    page = client_for(rita).get(
        reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": older.pk}) + "?" + query
    )
    html = page.content.decode()
    next_url = reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": newer.pk}) + "?" + query
    assert f'<a href="{next_url.replace("&", "&amp;")}" data-key="j" rel="next">' in html
    assert 'rel="prev"' not in html
    assert '<input type="hidden" name="status" value="all"><input type="hidden" name="sort" value="oldest">' in html
