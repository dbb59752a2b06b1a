"""Review decisions on the real database: one reviewer per item, undo, associations."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deals.models import AssociationCandidate, ThreadLink
from deals.tests.factories import DealFactory
from extraction.models import FieldValue
from extraction.tests.factories import FieldValueFactory
from review.models import ReviewItem
from review.services import (
    ReviewConflict,
    ReviewInvalid,
    association_resolve,
    review_item_claim,
    review_item_resolve,
    review_item_undo,
)
from review.tests.factories import ReviewItemFactory
from threads.tests.factories import ThreadFactory
from workspaces.models import AuditEvent, Policy
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws():
    workspace = workspace_create(slug="acme", name="Acme")
    with workspace_context(workspace):
        yield workspace


@pytest.fixture
def people(ws):
    rita, rob = UserFactory(username="rita"), UserFactory(username="rob")
    membership_add(workspace=ws, user=rita, role="reviewer")
    membership_add(workspace=ws, user=rob, role="reviewer")
    return rita, rob


def item_for(ws, value=None, **kwargs):
    value = value or FieldValueFactory(workspace=ws, status=FieldValue.Status.PROPOSED)
    return ReviewItemFactory(
        workspace=ws,
        thread=value.thread,
        field_value=value,
        payload_json={"field": value.field_key, "proposed_value": value.field_value_json},
        **kwargs,
    )


def test_approve_verifies_the_value_and_audits(ws, people):
    rita, _ = people
    item = item_for(ws)
    review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=0)
    item.refresh_from_db()
    assert (item.status, item.resolved_by, item.version) == ("approved", rita, 1)
    assert FieldValue.objects.get(pk=item.field_value_id).status == "verified"
    assert AuditEvent.objects.filter(type="review_item.approved", actor=rita).exists()


def test_edit_creates_a_verified_value_and_keeps_the_proposal(ws, people):
    rita, _ = people
    item = item_for(ws)
    review_item_resolve(
        item_id=item.pk, reviewer=rita, decision="edit", version=0, value={"amount": 45000, "currency": "USD"}
    )
    assert list(FieldValue.objects.order_by("pk").values_list("status", flat=True)) == ["superseded", "verified"]
    verified = FieldValue.objects.get(status="verified")
    assert verified.field_value_json == {"amount": 45000, "currency": "USD"}
    assert verified.confidence == 1.0 and verified.decided_by == rita


def test_reject_rejects_the_value(ws, people):
    rita, _ = people
    item = item_for(ws)
    review_item_resolve(item_id=item.pk, reviewer=rita, decision="reject", version=0)
    assert FieldValue.objects.get().status == "rejected"
    assert ReviewItem.objects.get().status == "rejected"


def test_a_second_decision_on_a_resolved_item_changes_nothing_and_says_who(ws, people):
    rita, rob = people
    item = item_for(ws)
    review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=0)
    with pytest.raises(ReviewConflict, match="rita already approved this item"):
        review_item_resolve(item_id=item.pk, reviewer=rob, decision="reject", version=0)
    assert FieldValue.objects.get().status == "verified"
    assert ReviewItem.objects.get().resolved_by == rita


def test_a_stale_version_is_refused(ws, people):
    rita, _ = people
    item = item_for(ws)
    ReviewItem.objects.filter(pk=item.pk).update(version=3)
    with pytest.raises(ReviewConflict, match="changed since you opened it"):
        review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=2)


def test_one_reviewer_per_item_while_the_claim_lasts(ws, people):
    rita, rob = people
    item = item_for(ws)
    assert review_item_claim(item=item, user=rita)
    assert not review_item_claim(item=item, user=rob)
    with pytest.raises(ReviewConflict, match="rita is reviewing this item"):
        review_item_resolve(item_id=item.pk, reviewer=rob, decision="approve", version=0)
    ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert review_item_claim(item=item, user=rob)  # an expired claim is free


def test_undo_restores_the_values_and_reopens_the_item(ws, people):
    rita, _ = people
    item = item_for(ws)
    review_item_resolve(
        item_id=item.pk, reviewer=rita, decision="edit", version=0, value={"amount": 1, "currency": "USD"}
    )
    review_item_undo(item_id=item.pk, user=rita)
    item.refresh_from_db()
    assert item.status == "open" and item.version == 2 and "last_decision" not in item.payload_json
    assert list(FieldValue.objects.order_by("pk").values_list("status", flat=True)) == ["proposed", "rejected"]
    assert list(
        AuditEvent.objects.filter(type__startswith="review_item.").order_by("pk").values_list("type", flat=True)
    ) == ["review_item.edited", "review_item.undone"]


def test_undo_after_the_window_is_refused(ws, people):
    rita, _ = people
    Policy.objects.filter(workspace=ws).update(
        policy={**Policy.objects.get(workspace=ws).policy, "undo_window_seconds": 60}
    )
    item = item_for(ws)
    review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=0)
    ReviewItem.objects.filter(pk=item.pk).update(resolved_at=timezone.now() - timedelta(seconds=61))
    with pytest.raises(ReviewInvalid, match="undo window"):
        review_item_undo(item_id=item.pk, user=rita)
    assert FieldValue.objects.get().status == "verified"


def test_another_reviewer_cannot_undo_my_decision(ws, people):
    rita, rob = people
    item = item_for(ws)
    review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=0)
    with pytest.raises(ReviewInvalid, match="only the reviewer who decided"):
        review_item_undo(item_id=item.pk, user=rob)


def test_an_edit_without_a_value_is_refused(ws, people):
    rita, _ = people
    item = item_for(ws)
    with pytest.raises(ReviewInvalid):
        review_item_resolve(item_id=item.pk, reviewer=rita, decision="edit", version=0)
    assert ReviewItem.objects.get().status == "open"


@pytest.fixture
def association(ws):
    thread = ThreadFactory(workspace=ws)
    north, south = DealFactory(workspace=ws, title="Acme North"), DealFactory(workspace=ws, title="Acme South")
    candidate = AssociationCandidate.objects.create(
        workspace=ws,
        thread=thread,
        candidates_json=[
            {"deal_id": north.pk, "score": 0.71, "signals": {"domain": 1.0}},
            {"deal_id": south.pk, "score": 0.69, "signals": {"domain": 1.0}},
        ],
    )
    item = ReviewItem.objects.create(
        workspace=ws,
        thread=thread,
        association_candidate=candidate,
        reason=ReviewItem.Reason.ASSOCIATION,
        payload_json={"candidate_id": candidate.pk},
    )
    return item, candidate, north, south


def test_choosing_a_deal_links_the_thread_as_the_reviewer_did(ws, people, association):
    rita, _ = people
    item, candidate, north, _ = association
    association_resolve(item_id=item.pk, reviewer=rita, version=0, choice="deal", deal_id=north.pk)
    link = ThreadLink.objects.get(thread=candidate.thread)
    assert (link.deal, link.linked_by, link.link_confidence) == (north, "reviewer", 1.0)
    candidate.refresh_from_db()
    assert (candidate.status, candidate.decision, candidate.chosen_deal) == ("resolved", "deal", north)


def test_choosing_none_or_a_new_deal_leaves_the_thread_unlinked(ws, people, association):
    rita, _ = people
    item, candidate, _, _ = association
    association_resolve(item_id=item.pk, reviewer=rita, version=0, choice="none")
    assert not ThreadLink.objects.exists()
    candidate.refresh_from_db()
    assert candidate.decision == "none"


def test_a_deal_outside_the_candidates_is_refused(ws, people, association):
    rita, _ = people
    item, _, _, _ = association
    other = DealFactory(workspace=ws)
    with pytest.raises(ReviewInvalid):
        association_resolve(item_id=item.pk, reviewer=rita, version=0, choice="deal", deal_id=other.pk)
    assert ReviewItem.objects.get(pk=item.pk).status == "open"


def test_undoing_an_association_restores_the_previous_link(ws, people, association):
    rita, _ = people
    item, candidate, north, south = association
    ThreadLink.objects.create(
        workspace=ws, thread=candidate.thread, deal=south, link_confidence=0.6, link_reason="auto"
    )
    association_resolve(item_id=item.pk, reviewer=rita, version=0, choice="deal", deal_id=north.pk)
    review_item_undo(item_id=item.pk, user=rita)
    link = ThreadLink.objects.get(thread=candidate.thread)
    assert (link.deal, link.linked_by) == (south, "auto")
    candidate.refresh_from_db()
    assert candidate.status == "open" and candidate.decision == ""


def test_one_crm_sync_per_thread_waits_out_the_latest_decision_s_undo_window(ws, people):
    from jobs.models import Job

    rita, _ = people
    thread = ThreadFactory(workspace=ws)
    first = item_for(ws, value=FieldValueFactory(workspace=ws, thread=thread, field_key="budget"))
    second = item_for(ws, value=FieldValueFactory(workspace=ws, thread=thread, field_key="need"))
    window = Policy.objects.get(workspace=ws).policy["undo_window_seconds"]
    review_item_resolve(item_id=first.pk, reviewer=rita, decision="approve", version=0)
    job = Job.objects.get(task="crm_sync_thread")
    assert job.status == "queued" and job.payload == {"thread_id": thread.pk}
    assert job.run_after >= timezone.now() + timedelta(seconds=window - 5)
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() + timedelta(seconds=1))  # as if time passed
    review_item_resolve(item_id=second.pk, reviewer=rita, decision="approve", version=0)
    job.refresh_from_db()
    assert Job.objects.filter(task="crm_sync_thread").count() == 1
    assert job.run_after >= timezone.now() + timedelta(seconds=window - 5)  # the later decision's window


def test_an_undo_leaves_the_sync_queued_and_it_then_writes_nothing_of_the_undone_value(ws, people):
    from crm.models import CrmWriteLog
    from crm.services import crm_sync_thread
    from jobs.models import Job

    rita, _ = people
    item = item_for(ws)
    review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=0)
    review_item_undo(item_id=item.pk, user=rita)
    assert Job.objects.get(task="crm_sync_thread").status == "queued"  # one sync, after the window
    assert FieldValue.objects.get(pk=item.field_value_id).status == "proposed"
    assert crm_sync_thread(workspace_id=ws.pk, thread_id=item.thread_id) == []
    assert not CrmWriteLog.objects.exists()


def test_a_rejection_reaches_the_crm_sync_which_has_nothing_to_write(ws, people):
    from crm.services import crm_sync_thread
    from jobs.models import Job

    rita, _ = people
    item = item_for(ws)
    review_item_resolve(item_id=item.pk, reviewer=rita, decision="reject", version=0)
    assert Job.objects.filter(task="crm_sync_thread").count() == 1
    assert crm_sync_thread(workspace_id=ws.pk, thread_id=item.thread_id) == []
