"""A person's decision on a CRM write conflict, carried out by the crm app (registered with
``review.handlers`` at startup, ``CrmConfig.ready``).

A conflict is one idempotency key planned again with another payload. Approve: the newer
payload is the one to write; the row takes it and is sent (after the undo window). Reject:
what was stored stands; a row that was never sent is skipped. A row already sent keeps what
the CRM has: approving it is refused (the key's write was made), rejecting records that a
person looked. Undo puts the row back as it was, unless it was sent meanwhile.
"""

from __future__ import annotations

from crm.models import CrmWriteLog
from pipeline import stages
from review.handlers import SubjectHandler, register
from review.models import ReviewReason
from review.services import ReviewInvalid
from workspaces.services import audit_event_record

Status = CrmWriteLog.Status
SAVED = ("status", "payload_json", "payload_hash", "error")


def conflict_decide(*, item, decision: str, value, reviewer, at) -> dict:
    row = CrmWriteLog.objects.select_for_update().get(pk=item.payload_json["write_id"])
    before = {name: getattr(row, name) for name in SAVED}
    if decision == "reject":
        if row.status == Status.CONFLICT:
            row.status, row.error = Status.SKIPPED, f"kept the stored payload ({reviewer.get_username()})"
            row.save(update_fields=["status", "error", "updated_at"])
        return {"write_id": row.pk, "before": before}
    if decision == "edit":
        raise ReviewInvalid("a CRM conflict is approved (write the new payload) or rejected (keep the stored one)")
    if row.status != Status.CONFLICT:
        raise ReviewInvalid(f"this write is {row.get_status_display().lower()}: the CRM keeps what it has")
    row.payload_json, row.payload_hash = item.payload_json["new_payload"], item.payload_json["new_hash"]
    row.status, row.error = Status.PLANNED, ""
    row.save(update_fields=["payload_json", "payload_hash", "status", "error", "updated_at"])
    audit_event_record(
        workspace_id=row.workspace_id,
        type="crm.write_conflict_resolved",
        actor=reviewer,
        thread_id=row.thread_id,
        data={"write_id": row.pk, "payload_hash": row.payload_hash},
    )
    stages.emit(stages.CRM_WRITE_RETRY, workspace_id=row.workspace_id, write_id=row.pk, decided=True)
    return {"write_id": row.pk, "before": before}


def conflict_undo(*, item, changes: dict, user) -> None:
    row = CrmWriteLog.objects.select_for_update().get(pk=changes["write_id"])
    if row.status not in (Status.PLANNED, Status.SKIPPED, Status.CONFLICT, Status.SENT):
        raise ReviewInvalid(f"this write is {row.get_status_display().lower()} now; it cannot be put back")
    if row.status == Status.SENT and changes["before"]["status"] != Status.SENT:
        raise ReviewInvalid("this write was sent meanwhile; the CRM has it")
    for name, value in changes["before"].items():
        setattr(row, name, value)
    row.save(update_fields=[*SAVED, "updated_at"])


def register_handlers() -> None:
    register(SubjectHandler(reasons=(ReviewReason.CRM_CONFLICT,), decide=conflict_decide, undo=conflict_undo))
