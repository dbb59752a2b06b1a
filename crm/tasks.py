"""Queue tasks of the CRM app. All wait on the network, so none runs in a transaction."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from jobs.registry import BatchDeclined, task
from pipeline import stages


def crm_sync_threads_task(jobs: list) -> None:  # jobs: list of jobs.worker.ClaimedJob, one workspace
    """A batch of ``crm_sync_thread`` jobs: in dry-run mode all planned in one transaction;
    a workspace that sends declines the batch, and its jobs run one at a time."""
    from crm.services import crm_sync_threads_dry_run

    thread_ids = [int(j.payload["thread_id"]) for j in jobs]
    if not crm_sync_threads_dry_run(workspace_id=jobs[0].workspace_id, thread_ids=thread_ids):
        raise BatchDeclined("the workspace's CRM mode sends")


@task(stages.CRM_SYNC_THREAD, max_attempts=5, timeout=300, atomic=False, batch=50, many=crm_sync_threads_task)
def crm_sync_thread_task(payload: dict, *, job) -> None:
    """Write a thread's accepted and approved values (pipeline.stages says when: after the undo window)."""
    from crm.services import crm_sync_thread

    crm_sync_thread(
        workspace_id=job.workspace_id, thread_id=int(payload["thread_id"]), final=job.attempt >= job.max_attempts
    )


@task(stages.CRM_WRITE_SEND, max_attempts=5, timeout=120, atomic=False)
def crm_write_send(payload: dict, *, job) -> None:
    """Send one ledger row again (the console's retry), recovering before it sends."""
    from crm.models import CrmWriteLog
    from crm.services import crm_adapter_get, crm_write_execute
    from workspaces.rls import workspace_context

    with workspace_context(job.workspace_id):
        crm = CrmWriteLog.objects.values_list("crm", flat=True).get(pk=payload["write_id"])
    adapter = crm_adapter_get(workspace_id=job.workspace_id, crm=crm)
    crm_write_execute(
        workspace_id=job.workspace_id,
        write_id=int(payload["write_id"]),
        adapter=adapter,
        final=job.attempt >= job.max_attempts,
    )


@task(stages.CRM_SYNC_DEALS, max_attempts=3, timeout=900, atomic=False)
def crm_sync_deals(payload: dict, *, job) -> None:
    """Refresh the deal mirror incrementally, then queue the next run (periodic without cron)."""
    from crm.mirror import deals_sync, deals_sync_schedule

    try:
        deals_sync(workspace_id=job.workspace_id)
    finally:
        if payload.get("repeat", True):
            deals_sync_schedule(
                workspace_id=job.workspace_id,
                run_after=timezone.now() + timedelta(seconds=settings.CRM_DEALS_SYNC_SECONDS),
            )
