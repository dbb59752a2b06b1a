"""Values read like values on every page: the deal pages, the thread page, the CRM page.

Through the test client, as a viewer (who reads) and a reviewer (who decides), against the
real database under row-level security; the browser versions are in test_browser_values.py.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deals.services import deal_facts_update, deal_readiness_compute
from deals.tests.factories import DealFactory, ThreadLinkFactory
from extraction.tests.factories import FieldValueFactory
from jobs.models import Job
from review.models import ReviewItem
from review.services import review_item_resolve
from threads.highlight import span_trimmed, text_marked
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEXT = "Hi Sam,\nOur budget is $60,000 \nfor this year. Maria Lopez (CFO) signs.\nThanks, Dana"
QUOTE = "budget is $60,000"


@pytest.fixture
def ws():
    return workspace_create(slug="acme", name="Acme Sales")


def member(ws, username, role):
    user = UserFactory(username=username)
    membership_add(workspace=ws, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client, user


def budget_thread(ws, *, status="proposed", with_item=True, stage="qualifiedtobuy", text=TEXT, item_status="open"):
    """A thread linked to a HubSpot deal, with a budget of $60,000 cited with a trailing space
    (``text`` holds ``QUOTE`` followed by a space); the browser tests use it too."""
    with workspace_context(ws):
        deal = DealFactory(workspace=ws, title="Northwind pilot", stage=stage, amount=None)
        thread = ThreadFactory(workspace=ws, subject="Northwind budget")
        ThreadLinkFactory(workspace=ws, thread=thread, deal=deal)
        message = MessageFactory(workspace=ws, thread=thread, reply_text=text, text=text)
        start = text.index(QUOTE)
        evidence = [{"message_id": message.pk, "start": start, "end": start + len(QUOTE) + 1, "quote": QUOTE + " "}]
        value = FieldValueFactory(
            workspace=ws,
            run__thread=thread,
            field_key="budget",
            field_value_json={"amount": 60000.0, "currency": "USD"},
            status=status,
            evidence_json=evidence,
        )
        item = None
        if with_item:
            item = ReviewItem.objects.create(
                workspace=ws,
                thread=thread,
                field_value=value,
                reason="low_confidence",
                subject_key=f"field_value:{value.pk}",
                status=item_status,
                payload_json={
                    "field": "budget",
                    "proposed_value": value.field_value_json,
                    "confidence": 0.6,
                    "evidence": evidence,
                    "grounded": True,
                    "other_values": [],
                },
            )
    return deal, thread, message, value, item


def test_highlights_cover_words_not_the_spaces_around_them():
    assert span_trimmed("a  quote \n b", 1, 10) == (3, 8)
    pieces = text_marked(TEXT, [(TEXT.index(QUOTE) - 1, TEXT.index(QUOTE) + len(QUOTE) + 2)], message_id=7)
    marked = [p for p in pieces if p.mark_id]
    assert [p.text for p in marked] == [QUOTE]
    assert "".join(p.text for p in pieces) == TEXT  # nothing lost around the mark


def test_deal_page_shows_money_stage_labels_and_quotes_inline(ws):
    deal, thread, message, value, item = budget_thread(ws, status="verified", with_item=False)
    deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)
    deal_readiness_compute(workspace_id=ws.pk, deal_id=deal.pk)
    client, _ = member(ws, "vera", "viewer")

    html = client.get(reverse("deals:detail", kwargs={"workspace_slug": "acme", "pk": deal.pk})).content.decode()

    assert "$60,000" in html
    assert "{&#x27;amount&#x27;" not in html and "60000.0" not in html
    assert "Qualified to buy" in html and "qualifiedtobuy" not in html
    start = TEXT.index(QUOTE)
    assert f'href="/w/acme/threads/{thread.pk}/?mark={message.pk}%3A{start}%3A{start + len(QUOTE) + 1}' in html
    assert f"“{QUOTE}”" in html  # the quote inline, without its trailing space


def test_deal_page_follows_the_readers_locale(ws):
    deal, *_ = budget_thread(ws, status="verified", with_item=False)
    deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)
    client, _ = member(ws, "vera", "viewer")
    url = reverse("deals:detail", kwargs={"workspace_slug": "acme", "pk": deal.pk})
    assert "60.000\u00a0$" in client.get(url, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9").content.decode()


def test_deal_list_shows_no_bar_for_a_readiness_never_computed(ws):
    with workspace_context(ws):
        DealFactory(workspace=ws, title="Fresh deal")
    client, _ = member(ws, "vera", "viewer")
    html = client.get(reverse("deals:list", kwargs={"workspace_slug": "acme"})).content.decode()
    row = html[html.index("Fresh deal") : html.index("</tr>", html.index("Fresh deal"))]
    assert "not computed" in row and "<meter" not in row and "0%" not in row
    assert "Qualified to buy" in row


def test_a_thread_link_marks_the_cited_span_on_the_thread_page(ws):
    _, thread, message, *_ = budget_thread(ws)
    client, _ = member(ws, "vera", "viewer")
    start = TEXT.index(QUOTE)
    url = reverse("threads:detail", kwargs={"workspace_slug": "acme", "thread_id": thread.pk})
    html = client.get(url, {"mark": f"{message.pk}:{start}:{start + len(QUOTE) + 1}"}).content.decode()
    assert f'<mark class="evidence" id="mark-{message.pk}-{start}">{QUOTE}</mark> \n' in html
    # Malformed marks are ignored, not an error.
    assert client.get(url, {"mark": ["x", f"{message.pk}:9:3", "1:2"]}).status_code == 200


def test_thread_page_lists_its_values_states_items_and_deal(ws):
    deal, thread, message, value, item = budget_thread(ws)
    with workspace_context(ws):
        FieldValueFactory(
            workspace=ws,
            run__thread=thread,
            field_key="authority",
            field_value_json={"name": "Maria Lopez", "title": "CFO"},
            status="verified",
        )
        FieldValueFactory(
            workspace=ws, run__thread=thread, field_key="need", field_value_json="forecasting", status="rejected"
        )
        FieldValueFactory(
            workspace=ws,
            run__thread=thread,
            field_key="timeline",
            field_value_json={"date": "2026-09-30", "phrase": "end of Q3"},
            status="accepted",
        )
    client, _ = member(ws, "vera", "viewer")
    html = client.get(
        reverse("threads:detail", kwargs={"workspace_slug": "acme", "thread_id": thread.pk})
    ).content.decode()

    assert "$60,000" in html and "waiting for review" in html
    assert f'href="/w/acme/review/items/{item.pk}/"' in html
    assert "Maria Lopez, CFO" in html and "approved by a reviewer" in html
    assert "forecasting" in html and "rejected" in html
    assert "Sep 30, 2026 (end of Q3)" in html and "accepted by policy" in html
    assert f'href="/w/acme/deals/{deal.pk}/"' in html and "Qualified to buy" in html
    assert f'href="/w/acme/crm/threads/{thread.pk}/"' in html
    # In the schema's order: budget, authority, need, timeline.
    assert (
        html.index('data-field="budget"') < html.index('data-field="authority"') < html.index('data-field="timeline"')
    )


def test_thread_page_without_values_or_deal_says_so(ws):
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws, subject="Quiet")
        MessageFactory(workspace=ws, thread=thread)
    client, _ = member(ws, "vera", "viewer")
    html = client.get(
        reverse("threads:detail", kwargs={"workspace_slug": "acme", "thread_id": thread.pk})
    ).content.decode()
    assert 'id="values"' not in html and "Not linked to a deal." in html


def test_crm_page_shows_the_pending_write_during_the_undo_window(ws):
    deal, thread, message, value, item = budget_thread(ws)
    _, rita = member(ws, "rita", "reviewer")
    viewer, _ = member(ws, "vera", "viewer")
    url = reverse("crm:thread", kwargs={"workspace_slug": "acme", "pk": thread.pk})
    assert 'id="pending-writes"' not in viewer.get(url).content.decode()

    with workspace_context(ws):
        review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=item.version)
        job = Job.objects.get(task="crm_sync_thread", status="queued", dedupe_key=f"crm-sync:{thread.pk}")
    assert job.run_after > timezone.now() + timedelta(seconds=1)  # held for the undo window

    html = viewer.get(url).content.decode()
    assert 'id="pending-writes"' in html and "once the undo window has passed" in html
    assert job.run_after.strftime("%Y-%m-%d %H:%M:%S") in html
    assert "update_deal" in html and "60,000" in html and "create_note" in html
    assert "No CRM writes." not in html and "No CRM writes recorded yet." in html
    deal_html = viewer.get(reverse("crm:deal", kwargs={"workspace_slug": "acme", "pk": deal.pk})).content.decode()
    assert 'id="pending-writes"' in deal_html


def test_crm_log_shows_payloads_as_fields_not_python_dicts(ws):
    from crm.services import crm_sync_thread

    deal, thread, message, value, item = budget_thread(ws, status="verified", with_item=False)
    crm_sync_thread(workspace_id=ws.pk, thread_id=thread.pk)
    client, _ = member(ws, "vera", "viewer")
    html = client.get(reverse("crm:thread", kwargs={"workspace_slug": "acme", "pk": thread.pk})).content.decode()
    assert '<dl class="payload">' in html and "<dt>body</dt>" in html
    assert "\\n" not in html and "{&#x27;" not in html
    assert 'id="pending-writes"' not in html


def test_a_custom_pipeline_stage_shows_the_label_the_sync_kept(ws):
    with workspace_context(ws):
        deal = DealFactory(workspace=ws, title="Renewal", stage="99001", stage_label="Renewal negotiation")
    client, _ = member(ws, "vera", "viewer")
    html = client.get(reverse("deals:detail", kwargs={"workspace_slug": "acme", "pk": deal.pk})).content.decode()
    assert '<span class="deal-stage">Renewal negotiation</span>' in html
    assert (
        "Renewal negotiation" in client.get(reverse("deals:list", kwargs={"workspace_slug": "acme"})).content.decode()
    )


def test_the_admin_shows_values_through_the_same_formatter(ws):
    from django.contrib import admin

    from crm.admin import CrmWriteLogAdmin
    from crm.models import CrmWriteLog
    from deals.admin import DealAdmin, DealFactAdmin
    from deals.models import Deal, DealFact
    from extraction.admin import FieldValueAdmin
    from extraction.models import FieldValue
    from review.admin import ReviewItemAdmin

    deal, thread, message, value, item = budget_thread(ws, status="verified")
    deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)
    with workspace_context(ws):
        fact = DealFact.objects.get(deal=deal, key="budget")
        row = CrmWriteLog(payload_json={"body": "a\nb <i>", "properties": {"amount": "60000.00"}})
        Deal.objects.filter(pk=deal.pk).update(amount=60000)
        deal.refresh_from_db()
    assert FieldValueAdmin(FieldValue, admin.site).shown_value(value) == "$60,000"
    assert DealFactAdmin(DealFact, admin.site).shown_value(fact) == "$60,000"
    assert ReviewItemAdmin(ReviewItem, admin.site).shown_value(item) == "$60,000"
    assert DealAdmin(Deal, admin.site).stage_label(deal) == "Qualified to buy"
    assert DealAdmin(Deal, admin.site).shown_amount(deal) == "60,000"
    shown = CrmWriteLogAdmin(CrmWriteLog, admin.site).shown_payload(row)
    assert shown == "<div><strong>body</strong>: a<br>b &lt;i&gt;</div><div><strong>amount</strong>: 60,000</div>"


def test_evidence_is_stored_without_the_white_space_at_its_ends():
    from extraction.grounding import evidence_ground

    text = "Hi.\nOur budget is $60,000 \nfor this year."
    start = text.index(QUOTE)
    span = {"message_id": 1, "start": start - 1, "end": start + len(QUOTE) + 2, "quote": f" {QUOTE} \n"}
    [grounded], ok = evidence_ground([span], {1: text})
    assert ok and grounded["grounded"] == "exact"
    assert (grounded["start"], grounded["end"], grounded["quote"]) == (start, start + len(QUOTE), QUOTE)


def test_the_crm_note_writes_values_as_people_read_them(ws):
    from crm.models import CrmWriteLog
    from crm.services import crm_sync_thread

    _, thread, *_ = budget_thread(ws, status="verified", with_item=False)
    crm_sync_thread(workspace_id=ws.pk, thread_id=thread.pk)
    with workspace_context(ws):
        note = CrmWriteLog.objects.get(thread=thread, action="create_note")
    assert "budget: $60,000 — “budget is $60,000”" in note.payload_json["body"]
    assert "60000.0" not in note.payload_json["body"]


def test_thread_page_queries_do_not_grow_with_its_values(ws):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, thread, *_ = budget_thread(ws)
    client, _ = member(ws, "vera", "viewer")
    url = reverse("threads:detail", kwargs={"workspace_slug": "acme", "thread_id": thread.pk})
    client.get(url)  # the first visit keeps the workspace in the session (a write the next ones skip)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    with workspace_context(ws):
        for key in ("need", "company", "next_step", "competitors"):
            FieldValueFactory(workspace=ws, run__thread=thread, field_key=key, field_value_json="x", status="accepted")
    with CaptureQueriesContext(connection) as five:
        assert client.get(url).status_code == 200
    assert len(five) == len(one)
