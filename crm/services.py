"""The CRM write ledger and what a thread writes.

Every intended write is a ``CrmWriteLog`` row committed before any network call
(``crm_write_plan``). ``crm_write_execute`` then claims the row for one sender with a lease
(owner and expiry, committed), calls the CRM with no transaction open, and records the
outcome in another short transaction, fenced on the lease: a sender whose lease was taken
over records nothing. The same key and payload hash never writes twice; the same key with
another hash is a conflict for a person. A row found "sending" under a live lease belongs to
another sender and is left alone; one whose lease ran out (its sender died, or gave up on a
transient error) is recovered: first looked for in the CRM by our key, sent only if absent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now

from crm.adapters import CrmClientError, CrmTransientError, adapter_for
from crm.adapters.base import SEND_MAX_REQUESTS, request_max_seconds
from crm.credentials import CredentialsUnreadable
from crm.models import CrmConnection, CrmWriteLog
from crm.selectors import PlannedWrite, thread_writes_build, threads_writes_known
from pipeline import stages
from review.models import ReviewReason
from review.services import review_item_open
from workspaces.rls import workspace_context
from workspaces.selectors import policy_for
from workspaces.services import audit_event_record, audit_events_deferred

log = logging.getLogger("crm")
Status = CrmWriteLog.Status
CRASH_ENV = "THREADLINE_CRM_CRASH"  # tests only: "before_send" or "after_send" kills the process there
LEASE_MARGIN_SECONDS = 60.0  # the ledger's own round trips around a send, and scheduling slack


def send_lease_seconds() -> float:
    """How long a claim on a ledger row lasts. It must exceed the longest a send can take, or a
    sender still waiting on the CRM would see its row taken over and the write made twice. A
    send is at most ``SEND_MAX_REQUESTS`` requests (recovery included) of at most
    ``request_max_seconds()`` each (every attempt running into CRM_TIMEOUT_SECONDS in each
    phase, CRM_MAX_RETRIES retries, each after the longest wait CRM_RETRY_MAX_SECONDS). With
    the defaults (20 s, 4, 60 s): 4 x 540 s + 60 s = 37 minutes, which is also how long a row
    whose sender died waits before it is recovered. ``CRM_SEND_LEASE_SECONDS`` overrides it."""
    if settings.CRM_SEND_LEASE_SECONDS is not None:
        return float(settings.CRM_SEND_LEASE_SECONDS)
    return SEND_MAX_REQUESTS * request_max_seconds() + LEASE_MARGIN_SECONDS


def payload_hash(payload: dict) -> str:
    """sha256 of the canonical JSON of the payload."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key(*, workspace_id: int, crm: str, action: str, target: str, version: list) -> str:
    """Derived from the workspace, CRM, action, target object and the version of the values used."""
    material = json.dumps([workspace_id, crm, action, target, version], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def crm_write_plan(*, workspace_id: int, crm: str, write: PlannedWrite, version: list, dry_run: bool) -> CrmWriteLog:
    """The ledger row of an intended write, created or found by its key (call in a workspace context).

    A row that was only ever a dry run follows the current payload and mode; any other row
    with the same key and another payload hash becomes a conflict with a review item.
    """
    key = idempotency_key(workspace_id=workspace_id, crm=crm, action=write.action, target=write.target, version=version)
    digest = payload_hash(write.payload)
    status = Status.DRY_RUN if dry_run else Status.PLANNED
    row, created = CrmWriteLog.objects.select_for_update().get_or_create(
        workspace_id=workspace_id,
        idempotency_key=key,
        defaults={
            "crm": crm,
            "action": write.action,
            "target": write.target,
            "payload_hash": digest,
            "payload_json": write.payload,
            "status": status,
            "thread_id": write.thread_id,
            "deal_id": write.deal_id,
        },
    )
    if created:
        return row
    if row.status == Status.DRY_RUN:
        row.payload_json, row.payload_hash, row.status = write.payload, digest, status
        row.save(update_fields=["payload_json", "payload_hash", "status", "updated_at"])
    elif row.payload_hash != digest and row.status != Status.CONFLICT:
        _conflict(row, write.payload, digest)
    return row


def _conflict(row: CrmWriteLog, payload: dict, digest: str) -> None:
    """The same key planned with another payload: a person looks (one item per key and payload,
    however often the sync is retried); what was sent stays "sent", anything else waits."""
    item, created = review_item_open(
        workspace_id=row.workspace_id,
        reason=ReviewReason.CRM_CONFLICT,
        subject=f"crm_write:{row.pk}:{digest}",
        thread_id=row.thread_id,
        payload={
            "write_id": row.pk,
            "idempotency_key": row.idempotency_key,
            "stored_hash": row.payload_hash,
            "new_hash": digest,
            "new_payload": payload,
        },
    )
    if not created:
        return
    if row.status != Status.SENT:
        row.status = Status.CONFLICT
        row.error = f"the same key was planned again with another payload (hash {digest[:12]})"
        row.save(update_fields=["status", "error", "updated_at"])
    audit_event_record(
        workspace_id=row.workspace_id, type="crm.write_conflict", thread_id=row.thread_id, data={"write_id": row.pk}
    )


@dataclass(frozen=True)
class Claim:
    """This sender's hold on a ledger row: the lease token, and whether it took the row over."""

    owner: str
    recovering: bool


def crm_write_claim(*, workspace_id: int, write_id: int) -> tuple[CrmWriteLog, Claim | None]:
    """Claim a row for this sender with one conditional UPDATE, or leave it (``None``).

    Claimable: "planned" (a first send), or "sending" without a live lease (its sender died,
    gave up after a transient error, or a person retried a failed write): a recovery, which
    looks for the write in the CRM before sending anything. A live lease is someone else's
    send in flight: the row is returned unchanged. The UPDATE repeats the status read just
    before in its condition, so the recovery flag is that of the row actually claimed, and of
    two senders racing for a row exactly one matches. Leases use the database's clock only.

    Why a lease and not a row lock (SELECT ... FOR UPDATE) held across the call: the lock lives
    as long as its transaction, so a transaction (and a pooled connection) would stay open for
    as long as the CRM takes to answer, minutes with retries, blocking every other reader of
    the row and cut by any statement or idle-in-transaction timeout; no transaction is ever
    open across a network call. The lease is a committed fact, visible to every process on
    every machine, and it runs out by itself when its sender dies.
    """
    with workspace_context(workspace_id):
        row = CrmWriteLog.objects.get(pk=write_id)
        if row.status not in (Status.PLANNED, Status.SENDING):
            return row, None
        owner = uuid.uuid4().hex
        expires = ExpressionWrapper(Now() + timedelta(seconds=send_lease_seconds()), output_field=DateTimeField())
        claimed = (
            CrmWriteLog.objects.filter(pk=write_id, status=row.status)
            .filter(Q(status=Status.PLANNED) | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now()))
            .update(
                status=Status.SENDING,
                lease_owner=owner,
                lease_expires_at=expires,
                attempts=F("attempts") + 1,
                updated_at=Now(),
            )
        )
        recovering = row.status == Status.SENDING
        row.refresh_from_db()
    return row, (Claim(owner=owner, recovering=recovering) if claimed else None)


def crm_write_execute(*, workspace_id: int, write_id: int, adapter, final: bool = True) -> CrmWriteLog:
    """Send one planned write at most once. Must run outside any transaction.

    ``final``: a transient error marks the row "failed" (the last attempt); otherwise the
    row stays "sending", its lease released, and the error is raised for the job to retry,
    recovering first. A row another sender holds is returned as it is (not an error).
    """
    assert not transaction.get_connection().in_atomic_block, "no transaction may be open around a CRM call"
    row, claim = crm_write_claim(workspace_id=workspace_id, write_id=write_id)
    if claim is None:
        if row.status == Status.SENDING:
            _look_again_after_lease(row)
        return row  # done, failed (a person retries it), or another sender's
    _crash_point("before_send")
    try:
        result = None
        if claim.recovering:
            result = adapter.find_write(
                action=row.action, target=row.target, payload=row.payload_json, key=row.idempotency_key
            )
        if result is None:
            result = adapter.apply(
                action=row.action, target=row.target, payload=row.payload_json, key=row.idempotency_key
            )
            _crash_point("after_send")  # tests: the write reached the CRM, the ledger never hears
    except CrmClientError as exc:
        return _record(workspace_id, write_id, claim.owner, status=Status.FAILED, error=str(exc))
    except CrmTransientError as exc:
        if final:
            return _record(workspace_id, write_id, claim.owner, status=Status.FAILED, error=str(exc))
        _record(workspace_id, write_id, claim.owner, status=Status.SENDING, error=str(exc))
        raise
    return _record(workspace_id, write_id, claim.owner, status=Status.SENT, response=result)


def _record(
    workspace_id: int, write_id: int, owner: str | None, *, status: str, error: str = "", response=None
) -> CrmWriteLog:
    """Record a send's outcome, fenced on the lease: only the claim that holds the row
    (``owner``) writes it, and ends the lease. A sender whose lease ran out and was taken over
    changes nothing (the new holder looked in the CRM first and records what it found). A row
    that became a conflict while its write was in flight still records a write that was made
    ("sent" stays "sent"). Without an owner (no credentials, nothing was sent) only a row that
    nobody holds is changed."""
    fields = {"status": status, "error": error[:4000], "lease_expires_at": None, "updated_at": Now()}
    if response is not None:
        fields["response_json"] = response
    if status == Status.SENT:
        fields["sent_at"] = Now()
    with workspace_context(workspace_id):
        rows = CrmWriteLog.objects.filter(pk=write_id)
        if owner is None:
            rows = rows.filter(status__in=(Status.PLANNED, Status.SENDING)).filter(
                Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now())
            )
        else:
            held = [Status.SENDING, Status.CONFLICT] if status == Status.SENT else [Status.SENDING]
            rows = rows.filter(lease_owner=owner, status__in=held)
        recorded = rows.update(**fields)
        row = CrmWriteLog.objects.get(pk=write_id)
        if recorded and status in (Status.SENT, Status.FAILED):
            audit_event_record(
                workspace_id=workspace_id,
                type=f"crm.write_{status}",
                thread_id=row.thread_id,
                data={"write_id": row.pk, "action": row.action, "crm": row.crm},
            )
    if not recorded:
        log.warning("crm write %s: this sender no longer holds it; outcome %r not recorded", write_id, status)
    elif status == Status.FAILED:
        log.warning("crm write %s failed: %s", write_id, error[:200])
    return row


def _look_again_after_lease(row: CrmWriteLog) -> None:
    """A row left alone under another sender's lease. Should that sender die, nobody would come
    back for it (the job that left it succeeds), so the row's send is asked for again just
    after the lease runs out: it finds the row sent and does nothing, or recovers it."""
    if row.lease_expires_at is None:
        return
    with workspace_context(row.workspace_id):
        stages.emit(
            stages.CRM_WRITE_LEASE_HELD,
            workspace_id=row.workspace_id,
            write_id=row.pk,
            run_after=row.lease_expires_at + timedelta(seconds=1),
        )


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)


def crm_write_retry(*, workspace_id: int, write_id: int, user=None) -> CrmWriteLog:
    """Queue a failed write again (the console's retry button); it recovers before sending."""
    with workspace_context(workspace_id):
        row = CrmWriteLog.objects.select_for_update().get(pk=write_id)
        if row.status != Status.FAILED:
            raise ValueError("only a failed write can be retried")
        # "sending" with no lease makes the next attempt a recovery: it looks for the write in
        # the CRM before sending.
        row.status, row.error, row.lease_expires_at = Status.SENDING, "", None
        row.save(update_fields=["status", "error", "lease_expires_at", "updated_at"])
        stages.emit(stages.CRM_WRITE_RETRY, workspace_id=workspace_id, write_id=row.pk)
        audit_event_record(
            workspace_id=workspace_id,
            type="crm.write_retry",
            actor=user,
            thread_id=row.thread_id,
            data={"write_id": row.pk},
        )
    return row


def crm_connection_set(
    *, workspace_id: int, crm: str, secret: str | None, instance_url: str = "", actor=None, connection_id=None
) -> CrmConnection:
    """Store (or replace) a workspace's CRM connection, its token encrypted; ``secret=None``
    keeps the stored token (the admin's blank field). ``connection_id``: the row the admin
    edits (its CRM may change). Audited either way, never with the token."""
    from crm.credentials import secret_encrypt

    with workspace_context(workspace_id):
        fields = {"crm": crm, "instance_url": instance_url}
        if secret:
            fields["secret_encrypted"] = secret_encrypt(secret)
        if connection_id is not None:
            CrmConnection.objects.filter(pk=connection_id).update(**fields)
            connection = CrmConnection.objects.get(pk=connection_id)
        else:
            connection, _ = CrmConnection.objects.update_or_create(
                workspace_id=workspace_id, crm=crm, defaults={k: v for k, v in fields.items() if k != "crm"}
            )
        audit_event_record(
            workspace_id=workspace_id,
            type="crm.credentials_set" if secret else "crm.connection_updated",
            actor=actor,
            data={"crm": crm, "token_changed": bool(secret), "instance_url": instance_url},
        )
    return connection


def _crm_mode(policy: dict) -> tuple[str, bool]:
    crm = policy["crm"] if policy["crm"] != "none" else "dry_run"
    return crm, crm == "dry_run" or policy["crm_mode"] == "dry_run"


def _thread_plan(workspace_id: int, thread_id: int, crm: str, dry_run: bool, known=None) -> list[CrmWriteLog]:
    writes, version = thread_writes_build(thread_id=thread_id, crm=crm, known=known)
    rows = [
        crm_write_plan(workspace_id=workspace_id, crm=crm, write=w, version=version, dry_run=dry_run) for w in writes
    ]
    if rows:
        audit_event_record(
            workspace_id=workspace_id,
            type="crm.thread_planned",
            thread_id=thread_id,
            data={"writes": [r.pk for r in rows], "dry_run": dry_run},
        )
    return rows


def crm_sync_threads_dry_run(*, workspace_id: int, thread_ids: list[int]) -> bool:
    """``crm_sync_thread`` for many threads of a workspace whose CRM mode is dry run: every
    plan in one transaction, the audit events written together. False, doing nothing, when
    the workspace sends for real (each thread then goes alone: no transaction is held
    across a CRM call). Any failure rolls it all back and raises."""
    with workspace_context(workspace_id):
        crm, dry_run = _crm_mode(policy_for(workspace_id=workspace_id))
        if not dry_run:
            return False
        with audit_events_deferred():
            ids = list(dict.fromkeys(thread_ids))
            known = threads_writes_known(workspace_id=workspace_id, thread_ids=ids)
            for thread_id in ids:
                # A thread that is gone raises, as it does alone (and then fails alone).
                _thread_plan(workspace_id, thread_id, crm, dry_run, known=known.get(thread_id))
    return True


def crm_adapter_get(*, workspace_id: int, crm: str):
    """The adapter for a workspace's CRM (dry run for "none"), reading its credentials."""
    if crm in ("none", "dry_run"):
        return adapter_for(crm="dry_run")
    with workspace_context(workspace_id):
        connection = CrmConnection.objects.filter(workspace_id=workspace_id, crm=crm).first()
    return adapter_for(crm=crm, connection=connection)


def crm_sync_thread(*, workspace_id: int, thread_id: int, final: bool = True, adapter=None) -> list[CrmWriteLog]:
    """Plan (and in sync mode send) what a thread's accepted values write to the CRM."""
    with workspace_context(workspace_id):
        policy = policy_for(workspace_id=workspace_id)
        crm, dry_run = _crm_mode(policy)
        rows = _thread_plan(workspace_id, thread_id, crm, dry_run)
    if dry_run or not rows:
        return rows
    try:
        adapter = adapter or crm_adapter_get(workspace_id=workspace_id, crm=crm)
    except (CrmClientError, CredentialsUnreadable) as exc:  # no or unreadable credentials: say so on each row
        return [
            _record(workspace_id, r.pk, None, status=Status.FAILED, error=str(exc))
            if r.status in (Status.PLANNED, Status.SENDING)
            else r
            for r in rows
        ]
    return [crm_write_execute(workspace_id=workspace_id, write_id=r.pk, adapter=adapter, final=final) for r in rows]
