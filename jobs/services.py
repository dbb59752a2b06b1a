"""Writes for the job queue."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from jobs.models import Job
from jobs.registry import task_get


def enqueue(
    task: str,
    *,
    workspace,
    payload: dict,
    run_after: datetime | None = None,
    priority: int = 0,
    dedupe_key: str | None = None,
) -> Job:
    """Queue a job. Inside a transaction the job exists only if that transaction commits."""
    spec = task_get(task)
    return Job.objects.create(
        workspace_id=getattr(workspace, "pk", workspace),
        task=task,
        payload=payload,
        run_after=run_after or timezone.now(),
        priority=priority,
        dedupe_key=dedupe_key,
        max_attempts=spec.max_attempts if spec else 5,
    )
