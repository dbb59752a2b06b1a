from django.db import models

from workspaces.models import TenantModel


class Job(TenantModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    task = models.CharField(max_length=200)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    priority = models.SmallIntegerField(default=0)
    run_after = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    last_error = models.TextField(blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Set when the current attempt started (its handler was about to run), NULL while a job
    # is only claimed: an unstarted claim whose worker died is charged no attempt.
    started_at = models.DateTimeField(null=True, blank=True)
    # NULL, not "": the partial unique constraint must ignore jobs without a key.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    # A coalescing enqueue that found this job running asks for one more run at this time:
    # finish_job then queues the job again instead of marking it succeeded (jobs/README.md).
    rerun_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The claim query (jobs/sql/queries.sql, claim_jobs): queued jobs due now, in the
            # order it takes them (priority first), so a deep backlog is never sorted.
            models.Index(
                models.F("priority").desc(),
                "run_after",
                "id",
                name="job_claim_queued",
                condition=models.Q(status="queued"),
            ),
            # The claim's batch (batch_due): the queued jobs of the head job's task in its
            # workspace, in the same order. Without it the batch filtered the whole backlog in
            # claim order for its task and workspace, reading every queued job of the others
            # when that workspace had fewer than a batch left: at a 480,000-job backlog the
            # workers spent most of their time claiming (bench/scale.py, issue 15).
            models.Index(
                models.F("workspace_id"),
                "task",
                models.F("priority").desc(),
                "run_after",
                "id",
                name="job_claim_batch",
                condition=models.Q(status="queued"),
            ),
            # The same query's recovery half: running jobs whose lease ran out. Only status is
            # in it (as the predicate), so a heartbeat that moves lease_expires_at stays a HOT
            # update; running jobs are few (workers x prefetch), a scan of them is cheap.
            models.Index(fields=["id"], name="job_running", condition=models.Q(status="running")),
            # The batch's expired half (batch_expired): running jobs of one task in one workspace.
            # Without it the planner ANDed job_running with the workspace's index, reading every
            # job the workspace ever had (13 ms a claim in a workspace of 240,000 jobs).
            models.Index(
                fields=["workspace_id", "task", "id"], name="job_running_batch", condition=models.Q(status="running")
            ),
            # The operator page and prune_jobs: finished jobs by age.
            models.Index(
                fields=["finished_at"],
                name="job_finished",
                condition=models.Q(status__in=["succeeded", "failed", "cancelled"]),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "dedupe_key"],
                name="job_dedupe_key_active",
                condition=models.Q(status__in=["queued", "running"], dedupe_key__isnull=False),
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed", "cancelled"]),
                name="job_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.task} #{self.pk} ({self.status})"
