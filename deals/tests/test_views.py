"""The deals list and a deal's page through the test client."""

import pytest
from django.test import Client
from django.urls import reverse

from crm.tests.factories import CrmWriteLogFactory
from deals.services import deal_facts_update, deal_readiness_compute
from deals.tests.factories import DealFactory, ThreadLinkFactory
from extraction.tests.factories import FieldValueFactory
from threads.tests.factories import MessageFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws():
    return workspace_create(slug="acme", name="Acme Sales")


@pytest.fixture
def client(ws):
    user = UserFactory(username="vera")
    membership_add(workspace=ws, user=user, role="viewer")
    client = Client()
    client.force_login(user)
    return client


def ready_deal(ws, title, values):
    with workspace_context(ws):
        deal = DealFactory(workspace=ws, title=title)
        link = ThreadLinkFactory(workspace=ws, deal=deal, thread__subject=f"About {title}")
        message = MessageFactory(workspace=ws, thread=link.thread, reply_text="Our budget is $25k.")
        for key, value, status in values:
            FieldValueFactory(
                workspace=ws,
                run__thread=link.thread,
                field_key=key,
                field_value_json=value,
                status=status,
                evidence_json=[{"message_id": message.pk, "start": 4, "end": 19, "quote": "budget is $25k"}],
            )
    deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)
    deal_readiness_compute(workspace_id=ws.pk, deal_id=deal.pk)
    return deal, link, message


def test_deal_list_sorts_by_readiness_and_by_missing_keys(ws, client):
    ready_deal(ws, "Low", [("budget", {"amount": 1}, "accepted")])
    ready_deal(ws, "High", [("budget", {"amount": 1}, "verified"), ("need", "forecasting", "verified")])
    with workspace_context(ws):
        DealFactory(workspace=ws, title="Fresh")  # never computed
    url = reverse("deals:list", kwargs={"workspace_slug": "acme"})

    html = client.get(url).content.decode()
    assert html.index("High") < html.index("Low") < html.index("Fresh")
    assert "not computed" in html
    html = client.get(url + "?sort=readiness").content.decode()
    assert html.index("Fresh") < html.index("Low") < html.index("High")
    html = client.get(url + "?sort=missing").content.decode()
    assert html.index("High") < html.index("Low") < html.index("Fresh")
    assert client.get(url + "?framework=meddic").status_code == 200


def test_deal_list_query_count_does_not_grow_with_deals(ws, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("deals:list", kwargs={"workspace_slug": "acme"})
    ready_deal(ws, "Deal 0", [("budget", {"amount": 0}, "accepted")])
    client.get(url)  # the first visit keeps the workspace in the session (a write the next ones skip)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for n in range(1, 6):
        ready_deal(ws, f"Deal {n}", [("budget", {"amount": n}, "accepted")])
    with CaptureQueriesContext(connection) as six:
        assert client.get(url).status_code == 200
    assert len(six) == len(one)


def test_deal_list_goes_by_pages_of_fifty_keeping_framework_and_sort(ws, client):
    import re

    from deals.views import DEALS_PER_PAGE

    with workspace_context(ws):
        DealFactory.create_batch(2 * DEALS_PER_PAGE + 20, workspace=ws, title=factory_title())
    url = reverse("deals:list", kwargs={"workspace_slug": "acme"})
    titles = []
    for number in (1, 2, 3):
        html = client.get(f"{url}?framework=bant&sort=title&page={number}").content.decode()
        shown = re.findall(r">(Deal \d{3})</a>", html)
        assert len(shown) == (DEALS_PER_PAGE if number < 3 else 20), (number, len(shown))
        assert f"page {number} of 3 (120 deals)" in html
        if number < 3:
            assert f"?framework=bant&amp;sort=title&amp;page={number + 1}" in html
        titles += shown
    assert titles == sorted(titles) and len(set(titles)) == 120  # every deal once, in order

    bad = client.get(f"{url}?page=9")
    assert bad.status_code == 400 and "pages 1 to 3" in bad.content.decode()
    assert client.get(f"{url}?page=two").status_code == 400


def factory_title():
    import factory

    return factory.Sequence(lambda n: f"Deal {n:03d}")


def test_deal_page_shows_gauge_keys_states_evidence_links_threads_and_crm_log(ws, client):
    deal, link, message = ready_deal(
        ws, "Northwind pilot", [("budget", {"amount": 25000}, "verified"), ("authority", {"name": "Dan"}, "accepted")]
    )
    with workspace_context(ws):
        CrmWriteLogFactory(workspace=ws, deal=deal, status="dry_run", payload_json={"amount": 25000})

    response = client.get(reverse("deals:detail", kwargs={"workspace_slug": "acme", "pk": deal.pk}))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'aria-label="BANT readiness 48 percent"' in html  # (1.0 + 0.9) / 4 = 0.475
    # The quote links to its thread with the span marked, landing on the mark.
    assert f"/w/acme/threads/{link.thread_id}/?mark={message.pk}%3A4%3A19#mark-{message.pk}-4" in html
    assert "“budget is $25k”" in html
    assert "confirmed" in html and "suggested" in html and "missing" in html
    assert "About Northwind pilot" in html
    crm_page = reverse("crm:deal", kwargs={"workspace_slug": "acme", "pk": deal.pk})
    assert f'href="{crm_page}"' in html  # the write log is the CRM app's page
    assert "Dry run" in client.get(crm_page).content.decode()


def test_deal_page_of_another_workspace_is_not_found(ws, client):
    other = workspace_create(slug="other", name="Other")
    with workspace_context(other):
        deal = DealFactory(workspace=other)
    assert client.get(reverse("deals:detail", kwargs={"workspace_slug": "acme", "pk": deal.pk})).status_code == 404


def test_a_fact_conflict_shows_both_values_in_the_console(ws, client):
    from review.models import ReviewItem

    deal, link, _ = ready_deal(ws, "Two budgets", [("budget", {"amount": 40000}, "accepted")])
    with workspace_context(ws):
        other = ThreadLinkFactory(workspace=ws, deal=deal)
        message = MessageFactory(workspace=ws, thread=other.thread, reply_text="Budget is $90k now.")
        FieldValueFactory(
            workspace=ws,
            run__thread=other.thread,
            field_value_json={"amount": 90000},
            status="accepted",
            evidence_json=[{"message_id": message.pk, "start": 0, "end": 6, "quote": "Budget"}],
        )
    deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)
    with workspace_context(ws):
        item = ReviewItem.objects.get(reason="fact_conflict")

    html = client.get(reverse("review:item", kwargs={"workspace_slug": "acme", "pk": item.pk})).content.decode()

    # Shown for people; without a currency the figure is shown alone, not guessed.
    assert "Deal facts disagree" in html and "40,000" in html and "90,000" in html
