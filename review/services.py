"""Review items: opening, refreshing and closing them, and a person's decisions on them.

The review app owns review items. Every app that needs a person opens one here
(``review_item_open``), with a subject key naming what the item is about and one payload
shape per reason (``PAYLOAD_KEYS``, documented below); the same subject never has two open
items. What a decision does to its subject is carried out by the app that owns it, through
the handler it registered (``review.handlers``): extraction for values, deals for
associations, crm for write conflicts (a failed job's item records that a person looked;
the operator retries it on the jobs page).

One reviewer per item: opening an item claims it for a few minutes, and a decision is one
UPDATE that checks the item is still open, still at the version the reviewer saw, and not
claimed by someone else; if another person got there first, nothing changes and the caller
gets ReviewConflict with a message to show. Each decision stores what its handler changed,
so it can be undone within the policy's window; the handlers say what changed to the
pipeline (``pipeline.stages``), which queues what follows (the CRM write waits out the
undo window).

Subjects and payloads, by reason:

- ``low_confidence``, ``always_review``, ``ungrounded``, ``audit_sample``, ``conflict``
  (a value): subject ``field_value:<id>`` (and ``field_value``); payload ``field``,
  ``field_type``, ``proposed_value``, ``confidence``, ``evidence`` (spans), ``grounded``,
  ``other_values`` [{id, field_value_json, confidence, status}], plus ``threshold`` or, for
  a conflict, ``verified_value`` and ``verified_id``.
- ``association``: subject ``association:<candidate id>`` (and ``association_candidate``);
  payload ``candidates`` [{deal_id, title, stage, score, signals}].
- ``fact_conflict``: subject ``deal_fact:<deal id>:<key>:<signature of the values>``; payload
  ``deal_id``, ``deal``, ``key``, ``field``, ``values`` and the value fields above for the newest.
- ``crm_conflict``: subject ``crm_write:<write id>:<new payload hash>``; payload ``write_id``,
  ``idempotency_key``, ``stored_hash``, ``new_hash``, ``new_payload``.
- ``job_failed``: subject ``job:<job id>``; payload ``job_id``, ``task``, ``attempts``, ``error``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from review.handlers import handler_for
from review.models import ReviewItem
from workspaces.selectors import membership_get, policy_for
from workspaces.services import audit_event_record

Reason = ReviewItem.Reason
DECISIONS = ("approve", "edit", "reject")
_VALUE = {"field", "field_type", "proposed_value", "confidence", "evidence", "grounded", "other_values"}
PAYLOAD_KEYS: dict[str, set[str]] = {
    Reason.LOW_CONFIDENCE: _VALUE | {"threshold"},
    Reason.ALWAYS_REVIEW: _VALUE | {"threshold"},
    Reason.UNGROUNDED: _VALUE | {"threshold"},
    Reason.AUDIT_SAMPLE: _VALUE,
    Reason.CONFLICT: _VALUE | {"verified_value", "verified_id"},
    Reason.ASSOCIATION: {"candidates"},
    Reason.FACT_CONFLICT: _VALUE | {"deal_id", "deal", "key", "values"},
    Reason.CRM_CONFLICT: {"write_id", "idempotency_key", "stored_hash", "new_hash", "new_payload"},
    Reason.JOB_FAILED: {"job_id", "task", "attempts", "error"},
}


class ReviewConflict(Exception):
    """Someone else decided or holds the item; the message says who, for the reviewer."""


class ReviewInvalid(ValueError):
    """The decision does not fit the item (an edit without a value, an undo too late...)."""


# --- opening, refreshing, closing ------------------------------------------------------------


def review_item_open(
    *,
    workspace_id: int,
    reason: str,
    subject: str,
    payload: dict,
    thread_id: int | None = None,
    field_value_id: int | None = None,
    association_candidate_id: int | None = None,
    once: bool = False,
    job_id: int | None = None,
) -> tuple[ReviewItem | None, bool]:
    """Open an item for a person about ``subject`` (inside its workspace context); returns
    ``(item, created)``. An open item of the same subject and reason is refreshed with the
    payload instead of opening a second; with ``once``, a subject that ever had an item gets
    no new one (``(None, False)``): a person's earlier answer stands."""
    missing = PAYLOAD_KEYS[reason] - set(payload)
    if missing:
        raise ValueError(f"a {reason} review item's payload needs {', '.join(sorted(missing))}")
    items = ReviewItem.objects.filter(subject_key=subject, reason=reason)
    current = items.filter(status=ReviewItem.Status.OPEN).order_by("-pk").first()
    if current is not None:
        fresh = {**current.payload_json, **payload}
        if fresh != current.payload_json:
            ReviewItem.objects.filter(pk=current.pk).update(payload_json=fresh)
            current.payload_json = fresh
        return current, False
    if once and items.exists():
        return None, False
    item = ReviewItem.objects.create(
        workspace_id=workspace_id,
        thread_id=thread_id,
        field_value_id=field_value_id,
        association_candidate_id=association_candidate_id,
        reason=reason,
        subject_key=subject,
        payload_json=payload,
    )
    audit_event_record(
        workspace_id=workspace_id,
        type="review_item.opened",
        thread_id=thread_id,
        job_id=job_id,
        data={"review_item_id": item.pk, "reason": reason, "subject": subject, "field": payload.get("field")},
    )
    return item, True


def review_items_refresh(*, subject: str, payload: dict) -> int:
    """Bring the open items of ``subject`` up to date (their subject changed, not the question)."""
    changed = 0
    for item in ReviewItem.objects.filter(subject_key=subject, status=ReviewItem.Status.OPEN):
        fresh = {**item.payload_json, **payload}
        if fresh != item.payload_json:
            changed += ReviewItem.objects.filter(pk=item.pk).update(payload_json=fresh)
    return changed


def review_items_close(
    *, workspace_id: int, why: str, subjects=(), subject_prefix: str = "", thread_id: int | None = None
) -> list[int]:
    """Dismiss the open items of these subjects (or of every subject starting with the
    prefix): their question has gone (a newer value, a clear link). Returns their ids."""
    if not subjects and not subject_prefix:
        return []
    items = ReviewItem.objects.filter(status=ReviewItem.Status.OPEN)
    items = items.filter(subject_key__in=list(subjects)) if subjects else items
    items = items.filter(subject_key__startswith=subject_prefix) if subject_prefix else items
    ids = list(items.values_list("pk", flat=True))
    if not ids:
        return []
    ReviewItem.objects.filter(pk__in=ids, status=ReviewItem.Status.OPEN).update(
        status=ReviewItem.Status.DISMISSED, resolved_at=timezone.now(), version=F("version") + 1, claimed_until=None
    )
    audit_event_record(
        workspace_id=workspace_id,
        type="review_item.dismissed",
        thread_id=thread_id,
        data={"review_item_ids": ids, "why": why},
    )
    return ids


def review_item_exists(*, subject: str) -> bool:
    return ReviewItem.objects.filter(subject_key=subject).exists()


def job_failed_item_open(*, workspace_id: int, job_id: int, task: str, attempts: int, error: str) -> None:
    """The queue gave up on a job (registered with ``jobs.hooks`` at startup)."""
    review_item_open(
        workspace_id=workspace_id,
        reason=Reason.JOB_FAILED,
        subject=f"job:{job_id}",
        payload={"job_id": job_id, "task": task, "attempts": attempts, "error": error[:500]},
        job_id=job_id,
    )


# --- claims ------------------------------------------------------------------------------------


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
    return _decide(item_id=item_id, reviewer=reviewer, version=version, decision=decision, value=value)


@transaction.atomic
def association_resolve(*, item_id: int, reviewer, version: int, choice: str, deal_id: int | None = None) -> ReviewItem:
    """Link the thread to the chosen deal, to none, or ask for a new deal (carried out by the
    deals app's handler). The choice sticks: automatic linking never overrides it."""
    if choice not in ("deal", "none", "new_deal") or (choice == "deal") != (deal_id is not None):
        raise ReviewInvalid("choose one of the candidate deals, none, or a new deal")
    return _decide(
        item_id=item_id,
        reviewer=reviewer,
        version=version,
        decision="associate",
        value={"choice": choice, "deal_id": deal_id},
        only=Q(association_candidate__isnull=False),
    )


_AUDIT = {"approve": "review_item.approved", "edit": "review_item.edited", "reject": "review_item.rejected"}


def _decide(*, item_id: int, reviewer, version: int, decision: str, value, only: Q | None = None) -> ReviewItem:
    now = timezone.now()
    status = ReviewItem.Status.REJECTED if decision == "reject" else ReviewItem.Status.APPROVED
    updated = ReviewItem.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(assigned_to=reviewer),
        only or Q(),
        pk=item_id,
        status=ReviewItem.Status.OPEN,
        version=version,
    ).update(status=status, resolved_by=reviewer, resolved_at=now, version=F("version") + 1, claimed_until=None)
    item = ReviewItem.objects.select_related("resolved_by").get(pk=item_id)
    if not updated:
        raise ReviewConflict(_conflict_message(item, reviewer))
    changes = handler_for(item.reason).decide(item=item, decision=decision, value=value, reviewer=reviewer, at=now)
    label = f"association:{value['choice']}" if decision == "associate" else decision
    item.payload_json = {
        **item.payload_json,
        "last_decision": {"decision": label, "by": reviewer.pk, "at": now.isoformat(), "changes": changes},
    }
    item.save(update_fields=["payload_json"])
    if decision == "associate":
        audit_type, data = "association.resolved", {"choice": value["choice"], "deal_id": value["deal_id"]}
    else:
        audit_type, data = _AUDIT[decision], {"changes": changes, "value": value}
    audit_event_record(
        workspace_id=item.workspace_id,
        type=audit_type,
        actor=reviewer,
        thread_id=item.thread_id,
        data={"review_item_id": item.pk, "reason": item.reason, **data},
    )
    return item


@transaction.atomic
def review_item_undo(*, item_id: int, user) -> ReviewItem:
    """Reopen a decided item within the policy's undo window; the subject's owner puts back
    what the decision changed."""
    item = ReviewItem.objects.select_for_update().get(pk=item_id)
    last = item.payload_json.get("last_decision")
    if item.status == ReviewItem.Status.OPEN or not last:
        raise ReviewInvalid("this item has no decision to undo")
    window = policy_for(workspace_id=item.workspace_id)["undo_window_seconds"]
    if item.resolved_at is None or timezone.now() - item.resolved_at > timedelta(seconds=window):
        raise ReviewInvalid(f"the undo window ({window} s) has passed")
    if item.resolved_by_id != user.pk and not _is_admin(user, item.workspace_id):
        raise ReviewInvalid("only the reviewer who decided, or an admin, can undo this")
    handler_for(item.reason).undo(item=item, changes=last.get("changes") or {}, user=user)
    item.status, item.resolved_by, item.resolved_at = ReviewItem.Status.OPEN, None, None
    item.version += 1
    item.assigned_to, item.claimed_until = user, timezone.now() + timedelta(seconds=60)
    item.payload_json = {k: v for k, v in item.payload_json.items() if k != "last_decision"}
    item.save()
    audit_event_record(
        workspace_id=item.workspace_id,
        type="review_item.undone",
        actor=user,
        thread_id=item.thread_id,
        data={"review_item_id": item.pk, "undid": last["decision"]},
    )
    return item


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


# --- helpers -----------------------------------------------------------------------------


def _is_admin(user, workspace_id: int) -> bool:
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
