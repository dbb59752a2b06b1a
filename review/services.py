"""Review decisions: claim, approve, edit, reject, skip, undo, and deal associations.

One reviewer per item: opening an item claims it for a few minutes, and a decision is one
UPDATE that checks the item is still open, still at the version the reviewer saw, and not
claimed by someone else; if another person got there first, nothing changes and the caller
gets ReviewConflict with a message to show. Each decision stores what it changed, so it can
be undone within the policy's window; work that follows a decision (the CRM write) is
queued on commit, due only when the undo window has passed, and cancelled by an undo.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from deals.models import AssociationCandidate, ThreadLink
from extraction.models import FieldValue
from review.models import ReviewItem
from workspaces.selectors import policy_for
from workspaces.services import audit_event_record

DECISIONS = ("approve", "edit", "reject")
FOLLOW_UP_TASK = "crm_sync_thread"


class ReviewConflict(Exception):
    """Someone else decided or holds the item; the message says who, for the reviewer."""


class ReviewInvalid(ValueError):
    """The decision does not fit the item (an edit without a value, an undo too late...)."""


def review_item_claim(*, item: ReviewItem, user) -> bool:
    """Claim an open item for this reviewer for the policy's claim time; False if someone else holds it."""
    now = timezone.now()
    seconds = policy_for(workspace_id=item.workspace_id)["review_claim_seconds"]
    claimed = ReviewItem.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(assigned_to=user),
        pk=item.pk,
        status=ReviewItem.Status.OPEN,
    ).update(assigned_to=user, claimed_until=now + timedelta(seconds=seconds))
    if claimed:
        item.assigned_to, item.claimed_until = user, now + timedelta(seconds=seconds)
    return bool(claimed)


def review_item_release(*, item: ReviewItem, user) -> None:
    ReviewItem.objects.filter(pk=item.pk, assigned_to=user, status=ReviewItem.Status.OPEN).update(claimed_until=None)


def review_item_assign(*, item: ReviewItem, user) -> None:
    """Assign to me: the item stays mine (claim renewed) until I decide or release it."""
    if not review_item_claim(item=item, user=user):
        raise ReviewConflict(_held_message(item))
    audit_event_record(
        workspace_id=item.workspace_id,
        type="review_item.assigned",
        actor=user,
        thread_id=item.thread_id,
        data={"review_item_id": item.pk},
    )


@transaction.atomic
def review_item_resolve(*, item_id: int, reviewer, decision: str, version: int, value=None) -> ReviewItem:
    """Approve, edit (with ``value``) or reject an open item seen at ``version``."""
    if decision not in DECISIONS:
        raise ReviewInvalid(f"unknown decision {decision!r}")
    if decision == "edit" and value is None:
        raise ReviewInvalid("an edit needs the corrected value")
    now = timezone.now()
    status = ReviewItem.Status.REJECTED if decision == "reject" else ReviewItem.Status.APPROVED
    updated = ReviewItem.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(assigned_to=reviewer),
        pk=item_id,
        status=ReviewItem.Status.OPEN,
        version=version,
    ).update(status=status, resolved_by=reviewer, resolved_at=now, version=F("version") + 1, claimed_until=None)
    item = ReviewItem.objects.select_related("field_value", "resolved_by").get(pk=item_id)
    if not updated:
        raise ReviewConflict(_conflict_message(item, reviewer))
    changes = _apply(item, decision, value, reviewer, now)
    jobs = _follow_up(item, decision)
    item.payload_json = {
        **item.payload_json,
        "last_decision": {
            "decision": decision,
            "by": reviewer.pk,
            "at": now.isoformat(),
            "changes": changes,
            "jobs": jobs,
        },
    }
    item.save(update_fields=["payload_json"])
    _deal_facts_follow_up(item)
    audit_event_record(
        workspace_id=item.workspace_id,
        type=f"review_item.{decision}d" if decision != "edit" else "review_item.edited",
        actor=reviewer,
        thread_id=item.thread_id,
        data={"review_item_id": item.pk, "reason": item.reason, "changes": changes, "value": value},
    )
    return item


def _apply(item: ReviewItem, decision: str, value, reviewer, now) -> list[dict]:
    """Set the statuses the decision implies; return [{id, from, to}] (and created values) for undo."""
    changes: list[dict] = []
    target = item.field_value
    if target is None:
        return changes

    def move(field_value: FieldValue, to: str) -> None:
        changes.append({"id": field_value.pk, "from": field_value.status, "to": to})
        FieldValue.objects.filter(pk=field_value.pk).update(status=to, decided_by=reviewer, decided_at=now)

    if decision == "reject":
        move(target, FieldValue.Status.REJECTED)
        return changes
    chosen = target
    if decision == "edit":
        chosen = FieldValue.objects.create(
            workspace_id=target.workspace_id,
            run_id=target.run_id,
            thread_id=target.thread_id,
            field_key=target.field_key,
            field_value_json=value,
            confidence=1.0,
            evidence_json=target.evidence_json,
            grounded=target.grounded,
            status=FieldValue.Status.VERIFIED,
            decided_by=reviewer,
            decided_at=now,
        )
        changes.append({"id": chosen.pk, "from": None, "to": FieldValue.Status.VERIFIED, "created": True})
        move(target, FieldValue.Status.SUPERSEDED)
    else:
        move(target, FieldValue.Status.VERIFIED)
    others = FieldValue.objects.filter(
        thread_id=target.thread_id,
        field_key=target.field_key,
        status__in=[FieldValue.Status.VERIFIED, FieldValue.Status.ACCEPTED, FieldValue.Status.PROPOSED],
    ).exclude(pk__in=[target.pk, chosen.pk])
    for other in others:
        move(other, FieldValue.Status.SUPERSEDED)
    return changes


def _follow_up(item: ReviewItem, decision: str) -> list[int]:
    """Queue the CRM write for the thread after commit, due when the undo window has passed."""
    from jobs.registry import task_get

    if decision == "reject" or item.thread_id is None or task_get(FOLLOW_UP_TASK) is None:
        return []
    from jobs.services import enqueue

    window = policy_for(workspace_id=item.workspace_id)["undo_window_seconds"]
    job = enqueue(
        FOLLOW_UP_TASK,
        workspace=item.workspace_id,
        payload={"thread_id": item.thread_id},
        run_after=timezone.now() + timedelta(seconds=window),
        dedupe_key=f"crm-thread:{item.thread_id}:{item.pk}",
    )
    return [job.pk] if job is not None and job.pk else []


def _deal_facts_follow_up(item: ReviewItem, deal_ids=()) -> None:
    """A decision changes which values (or which deal) stand: the deal's facts follow, on commit."""
    if item.thread_id is None:
        return
    from deals.services import thread_facts_enqueue

    thread_facts_enqueue(
        workspace_id=item.workspace_id,
        thread_id=item.thread_id,
        deal_ids=list(deal_ids),
        key=f"{item.pk}:v{item.version}",
    )


@transaction.atomic
def review_item_undo(*, item_id: int, user) -> ReviewItem:
    """Reopen a decided item within the policy's undo window and restore what the decision changed."""
    item = ReviewItem.objects.select_for_update().get(pk=item_id)
    last = item.payload_json.get("last_decision")
    if item.status == ReviewItem.Status.OPEN or not last:
        raise ReviewInvalid("this item has no decision to undo")
    window = policy_for(workspace_id=item.workspace_id)["undo_window_seconds"]
    if item.resolved_at is None or timezone.now() - item.resolved_at > timedelta(seconds=window):
        raise ReviewInvalid(f"the undo window ({window} s) has passed")
    if item.resolved_by_id != user.pk and not _is_admin(user, item.workspace_id):
        raise ReviewInvalid("only the reviewer who decided, or an admin, can undo this")
    for change in reversed(last["changes"]):
        if change.get("created"):
            FieldValue.objects.filter(pk=change["id"]).update(status=FieldValue.Status.REJECTED)
        else:
            FieldValue.objects.filter(pk=change["id"]).update(status=change["from"], decided_by=None, decided_at=None)
    cancelled = _cancel_jobs(last.get("jobs", []))
    if item.association_candidate_id:
        _association_reopen(item.association_candidate_id)
    item.status, item.resolved_by, item.resolved_at = ReviewItem.Status.OPEN, None, None
    item.version += 1
    item.assigned_to, item.claimed_until = user, timezone.now() + timedelta(seconds=60)
    item.payload_json = {k: v for k, v in item.payload_json.items() if k != "last_decision"}
    item.save()
    _deal_facts_follow_up(item, deal_ids=[(last.get("previous_link") or {}).get("deal_id")])
    audit_event_record(
        workspace_id=item.workspace_id,
        type="review_item.undone",
        actor=user,
        thread_id=item.thread_id,
        data={"review_item_id": item.pk, "undid": last["decision"], "cancelled_jobs": cancelled},
    )
    return item


def _cancel_jobs(job_ids: list[int]) -> list[int]:
    if not job_ids:
        return []
    from jobs.models import Job

    queued = list(Job.objects.filter(pk__in=job_ids, status=Job.Status.QUEUED).values_list("pk", flat=True))
    Job.objects.filter(pk__in=queued, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, finished_at=timezone.now()
    )
    return queued


def review_item_skip(*, item: ReviewItem, user) -> None:
    """Pass on an item: it stays open for someone else, and my claim on it ends."""
    review_item_release(item=item, user=user)
    audit_event_record(
        workspace_id=item.workspace_id,
        type="review_item.skipped",
        actor=user,
        thread_id=item.thread_id,
        data={"review_item_id": item.pk},
    )


# --- deal associations -------------------------------------------------------------------


@transaction.atomic
def association_resolve(*, item_id: int, reviewer, version: int, choice: str, deal_id: int | None = None) -> ReviewItem:
    """Link the thread to the chosen deal, to none, or ask for a new deal. The choice sticks:
    automatic linking never overrides a resolved candidate."""
    if choice not in ("deal", "none", "new_deal") or (choice == "deal") != (deal_id is not None):
        raise ReviewInvalid("choose one of the candidate deals, none, or a new deal")
    now = timezone.now()
    updated = ReviewItem.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(assigned_to=reviewer),
        pk=item_id,
        status=ReviewItem.Status.OPEN,
        version=version,
        association_candidate__isnull=False,
    ).update(
        status=ReviewItem.Status.APPROVED,
        resolved_by=reviewer,
        resolved_at=now,
        version=F("version") + 1,
        claimed_until=None,
    )
    item = ReviewItem.objects.select_related("association_candidate", "resolved_by").get(pk=item_id)
    if not updated:
        raise ReviewConflict(_conflict_message(item, reviewer))
    candidate = item.association_candidate
    candidate_ids = {c.get("deal_id") for c in candidate.candidates_json}
    if choice == "deal" and deal_id not in candidate_ids:
        raise ReviewInvalid("that deal is not one of this thread's candidates")
    previous = (
        ThreadLink.objects.filter(thread_id=candidate.thread_id)
        .values("deal_id", "link_confidence", "link_reason", "linked_by")
        .first()
    )
    ThreadLink.objects.filter(thread_id=candidate.thread_id).delete()
    if choice == "deal":
        ThreadLink.objects.create(
            workspace_id=candidate.workspace_id,
            thread_id=candidate.thread_id,
            deal_id=deal_id,
            link_confidence=1.0,
            link_reason=f"chosen by {reviewer.get_username()} in review",
            linked_by=ThreadLink.LinkedBy.REVIEWER,
        )
    AssociationCandidate.objects.filter(pk=candidate.pk).update(
        status=AssociationCandidate.Status.RESOLVED,
        decision=choice,
        chosen_deal_id=deal_id,
        resolved_by=reviewer,
        resolved_at=now,
    )
    item.payload_json = {
        **item.payload_json,
        "last_decision": {
            "decision": f"association:{choice}",
            "by": reviewer.pk,
            "at": now.isoformat(),
            "changes": [],
            "jobs": [],
            "previous_link": previous,
        },
    }
    item.save(update_fields=["payload_json"])
    _deal_facts_follow_up(item, deal_ids=[(previous or {}).get("deal_id")])
    audit_event_record(
        workspace_id=item.workspace_id,
        type="association.resolved",
        actor=reviewer,
        thread_id=candidate.thread_id,
        data={"review_item_id": item.pk, "candidate_id": candidate.pk, "choice": choice, "deal_id": deal_id},
    )
    return item


def _association_reopen(candidate_id: int) -> None:
    candidate = AssociationCandidate.objects.get(pk=candidate_id)
    item = ReviewItem.objects.filter(association_candidate_id=candidate_id).order_by("-resolved_at").first()
    previous = (item.payload_json.get("last_decision") or {}).get("previous_link") if item else None
    ThreadLink.objects.filter(thread_id=candidate.thread_id).delete()
    if previous:
        ThreadLink.objects.create(workspace_id=candidate.workspace_id, thread_id=candidate.thread_id, **previous)
    AssociationCandidate.objects.filter(pk=candidate_id).update(
        status=AssociationCandidate.Status.OPEN, decision="", chosen_deal=None, resolved_by=None, resolved_at=None
    )


# --- helpers -----------------------------------------------------------------------------


def _is_admin(user, workspace_id: int) -> bool:
    from workspaces.selectors import membership_get

    membership = membership_get(user=user, workspace_id=workspace_id)
    return bool(membership and membership.role == membership.Role.ADMIN)


def _held_message(item: ReviewItem) -> str:
    holder = item.assigned_to.get_username() if item.assigned_to else "another reviewer"
    return f"{holder} is reviewing this item right now."


def _conflict_message(item: ReviewItem, reviewer) -> str:
    if item.status != ReviewItem.Status.OPEN:
        who = item.resolved_by.get_username() if item.resolved_by else "someone"
        if item.resolved_by_id == reviewer.pk:
            return "You already decided this item."
        return f"{who} already {item.get_status_display().lower()} this item; nothing was changed."
    if item.claimed_until and item.claimed_until > timezone.now() and item.assigned_to_id != reviewer.pk:
        return _held_message(item) + " Nothing was changed."
    return "This item changed since you opened it; nothing was changed. Look again before deciding."
