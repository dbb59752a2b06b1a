"""Writes for deal support mode: linking threads to deals, deal facts, readiness.

Each action runs in its workspace context and one transaction; follow-up work is queued in
that same transaction, so it exists only if the action commits. A person's choice of deal
(a reviewer ThreadLink, or a resolved AssociationCandidate) is never overridden.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from deals import linking, selectors
from deals.frameworks import FACT_KEYS, FRAMEWORKS, FactView, readiness_evaluate
from deals.models import AssociationCandidate, Deal, DealFact, DealReadiness, ThreadLink
from extraction.models import FieldValue
from extraction.selectors import thread_current_values
from extraction.services import field_type_of
from pipeline import stages
from review.models import ReviewReason
from review.services import review_item_exists, review_item_open, review_items_close, review_items_refresh
from threads.models import Message, Thread
from workspaces.rls import workspace_context
from workspaces.selectors import policy_for
from workspaces.services import audit_event_record, audit_events_deferred

FACT_STATUSES = (FieldValue.Status.ACCEPTED, FieldValue.Status.VERIFIED)


# --- linking -------------------------------------------------------------------------------


@dataclass
class LinkResult:
    outcome: str  # link | review | none | reviewer | gone
    deal_id: int | None = None
    affected_deal_ids: set[int] = field(default_factory=set)
    candidates: list[dict] = field(default_factory=list)


def thread_link_plan(*, thread: Thread, policy: dict, deals: list[linking.DealFacts] | None = None, facts=None):
    """What linking would decide for the thread under ``policy`` (reads only)."""
    facts = selectors.thread_facts(thread=thread) if facts is None else facts
    deals = selectors.deal_facts_all() if deals is None else deals
    candidates = linking.candidates_for(facts, deals)
    decision = linking.decide(candidates, threshold=policy["auto_link_threshold"], margin=policy["auto_link_margin"])
    return facts, decision


def thread_link_update(*, workspace_id: int, thread_id: int, job_id: int | None = None) -> LinkResult:
    """Score the deals for one thread and link it, send it to review, or leave it unlinked."""
    with workspace_context(workspace_id):
        return _thread_link_update(workspace_id, thread_id, job_id)


def threads_link_update(*, workspace_id: int, threads: list[tuple[int, int | None]]) -> list[LinkResult]:
    """``thread_link_update`` for many threads of one workspace, ``(thread_id, job_id)`` pairs,
    in one transaction: the policy and the deals read once, the audit events and follow-up
    jobs written together at the end. Any failure rolls it all back and raises."""
    with workspace_context(workspace_id), audit_events_deferred(), stages.emits_deferred():
        policy = policy_for(workspace_id=workspace_id)
        deals = selectors.deal_facts_all()
        ids = list(dict.fromkeys(t for t, _ in threads))
        # Read for all at once: the threads (locked in id order), who a person decided, the
        # facts, the links and the open association candidates. FOR NO KEY UPDATE: linking
        # the same thread elsewhere still waits for this batch, but a transaction inserting a
        # row that refers to one of these threads (a decision, new mail) does not, since the
        # batch holds its locks longer than one thread would (and could deadlock with it).
        found = {t.pk: t for t in Thread.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")}
        decided = selectors.reviewer_decided_threads(thread_ids=ids)
        facts = selectors.threads_facts(threads=list(found.values()))
        links = {link.thread_id: link for link in ThreadLink.objects.filter(thread_id__in=ids)}
        candidates = set(
            AssociationCandidate.objects.filter(thread_id__in=ids, status=AssociationCandidate.Status.OPEN).values_list(
                "thread_id", flat=True
            )
        )
        results = []
        for thread_id, job_id in threads:
            known = {
                "thread": found.get(thread_id),
                "decided": thread_id in decided,
                "facts": facts.get(thread_id),
                "existing": links.get(thread_id),
                "candidates": thread_id in candidates,
            }
            results.append(
                _thread_link_update(workspace_id, thread_id, job_id, policy=policy, deals=deals, known=known)
            )
            # A thread asked twice is read again the second time.
            found.pop(thread_id, None)
        return results


def _thread_link_update(
    workspace_id: int, thread_id: int, job_id, *, policy=None, deals=None, known=None
) -> LinkResult:
    """thread_link_update inside its workspace context; ``known``: what a batch read for it."""
    if known is not None and known["thread"] is None:
        known = None  # gone, or asked twice in the batch: read as one thread alone would
    thread = known["thread"] if known else Thread.objects.select_for_update().filter(pk=thread_id).first()
    if thread is None:
        return LinkResult("gone")
    if known["decided"] if known else selectors.reviewer_decided(thread_id=thread_id):
        return LinkResult("reviewer")
    policy = policy_for(workspace_id=workspace_id) if policy is None else policy
    deals = selectors.deal_facts_all() if deals is None else deals
    facts, decision = thread_link_plan(
        thread=thread, policy=policy, deals=deals, facts=known["facts"] if known else None
    )
    by_id = {d.id: d for d in deals}
    existing = known["existing"] if known else ThreadLink.objects.filter(thread=thread).first()
    open_candidates = known["candidates"] if known else None
    result = LinkResult(decision.outcome, candidates=[c.as_json() for c in decision.candidates])
    if existing:
        result.affected_deal_ids.add(existing.deal_id)
    ctx = _Ctx(workspace_id, thread, job_id)
    if decision.outcome == "link":
        best = decision.best
        runner_up = decision.candidates[1].score if len(decision.candidates) > 1 else None
        reason = linking.reason_text(best, facts, by_id[best.deal_id], runner_up)
        _link_set(ctx, existing, best, reason)
        if open_candidates is not False:  # False: the batch found none open
            _candidate_dismiss(ctx, why="linked")
        result.deal_id = best.deal_id
        result.affected_deal_ids.add(best.deal_id)
    else:
        if existing:
            _link_remove(ctx, existing, why=decision.outcome)
        if decision.outcome == "review":
            _candidate_open(ctx, decision, by_id)
        elif open_candidates is not False:
            _candidate_dismiss(ctx, why="no candidate")
    if result.affected_deal_ids and _link_changed(existing, decision.outcome, result.deal_id):
        stages.emit(
            stages.LINK_CHANGED,
            workspace_id=workspace_id,
            thread_id=thread_id,
            deal_ids=sorted(result.affected_deal_ids),
            decided=False,
        )
    return result


def _link_changed(existing: ThreadLink | None, outcome: str, deal_id: int | None) -> bool:
    """Whether the thread's deal is now another than before (linked, moved or unlinked)."""
    before = existing.deal_id if existing else None
    after = deal_id if outcome == "link" else None
    return before != after


@dataclass
class _Ctx:
    workspace_id: int
    thread: Thread
    job_id: int | None

    def audit(self, type: str, data: dict) -> None:
        audit_event_record(
            workspace_id=self.workspace_id, type=type, thread_id=self.thread.pk, job_id=self.job_id, data=data
        )


def _link_set(ctx: _Ctx, existing: ThreadLink | None, best: linking.Candidate, reason: str) -> None:
    if existing and existing.deal_id == best.deal_id:
        if existing.link_confidence != best.score or existing.link_reason != reason:
            ThreadLink.objects.filter(pk=existing.pk).update(link_confidence=best.score, link_reason=reason)
        return
    if existing:
        existing.delete()
    ThreadLink.objects.create(
        workspace_id=ctx.workspace_id,
        thread=ctx.thread,
        deal_id=best.deal_id,
        link_confidence=best.score,
        link_reason=reason,
        linked_by=ThreadLink.LinkedBy.AUTO,
    )
    ctx.audit(
        "deal_link.created",
        {
            "deal_id": best.deal_id,
            "confidence": best.score,
            "reason": reason,
            "signals": best.signals,
            "replaced_deal_id": existing.deal_id if existing else None,
        },
    )


def _link_remove(ctx: _Ctx, existing: ThreadLink, *, why: str) -> None:
    existing.delete()
    ctx.audit("deal_link.removed", {"deal_id": existing.deal_id, "why": why})


def association_subject(candidate_id: int) -> str:
    return f"association:{candidate_id}"


def _candidate_open(ctx: _Ctx, decision: linking.Decision, deals: dict[int, linking.DealFacts]) -> None:
    rows = [c.as_json() for c in decision.candidates]
    payload = {"candidates": [_candidate_row(row, deals[row["deal_id"]]) for row in rows]}
    candidate = AssociationCandidate.objects.filter(thread=ctx.thread, status=AssociationCandidate.Status.OPEN).first()
    if candidate is not None:
        if candidate.candidates_json != rows:
            AssociationCandidate.objects.filter(pk=candidate.pk).update(candidates_json=rows)
            review_items_refresh(subject=association_subject(candidate.pk), payload=payload)
            ctx.audit("association.updated", {"candidate_id": candidate.pk, "deal_ids": [r["deal_id"] for r in rows]})
        if review_item_exists(subject=association_subject(candidate.pk)):
            return
    else:
        candidate = AssociationCandidate.objects.create(
            workspace_id=ctx.workspace_id, thread=ctx.thread, candidates_json=rows
        )
    item, _ = review_item_open(
        workspace_id=ctx.workspace_id,
        reason=ReviewReason.ASSOCIATION,
        subject=association_subject(candidate.pk),
        thread_id=ctx.thread.pk,
        association_candidate_id=candidate.pk,
        payload=payload,
        job_id=ctx.job_id,
    )
    ctx.audit(
        "association.opened",
        {"candidate_id": candidate.pk, "review_item_id": item.pk, "deal_ids": [r["deal_id"] for r in rows]},
    )


def _candidate_row(row: dict, deal: linking.DealFacts) -> dict:
    return {**row, "title": deal.title, "stage": getattr(deal, "stage", "")}


def _candidate_dismiss(ctx: _Ctx, *, why: str) -> None:
    open_ids = list(
        AssociationCandidate.objects.filter(thread=ctx.thread, status=AssociationCandidate.Status.OPEN).values_list(
            "pk", flat=True
        )
    )
    if not open_ids:
        return
    AssociationCandidate.objects.filter(pk__in=open_ids).update(status=AssociationCandidate.Status.DISMISSED)
    review_items_close(
        workspace_id=ctx.workspace_id,
        subjects=[association_subject(pk) for pk in open_ids],
        why=f"association {why}",
        thread_id=ctx.thread.pk,
    )
    ctx.audit("association.dismissed", {"candidate_ids": open_ids, "why": why})


def deal_save(*, workspace_id: int, crm: str, crm_deal_id: str, **fields) -> Deal:
    """Create or update the mirror of one CRM deal (the admin, the demo); a new or changed deal
    makes the pipeline link its threads again."""
    with workspace_context(workspace_id):
        deal, changed = _deal_upsert(workspace_id, crm, crm_deal_id, fields)
        if changed:
            deals_changed(workspace_id=workspace_id, deal_ids=[deal.pk])
    return deal


def deals_save(*, workspace_id: int, crm: str, deals: list[dict]) -> list[int]:
    """Create or update many mirrored deals (a CSV import, a page of a CRM sync), each a dict
    with ``crm_deal_id`` and the fields to set; the changed ones are relinked together.
    Returns the ids of the deals that are new or changed."""
    changed_ids = []
    with workspace_context(workspace_id):
        for fields in deals:
            fields = dict(fields)
            deal, changed = _deal_upsert(workspace_id, crm, fields.pop("crm_deal_id"), fields)
            if changed:
                changed_ids.append(deal.pk)
        deals_changed(workspace_id=workspace_id, deal_ids=changed_ids)
    return changed_ids


def _deal_upsert(workspace_id: int, crm: str, crm_deal_id: str, fields: dict) -> tuple[Deal, bool]:
    deal = Deal.objects.select_for_update().filter(crm=crm, crm_deal_id=crm_deal_id).first()
    if deal is None:
        return Deal.objects.create(workspace_id=workspace_id, crm=crm, crm_deal_id=crm_deal_id, **fields), True
    changed = {name: value for name, value in fields.items() if getattr(deal, name) != value}
    for name, value in changed.items():
        setattr(deal, name, value)
    if changed:
        deal.save(update_fields=list(changed))
    return deal, bool(changed)


def deals_changed(*, workspace_id: int, deal_ids: list[int]) -> None:
    """Deals were created or changed: the pipeline links their threads again."""
    if deal_ids:
        with workspace_context(workspace_id):
            stages.emit(stages.DEALS_CHANGED, workspace_id=workspace_id, deal_ids=sorted(set(deal_ids)))


def deals_relink(*, workspace_id: int, deal_ids: list[int], job_id: int | None = None) -> int:
    """Deals arrived or changed: queue a ``link_thread`` job for every thread any of them took
    part in (one round trip; keys coalesce with linking already queued). The linking itself is
    the usual batched one, spread over the workers, each batch in its own short transaction,
    where one job linking a large workspace's every thread would outlast its timeout. Returns
    how many threads were queued."""
    with workspace_context(workspace_id), stages.emits_deferred():
        thread_ids = threads_for_deals(deal_ids=deal_ids)
        if thread_ids:
            stages.emit(stages.THREADS_RELINK_DUE, workspace_id=workspace_id, thread_ids=thread_ids)
        audit_event_record(
            workspace_id=workspace_id,
            type="deals.relinked",
            job_id=job_id,
            data={"deal_ids": sorted(deal_ids), "threads": len(thread_ids)},
        )
    return len(thread_ids)


def threads_for_deals(*, deal_ids: list[int]) -> list[int]:
    """Threads that anyone of these deals (a contact, its domain, its owner) took part in."""
    deals = list(Deal.objects.filter(pk__in=deal_ids))
    emails = {e.lower() for d in deals for e in [*d.contact_emails, d.owner_email] if e}
    domains = {d.primary_domain.lower() for d in deals if d.primary_domain}
    ids = []
    for pk, participants in Thread.objects.values_list("pk", "participants").order_by("pk").iterator():
        people = {p.lower() for p in participants}
        if people & emails or {linking.domain_of(p) for p in people} & domains:
            ids.append(pk)
    return ids


# --- deal facts ----------------------------------------------------------------------------


@dataclass
class _Candidate:
    thread_id: int
    value: FieldValue
    evidence_at: object


def deal_facts_update(*, workspace_id: int, deal_id: int, job_id: int | None = None) -> dict:
    """Turn the accepted and verified BANT values of the deal's linked threads into DealFacts.

    Per key the value with the newest evidence wins; the fact it replaces is kept as
    superseded. Differing values from two threads open one ``fact_conflict`` review item.
    """
    with workspace_context(workspace_id):
        return _deal_facts_update(workspace_id, deal_id, job_id)


def deals_facts_update(*, workspace_id: int, deals: list[tuple[int, int | None]]) -> None:
    """``deal_facts_update`` for many deals of one workspace, ``(deal_id, job_id)`` pairs (a
    deal named twice is updated once), in one transaction, the audit events and follow-up
    jobs written together at the end. Any failure rolls it all back and raises."""
    with workspace_context(workspace_id), audit_events_deferred(), stages.emits_deferred():
        for deal_id, job_id in dict(deals).items():
            _deal_facts_update(workspace_id, deal_id, job_id)


def threads_deal_ids(*, workspace_id: int, thread_ids: list[int]) -> dict[int, int]:
    """The deal each of these threads is linked to, by thread id (unlinked ones left out)."""
    with workspace_context(workspace_id):
        return dict(ThreadLink.objects.filter(thread_id__in=thread_ids).values_list("thread_id", "deal_id"))


def _deal_facts_update(workspace_id: int, deal_id: int, job_id) -> dict:
    summary = {"recorded": 0, "superseded": 0, "conflicts": 0}
    deal = Deal.objects.select_for_update().filter(pk=deal_id).first()  # one update per deal at a time
    if deal is None:
        return summary
    per_key = _values_by_key(deal)
    current = selectors.deal_current_facts(deal_id=deal.pk)
    for key in FACT_KEYS:
        chosen = _newest(per_key.get(key, []))
        summary_key = _fact_apply(deal, key, chosen, current.get(key), job_id)
        for name in summary_key:
            summary[name] += 1
        if _conflict_check(deal, key, per_key.get(key, []), job_id):
            summary["conflicts"] += 1
    if summary["recorded"] or summary["superseded"]:
        stages.emit(stages.FACTS_CHANGED, workspace_id=workspace_id, deal_id=deal.pk)
    return summary


def _values_by_key(deal: Deal) -> dict[str, list[_Candidate]]:
    thread_ids = list(ThreadLink.objects.filter(deal=deal).values_list("thread_id", flat=True))
    per_key: dict[str, list[_Candidate]] = {}
    for thread_id in thread_ids:
        for key, value in thread_current_values(thread_id=thread_id).items():
            if key in FACT_KEYS and value.status in FACT_STATUSES:
                per_key.setdefault(key, []).append(_Candidate(thread_id, value, None))
    message_ids = {e.get("message_id") for cs in per_key.values() for c in cs for e in c.value.evidence_json}
    sent = dict(Message.objects.filter(pk__in=[m for m in message_ids if m]).values_list("pk", "sent_at"))
    for candidates in per_key.values():
        for c in candidates:
            times = [sent.get(e.get("message_id")) for e in c.value.evidence_json]
            c.evidence_at = max([t for t in times if t] or [c.value.created_at])
    return per_key


def _newest(candidates: list[_Candidate]) -> _Candidate | None:
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c.evidence_at, c.value.created_at, c.value.pk))


def _fact_apply(deal: Deal, key: str, chosen: _Candidate | None, fact: DealFact | None, job_id) -> list[str]:
    if chosen is None:
        if fact is None:
            return []
        DealFact.objects.filter(pk=fact.pk).update(status=DealFact.Status.SUPERSEDED)
        _audit(deal, "deal_fact.superseded", {"key": key, "fact_id": fact.pk, "by": None}, job_id)
        return ["superseded"]
    value = chosen.value
    confirmed = value.status == FieldValue.Status.VERIFIED
    if fact is not None and fact.source_field_value_id == value.pk and fact.confirmed == confirmed:
        return []
    new = DealFact.objects.create(
        workspace_id=deal.workspace_id,
        deal=deal,
        key=key,
        value_json=value.field_value_json,
        confidence=1.0 if confirmed else value.confidence,
        confirmed=confirmed,
        evidence_json=[{**e, "thread_id": chosen.thread_id} for e in value.evidence_json],
        source_field_value=value,
    )
    done = ["recorded"]
    if fact is not None:
        DealFact.objects.filter(pk=fact.pk).update(status=DealFact.Status.SUPERSEDED)
        done.append("superseded")
    _audit(
        deal,
        "deal_fact.recorded",
        {
            "key": key,
            "fact_id": new.pk,
            "value": value.field_value_json,
            "confirmed": confirmed,
            "field_value_id": value.pk,
            "superseded_fact_id": fact.pk if fact else None,
        },
        job_id,
        thread_id=chosen.thread_id,
    )
    return done


def _conflict_check(deal: Deal, key: str, candidates: list[_Candidate], job_id) -> bool:
    """Two linked threads that disagree on a key: one review item per deal, key and set of values."""
    distinct = {_canonical(c.value.field_value_json) for c in candidates}
    if len(distinct) < 2:
        return False
    signature = hashlib.sha256("|".join(sorted(distinct)).encode()).hexdigest()[:16]
    subject = f"deal_fact:{deal.pk}:{key}:{signature}"
    if review_item_exists(subject=subject):
        return False
    review_items_close(
        workspace_id=deal.workspace_id, subject_prefix=f"deal_fact:{deal.pk}:{key}:", why="the values changed"
    )
    newest = _newest(candidates)
    values = [
        {
            "thread_id": c.thread_id,
            "field_value_id": c.value.pk,
            "value": c.value.field_value_json,
            "confidence": c.value.confidence,
            "status": c.value.status,
            "evidence": c.value.evidence_json,
            "current": c is newest,
        }
        for c in sorted(candidates, key=lambda c: c.thread_id)
    ]
    item, _ = review_item_open(
        workspace_id=deal.workspace_id,
        reason=ReviewReason.FACT_CONFLICT,
        subject=subject,
        thread_id=newest.thread_id,
        job_id=job_id,
        payload={
            "deal_id": deal.pk,
            "deal": deal.title,
            "key": key,
            "field": key,
            "field_type": field_type_of(key, schema_id=newest.value.run.schema_id),
            "signature": signature,
            "values": values,
            # What the console's item page shows for a value: the newest, and the others beside it.
            "proposed_value": newest.value.field_value_json,
            "confidence": newest.value.confidence,
            "evidence": newest.value.evidence_json,
            "grounded": newest.value.grounded,
            "other_values": [
                {
                    "id": c.value.pk,
                    "field_value_json": c.value.field_value_json,
                    "confidence": c.value.confidence,
                    "status": f"{c.value.status}, thread {c.thread_id}",
                }
                for c in candidates
                if c is not newest
            ],
        },
    )
    _audit(deal, "deal_fact.conflict", {"key": key, "review_item_id": item.pk, "values": len(values)}, job_id)
    return True


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _audit(deal: Deal, type: str, data: dict, job_id, thread_id: int | None = None) -> None:
    audit_event_record(
        workspace_id=deal.workspace_id, type=type, job_id=job_id, thread_id=thread_id, data={"deal_id": deal.pk, **data}
    )


# --- readiness -----------------------------------------------------------------------------


def deal_readiness_compute(*, workspace_id: int, deal_id: int, job_id: int | None = None) -> list[DealReadiness]:
    """Recompute the deal's readiness for every framework the workspace's policy names."""
    with workspace_context(workspace_id):
        return _deal_readiness_compute(workspace_id, deal_id, job_id)


def deals_readiness_compute(*, workspace_id: int, deals: list[tuple[int, int | None]]) -> None:
    """``deal_readiness_compute`` for many deals of one workspace, ``(deal_id, job_id)`` pairs,
    in one transaction, the policy read once and the audit events written together."""
    with workspace_context(workspace_id), audit_events_deferred():
        policy = policy_for(workspace_id=workspace_id)
        for deal_id, job_id in dict(deals).items():
            _deal_readiness_compute(workspace_id, deal_id, job_id, policy=policy)


def _deal_readiness_compute(workspace_id: int, deal_id: int, job_id, *, policy=None) -> list[DealReadiness]:
    deal = Deal.objects.select_for_update().filter(pk=deal_id).first()
    if deal is None:
        return []
    facts = {
        key: FactView(f.value_json, f.confidence, f.confirmed, f.pk)
        for key, f in selectors.deal_current_facts(deal_id=deal.pk).items()
    }
    rows = []
    for framework_id in (policy or policy_for(workspace_id=workspace_id))["readiness_frameworks"]:
        result = readiness_evaluate(FRAMEWORKS[framework_id], facts)
        row, created = DealReadiness.objects.get_or_create(workspace_id=workspace_id, deal=deal, framework=framework_id)
        changed = created or (row.readiness_score, row.key_states_json) != (result.score, result.states)
        row.readiness_score, row.key_states_json, row.missing_keys = (
            result.score,
            result.states,
            result.missing_keys,
        )
        row.save()
        if changed:
            _audit(
                deal,
                "deal_readiness.computed",
                {"framework": framework_id, "score": result.score, "missing_keys": result.missing_keys},
                job_id,
            )
        rows.append(row)
    return rows


def thread_deal_id(*, workspace_id: int, thread_id: int) -> int | None:
    with workspace_context(workspace_id):
        return ThreadLink.objects.filter(thread_id=thread_id).values_list("deal_id", flat=True).first()
