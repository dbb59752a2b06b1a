"""Queue tasks of the extraction app."""

from extraction.services import extraction_run_execute, extraction_runs_execute
from jobs.registry import BatchDeclined, task
from pipeline import stages


def extract_threads(jobs: list) -> None:  # jobs: list of jobs.worker.ClaimedJob, one workspace
    """A batch of ``extract_thread`` jobs (payloads as its): one transaction for all their
    threads with the rules extractor; with the LLM, declined: the jobs run one at a time."""
    done = extraction_runs_execute(
        workspace_id=jobs[0].workspace_id, threads=[(int(j.payload["thread_id"]), j.id) for j in jobs]
    )
    if done is None:
        raise BatchDeclined("the extractor waits on the network")


@task(stages.EXTRACT_THREAD, max_attempts=5, timeout=600, atomic=False, batch=50, many=extract_threads)
def extract_thread(payload: dict, *, job) -> None:  # job: jobs.worker.ClaimedJob
    """Extract the thread named in the payload (enqueued on import for new or changed threads).

    Not atomic: the LLM call waits on the network, and ``extraction_run_execute`` commits
    its own short ``workspace_context`` blocks around it."""
    extraction_run_execute(workspace_id=job.workspace_id, thread_id=int(payload["thread_id"]), job_id=job.id)
