"""Extraction runs: read a thread, extract, ground the evidence, route each value by policy.

A run is three short steps so that no transaction is held open while a model answers:
the run row is created (running), the extractor reads the thread, and the values are
written and routed in one transaction. Earlier values are kept and marked superseded,
never overwritten; a value a person verified is never replaced by a machine run, and a
differing machine value goes to a person as a conflict.
"""

from __future__ import annotations

import hashlib
import json
import logging

from django.utils import timezone

from extraction.extractors.base import ExtractionError, ExtractionOutput, MessageInput, Proposal
from extraction.extractors.llm import LLMConfig, LLMExtractor
from extraction.extractors.rules import RulesExtractor
from extraction.grounding import evidence_ground
from extraction.models import ExtractionRun, FieldValue
from extraction.schemas import schema_get
from extraction.selectors import thread_inputs, threads_inputs
from pipeline import stages
from review.models import ReviewReason
from review.services import review_item_open, review_items_close, review_items_open_new
from threads.models import Thread
from workspaces.rls import workspace_context
from workspaces.selectors import policy_for
from workspaces.services import audit_event_record, audit_events_deferred

logger = logging.getLogger(__name__)

CURRENT = (FieldValue.Status.PROPOSED, FieldValue.Status.ACCEPTED)


def extractor_for(*, policy: dict):
    """The extractor the policy asks for; the rules extractor when no LLM is configured."""
    if policy.get("extractor") == "llm":
        config = LLMConfig.from_settings()
        if config is not None:
            return LLMExtractor(config)
        logger.warning("policy asks for the llm extractor but LLM_BASE_URL/LLM_MODEL are not set; using rules")
    return RulesExtractor()


def extraction_run_execute(
    *, workspace_id: int, thread_id: int, job_id: int | None = None, extractor=None
) -> ExtractionRun | None:
    """Run the workspace's extractor over one thread and route what it finds."""
    with workspace_context(workspace_id):
        thread = Thread.objects.filter(pk=thread_id).first()
        if thread is None:
            logger.info("thread %s is gone; nothing to extract", thread_id)
            return None
        policy = policy_for(workspace_id=workspace_id)
        schema = schema_get(policy["schema"])
        extractor = extractor or extractor_for(policy=policy)
        inputs = thread_inputs(thread=thread)
        run = _run_start(workspace_id, thread, schema, extractor, inputs, job_id)
    try:
        output = extractor.extract(inputs, schema)
    except ExtractionError as exc:
        _run_failed(run, str(exc), job_id)
        raise
    except Exception as exc:
        _run_failed(run, f"{type(exc).__name__}: {exc}", job_id)
        raise
    with workspace_context(workspace_id):
        _run_finish(run, output, inputs, policy, job_id)
    return run


def extraction_runs_execute(*, workspace_id: int, threads: list[tuple[int, int | None]], extractor=None) -> int | None:
    """``extraction_run_execute`` for many threads of one workspace, ``threads`` being
    ``(thread_id, job_id)`` pairs: with an extractor that does not wait on the network (the
    rules), everything in one transaction, the policy, threads and messages read once for
    all, the audit events and the follow-up jobs written together at the end. Each thread's
    run, values, review items, events and jobs are those its own ``extraction_run_execute``
    would make. Any failure rolls the whole batch back and raises (the worker then runs the
    threads one at a time, so a bad one fails alone). Returns the number of runs made, or
    None, doing nothing, when the extractor waits on the network (the LLM): those threads go
    one at a time through ``extraction_run_execute``."""
    with workspace_context(workspace_id):
        policy = policy_for(workspace_id=workspace_id)
        extractor = extractor or extractor_for(policy=policy)
    if isinstance(extractor, LLMExtractor):
        return None  # it waits on the network: no transaction held across it, so one at a time
    schema = schema_get(policy["schema"])
    wanted = list(dict.fromkeys(t for t, _ in threads))  # a thread asked twice is extracted once
    job_of = dict(threads)
    with workspace_context(workspace_id), audit_events_deferred(), stages.emits_deferred():
        found = {t.pk: t for t in Thread.objects.filter(pk__in=wanted)}
        inputs_of = threads_inputs(workspace_id=workspace_id, thread_ids=list(found))
        known: dict[tuple[int, str], list[FieldValue]] = {}  # every value so far, newest first
        for value in FieldValue.objects.filter(thread_id__in=list(found)).order_by("-created_at", "-pk"):
            known.setdefault((value.thread_id, value.field_key), []).append(value)
        work = []
        for thread_id in wanted:
            thread = found.get(thread_id)
            if thread is None:
                logger.info("thread %s is gone; nothing to extract", thread_id)
                continue
            inputs, job_id = inputs_of.get(thread_id, []), job_of[thread_id]
            run = _run_new(workspace_id, thread, schema, extractor, inputs)
            output = extractor.extract(inputs, schema)
            _run_done(run, output)
            work.append((run, output, inputs, job_id))
        # The batch's runs in one INSERT, finished: inside the one transaction nobody could
        # have seen them running. Their events are those of the one-thread path.
        ExtractionRun.objects.bulk_create([run for run, *_ in work])
        for run, _output, _inputs, job_id in work:
            _run_started_record(run, schema, extractor, job_id)
        summaries = _runs_record(workspace_id, work, policy, known)
        for run, _output, _inputs, job_id in work:
            _run_finished_record(run, job_id, summaries[run.pk])
        done = len(work)
    return done


def _run_start(workspace_id, thread, schema, extractor, inputs, job_id) -> ExtractionRun:
    run = _run_new(workspace_id, thread, schema, extractor, inputs)
    run.save(force_insert=True)
    _run_started_record(run, schema, extractor, job_id)
    return run


def _run_new(workspace_id, thread, schema, extractor, inputs) -> ExtractionRun:
    """A run of ``extractor`` over ``thread`` starting now, not yet stored."""
    return ExtractionRun(
        workspace_id=workspace_id,
        thread=thread,
        schema_id=schema.id,
        schema_version=schema.version,
        extractor=extractor.name,
        model=getattr(getattr(extractor, "config", None), "model", extractor.name),
        status=ExtractionRun.Status.RUNNING,
        started_at=timezone.now(),
        messages_seen=len(inputs),
    )


def _run_started_record(run: ExtractionRun, schema, extractor, job_id) -> None:
    audit_event_record(
        workspace_id=run.workspace_id,
        type="extraction.run.started",
        thread_id=run.thread_id,
        job_id=job_id,
        data={"run_id": run.pk, "extractor": extractor.name, "schema": f"{schema.id} v{schema.version}"},
    )


def _run_done(run: ExtractionRun, output: ExtractionOutput) -> None:
    """The run succeeded with ``output`` (set on the instance; the caller stores it)."""
    run.status, run.finished_at = ExtractionRun.Status.SUCCEEDED, timezone.now()
    run.model = output.model
    run.prompt_tokens, run.completion_tokens, run.cost_usd = (
        output.prompt_tokens,
        output.completion_tokens,
        output.cost_usd,
    )


def _runs_record(workspace_id: int, work: list, policy: dict, known: dict) -> dict[int, dict]:
    """``field_values_record`` for the runs of a batch, with what ``_route`` decides for each
    proposal, written set-wise: the values in one INSERT, the superseded ones in one UPDATE,
    the review items in one INSERT. ``known``: every value of the batch's threads read
    beforehand, by (thread id, field), newest first. Returns each run's summary."""
    now = timezone.now()
    plans, summaries = [], {}
    for run, output, inputs, _job_id in work:
        fields = [p.field for p in output.proposals]
        if len(fields) != len(set(fields)):  # a field proposed twice sees its first value: step by step
            summaries[run.pk] = field_values_record(run=run, output=output, inputs=inputs, policy=policy)
            continue
        texts = {m.id: m.reply_text for m in inputs}
        summary = {"accepted": 0, "review": 0, "unchanged": 0, "conflict": 0}
        for proposal in output.proposals:
            evidence, grounded = evidence_ground(proposal.evidence, texts)
            everything = known.get((run.thread_id, proposal.field), [])
            current = [v for v in everything if v.status in (*CURRENT, FieldValue.Status.VERIFIED)]
            verified = next((v for v in current if v.status == FieldValue.Status.VERIFIED), None)
            if any(_same(v.field_value_json, proposal.value) for v in current):
                summary["unchanged"] += 1
                continue
            value = _proposed_value(run, proposal, evidence, grounded)
            replaced, reason = [], None
            if verified is not None:
                kind = "conflict"
            else:
                replaced = [v for v in current if v.status in CURRENT]
                reason = _review_reason(value, policy)
                kind = "review" if reason else "accepted"
                if reason is None:
                    value.status, value.decided_at = FieldValue.Status.ACCEPTED, now
            summary[kind] += 1
            plans.append((value, kind, reason, verified, replaced, everything))
        summaries[run.pk] = summary
    FieldValue.objects.bulk_create([plan[0] for plan in plans])
    superseded = [v.pk for plan in plans for v in plan[4]]
    if superseded:
        FieldValue.objects.filter(pk__in=superseded).update(status=FieldValue.Status.SUPERSEDED)
    reviews = []
    for value, kind, reason, verified, replaced, everything in plans:
        if replaced:
            for v in replaced:
                v.status = FieldValue.Status.SUPERSEDED
            review_items_close(
                workspace_id=workspace_id,
                subjects=[value_subject(v.pk) for v in replaced],
                why=f"superseded by value {value.pk}",
                thread_id=value.thread_id,
            )
            audit_event_record(
                workspace_id=workspace_id,
                type="field_value.superseded",
                thread_id=value.thread_id,
                data={"field": value.field_key, "superseded_ids": [v.pk for v in replaced], "by_id": value.pk},
            )
        others = [
            {"id": v.pk, "field_value_json": v.field_value_json, "confidence": v.confidence, "status": v.status}
            for v in everything
        ][:5]
        if kind == "conflict":
            extra = {"verified_value": verified.field_value_json, "verified_id": verified.pk}
            reviews.append(_review_new(value, ReviewReason.CONFLICT, extra, others))
        elif kind == "review":
            reviews.append(_review_new(value, reason, {"threshold": _threshold(value.field_key, policy)}, others))
        else:
            audit_event_record(
                workspace_id=workspace_id,
                type="field_value.accepted",
                thread_id=value.thread_id,
                data={"field_value_id": value.pk, "field": value.field_key, "confidence": value.confidence},
            )
            if _sampled(value, policy["audit_sample_rate"]):
                reviews.append(_review_new(value, ReviewReason.AUDIT_SAMPLE, {}, others))
    review_items_open_new(workspace_id=workspace_id, items=reviews)
    return summaries


def _review_new(value: FieldValue, reason: str, extra: dict, others: list[dict]) -> dict:
    """A review item about a value just stored, for ``review_items_open_new``."""
    return {
        "reason": reason,
        "subject": value_subject(value.pk),
        "thread_id": value.thread_id,
        "field_value_id": value.pk,
        "payload": {**_value_payload(value), "other_values": others, **extra},
    }


def _run_finish(run, output, inputs, policy, job_id) -> None:
    summary = field_values_record(run=run, output=output, inputs=inputs, policy=policy)
    _run_done(run, output)
    run.save()
    _run_finished_record(run, job_id, summary)


def _run_finished_record(run: ExtractionRun, job_id, summary: dict) -> None:
    """The finished run's audit event and what follows it in the pipeline."""
    workspace_id, thread_id = run.workspace_id, run.thread_id
    audit_event_record(
        workspace_id=workspace_id,
        type="extraction.run.finished",
        thread_id=thread_id,
        job_id=job_id,
        data={"run_id": run.pk, **summary},
    )
    stages.emit(stages.THREAD_EXTRACTED, workspace_id=workspace_id, thread_id=thread_id)
    if summary["accepted"] or summary["review"]:  # auto-accepted (or superseded) values, no person involved
        stages.emit(stages.VALUES_CHANGED, workspace_id=workspace_id, thread_id=thread_id, decided=False)


def _run_failed(run: ExtractionRun, error: str, job_id: int | None) -> None:
    with workspace_context(run.workspace_id):
        ExtractionRun.objects.filter(pk=run.pk).update(
            status=ExtractionRun.Status.FAILED, error=error[:4000], finished_at=timezone.now()
        )
        audit_event_record(
            workspace_id=run.workspace_id,
            type="extraction.run.failed",
            thread_id=run.thread_id,
            job_id=job_id,
            data={"run_id": run.pk, "error": error[:500]},
        )


def field_values_record(
    *, run: ExtractionRun, output: ExtractionOutput, inputs: list[MessageInput], policy: dict
) -> dict:
    """Store each proposal as a FieldValue and route it: accepted, or a review item saying why."""
    texts = {m.id: m.reply_text for m in inputs}
    summary = {"accepted": 0, "review": 0, "unchanged": 0, "conflict": 0}
    for proposal in output.proposals:
        outcome = _route(run, proposal, texts, policy)
        summary[outcome] += 1
    return summary


def _proposed_value(run: ExtractionRun, proposal: Proposal, evidence: list, grounded: bool) -> FieldValue:
    """A proposal as an unsaved PROPOSED value of the run's thread."""
    return FieldValue(
        workspace_id=run.workspace_id,
        run=run,
        thread_id=run.thread_id,
        field_key=proposal.field,
        field_value_json=proposal.value,
        confidence=round(proposal.confidence, 4),
        evidence_json=evidence,
        grounded=grounded,
        status=FieldValue.Status.PROPOSED,
    )


def _route(run: ExtractionRun, proposal: Proposal, texts: dict[int, str], policy: dict) -> str:
    evidence, grounded = evidence_ground(proposal.evidence, texts)
    current = list(
        FieldValue.objects.filter(
            thread_id=run.thread_id, field_key=proposal.field, status__in=(*CURRENT, FieldValue.Status.VERIFIED)
        ).order_by("-created_at")
    )
    verified = next((v for v in current if v.status == FieldValue.Status.VERIFIED), None)
    if any(_same(v.field_value_json, proposal.value) for v in current):
        return "unchanged"  # a rerun that finds what is already known adds nothing
    value = _proposed_value(run, proposal, evidence, grounded)
    value.save(force_insert=True)
    if verified is not None:
        _review_open(
            value, ReviewReason.CONFLICT, {"verified_value": verified.field_value_json, "verified_id": verified.pk}
        )
        return "conflict"
    _supersede(current, by=value)
    reason = _review_reason(value, policy)
    if reason is None:
        FieldValue.objects.filter(pk=value.pk).update(status=FieldValue.Status.ACCEPTED, decided_at=timezone.now())
        audit_event_record(
            workspace_id=run.workspace_id,
            type="field_value.accepted",
            thread_id=run.thread_id,
            data={"field_value_id": value.pk, "field": value.field_key, "confidence": value.confidence},
        )
        if _sampled(value, policy["audit_sample_rate"]):
            _review_open(value, ReviewReason.AUDIT_SAMPLE, {})
        return "accepted"
    _review_open(value, reason, {"threshold": _threshold(value.field_key, policy)})
    return "review"


def _review_reason(value: FieldValue, policy: dict) -> str | None:
    if not value.grounded:
        return ReviewReason.UNGROUNDED  # a value whose quote is found nowhere is never auto-accepted
    if value.field_key in policy["always_review_fields"]:
        return ReviewReason.ALWAYS_REVIEW
    if value.confidence < _threshold(value.field_key, policy):
        return ReviewReason.LOW_CONFIDENCE
    return None


def _threshold(field_key: str, policy: dict) -> float:
    return policy["field_min_confidence"].get(field_key, policy["min_confidence"])


def _sampled(value: FieldValue, rate: float) -> bool:
    """A stable draw per value, so the audit sample is reproducible."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"audit-sample:{value.workspace_id}:{value.pk}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _supersede(current: list[FieldValue], *, by: FieldValue) -> None:
    replaced = [v.pk for v in current if v.status in CURRENT]
    if not replaced:
        return
    FieldValue.objects.filter(pk__in=replaced).update(status=FieldValue.Status.SUPERSEDED)
    review_items_close(
        workspace_id=by.workspace_id,
        subjects=[value_subject(pk) for pk in replaced],
        why=f"superseded by value {by.pk}",
        thread_id=by.thread_id,
    )
    audit_event_record(
        workspace_id=by.workspace_id,
        type="field_value.superseded",
        thread_id=by.thread_id,
        data={"field": by.field_key, "superseded_ids": replaced, "by_id": by.pk},
    )


def value_subject(field_value_id: int) -> str:
    return f"field_value:{field_value_id}"


def value_review_payload(value: FieldValue, extra: dict) -> dict:
    """The payload of a review item about a value (review/services.py documents the shape)."""
    others = list(
        FieldValue.objects.filter(thread_id=value.thread_id, field_key=value.field_key)
        .exclude(pk=value.pk)
        .order_by("-created_at")
        .values("id", "field_value_json", "confidence", "status")[:5]
    )
    return {**_value_payload(value), "other_values": others, **extra}


def _value_payload(value: FieldValue) -> dict:
    return {
        "field": value.field_key,
        "field_type": field_type_of(value.field_key, schema_id=value.run.schema_id),
        "proposed_value": value.field_value_json,
        "confidence": value.confidence,
        "evidence": value.evidence_json,
        "grounded": value.grounded,
    }


def field_type_of(field_key: str, *, schema_id: str) -> str:
    """The type of a field in a schema ("text" for a key it does not have)."""
    schema = schema_get(schema_id)
    return schema.field(field_key).type if field_key in schema.keys else "text"


def _review_open(value: FieldValue, reason: str, extra: dict) -> None:
    review_item_open(
        workspace_id=value.workspace_id,
        reason=reason,
        subject=value_subject(value.pk),
        thread_id=value.thread_id,
        field_value_id=value.pk,
        payload=value_review_payload(value, extra),
    )


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
