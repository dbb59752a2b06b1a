"""Reads for the operator page, the admin and ``jobs_status``.

Row-level security decides the scope: inside a workspace context these describe that
workspace's queue; inside ``jobs.db.queue_role()`` (``jobs_status``) the whole queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from jobs.models import Job


@dataclass
class QueueStats:
    by_status: dict[str, int]
    by_task: dict[str, dict[str, int]]  # task -> status -> count
    oldest_queued_at: datetime | None
    oldest_due_at: datetime | None
    now: datetime = field(default_factory=timezone.now)

    @property
    def oldest_queued_age(self) -> timedelta | None:
        return self.now - self.oldest_queued_at if self.oldest_queued_at else None

    @property
    def oldest_due_wait(self) -> timedelta | None:
        """How long the longest-waiting due job has waited since it became due (queue lag)."""
        return self.now - self.oldest_due_at if self.oldest_due_at else None


def queue_stats() -> QueueStats:
    """Depth per status and task, and the age of the oldest queued job, in two queries."""
    by_status = dict.fromkeys(Job.Status.values, 0)
    by_task: dict[str, dict[str, int]] = {}
    for row in Job.objects.values("task", "status").annotate(n=Count("id")).order_by("task", "status"):
        by_status[row["status"]] += row["n"]
        by_task.setdefault(row["task"], dict.fromkeys(Job.Status.values, 0))[row["status"]] = row["n"]
    now = timezone.now()
    oldest = Job.objects.filter(status=Job.Status.QUEUED).aggregate(
        queued=Min("created_at"), due=Min("run_after", filter=Q(run_after__lte=now))
    )
    return QueueStats(by_status, by_task, oldest["queued"], oldest["due"], now)


def jobs_failed_list(*, limit: int = 50) -> list[Job]:
    """The most recently failed jobs, for an operator to retry or cancel."""
    return list(Job.objects.filter(status=Job.Status.FAILED).order_by("-finished_at", "-id")[:limit])


def jobs_running_list(*, limit: int = 50) -> list[Job]:
    return list(Job.objects.filter(status=Job.Status.RUNNING).order_by("locked_at", "id")[:limit])


def jobs_pending_by_key(*, task: str, dedupe_keys: list[str]) -> dict[str, Job]:
    """The queued or running job of ``task`` for each of ``dedupe_keys`` that has one."""
    if not dedupe_keys:
        return {}
    jobs = Job.objects.filter(
        task=task, dedupe_key__in=dedupe_keys, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
    ).order_by("run_after", "pk")
    found: dict[str, Job] = {}
    for job in jobs:
        found.setdefault(job.dedupe_key, job)
    return found
