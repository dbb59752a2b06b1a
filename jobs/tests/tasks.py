"""Tasks for the worker tests, imported when THREADLINE_EXTRA_TASK_MODULES names this module."""

import time
from pathlib import Path

from jobs.models import Job
from jobs.registry import task
from workspaces.models import AuditEvent
from workspaces.services import audit_event_record

SEEN: list = []  # what in-process handlers observed, for assertions


@task("test.noop", max_attempts=3, timeout=30)
def noop(payload, *, job):
    pass


@task("test.record", max_attempts=3, timeout=30)
def record(payload, *, job):
    """Leave one audit event per run that commits: "exactly once" is one event per job."""
    audit_event_record(workspace_id=job.workspace_id, type="test.ran", job_id=job.id, data={"attempt": job.attempt})


@task("test.sleep", max_attempts=3, timeout=60)
def sleep(payload, *, job):
    """Touch a marker file (so a test knows it started), sleep, then record the run."""
    if payload.get("marker"):
        Path(payload["marker"]).with_suffix(f".{job.id}.{job.attempt}").touch()
    time.sleep(payload.get("seconds", 1))
    record(payload, job=job)


@task("test.fail", max_attempts=3, timeout=30)
def fail(payload, *, job):
    audit_event_record(workspace_id=job.workspace_id, type="test.ran", job_id=job.id)
    raise RuntimeError(f"boom on attempt {job.attempt}")


@task("test.slow", max_attempts=2, timeout=0.5)
def slow(payload, *, job):
    time.sleep(5)


@task("test.peek", max_attempts=1, timeout=30)
def peek(payload, *, job):
    """What a handler can see: only its own workspace's rows."""
    SEEN.append(
        {
            "jobs": set(Job.objects.values_list("workspace_id", flat=True)),
            "events": set(AuditEvent.objects.values_list("workspace_id", flat=True)),
        }
    )


@task("test.nonatomic", max_attempts=3, timeout=30, atomic=False)
def nonatomic(payload, *, job):
    """Commit a record in a short block of its own, note whether a transaction was open
    around the "network wait", then optionally fail after the commit."""
    from django.db import connection

    from workspaces.rls import workspace_context

    with workspace_context(job.workspace_id):
        audit_event_record(workspace_id=job.workspace_id, type="test.ran", job_id=job.id, data={"attempt": job.attempt})
    SEEN.append({"in_atomic_block": connection.in_atomic_block, "job": job.id})
    if payload.get("fail"):
        raise RuntimeError(f"boom after the commit on attempt {job.attempt}")


@task("test.changes_midway", max_attempts=3, timeout=30)
def changes_midway(payload, *, job):
    """Record the run; on the first, ask for the same work again, as a change arriving while a
    job runs does (the pipeline's coalescing enqueue)."""
    from jobs.services import enqueue

    record(payload, job=job)
    if AuditEvent.objects.filter(type="test.ran", job_id=job.id).count() == 1:
        enqueue("test.changes_midway", workspace=job.workspace_id, payload=payload, dedupe_key="k", coalesce=True)


def _batched_one(payload, job, batch):
    if payload.get("marker"):
        Path(payload["marker"]).with_suffix(f".{job.id}.{job.attempt}").touch()
    if payload.get("bad"):
        raise RuntimeError(f"bad job {job.id} on attempt {job.attempt}")
    audit_event_record(
        workspace_id=job.workspace_id, type="test.ran", job_id=job.id, data={"attempt": job.attempt, "batch": batch}
    )
    if payload.get("again") and AuditEvent.objects.filter(type="test.ran", job_id=job.id).count() == 1:
        _enqueue_elsewhere(job, payload)


def _enqueue_elsewhere(job, payload):
    """Ask for the same work again from another connection, as a change arriving while the
    job runs does (the pipeline's coalescing enqueue), and wait until it is in."""
    import threading

    from django.db import connection

    from jobs.services import enqueue
    from workspaces.rls import workspace_context

    def other():
        try:
            with workspace_context(job.workspace_id):
                enqueue(job.task, workspace=job.workspace_id, payload=payload, dedupe_key=payload["key"], coalesce=True)
        finally:
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()


def batched_many(jobs):
    """The batch handler: every job's record in one go; one bad payload fails the batch."""
    for job in jobs:
        if job.payload.get("marker"):
            Path(job.payload["marker"]).with_suffix(f".{job.id}.{job.attempt}").touch()
    time.sleep(max(j.payload.get("seconds", 0) for j in jobs))
    SEEN.append({"batch": [j.id for j in jobs]})
    for job in jobs:
        _batched_one(job.payload, job, len(jobs))


@task("test.batched", max_attempts=3, timeout=30, batch=5, many=batched_many)
def batched(payload, *, job):
    """One job alone (also the fallback when its batch failed)."""
    _batched_one(payload, job, 1)
