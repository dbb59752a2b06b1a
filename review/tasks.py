"""Queue tasks of the review app."""

from jobs.registry import task
from pipeline import stages


@task(stages.DASHBOARD_REFRESH, max_attempts=3, timeout=300)
def dashboard_refresh_task(payload: dict, *, job) -> None:
    """Count the dashboard's figures of the job's workspace again and keep them."""
    from review.services import dashboard_snapshot_refresh

    dashboard_snapshot_refresh(workspace_id=job.workspace_id)
