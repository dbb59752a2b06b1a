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
undo window). Several items can be approved or rejected as one batch, which one undo puts
back (``review_items_resolve_bulk``, ``review_batch_undo``). Skipping an item frees it and
puts it behind the others in the skipper's queue (``skipped_by``); each decision's audit
event carries the seconds since the reviewer's claim began (``claimed_at``).

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

import uuid
from datetime import timedelta

from django.contrib.postgres.fields import ArrayField
from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, F, Func, Q, Value, When
from django.utils import timezone

from review.handlers import handler_for
from review.models import DashboardSnapshot, ReviewItem
from review.sql import ITEM_QUERIES
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


def review_items_open_new(*, workspace_id: int, items: list[dict]) -> list[ReviewItem]:
    """``review_item_open`` for many items whose subjects are new (they name rows created in
    the same transaction, such as ``field_value:<id>`` of a value just stored, so no item of
    theirs can exist): one INSERT for all, and each one's ``review_item.opened`` event.
    Each dict has ``reason``, ``subject``, ``payload`` and optionally ``thread_id``,
    ``field_value_id``, ``association_candidate_id``, ``job_id``."""
    made = []
    for item in items:
        missing = PAYLOAD_KEYS[item["reason"]] - set(item["payload"])
        if missing:
            raise ValueError(f"a {item['reason']} review item's payload needs {', '.join(sorted(missing))}")
        made.append(
            ReviewItem(
                workspace_id=workspace_id,
                thread_id=item.get("thread_id"),
                field_value_id=item.get("field_value_id"),
                association_candidate_id=item.get("association_candidate_id"),
                reason=item["reason"],
                subject_key=item["subject"],
                payload_json=item["payload"],
            )
        )
    if not made:
        return []
    ReviewItem.objects.bulk_create(made)
    for row, item in zip(made, items, strict=True):
        audit_event_record(
            workspace_id=workspace_id,
            type="review_item.opened",
            thread_id=item.get("thread_id"),
            job_id=item.get("job_id"),
            data={
                "review_item_id": row.pk,
                "reason": row.reason,
                "subject": row.subject_key,
                "field": item["payload"].get("field"),
            },
        )
    return made


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


def review_item_claim(*, item: ReviewItem, user, fresh: bool = False, policy: dict | None = None) -> bool:
    """Claim an open item for this reviewer for the policy's claim time; False if someone else
    holds it. A new claim (not a renewal of mine) starts the clock a decision's seconds count from.

    ``fresh``: ``item`` was read in this transaction (the item page's GET). When it shows my
    claim with at least half the claim time left, nothing is written: a reviewer paging back
    and forth costs no UPDATE (and no WAL flush) per view, and the claim is renewed once it
    is half spent. ``policy``: the workspace's, when the caller has read it already."""
    now = timezone.now()
    seconds = (policy or policy_for(workspace_id=item.workspace_id))["review_claim_seconds"]
    if (
        fresh
        and item.status == ReviewItem.Status.OPEN
        and item.assigned_to_id == user.pk
        and item.claimed_at is not None
        and item.claimed_until is not None
        and item.claimed_until - now >= timedelta(seconds=seconds / 2)
    ):
        return True
    # Named SQL (review/sql/item.sql): the item page's GET runs it, and the ORM's compilation
    # of this UPDATE cost more than the statement.
    with connection.cursor() as cursor:
        cursor.execute(
            ITEM_QUERIES["item_claim"],
            {"pk": item.pk, "user": user.pk, "now": now, "until": now + timedelta(seconds=seconds)},
        )
        claimed = cursor.rowcount
    if claimed:
        item.assigned_to, item.claimed_until = user, now + timedelta(seconds=seconds)
    return bool(claimed)


def review_item_release(*, item: ReviewItem, user) -> None:
    ReviewItem.objects.filter(pk=item.pk, assigned_to=user, status=ReviewItem.Status.OPEN).update(
        claimed_until=None, claimed_at=None
    )


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


def _decide(
    *, item_id: int, reviewer, version: int, decision: str, value, only: Q | None = None, batch: str = ""
) -> ReviewItem:
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
    last = {"decision": label, "by": reviewer.pk, "at": now.isoformat(), "changes": changes}
    if decision == "edit":
        last["value"] = value  # what the reviewer put in place of the proposed value
    if batch:
        last["batch"] = batch  # decided together: undone together (review_batch_undo)
    # Seconds from my claim (opening the item) to this decision; none if I never opened it.
    seconds = (
        round((now - item.claimed_at).total_seconds(), 1)
        if item.claimed_at and item.assigned_to_id == reviewer.pk
        else None
    )
    item.payload_json = {**item.payload_json, "last_decision": last}
    item.claimed_at = None
    item.save(update_fields=["payload_json", "claimed_at"])
    timing = {"seconds": seconds, **({"batch": batch} if batch else {})}
    if decision == "associate":
        audit_type, data = "association.resolved", {"choice": value["choice"], "deal_id": value["deal_id"], **timing}
    else:
        audit_type, data = _AUDIT[decision], {"changes": changes, "value": value, **timing}
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
    item.claimed_at = timezone.now()
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


_IDS = ArrayField(BigIntegerField())


def review_item_skip(*, item: ReviewItem, user) -> None:
    """Pass on an open item: my claim ends (it is free for someone else), it goes behind the
    other items in my queue (``skipped_by``), and the audit log says who skipped it when."""
    updated = ReviewItem.objects.filter(
        Q(assigned_to=user)
        | Q(assigned_to__isnull=True)
        | Q(claimed_until__isnull=True)
        | Q(claimed_until__lt=timezone.now()),
        pk=item.pk,
        status=ReviewItem.Status.OPEN,
    ).update(
        assigned_to=None,
        claimed_until=None,
        claimed_at=None,
        skipped_by=Case(
            When(skipped_by__contains=[user.pk], then=F("skipped_by")),
            default=Func(F("skipped_by"), Value(user.pk), function="array_append", output_field=_IDS),
            output_field=_IDS,
        ),
    )
    if not updated:
        fresh = ReviewItem.objects.select_related("assigned_to", "resolved_by").get(pk=item.pk)
        if fresh.status != ReviewItem.Status.OPEN:
            raise ReviewInvalid(_conflict_message(fresh, user))
        raise ReviewConflict(_held_message(fresh) + " Nothing was changed.")
    audit_event_record(
        workspace_id=item.workspace_id,
        type="review_item.skipped",
        actor=user,
        thread_id=item.thread_id,
        data={"review_item_id": item.pk},
    )


# --- several items at once -------------------------------------------------------------------

BULK_DECISIONS = ("approve", "reject")


@transaction.atomic
def review_items_resolve_bulk(*, items: list[tuple[int, int]], reviewer, decision: str) -> dict:
    """Approve or reject several items, each ``(id, version seen)``, as one batch that one undo
    puts back (``review_batch_undo``). An item that cannot be decided (someone else holds or
    decided it, it changed, it is a deal association) is left as it is and reported; the
    others are decided. Returns ``{"batch", "decided": [ids], "refused": [(id, why)]}``."""
    if decision not in BULK_DECISIONS:
        raise ReviewInvalid(f"a bulk decision is approve or reject, not {decision!r}")
    if not items:
        raise ReviewInvalid("select at least one item (x selects a row)")
    batch = uuid.uuid4().hex
    decided, refused = [], []
    for item_id, version in items:
        try:
            with transaction.atomic():
                _decide(
                    item_id=item_id,
                    reviewer=reviewer,
                    version=version,
                    decision=decision,
                    value=None,
                    only=Q(association_candidate__isnull=True) & ~Q(reason=Reason.ASSOCIATION),
                    batch=batch,
                )
        except ReviewItem.DoesNotExist:
            refused.append((item_id, "no such item"))
        except (ReviewConflict, ReviewInvalid) as exc:
            refused.append((item_id, _bulk_refusal(item_id, str(exc))))
        else:
            decided.append(item_id)
    if decided:
        audit_event_record(
            workspace_id=_workspace_of(decided[0]),
            type="review_items.bulk_decided",
            actor=reviewer,
            data={"batch": batch, "decision": decision, "review_item_ids": decided, "refused": [i for i, _ in refused]},
        )
    return {"batch": batch, "decided": decided, "refused": refused}


def _bulk_refusal(item_id: int, message: str) -> str:
    item = ReviewItem.objects.filter(pk=item_id).first()
    if item is not None and item.reason == Reason.ASSOCIATION and item.status == ReviewItem.Status.OPEN:
        return "a deal association is decided on its own page"
    return message


def _workspace_of(item_id: int) -> int:
    return ReviewItem.objects.values_list("workspace_id", flat=True).get(pk=item_id)


@transaction.atomic
def review_batch_undo(*, batch: str, user) -> list[int]:
    """Undo every decision of a bulk batch that still stands, all or none (within the undo
    window, by the reviewer who decided or an admin). Returns the reopened items' ids."""
    ids = list(
        ReviewItem.objects.filter(payload_json__last_decision__batch=batch)
        .exclude(status=ReviewItem.Status.OPEN)
        .order_by("-resolved_at", "-pk")  # the latest first: each undo sees what came after it put back
        .values_list("pk", flat=True)
    )
    if not ids:
        raise ReviewInvalid("this batch has no decision left to undo")
    for item_id in ids:
        review_item_undo(item_id=item_id, user=user)
    return ids


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


# --- the dashboard's snapshot ------------------------------------------------------------------


def dashboard_snapshot_refresh(*, workspace_id: int) -> DashboardSnapshot:
    """Count the dashboard's figures now and keep them as the workspace's snapshot (one row,
    written over; call in the workspace's context). ``computed_at`` is when counting began."""
    from review.selectors import dashboard_counts

    started = timezone.now()
    counts = dashboard_counts()
    (row,) = DashboardSnapshot.objects.bulk_create(
        [DashboardSnapshot(workspace_id=workspace_id, figures_json=counts, computed_at=started)],
        update_conflicts=True,
        unique_fields=["workspace"],
        update_fields=["figures_json", "computed_at"],
    )
    return row


def dashboard_snapshot_for_view(*, workspace_id: int) -> DashboardSnapshot:
    """The snapshot a dashboard view shows: the kept one; older than DASHBOARD_REFRESH_SECONDS,
    a worker is asked to count again (one job at a time: ``dashboard_refresh``); missing or
    older than DASHBOARD_STALE_SECONDS (no worker came), counted here and now."""
    from django.conf import settings

    from pipeline import stages
    from review.selectors import dashboard_snapshot

    snapshot = dashboard_snapshot()
    age = (timezone.now() - snapshot.computed_at).total_seconds() if snapshot else None
    if age is None or age > settings.DASHBOARD_STALE_SECONDS:
        return dashboard_snapshot_refresh(workspace_id=workspace_id)
    if age > settings.DASHBOARD_REFRESH_SECONDS:
        stages.emit(stages.DASHBOARD_STALE, workspace_id=workspace_id)
    return snapshot
