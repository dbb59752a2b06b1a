"""The queue role's view of jobs_job (jobs/sql/queue_role.sql) and hot-table storage settings."""

from django.db import migrations

from workspaces.rls import RunSQLFile


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_claim_indexes")]

    operations = [
        RunSQLFile(forward="queue_role", backward="queue_role_revert", model_name="job", sql_app="jobs"),
        RunSQLFile(forward="storage", backward="storage_revert", model_name="job", sql_app="jobs"),
    ]
