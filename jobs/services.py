"""Writes for the job queue: enqueue, and the operator's retry, cancel and prune."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from jobs.db import NOTIFY_CHANNEL, fetch
from jobs.models import Job
from jobs.registry import task_get
from jobs.sql import query
from workspaces.models import Workspace
from workspaces.rls import workspace_context
from workspaces.services import audit_event_record

ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING)


class JobError(Exception):
    """An operator action that does not apply to the job as it is now."""


class EnqueueOutsideWorkspace(JobError):
    pass


def enqueue(
    task: str,
    *,
    workspace,
    payload: dict,
    run_after: datetime | None = None,
    priority: int = 0,
    dedupe_key: str | None = None,
    coalesce: bool = False,
) -> Job:
    """Queue a job. Inside a transaction the job exists only if that transaction commits.

    Call it inside ``workspace_context(workspace)``: jobs_job is under row-level security.
    With a ``dedupe_key`` that a queued or running job of the workspace already has, that
    job is returned and nothing new is queued. With ``coalesce`` as well, the work asked
    for is not lost to that job: a queued one is postponed to the later ``run_after``, and a
    running one runs once more when it ends (it may have read its inputs too early). So a
    key names one piece of work that is never queued or running twice at the same time.
    """
    spec = task_get(task)
    workspace_id = getattr(workspace, "pk", workspace)
    params = {
        "workspace_id": workspace_id,
        "task": task,
        "payload": Jsonb(payload),
        "priority": priority,
        "run_after": run_after,
        "max_attempts": spec.max_attempts if spec else 5,
        "dedupe_key": dedupe_key,
        "channel": NOTIFY_CHANNEL,
    }
    for _ in range(3):
        rows = _insert(params)
        if rows:
            break
        # The dedupe key is taken: return that job, unless it finished in the meantime.
        if coalesce:
            merged = fetch("coalesce_job", params)
            if merged:  # the job that holds the key, as it is now (no second query)
                job_id, run_after_db, created_at, status, stored, priority, max_attempts, attempts, rerun = merged[0]
                return _loaded(
                    id=job_id,
                    workspace_id=workspace_id,
                    task=task,
                    payload=stored,
                    status=status,
                    priority=priority,
                    run_after=run_after_db,
                    attempts=attempts,
                    max_attempts=max_attempts,
                    rerun_after=rerun,
                    dedupe_key=dedupe_key,
                    created_at=created_at,
                )
            continue
        existing = Job.objects.filter(workspace_id=workspace_id, dedupe_key=dedupe_key, status__in=ACTIVE).first()
        if existing:
            return existing
    else:
        raise JobError(f"enqueue({task!r}): dedupe key {dedupe_key!r} keeps changing hands")
    job_id, run_after_db, created_at = rows[0][:3]
    return _loaded(
        id=job_id,
        workspace_id=workspace_id,
        task=task,
        payload=payload,
        priority=priority,
        run_after=run_after_db,
        max_attempts=params["max_attempts"],
        dedupe_key=dedupe_key,
        created_at=created_at,
    )


def enqueue_many(task: str, *, workspace, jobs: list[tuple[dict, str]], coalesce: bool = False) -> int:
    """Queue one job per ``(payload, dedupe_key)``, due now: what ``enqueue`` does for each,
    with the inserts sent together (one round trip, psycopg's pipeline) instead of one after
    the other. A key that a queued or running job holds goes through ``enqueue`` (coalescing
    as asked). Inside ``workspace_context(workspace)``. Returns how many were inserted."""
    if not jobs:
        return 0
    spec = task_get(task)
    workspace_id = getattr(workspace, "pk", workspace)
    params = [
        {
            "workspace_id": workspace_id,
            "task": task,
            "payload": Jsonb(payload),
            "priority": 0,
            "run_after": None,
            "max_attempts": spec.max_attempts if spec else 5,
            "dedupe_key": dedupe_key,
            "channel": NOTIFY_CHANNEL,
        }
        for payload, dedupe_key in jobs
    ]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.executemany(query("enqueue_job"), params, returning=True)
        inserted = [bool(cursor.fetchall()) for _ in cursor.results()]
    for (payload, dedupe_key), done in zip(jobs, inserted, strict=True):
        if not done:
            enqueue(task, workspace=workspace_id, payload=payload, dedupe_key=dedupe_key, coalesce=coalesce)
    return sum(inserted)


def _loaded(**fields) -> Job:
    """A Job for a row the statement just wrote or read, as if loaded from the database."""
    job = Job(**fields)
    job._state.adding, job._state.db = False, "default"
    return job


def _insert(params: dict) -> list[tuple]:
    try:
        return fetch("enqueue_job", params)
    except ProgrammingError as exc:
        if "row-level security" in str(exc):
            raise EnqueueOutsideWorkspace(
                f"enqueue({params['task']!r}) must run inside workspace_context(workspace "
                f"{params['workspace_id']}): jobs_job is under row-level security"
            ) from exc
        raise


def job_retry(*, job: Job, actor=None) -> Job:
    """Queue a failed or cancelled job again, due now, with all its attempts back."""
    with workspace_context(job.workspace_id):
        updated = Job.objects.filter(pk=job.pk, status__in=[Job.Status.FAILED, Job.Status.CANCELLED])
        try:
            with transaction.atomic():
                count = updated.update(
                    status=Job.Status.QUEUED,
                    attempts=0,
                    run_after=timezone.now(),
                    finished_at=None,
                    locked_by="",
                    locked_at=None,
                    lease_expires_at=None,
                )
        except IntegrityError as exc:
            raise JobError(f"job {job.pk}: another job with dedupe key {job.dedupe_key!r} is queued") from exc
        if not count:
            raise JobError(f"job {job.pk} is not failed or cancelled")
        _notify()
        audit_event_record(workspace_id=job.workspace_id, type="job.retried", actor=actor, job_id=job.pk)
        job.refresh_from_db()
    return job


def job_cancel(*, job: Job, actor=None) -> Job:
    """Cancel a queued, running or failed job. A running one's worker can no longer finish
    it: its fenced finish matches nothing, so the handler's writes roll back."""
    with workspace_context(job.workspace_id):
        count = Job.objects.filter(pk=job.pk, status__in=[*ACTIVE, Job.Status.FAILED]).update(
            status=Job.Status.CANCELLED, finished_at=timezone.now(), lease_expires_at=None
        )
        if not count:
            raise JobError(f"job {job.pk} is already {Job.objects.get(pk=job.pk).status}")
        audit_event_record(workspace_id=job.workspace_id, type="job.cancelled", actor=actor, job_id=job.pk)
        job.refresh_from_db()
    return job


def jobs_prune(*, older_than: timedelta, statuses=(Job.Status.SUCCEEDED, Job.Status.CANCELLED), chunk=5000) -> int:
    """Delete jobs that finished more than ``older_than`` ago, workspace by workspace (as the
    app role: the queue role cannot delete), in chunks so no statement holds locks for long."""
    cutoff, total = timezone.now() - older_than, 0
    for workspace_id in Workspace.objects.values_list("pk", flat=True):
        while True:
            with workspace_context(workspace_id):
                ids = list(
                    Job.objects.filter(status__in=statuses, finished_at__lt=cutoff).values_list("pk", flat=True)[:chunk]
                )
                deleted = Job.objects.filter(pk__in=ids).delete()[0] if ids else 0
            total += deleted
            if len(ids) < chunk:
                break
    return total


def _notify() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
