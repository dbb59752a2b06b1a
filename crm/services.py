"""The CRM write ledger and what a thread writes.

Every intended write is a ``CrmWriteLog`` row committed before any network call
(``crm_write_plan``); ``crm_write_execute`` then marks it "sending" (committed), calls the
CRM with no transaction open, and records the outcome in another short transaction. The
same key and payload hash never writes twice; the same key with another hash is a conflict
for a person. A row found "sending" (a crash after the call, before the commit) is first
looked for in the CRM (our key is stored on the record) and only sent if absent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from crm.adapters import CrmClientError, CrmTransientError, adapter_for
from crm.credentials import CredentialsUnreadable
from crm.models import CrmConnection, CrmWriteLog
from pipeline import stages
from review.models import ReviewReason
from review.services import review_item_open
from workspaces.rls import workspace_context
from workspaces.selectors import policy_for
from workspaces.services import audit_event_record

log = logging.getLogger("crm")
Status = CrmWriteLog.Status
DONE = {Status.SENT, Status.CONFLICT, Status.SKIPPED}
CRASH_ENV = "THREADLINE_CRM_CRASH"  # tests only: "before_send" or "after_send" kills the process there


@dataclass(frozen=True)
class PlannedWrite:
    action: str
    target: str
    payload: dict
    thread_id: int | None = None
    deal_id: int | None = None


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


def crm_write_execute(*, workspace_id: int, write_id: int, adapter, final: bool = True) -> CrmWriteLog:
    """Send one planned write at most once. Must run outside any transaction.

    ``final``: a transient error marks the row "failed" (the last attempt); otherwise the
    row stays "sending" and the error is raised for the job to retry, recovering first.
    """
    assert not transaction.get_connection().in_atomic_block, "no transaction may be open around a CRM call"
    with workspace_context(workspace_id):
        row = CrmWriteLog.objects.select_for_update().get(pk=write_id)
        if row.status in DONE or row.status in (Status.DRY_RUN, Status.FAILED):
            return row  # a failed write goes again only through crm_write_retry
        recovering = row.status == Status.SENDING
        row.status, row.attempts = Status.SENDING, row.attempts + 1
        row.save(update_fields=["status", "attempts", "updated_at"])
    _crash_point("before_send")
    try:
        result = None
        if recovering:
            result = adapter.find_write(
                action=row.action, target=row.target, payload=row.payload_json, key=row.idempotency_key
            )
        if result is None:
            result = adapter.apply(
                action=row.action, target=row.target, payload=row.payload_json, key=row.idempotency_key
            )
            _crash_point("after_send")  # tests: the write reached the CRM, the ledger never hears
    except CrmClientError as exc:
        return _record(workspace_id, write_id, status=Status.FAILED, error=str(exc))
    except CrmTransientError as exc:
        if final:
            return _record(workspace_id, write_id, status=Status.FAILED, error=str(exc))
        _record(workspace_id, write_id, status=Status.SENDING, error=str(exc))
        raise
    return _record(workspace_id, write_id, status=Status.SENT, response=result)


def _record(workspace_id: int, write_id: int, *, status: str, error: str = "", response=None) -> CrmWriteLog:
    with workspace_context(workspace_id):
        row = CrmWriteLog.objects.select_for_update().get(pk=write_id)
        row.status, row.error = status, error[:4000]
        if response is not None:
            row.response_json = response
        if status == Status.SENT:
            row.sent_at = timezone.now()
        row.save()
        if status in (Status.SENT, Status.FAILED):
            audit_event_record(
                workspace_id=workspace_id,
                type=f"crm.write_{status}",
                thread_id=row.thread_id,
                data={"write_id": row.pk, "action": row.action, "crm": row.crm},
            )
    if status == Status.FAILED:
        log.warning("crm write %s failed: %s", write_id, error[:200])
    return row


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)


def crm_write_retry(*, workspace_id: int, write_id: int, user=None) -> CrmWriteLog:
    """Queue a failed write again (the console's retry button); it recovers before sending."""
    with workspace_context(workspace_id):
        row = CrmWriteLog.objects.select_for_update().get(pk=write_id)
        if row.status != Status.FAILED:
            raise ValueError("only a failed write can be retried")
        # "sending" makes the next attempt look for the write in the CRM before sending.
        row.status, row.error = Status.SENDING, ""
        row.save(update_fields=["status", "error", "updated_at"])
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


def crm_adapter_get(*, workspace_id: int, crm: str):
    """The adapter for a workspace's CRM (dry run for "none"), reading its credentials."""
    if crm in ("none", "dry_run"):
        return adapter_for(crm="dry_run")
    with workspace_context(workspace_id):
        connection = CrmConnection.objects.filter(workspace_id=workspace_id, crm=crm).first()
    return adapter_for(crm=crm, connection=connection)


def crm_sync_thread(*, workspace_id: int, thread_id: int, final: bool = True, adapter=None) -> list[CrmWriteLog]:
    """Plan (and in sync mode send) what a thread's accepted values write to the CRM."""
    from crm.selectors import thread_writes_build

    with workspace_context(workspace_id):
        policy = policy_for(workspace_id=workspace_id)
        crm = policy["crm"] if policy["crm"] != "none" else "dry_run"
        dry_run = crm == "dry_run" or policy["crm_mode"] == "dry_run"
        writes, version = thread_writes_build(thread_id=thread_id, crm=crm)
        rows = [
            crm_write_plan(workspace_id=workspace_id, crm=crm, write=w, version=version, dry_run=dry_run)
            for w in writes
        ]
        if rows:
            audit_event_record(
                workspace_id=workspace_id,
                type="crm.thread_planned",
                thread_id=thread_id,
                data={"writes": [r.pk for r in rows], "dry_run": dry_run},
            )
    if dry_run or not rows:
        return rows
    try:
        adapter = adapter or crm_adapter_get(workspace_id=workspace_id, crm=crm)
    except (CrmClientError, CredentialsUnreadable) as exc:  # no or unreadable credentials: say so on each row
        return [
            _record(workspace_id, r.pk, status=Status.FAILED, error=str(exc))
            if r.status in (Status.PLANNED, Status.SENDING)
            else r
            for r in rows
        ]
    return [crm_write_execute(workspace_id=workspace_id, write_id=r.pk, adapter=adapter, final=final) for r in rows]
