"""The review item page of a huge message: the first N characters, plus a window around each
evidence span beyond them (cut in SQL), so every highlight still shows at the right offsets."""

import pytest
from django.test import Client
from django.urls import reverse

from review.selectors import item_messages
from review.tests.factories import ReviewItemFactory
from threads.models import Message
from threads.services import message_ingest
from threads.tests.mail import mail
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 1000
LINE = "We are reviewing the proposal with the team and will come back to you.\n"
EARLY = "Hi Sam, the CFO signs off."
BUDGET = "Our budget is $40,000 for this year."
TIMELINE = "We decide by the end of September."
BODY = EARLY + "\n" + LINE * 30_000 + BUDGET + "\n" + LINE * 3 + TIMELINE + "\n" + LINE * 20_000 + "Bye\n"
PAGE_OVERHEAD = 16_000  # the layout, the decision panel, headers and links of one item page


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.THREADLINE_BODY_DISPLAY_MAX_CHARS = LIMIT


@pytest.fixture
def ws():
    return workspace_create(slug="acme", name="Acme Sales")


@pytest.fixture
def reviewer(ws):
    user = UserFactory(username="rita")
    membership_add(workspace=ws, user=user, role="reviewer")
    client = Client()
    client.force_login(user)
    return client


def span(text, quote, message_pk):
    start = text.index(quote)
    return {"message_id": message_pk, "start": start, "end": start + len(quote), "quote": quote}


def evidence_item(ws, message_pk: int, thread_id: int, quotes):
    """A budget review item whose evidence is each quote, found in the message's reply text."""
    with workspace_context(ws):
        reply = Message.objects.filter(pk=message_pk).values_list("reply_text", flat=True).get()
        evidence = [span(reply, quote, message_pk) for quote in quotes]
        item = ReviewItemFactory(
            workspace=ws,
            thread_id=thread_id,
            payload_json={
                "field": "budget",
                "proposed_value": {"amount": 40000, "currency": "USD"},
                "confidence": 0.6,
                "evidence": evidence,
                "grounded": True,
                "other_values": [],
            },
        )
    return item, reply, evidence


def big_item(ws, quotes=(EARLY, BUDGET, TIMELINE)):
    result = message_ingest(workspace=ws, raw=mail("huge@x", body=BODY), source="test")
    message_ingest(workspace=ws, raw=mail("reply@x", in_reply_to="huge@x", body="Thanks!", day=1), source="test")
    with workspace_context(ws):
        Message.objects.filter(pk=result.message_pk).update(folder="Customers/Acme")
    return evidence_item(ws, result.message_pk, result.thread_id, quotes)


def item_url(ws, item):
    return reverse("review:item", kwargs={"workspace_slug": ws.slug, "pk": item.pk})


def test_evidence_beyond_the_cut_is_highlighted_on_a_small_page(ws, reviewer, django_assert_max_num_queries):
    item, reply, _ = big_item(ws)
    assert len(reply) > 3_000_000
    with django_assert_max_num_queries(30):
        page = reviewer.get(item_url(ws, item))
    body = page.content.decode()
    assert page.status_code == 200
    assert len(page.content) < LIMIT + PAGE_OVERHEAD
    for quote in (EARLY, BUDGET, TIMELINE):
        assert f'<mark class="evidence">{quote}</mark>' in body
    assert f"showing the first 1,000 of {len(reply):,} characters" in body
    assert "characters skipped" in body
    assert "Customers/Acme" in body
    assert "Thanks!" in body
    with workspace_context(ws):
        pk = Message.objects.get(message_id="huge@x").pk
    whole = reverse("threads:message-text", kwargs={"workspace_slug": ws.slug, "message_id": pk}) + "?part=reply"
    assert whole in body


def test_window_offsets_match_the_source_text(ws):
    item, reply, evidence = big_item(ws)
    with workspace_context(ws):
        entry = next(e for e in item_messages(item=item) if e["has_evidence"])
    marked = [seg.text for seg in entry["segments"] if seg.highlight]
    assert marked == [EARLY, BUDGET, TIMELINE]
    # Every piece that is not a gap is the source text at its own offset.
    for seg in entry["segments"]:
        if not seg.gap:
            assert reply[seg.start : seg.start + len(seg.text)] == seg.text
    # BUDGET and TIMELINE are a few lines apart: one window, not two.
    assert sum(1 for seg in entry["segments"] if seg.gap) == 2  # before the window, and after it


def test_a_span_across_the_cut_is_highlighted_whole(ws, settings):
    item, reply, evidence = big_item(ws, quotes=(BUDGET,))
    settings.THREADLINE_BODY_DISPLAY_MAX_CHARS = evidence[0]["start"] + 5
    with workspace_context(ws):
        entry = next(e for e in item_messages(item=item) if e["has_evidence"])
    assert "".join(seg.text for seg in entry["segments"] if seg.highlight) == BUDGET
    assert not any(seg.gap for seg in entry["segments"][:3])


def test_small_messages_are_shown_whole(ws, reviewer, settings):
    settings.THREADLINE_BODY_DISPLAY_MAX_CHARS = 100_000
    item, reply, _ = big_item(ws, quotes=(EARLY,))
    with workspace_context(ws):
        Message.objects.filter(message_id="huge@x").update(reply_text=EARLY + " and more.")
    body = reviewer.get(item_url(ws, item)).content.decode()
    assert f'<mark class="evidence">{EARLY}</mark> and more.' in body
    assert "showing the first" not in body and "skipped" not in body
