"""A person's decision on a review item about a value, carried out by the app that owns values.

Registered with ``review.handlers`` at startup (``ExtractionConfig.ready``): approve makes
the value verified, edit records the corrected value as a new verified one, reject rejects
it; either way the other current values of the field are superseded. Each returns the
status changes, which ``undo`` puts back. What follows (linking, deal facts, the CRM write
after the undo window) is the pipeline's: a decision says the thread's values changed.
"""

from __future__ import annotations

from extraction.models import FieldValue
from extraction.schemas import schema_get
from pipeline import stages
from review.handlers import SubjectHandler, register, register_field_keys
from review.models import ReviewReason

VALUE_REASONS = (
    ReviewReason.LOW_CONFIDENCE,
    ReviewReason.ALWAYS_REVIEW,
    ReviewReason.UNGROUNDED,
    ReviewReason.CONFLICT,
    ReviewReason.AUDIT_SAMPLE,
)
CURRENT = [FieldValue.Status.VERIFIED, FieldValue.Status.ACCEPTED, FieldValue.Status.PROPOSED]


def value_decide(*, item, decision: str, value, reviewer, at) -> dict:
    target = FieldValue.objects.filter(pk=item.field_value_id).first()
    if target is None:
        return {"values": []}
    changes: list[dict] = []

    def move(field_value: FieldValue, to: str) -> None:
        changes.append({"id": field_value.pk, "from": field_value.status, "to": to})
        FieldValue.objects.filter(pk=field_value.pk).update(status=to, decided_by=reviewer, decided_at=at)

    if decision == "reject":
        move(target, FieldValue.Status.REJECTED)
    else:
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
                decided_at=at,
            )
            changes.append({"id": chosen.pk, "from": None, "to": FieldValue.Status.VERIFIED, "created": True})
            move(target, FieldValue.Status.SUPERSEDED)
        else:
            move(target, FieldValue.Status.VERIFIED)
        others = FieldValue.objects.filter(
            thread_id=target.thread_id, field_key=target.field_key, status__in=CURRENT
        ).exclude(pk__in=[target.pk, chosen.pk])
        for other in others:
            move(other, FieldValue.Status.SUPERSEDED)
    _changed(target)
    return {"values": changes}


def value_undo(*, item, changes: dict, user) -> None:
    for change in reversed(changes.get("values", [])):
        if change.get("created"):
            FieldValue.objects.filter(pk=change["id"]).update(status=FieldValue.Status.REJECTED)
        else:
            FieldValue.objects.filter(pk=change["id"]).update(status=change["from"], decided_by=None, decided_at=None)
    target = FieldValue.objects.filter(pk=item.field_value_id).first()
    if target is not None:
        _changed(target)


def _changed(value: FieldValue) -> None:
    stages.emit(stages.VALUES_CHANGED, workspace_id=value.workspace_id, thread_id=value.thread_id, decided=True)


def value_field_type(*, item, policy: dict) -> str:
    if item.payload_json.get("field_type"):
        return item.payload_json["field_type"]
    schema = schema_get(policy["schema"])  # an item opened before payloads carried the type
    key = item.payload_json.get("field")
    return schema.field(key).type if key in schema.keys else "text"


def _field_keys(policy: dict) -> list[str]:
    return schema_get(policy["schema"]).keys


def register_handlers() -> None:
    register(SubjectHandler(reasons=VALUE_REASONS, decide=value_decide, undo=value_undo, field_type=value_field_type))
    register_field_keys(_field_keys)
