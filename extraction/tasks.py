"""Queue tasks of the extraction app."""

from extraction.services import extraction_run_execute
from jobs.registry import task
from pipeline import stages


@task(stages.EXTRACT_THREAD, max_attempts=5, timeout=600, atomic=False)
def extract_thread(payload: dict, *, job) -> None:  # job: jobs.worker.ClaimedJob
    """Extract the thread named in the payload (enqueued on import for new or changed threads).

    Not atomic: the LLM call waits on the network, and ``extraction_run_execute`` commits
    its own short ``workspace_context`` blocks around it."""
    extraction_run_execute(workspace_id=job.workspace_id, thread_id=int(payload["thread_id"]), job_id=job.id)
