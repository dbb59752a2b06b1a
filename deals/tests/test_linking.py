"""Linking scenarios on the real database, and the scoring arithmetic without it."""

from datetime import UTC, datetime

import pytest

from deals import linking
from deals.models import AssociationCandidate, ThreadLink
from deals.services import thread_link_update
from deals.tests.factories import DealFactory
from jobs.models import Job
from review.models import ReviewItem
from review.services import association_resolve
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ws():
    workspace = workspace_create(slug="team", name="Team", internal_domains=["team.example"])
    with workspace_context(workspace):
        yield workspace


def thread_with(ws, subject, *messages):
    """messages: (from, to, cc) address tuples, in order."""
    people = sorted({a for m in messages for a in (m[0], *m[1], *m[2])})
    thread = ThreadFactory(
        workspace=ws, subject=subject, base_subject=subject.casefold(), participants=people, last_message_at=NOW
    )
    for sender, to, cc in messages:
        MessageFactory(workspace=ws, thread=thread, from_email=sender, to_json=list(to), cc_json=list(cc))
    return thread


def deal(ws, title, **kwargs):
    kwargs.setdefault("primary_domain", "acme.example")
    kwargs.setdefault("crm_updated_at", NOW)
    return DealFactory(workspace=ws, title=title, **kwargs)


def link(ws, thread):
    return thread_link_update(workspace_id=ws.pk, thread_id=thread.pk)


def test_two_open_deals_at_one_company_domain_go_to_review_with_per_signal_scores(ws):
    a = deal(ws, "Acme support pilot")
    b = deal(ws, "Acme warehouse rollout")
    thread = thread_with(ws, "Question about the pilot", ("sara@acme.example", ["rep@team.example"], []))

    result = link(ws, thread)

    assert result.outcome == "review"
    assert not ThreadLink.objects.filter(thread=thread).exists()
    candidate = AssociationCandidate.objects.get(thread=thread, status="open")
    assert {c["deal_id"] for c in candidate.candidates_json} == {a.pk, b.pk}
    for row in candidate.candidates_json:
        assert set(row["signals"]) == {"domain", "contact", "subject", "stage", "owner"}
        assert row["signals"]["domain"] == 1.0 and row["signals"]["contact"] == 0.0
    item = ReviewItem.objects.get(association_candidate=candidate)
    assert item.reason == "association" and item.thread_id == thread.pk
    assert [c["deal_id"] for c in item.payload_json["candidates"]] == [c["deal_id"] for c in candidate.candidates_json]
    # The console shows each candidate's stage as the CRM labels it, not its id (qualifiedtobuy).
    assert {c["stage"] for c in item.payload_json["candidates"]} == {"Qualified to buy"}

    link(ws, thread)  # a re-run updates, never duplicates
    assert AssociationCandidate.objects.filter(thread=thread).count() == 1
    assert ReviewItem.objects.filter(thread=thread, reason="association").count() == 1


def test_a_known_contact_separates_two_deals_at_one_domain_and_the_reason_says_why(ws):
    pilot = deal(ws, "Acme support pilot", contact_emails=["sara@acme.example"], owner_email="rep@team.example")
    deal(ws, "Acme warehouse rollout", contact_emails=["dan@acme.example"])
    thread = thread_with(ws, "Pilot next steps", ("sara@acme.example", ["rep@team.example"], []))

    result = link(ws, thread)

    assert result.outcome == "link" and result.deal_id == pilot.pk
    thread_link = ThreadLink.objects.get(thread=thread)
    assert thread_link.linked_by == "auto" and thread_link.link_confidence >= 0.75
    assert "sara@acme.example is a contact on the deal" in thread_link.link_reason
    assert "acme.example" in thread_link.link_reason and "runner-up" in thread_link.link_reason
    event = AuditEvent.objects.get(type="deal_link.created", thread_id=thread.pk)
    assert event.data_json["deal_id"] == pilot.pk
    # linking queued the deal's facts on the same commit
    assert Job.objects.filter(task="deal_facts_update", payload__deal_id=pilot.pk).exists()


def test_a_cc_d_person_replying_links_to_the_deal_they_are_a_contact_of(ws):
    deal(ws, "Acme support pilot", contact_emails=["sara@acme.example"])
    warehouse = deal(ws, "Acme warehouse rollout", contact_emails=["dan@acme.example"])
    thread = thread_with(
        ws,
        "Carrier emails",
        ("rep@team.example", ["ops@acme.example"], ["dan@acme.example"]),  # Dan only cc'd
        ("dan@acme.example", ["rep@team.example"], []),  # and he replies
    )

    result = link(ws, thread)

    assert result.outcome == "link" and result.deal_id == warehouse.pk
    assert "dan@acme.example is a contact" in ThreadLink.objects.get(thread=thread).link_reason


def test_a_reply_to_our_own_outgoing_mail_links_by_the_recipient_not_our_domain(ws):
    acme = deal(ws, "Acme renewal", contact_emails=["sara@acme.example"], owner_email="rep@team.example")
    # A deal mirror whose domain is our own must never match on our own people.
    ours = deal(ws, "Internal tooling", primary_domain="team.example")
    thread = thread_with(
        ws,
        "Renewal quote",
        ("rep@team.example", ["sara@acme.example"], []),  # we wrote first
        ("sara@acme.example", ["rep@team.example"], []),
    )

    result = link(ws, thread)

    assert result.outcome == "link" and result.deal_id == acme.pk
    assert ours.pk not in [c["deal_id"] for c in result.candidates]
    assert "the deal owner rep@team.example took part" in ThreadLink.objects.get(thread=thread).link_reason


def test_a_personal_mail_domain_contact_is_judged_without_the_domain_signal(ws):
    consultant = deal(
        ws,
        "Freelance analytics",
        primary_domain="",
        contact_emails=["alex.consults@gmail.com"],
        owner_email="rep@team.example",
    )
    deal(ws, "Someone else at gmail", primary_domain="gmail.com")  # a domain that names no company
    thread = thread_with(ws, "Analytics proposal", ("alex.consults@gmail.com", ["rep@team.example"], []))

    result = link(ws, thread)

    assert result.outcome == "link" and result.deal_id == consultant.pk
    best = result.candidates[0]
    assert best["signals"]["domain"] is None
    assert len(result.candidates) == 1
    assert "domain not counted" in ThreadLink.objects.get(thread=thread).link_reason


def test_a_stranger_leaves_the_thread_unlinked(ws):
    deal(ws, "Acme support pilot")
    thread = thread_with(ws, "Acme support pilot", ("someone@elsewhere.example", ["rep@team.example"], []))

    assert link(ws, thread).outcome == "none"
    assert not ThreadLink.objects.filter(thread=thread).exists()
    assert not AssociationCandidate.objects.filter(thread=thread).exists()


def test_a_reviewer_s_choice_survives_a_rerun_even_when_the_scores_change(ws):
    reviewer = UserFactory(username="rita")
    membership_add(workspace=ws, user=reviewer, role="reviewer")
    pilot = deal(ws, "Acme support pilot")
    warehouse = deal(ws, "Acme warehouse rollout")
    thread = thread_with(ws, "Question", ("sara@acme.example", ["rep@team.example"], []))
    assert link(ws, thread).outcome == "review"
    item = ReviewItem.objects.get(thread=thread, reason="association")

    association_resolve(item_id=item.pk, reviewer=reviewer, version=item.version, choice="deal", deal_id=warehouse.pk)
    # Now the pilot would win automatically: Sara becomes its contact.
    pilot.contact_emails = ["sara@acme.example"]
    pilot.save()
    assert link(ws, thread).outcome == "reviewer"

    thread_link = ThreadLink.objects.get(thread=thread)
    assert (thread_link.deal_id, thread_link.linked_by) == (warehouse.pk, "reviewer")
    assert AssociationCandidate.objects.filter(thread=thread).count() == 1


def test_a_reviewer_s_no_deal_also_sticks(ws):
    reviewer = UserFactory(username="rob")
    membership_add(workspace=ws, user=reviewer, role="reviewer")
    deal(ws, "Acme support pilot")
    deal(ws, "Acme warehouse rollout")
    thread = thread_with(ws, "Question", ("sara@acme.example", ["rep@team.example"], []))
    link(ws, thread)
    item = ReviewItem.objects.get(thread=thread, reason="association")
    association_resolve(item_id=item.pk, reviewer=reviewer, version=item.version, choice="none")

    assert link(ws, thread).outcome == "reviewer"
    assert not ThreadLink.objects.filter(thread=thread).exists()


def test_a_new_deal_arriving_turns_an_auto_link_into_a_review_and_a_clear_one_dismisses_it(ws):
    pilot = deal(ws, "Acme support pilot", contact_emails=["sara@acme.example"])
    thread = thread_with(ws, "Support pilot", ("sara@acme.example", ["rep@team.example"], []))
    assert link(ws, thread).outcome == "link"

    deal(ws, "Acme support expansion", contact_emails=["sara@acme.example"])  # Sara on both now
    assert link(ws, thread).outcome == "review"
    assert not ThreadLink.objects.filter(thread=thread).exists()
    assert AuditEvent.objects.filter(type="deal_link.removed", thread_id=thread.pk).exists()

    pilot.contact_emails = []
    pilot.save()
    Deal = type(pilot)
    Deal.objects.exclude(pk=pilot.pk).update(is_closed=False)
    other = Deal.objects.exclude(pk=pilot.pk).get()
    pilot.delete()
    assert link(ws, thread).outcome == "link"
    assert ThreadLink.objects.get(thread=thread).deal_id == other.pk
    assert AssociationCandidate.objects.get(thread=thread).status == "dismissed"
    assert ReviewItem.objects.get(thread=thread, reason="association").status == "dismissed"


def test_linking_many_threads_at_once_decides_each_as_linking_it_alone_does(ws):
    from deals.services import threads_link_update

    reviewer = UserFactory(username="rae")
    membership_add(workspace=ws, user=reviewer, role="reviewer")
    pilot = deal(ws, "Acme support pilot", contact_emails=["sara@acme.example"])
    warehouse = deal(ws, "Acme warehouse rollout", contact_emails=["dan@acme.example"])
    clear = thread_with(ws, "Pilot next steps", ("sara@acme.example", ["rep@team.example"], []))
    unclear = thread_with(ws, "Question", ("joe@acme.example", ["rep@team.example"], []))
    stranger = thread_with(ws, "Hello", ("x@elsewhere.example", ["rep@team.example"], []))
    decided = thread_with(ws, "Other question", ("kim@acme.example", ["rep@team.example"], []))
    assert link(ws, decided).outcome == "review"
    item = ReviewItem.objects.get(thread=decided, reason="association")
    association_resolve(item_id=item.pk, reviewer=reviewer, version=item.version, choice="deal", deal_id=warehouse.pk)
    moved = thread_with(ws, "Pilot", ("sara@acme.example", ["rep@team.example"], []))
    ThreadLink.objects.create(workspace=ws, thread=moved, deal=warehouse, link_confidence=0.9, linked_by="auto")

    results = threads_link_update(
        workspace_id=ws.pk, threads=[(t.pk, None) for t in (clear, unclear, stranger, decided, moved, clear)]
    )

    assert [r.outcome for r in results] == ["link", "review", "none", "reviewer", "link", "link"]
    assert dict(ThreadLink.objects.values_list("thread_id", "deal_id")) == {
        clear.pk: pilot.pk,
        decided.pk: warehouse.pk,
        moved.pk: pilot.pk,
    }
    assert AssociationCandidate.objects.filter(thread=unclear, status="open").count() == 1
    assert ReviewItem.objects.filter(thread=unclear, reason="association", status="open").count() == 1
    # The audit events and the follow-up jobs were written at the end of the batch, as alone.
    assert AuditEvent.objects.filter(type="deal_link.created", thread_id=moved.pk).exists()
    assert set(Job.objects.filter(task="deal_facts_update").values_list("payload__deal_id", flat=True)) >= {
        pilot.pk,
        warehouse.pk,
    }
    assert Job.objects.filter(task="crm_sync_thread", dedupe_key=f"crm-sync:{moved.pk}").exists()


# --- pure arithmetic -----------------------------------------------------------------------


def facts(*participants, subject="Acme pilot", internal=("team.example",)):
    return linking.ThreadFacts(subject, frozenset(participants), frozenset(internal), NOW)


def test_score_is_the_weighted_mean_of_the_signals_that_speak():
    signals = {"domain": 1.0, "contact": 1.0, "subject": 0.5, "stage": 1.0, "owner": 0.0}
    assert linking.score(signals) == round(0.30 + 0.40 + 0.15 * 0.5 + 0.10, 4) == 0.875
    assert linking.score({**signals, "domain": None}) == round((0.40 + 0.075 + 0.10) / 0.70, 4)


def test_stage_signal_closed_open_recent_and_stale():
    thread = facts("a@acme.example")
    assert linking._stage(thread, linking.DealFacts(1, "x", is_closed=True)) == 0.0
    assert linking._stage(thread, linking.DealFacts(1, "x")) == 0.75
    assert linking._stage(thread, linking.DealFacts(1, "x", active_at=NOW)) == 1.0
    assert linking._stage(thread, linking.DealFacts(1, "x", active_at=datetime(2024, 1, 1, tzinfo=UTC))) == 0.5


def test_decide_link_review_none_by_threshold_and_margin():
    def c(deal_id, value):
        return linking.Candidate(deal_id, value, {})

    assert linking.decide([], threshold=0.75, margin=0.15).outcome == "none"
    assert linking.decide([c(1, 0.9)], threshold=0.75, margin=0.15).outcome == "link"
    assert linking.decide([c(1, 0.9), c(2, 0.8)], threshold=0.75, margin=0.15).outcome == "review"
    assert linking.decide([c(1, 0.9), c(2, 0.7)], threshold=0.75, margin=0.15).outcome == "link"
    assert linking.decide([c(1, 0.7)], threshold=0.75, margin=0.15).outcome == "review"
    assert linking.decide([c(1, 0.7)], threshold=0.6, margin=0.15).outcome == "link"
