"""What the queue and item pages cost as the workspace grows: queries per request that do
not grow with the items, reads that stay in index order (PostgreSQL's own EXPLAIN ANALYZE
row counts, on the real database as the app role), and no session write per request.

Speed itself is measured by bench/web.py, never here.
"""

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from review.models import ReviewItem
from review.services import review_item_skip
from review.tests.factories import ReviewItemFactory
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import audit_event_record, membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEXT = "Thanks Sam. Our budget is $40,000 for this year and the CFO signs off."


@pytest.fixture
def ws():
    return workspace_create(slug="acme", name="Acme Sales")


@pytest.fixture
def rita(ws):
    user = UserFactory(username="rita")
    membership_add(workspace=ws, user=user, role="reviewer")
    return user


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def add_items(ws, count, *, assignee=None):
    """``count`` items, each on its own thread with two messages and evidence; every third one
    decided by an edit whose value only the audit log holds, every fifth one assigned."""
    created = []
    with workspace_context(ws):
        for n in range(count):
            thread = ThreadFactory(workspace=ws, subject=f"Pricing {n}")
            message = MessageFactory(workspace=ws, thread=thread, reply_text=TEXT, text=TEXT)
            MessageFactory(workspace=ws, thread=thread, reply_text="Thanks!", text="Thanks!")
            start = TEXT.index("budget is $40,000")
            payload = {
                "field": "budget",
                "proposed_value": {"amount": 40000, "currency": "USD"},
                "confidence": 0.62,
                "evidence": [{"message_id": message.pk, "start": start, "end": start + 17, "quote": "budget"}],
                "grounded": True,
                "other_values": [],
            }
            decided = n % 3 == 0
            if decided:
                payload["last_decision"] = {"decision": "edit"}
            item = ReviewItemFactory(
                workspace=ws,
                thread=thread,
                payload_json=payload,
                status="approved" if decided else "open",
                assigned_to=assignee if n % 5 == 0 else None,
                resolved_at=timezone.now() if decided else None,
            )
            audit_event_record(workspace_id=ws.pk, type="review_item.opened", data={"review_item_id": item.pk})
            if decided:
                audit_event_record(
                    workspace_id=ws.pk,
                    type="review_item.edited",
                    data={"review_item_id": item.pk, "value": {"amount": 45000, "currency": "USD"}},
                )
            created.append(item)
    return created


def queries_for(client, path) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_queue_and_item_queries_do_not_grow_with_the_items(ws, rita):
    client = client_for(rita)
    queue = reverse("review:queue", kwargs={"workspace_slug": ws.slug})
    few = add_items(ws, 4, assignee=rita)
    small = {status: queries_for(client, f"{queue}?status={status}") for status in ("open", "all")}
    small_item = queries_for(client, reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": few[1].pk}))
    many = add_items(ws, 80, assignee=rita)
    large = {status: queries_for(client, f"{queue}?status={status}") for status in ("open", "all")}
    large_item = queries_for(client, reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": many[40].pk}))
    # A full page of 50 rows (threads, assignees, edited values from the audit log) costs no
    # more queries than a page of four: a query per row would add 46.
    assert large["open"] <= small["open"] and large["all"] <= small["all"], (small, large)
    assert large_item <= small_item, (small_item, large_item)


def scanned_rows(plan: dict, table: str) -> int:
    """Rows the plan's scans of ``table`` produced (EXPLAIN ANALYZE, every loop counted)."""
    rows = 0
    if plan.get("Relation Name") == table and "Scan" in plan.get("Node Type", ""):
        rows += plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1) + plan.get("Rows Removed by Filter", 0)
    for child in plan.get("Plans", []):
        rows += scanned_rows(child, table)
    return rows


def explain(sql: str, params) -> dict:
    with connection.cursor() as cursor:
        # Test tables are small and never analyzed: without these the planner reads them
        # whole and sorts whatever the query; with them, a query the index can answer in
        # order reads only what it shows, and one it cannot still sorts every row.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def test_the_queue_page_reads_a_page_of_items_not_every_open_one(ws, rita):
    """One ORDER BY over (skipped by me, created_at) sorted every open item to show 50; read
    part by part in the index's order, a page reads about 50 rows however long the queue."""
    add_items(ws, 150)
    with workspace_context(ws), CaptureQueriesContext(connection) as captured:
        from review import selectors

        selectors.queue_items(filters=selectors.QueueFilters(), user=rita)
        page_query = next(q for q in captured.captured_queries if "LIMIT 51" in q["sql"])["sql"]
        plan = explain(page_query, None)
    assert scanned_rows(plan, "review_reviewitem") <= 60, json.dumps(plan)[:2000]


def test_neighbours_of_the_last_item_do_not_read_every_open_item(ws, rita):
    """Past the last item I did not skip, j looks for the first I skipped: the partial index
    of skipped items answers that there is none without reading the other open items."""
    items = add_items(ws, 150)
    open_items = [i for i in items if i.status == "open"]
    with workspace_context(ws):
        from review import selectors

        oldest = ReviewItem.objects.filter(status="open").order_by("created_at", "pk").first()
        with CaptureQueriesContext(connection) as captured:
            selectors.queue_neighbours(item=oldest, filters=selectors.QueueFilters(), user=rita)
        total = 0
        for query in captured.captured_queries:
            total += scanned_rows(explain(query["sql"], None), "review_reviewitem")
    assert len(open_items) == 100
    assert total <= 10, total


def test_an_items_history_is_read_by_its_own_index(ws, rita):
    """The history reads the item's events only: an index on the JSON key is never used under
    row-level security (jsonb's = is not LEAKPROOF), the generated bigint column is."""
    items = add_items(ws, 60)
    target = items[31]  # open: opened, never decided
    with workspace_context(ws):
        from review import selectors

        with CaptureQueriesContext(connection) as captured:
            history = selectors.item_history(item=target)
        plan = explain(captured.captured_queries[-1]["sql"], None)
        assert [e.type for e in history] == ["review_item.opened"]
        assert AuditEvent.objects.get(
            type="review_item.opened", data_json__review_item_id=target.pk
        ).review_item_id == (target.pk)
    assert scanned_rows(plan, "workspaces_auditevent") <= 2, json.dumps(plan)[:2000]


def test_the_review_item_column_is_the_number_the_data_names_or_none(ws):
    with workspace_context(ws):
        named = audit_event_record(workspace_id=ws.pk, type="x", data={"review_item_id": 42})
        text = audit_event_record(workspace_id=ws.pk, type="x", data={"review_item_id": "not a number"})
        none = audit_event_record(workspace_id=ws.pk, type="x", data={"other": 1})
        huge = audit_event_record(workspace_id=ws.pk, type="x", data={"review_item_id": 10**30})
        values = dict(
            AuditEvent.objects.filter(pk__in=[named.pk, text.pk, none.pk, huge.pk]).values_list("pk", "review_item_id")
        )
    assert values == {named.pk: 42, text.pk: None, none.pk: None, huge.pk: None}


def test_pages_do_not_write_the_session_on_every_request(ws, rita):
    """The workspace is kept in the session once; a request that does not change it writes
    nothing there (it was an UPDATE of django_session, and a cookie, per request)."""
    client = client_for(rita)
    items = add_items(ws, 3)
    queue = reverse("review:queue", kwargs={"workspace_slug": ws.slug})
    client.get(queue)  # the first visit remembers the workspace
    with CaptureQueriesContext(connection) as captured:
        assert client.get(queue).status_code == 200
        assert (
            client.get(reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": items[1].pk})).status_code == 200
        )
    writes = [q["sql"] for q in captured.captured_queries if "django_session" in q["sql"] and "UPDATE" in q["sql"]]
    assert writes == []


def test_skipped_items_still_come_last_across_pages(ws, rita):
    """The two-part read keeps the order: the items I skipped after all the others, each part
    newest first, and the cursor carries on inside the skipped part."""
    items = [i for i in add_items(ws, 60) if i.status == "open"]
    with workspace_context(ws):
        from review import selectors

        for item in items[-3:]:  # the newest three
            review_item_skip(item=item, user=rita)
        first, cursor = selectors.queue_items(filters=selectors.QueueFilters(), user=rita, limit=36)
        second, end = selectors.queue_items(filters=selectors.QueueFilters(), user=rita, cursor=cursor, limit=36)
    newest_first = sorted(items, key=lambda i: (i.created_at, i.pk), reverse=True)
    expected = [i.pk for i in newest_first[3:]] + [i.pk for i in newest_first[:3]]
    assert [i.pk for i in first + second] == expected and end is None
    assert [i.skipped_me for i in second][-3:] == [True, True, True]


def item_url(ws, item) -> str:
    return reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": item.pk})


def item_updates(client, path) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    # The ORM's UPDATE or the named one (review/sql/item.sql, after its comment).
    return [
        q["sql"] for q in captured.captured_queries if re.search(r'^UPDATE "?review_reviewitem"?\b', q["sql"], re.M)
    ]


def test_an_item_get_by_its_claimant_writes_nothing_until_half_the_claim_is_spent(ws, rita):
    """Opening an item claims it; opening it again while more than half the claim is left
    writes nothing (it was an UPDATE, and a WAL flush at commit, per view); past that half,
    the next view renews the claim, keeping when it started."""
    client = client_for(rita)
    item = next(i for i in add_items(ws, 2) if i.status == "open")
    assert len(item_updates(client, item_url(ws, item))) == 1  # the claim
    with workspace_context(ws):
        claimed = ReviewItem.objects.get(pk=item.pk)
    assert claimed.assigned_to_id == rita.pk
    assert item_updates(client, item_url(ws, item)) == []
    with workspace_context(ws):
        assert ReviewItem.objects.get(pk=item.pk).claimed_until == claimed.claimed_until
        # 300 s claims (the default policy): 100 s left is less than half.
        ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() + timezone.timedelta(seconds=100))
    assert len(item_updates(client, item_url(ws, item))) == 1
    with workspace_context(ws):
        renewed = ReviewItem.objects.get(pk=item.pk)
    assert renewed.claimed_until > timezone.now() + timezone.timedelta(seconds=290)
    assert renewed.claimed_at == claimed.claimed_at


def test_an_item_held_by_another_is_not_taken_and_an_expired_claim_is(ws, rita):
    rob = UserFactory(username="rob")
    membership_add(workspace=ws, user=rob, role="reviewer")
    item = next(i for i in add_items(ws, 2) if i.status == "open")
    client_for(rita).get(item_url(ws, item))
    page = client_for(rob).get(item_url(ws, item)).content.decode()
    assert "rita is reviewing this item" in page
    with workspace_context(ws):
        ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - timezone.timedelta(seconds=1))
    assert len(item_updates(client_for(rob), item_url(ws, item))) == 1
    with workspace_context(ws):
        assert ReviewItem.objects.get(pk=item.pk).assigned_to_id == rob.pk


# Round trips to PostgreSQL per page, as Django's query log counts them, inside a test's own
# transaction (which adds the SAVEPOINT and RELEASE of the request's atomic block; the queue
# of this test reads both of its parts). Main's code took 13 and 19: set_config twice, the
# membership and the policy each went alone (the policy twice on the item page), as did each
# of j/k's probes and, on every view of an item, the claim's UPDATE.
QUEUE_ROUND_TRIPS = 10
ITEM_ROUND_TRIPS = 9


def test_the_queue_and_item_pages_take_a_fixed_small_number_of_round_trips(ws, rita):
    client = client_for(rita)
    items = [i for i in add_items(ws, 6, assignee=rita) if i.status == "open"]
    queue = reverse("review:queue", kwargs={"workspace_slug": ws.slug})
    client.get(queue)
    client.get(item_url(ws, items[1]))  # the first view claims the item
    queue_trips = queries_for(client, queue)
    item_trips = queries_for(client, item_url(ws, items[1]))
    assert queue_trips <= QUEUE_ROUND_TRIPS and item_trips <= ITEM_ROUND_TRIPS, (queue_trips, item_trips)


def test_the_request_context_is_the_members_own_workspace_and_its_policy(ws, rita):
    """One statement chooses the workspace from the user's own membership and reads its
    policy: the page shows this workspace's policy, another workspace's slug is not found,
    and a policy saved during a request is what the rest of the request reads."""
    from workspaces.models import Workspace
    from workspaces.selectors import policy_for, request_policy_known
    from workspaces.services import policy_update

    other = workspace_create(slug="other", name="Other")
    add_items(other, 2)
    client = client_for(rita)
    assert client.get(reverse("review:queue", kwargs={"workspace_slug": other.slug})).status_code == 404
    policy_update(workspace=ws, document={"undo_window_seconds": 0})
    item = next(i for i in add_items(ws, 2) if i.status == "open")
    client.post(
        reverse("review:decide", kwargs={"workspace_slug": ws.slug, "pk": item.pk}),
        {"action": "approve", "version": item.version},
    )
    page = client.get(item_url(ws, item)).content.decode()
    assert "the undo window (0 s) has passed" in page and "Undo approved" not in page
    with request_policy_known(workspace_id=ws.pk, policy={"undo_window_seconds": 77}):
        first = policy_for(workspace_id=ws.pk)
        first["undo_window_seconds"] = 1  # a caller's change does not reach the next reader
        assert policy_for(workspace_id=ws.pk)["undo_window_seconds"] == 77
        policy_update(workspace=Workspace.objects.get(pk=ws.pk), document={"undo_window_seconds": 88})
        with workspace_context(ws):
            assert policy_for(workspace_id=ws.pk)["undo_window_seconds"] == 88
