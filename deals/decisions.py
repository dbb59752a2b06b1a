"""A person's decisions on the review items deals support opens, carried out by the deals app.

Registered with ``review.handlers`` at startup (``DealsConfig.ready``). An association
decision links the thread to the chosen deal (or to none) and marks the candidate resolved;
automatic linking never overrides it. Undo restores the link as it was. Either way the
thread's deal changed, and the pipeline updates both deals' facts and the CRM sync.
A fact conflict is settled by correcting the value on its thread; deciding the item records
that a person looked (no handler of its own).
"""

from __future__ import annotations

from deals.models import AssociationCandidate, ThreadLink
from pipeline import stages
from review.handlers import SubjectHandler, register
from review.models import ReviewReason
from review.services import ReviewInvalid

LINK_FIELDS = ("deal_id", "link_confidence", "link_reason", "linked_by")


def association_decide(*, item, decision: str, value, reviewer, at) -> dict:
    if decision != "associate":
        raise ReviewInvalid("an association is decided by choosing a deal, none, or a new deal")
    candidate = AssociationCandidate.objects.get(pk=item.association_candidate_id)
    choice, deal_id = value["choice"], value["deal_id"]
    if choice == "deal" and deal_id not in {c.get("deal_id") for c in candidate.candidates_json}:
        raise ReviewInvalid("that deal is not one of this thread's candidates")
    previous = ThreadLink.objects.filter(thread_id=candidate.thread_id).values(*LINK_FIELDS).first()
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
        resolved_at=at,
    )
    _link_changed(candidate, [deal_id, (previous or {}).get("deal_id")])
    return {"previous_link": previous, "deal_id": deal_id}


def association_undo(*, item, changes: dict, user) -> None:
    candidate = AssociationCandidate.objects.get(pk=item.association_candidate_id)
    previous = changes.get("previous_link")
    ThreadLink.objects.filter(thread_id=candidate.thread_id).delete()
    if previous:
        ThreadLink.objects.create(workspace_id=candidate.workspace_id, thread_id=candidate.thread_id, **previous)
    AssociationCandidate.objects.filter(pk=candidate.pk).update(
        status=AssociationCandidate.Status.OPEN, decision="", chosen_deal=None, resolved_by=None, resolved_at=None
    )
    _link_changed(candidate, [changes.get("deal_id"), (previous or {}).get("deal_id")])


def _link_changed(candidate: AssociationCandidate, deal_ids: list) -> None:
    stages.emit(
        stages.LINK_CHANGED,
        workspace_id=candidate.workspace_id,
        thread_id=candidate.thread_id,
        deal_ids=[d for d in deal_ids if d],
        decided=True,
    )


def fact_conflict_field_type(*, item, policy: dict) -> str:
    return item.payload_json.get("field_type") or "text"


def register_handlers() -> None:
    register(SubjectHandler(reasons=(ReviewReason.ASSOCIATION,), decide=association_decide, undo=association_undo))
    register(SubjectHandler(reasons=(ReviewReason.FACT_CONFLICT,), field_type=fact_conflict_field_type))
