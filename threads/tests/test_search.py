"""Thread search: words of the subject and of the participants' addresses, kept by a trigger,
found through an index that row-level security lets PostgreSQL use."""

import pytest
from django.db import connection
from django.urls import reverse

from threads.models import Thread, ThreadTerm
from threads.selectors import search_words, thread_list
from threads.tests.factories import ThreadFactory
from workspaces.db import owner_connection
from workspaces.rls import workspace_context
from workspaces.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def _found(query: str) -> list[str]:
    return [t.subject for t in thread_list(query=query)]


def test_search_finds_word_prefixes_of_subject_and_addresses(workspace):
    with workspace_context(workspace):
        ThreadFactory(
            workspace=workspace, subject="Re: Pricing for Northwind3", participants=["dana@northwind.example"]
        )
        ThreadFactory(workspace=workspace, subject="Security review", participants=["cfo@acme.example"])
        ThreadFactory(workspace=workspace, subject="Renewal", primary_contact_email="Leo.Brandt@Globex.example")
        assert _found("northwind3") == ["Re: Pricing for Northwind3"]
        assert _found("NORTH") == ["Re: Pricing for Northwind3"]  # a prefix, any case
        assert _found("cfo@acme.example") == ["Security review"]  # a whole address
        assert _found("acme.example") == ["Security review"]  # its pieces
        assert _found("leo.brandt@globex") == ["Renewal"]  # the contact, lower-cased
        assert _found("security acme") == ["Security review"]  # every word must match
        assert _found("security northwind") == []
        assert _found("no-such-company") == []
        assert len(_found("")) == 3


def test_terms_follow_the_thread_through_updates_and_deletes(workspace):
    with workspace_context(workspace):
        thread = ThreadFactory(workspace=workspace, subject="Pilot plan", participants=["ana@customer.example"])
        thread.subject, thread.participants = "Order form", ["ana@customer.example", "bo@partner.example"]
        thread.save()
        assert _found("pilot") == []
        assert _found("order") == ["Order form"] and _found("partner") == ["Order form"]
        Thread.objects.filter(pk=thread.pk).update(message_count=5)  # no term changes: nothing rewritten
        assert ThreadTerm.objects.filter(thread_id=thread.pk).count() == len(
            {
                "order",
                "form",
                "ana@customer.example",
                "ana",
                "customer",
                "example",
                "bo@partner.example",
                "bo",
                "partner",
            }
        )
        thread.delete()
        assert ThreadTerm.objects.filter(thread_id=thread.pk).count() == 0


def test_another_workspaces_threads_are_not_found(workspace):
    other = WorkspaceFactory()
    with workspace_context(other):
        ThreadFactory(workspace=other, subject="Secret merger")
    with workspace_context(workspace):
        assert _found("secret") == []
        assert ThreadTerm.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_search_is_served_by_the_terms_index_under_row_level_security():
    workspace = WorkspaceFactory()
    with workspace_context(workspace):
        for n in range(30):
            ThreadFactory(workspace=workspace, subject=f"Deal {n}")
        # Enough other terms that reading the workspace's terms whole costs more than the range.
        filler = ThreadFactory(workspace=workspace, subject="Filler")
        ThreadTerm.objects.bulk_create(
            ThreadTerm(workspace=workspace, thread=filler, term=f"filler{n}") for n in range(3000)
        )
    # Committed, then analyzed as the owner (as autovacuum would): the plan then follows the
    # data, not whatever statistics earlier tests left on these tables.
    with owner_connection() as conn, conn.cursor() as cursor:
        cursor.execute("ANALYZE threads_thread, threads_threadterm")
    with workspace_context(workspace):
        sql, params = thread_list(query="deal 7").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # so that only an unusable index falls back to one
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "threadterm_ws_term" in plan, plan
    # The range is the index's condition, not a filter over every term the index holds.
    assert any("Index Cond" in line and "term" in line and ">=" in line for line in plan.splitlines()), plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.django_db(transaction=True)
def test_a_search_reads_its_matches_by_id_not_every_thread_of_the_workspace():
    """The matching ids are read once as an array and their threads by primary key: no join
    of the workspace's threads against the terms (which read a large workspace whole)."""
    import json
    from datetime import timedelta

    from django.utils import timezone

    workspace = WorkspaceFactory()
    now = timezone.now()
    with workspace_context(workspace):
        Thread.objects.bulk_create(
            Thread(
                workspace=workspace,
                subject=f"Deal {n}" if n < 20 else f"Filler {n}",
                last_message_at=now - timedelta(hours=n),
            )
            for n in range(1500)
        )
    with owner_connection() as conn, conn.cursor() as cursor:
        cursor.execute("ANALYZE threads_thread, threads_threadterm")
    with workspace_context(workspace):
        sql, params = thread_list(query="deal", workspace_id=workspace.pk)[:51].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            raw = cursor.fetchone()[0]
        assert len(thread_list(query="deal", workspace_id=workspace.pk)) == 20
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes, stack = [], [plan]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack += node.get("Plans", [])
    assert not [n["Node Type"] for n in nodes if "Join" in n["Node Type"] or n["Node Type"] == "Nested Loop"], plan
    read = sum(
        n.get("Actual Rows", 0) * n.get("Actual Loops", 1) + n.get("Rows Removed by Filter", 0)
        for n in nodes
        if n.get("Relation Name") == "threads_thread"
    )
    assert read <= 20, json.dumps(plan, indent=1)


def test_search_words_split_like_the_trigger():
    assert search_words("  Acme.Example  cfo@acme.example (Northwind)  acme ") == [
        "acme",
        "example",
        "cfo@acme.example",
        "northwind",
    ]
    assert len(search_words(" ".join(f"w{n}" for n in range(20)))) == 8


def test_the_threads_page_searches(client, workspace):
    user = UserFactory()
    with workspace_context(workspace):
        MembershipFactory(workspace=workspace, user=user)
        ThreadFactory(workspace=workspace, subject="Budget", participants=["cfo@acme.example"])
        ThreadFactory(workspace=workspace, subject="Deal 1")
    client.force_login(user)
    url = reverse("threads:list", kwargs={"workspace_slug": workspace.slug})
    page = client.get(url, {"q": "budg"})
    assert b"Budget" in page.content and b"Deal 1" not in page.content


def test_the_list_names_the_workspace_to_the_planner_and_rls_still_decides(workspace, client):
    """The constant lets PostgreSQL see a large workspace's share of the rows (its plan walks
    the (workspace, last_message_at) index for a page instead of sorting every thread); the
    policy still applies, so another workspace's id finds nothing."""
    other = WorkspaceFactory()
    with workspace_context(other):
        ThreadFactory(workspace=other, subject="Theirs")
    with workspace_context(workspace):
        ThreadFactory(workspace=workspace, subject="Ours")
        listed = thread_list(workspace_id=workspace.pk)
        sql, params = listed.query.sql_with_params()
        assert '"threads_thread"."workspace_id" = %s' in sql and workspace.pk in params
        assert [t.subject for t in listed] == ["Ours"]
        assert list(thread_list(workspace_id=other.pk)) == []
    user = UserFactory()
    with workspace_context(workspace):
        MembershipFactory(workspace=workspace, user=user)
    client.force_login(user)
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("threads:list", kwargs={"workspace_slug": workspace.slug}))
    assert b"Ours" in page.content and b"Theirs" not in page.content
    listing = [q["sql"] for q in captured.captured_queries if 'FROM "threads_thread"' in q["sql"]]
    assert len(listing) == 1 and f'"threads_thread"."workspace_id" = {workspace.pk}' in listing[0]
