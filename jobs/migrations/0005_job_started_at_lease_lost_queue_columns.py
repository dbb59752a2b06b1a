"""Claimed is not started (Job.started_at); finish_job's lease check raises
(jobs/sql/lease_lost.sql); the queue role updates only the queue's own columns
(jobs/sql/queue_columns.sql)."""

from django.db import migrations, models

from workspaces.rls import RunSQLFile


class Migration(migrations.Migration):
    dependencies = [("jobs", "0004_job_rerun_after")]

    operations = [
        migrations.AddField(model_name="job", name="started_at", field=models.DateTimeField(blank=True, null=True)),
        RunSQLFile(forward="lease_lost", backward="lease_lost_revert", sql_app="jobs"),
        RunSQLFile(forward="queue_columns", backward="queue_columns_revert", model_name="job", sql_app="jobs"),
    ]
