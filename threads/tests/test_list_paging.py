"""The thread list pages by keyset (sort key and id), not OFFSET: every thread once, in order,
both ways, and a deep page reads about a page of rows from the index."""

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from threads.models import Thread
from threads.selectors import CursorInvalid, ThreadCursor, thread_page
from workspaces.db import owner_connection
from workspaces.rls import workspace_context
from workspaces.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _threads(workspace, n: int, *, undated: int = 0, subject: str = "Deal") -> list[Thread]:
    """``n`` dated threads, many sharing a time (ties on the sort key), and ``undated`` without one."""
    rows = [
        Thread(workspace=workspace, subject=f"{subject} {k}", last_message_at=T0 + timedelta(hours=k // 4))
        for k in range(n)
    ]
    rows += [Thread(workspace=workspace, subject=f"{subject} undated {k}") for k in range(undated)]
    with workspace_context(workspace):
        return Thread.objects.bulk_create(rows)


def _in_order(threads: list[Thread]) -> list[int]:
    """The list's order: newest first, threads without a date before all, ties by id, highest first."""
    return [
        t.pk
        for t in sorted(
            threads,
            key=lambda t: (t.last_message_at is not None, -(t.last_message_at or T0).timestamp(), -t.pk),
        )
    ]


def _walk(workspace, size: int, query: str = "") -> tuple[list[list[int]], list[list[int]]]:
    """Every page forward by the next cursors, then back from the last by the previous ones."""
    forward, back = [], []
    with workspace_context(workspace):
        page = thread_page(workspace_id=workspace.pk, query=query, size=size)
        assert page.previous is None
        forward.append([t.pk for t in page.threads])
        while page.next:
            page = thread_page(workspace_id=workspace.pk, query=query, after=page.next, size=size)
            forward.append([t.pk for t in page.threads])
            assert len(forward) < 1000
        back.append(forward[-1])
        while page.previous:
            page = thread_page(workspace_id=workspace.pk, query=query, before=page.previous, size=size)
            back.append([t.pk for t in page.threads])
            assert len(back) < 1000
    return forward, back[::-1]


def test_walking_every_page_forward_and_back_yields_every_thread_once_in_order():
    workspace, other = WorkspaceFactory(), WorkspaceFactory()
    mine = _threads(workspace, 45, undated=9)
    _threads(other, 20)
    expected = _in_order(mine)
    forward, back = _walk(workspace, size=7)
    assert [pk for page in forward for pk in page] == expected  # each once, in order, ties and NULLs included
    assert all(len(page) == 7 for page in forward[:-1]) and 1 <= len(forward[-1]) <= 7
    assert [pk for page in back for pk in page] == expected
    assert all(1 <= len(page) <= 7 for page in back)


def test_pages_that_end_exactly_on_a_page_size_and_an_empty_list():
    workspace = WorkspaceFactory()
    with workspace_context(workspace):
        assert thread_page(workspace_id=workspace.pk, size=5).threads == []
    mine = _threads(workspace, 10)
    forward, back = _walk(workspace, size=5)
    assert forward == back == [_in_order(mine)[:5], _in_order(mine)[5:]]


def test_search_pages_by_keyset_too():
    workspace = WorkspaceFactory()
    wanted = _threads(workspace, 23, undated=2, subject="Northwind")
    _threads(workspace, 30, subject="Acme")
    forward, back = _walk(workspace, size=4, query="northwind")
    assert [pk for page in forward for pk in page] == _in_order(wanted)
    assert [pk for page in back for pk in page] == _in_order(wanted)


def test_a_cursor_round_trips_and_a_bad_one_is_refused_by_name():
    at = ThreadCursor(datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=UTC), 42)
    assert ThreadCursor.decode(at.encode()) == at
    assert ThreadCursor.decode(ThreadCursor(None, 7).encode()) == ThreadCursor(None, 7)
    for bad in ("", "42", "yesterday~3", "2025-03-01T09:00:00~3", "none~x"):
        with pytest.raises(CursorInvalid):
            ThreadCursor.decode(bad)


@pytest.fixture
def member_client(client):
    workspace = WorkspaceFactory()
    user = UserFactory()
    with workspace_context(workspace):
        MembershipFactory(workspace=workspace, user=user)
    client.force_login(user)
    client.workspace = workspace
    return client


def test_the_page_walks_by_its_older_and_newer_links(member_client):
    workspace = member_client.workspace
    mine = _threads(workspace, 120)
    url = reverse("threads:list", kwargs={"workspace_slug": workspace.slug})
    seen, params, pages = [], {}, 0
    while True:
        with CaptureQueriesContext(connection) as captured:
            page = member_client.get(url, params)
        assert page.status_code == 200
        assert not any("OFFSET" in q["sql"] or "COUNT(" in q["sql"] for q in captured.captured_queries)
        seen += [int(pk) for pk in re.findall(rb"/threads/(\d+)/", page.content)]
        pages += 1
        older = re.search(rb'href="\?([^"]*)" rel="next"', page.content)
        if not older:
            break
        params = {k: v[0] for k, v in parse_qs(unescape(older[1].decode())).items()}
        assert "after" in params
    assert pages == 3 and seen == _in_order(mine)
    newer = re.search(rb'href="\?([^"]*)" rel="prev"', page.content)
    back = member_client.get(url, {k: v[0] for k, v in parse_qs(unescape(newer[1].decode())).items()})
    assert [int(pk) for pk in re.findall(rb"/threads/(\d+)/", back.content)] == _in_order(mine)[50:100]
    assert b"Newest" in back.content


def test_a_bad_page_link_is_a_400_that_says_so(member_client):
    url = reverse("threads:list", kwargs={"workspace_slug": member_client.workspace.slug})
    page = member_client.get(url, {"after": "not-a-cursor"})
    assert page.status_code == 400 and b"Bad page link" in page.content


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.django_db(transaction=True)
def test_a_deep_page_reads_about_a_page_of_rows_from_the_index():
    """On committed, ANALYZEd data, as the app role under RLS: the query of the first page, of
    a page in the middle and of the last reads about a page of rows (OFFSET would read all
    the rows before the page), straight from the (workspace, last_message_at, id) index,
    with no sort."""
    workspace, other = WorkspaceFactory(), WorkspaceFactory()
    mine = _threads(workspace, 3000)
    _threads(other, 1000)
    with owner_connection() as conn, conn.cursor() as cursor:
        cursor.execute("ANALYZE threads_thread")
    order = _in_order(mine)
    by_pk = {t.pk: t for t in mine}
    for depth in (None, 1500, 2950):
        after = ThreadCursor.of(by_pk[order[depth - 1]]) if depth else None
        with workspace_context(workspace):
            with CaptureQueriesContext(connection) as captured:
                page = thread_page(workspace_id=workspace.pk, after=after, size=50)
            assert [t.pk for t in page.threads] == order[depth or 0 :][:50]
            (sql,) = [q["sql"] for q in captured.captured_queries if "threads_thread" in q["sql"]]
            with connection.cursor() as cursor:
                # A few thousand rows fit in a few pages, where reading them all and sorting can
                # cost the planner less than the index; at size it cannot. So that only an
                # unusable condition falls back to reading the rows before the page:
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("SET LOCAL enable_bitmapscan = off")
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
                plan = cursor.fetchone()[0]
        plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
        nodes = list(_nodes(plan))
        assert not any(n["Node Type"] == "Sort" for n in nodes), (depth, sql, json.dumps(plan, indent=1))
        (scan,) = [n for n in nodes if n.get("Relation Name") == "threads_thread"]
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan") and scan["Index Name"] == "thread_ws_last_message"
        read = scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0)
        assert read <= 51 + 5, (depth, read, plan)
        if depth:  # the cursor is the index's condition, not a filter over the rows before it
            assert "ROW" in scan["Index Cond"].upper(), scan
