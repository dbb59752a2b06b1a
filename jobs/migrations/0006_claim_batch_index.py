"""The claim's batch reads its workspace's jobs of one task, queued and running, from indexes of
their own (jobs/models.py, job_claim_batch and job_running_batch). Built CONCURRENTLY (so non-atomic): a live queue keeps
enqueueing and claiming while it builds, as it would on a large jobs table."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("jobs", "0005_job_started_at_lease_lost_queue_columns")]

    operations = [
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                models.F("workspace_id"),
                models.F("task"),
                models.OrderBy(models.F("priority"), descending=True),
                models.F("run_after"),
                models.F("id"),
                condition=models.Q(("status", "queued")),
                name="job_claim_batch",
            ),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                condition=models.Q(("status", "running")),
                fields=["workspace_id", "task", "id"],
                name="job_running_batch",
            ),
        ),
    ]
