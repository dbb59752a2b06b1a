"""Queue tasks of deal support mode: link, relink after deals change, facts, readiness."""

from deals import services
from jobs.registry import task
from pipeline import stages


def link_threads(jobs: list) -> None:  # jobs: list of jobs.worker.ClaimedJob, one workspace
    """A batch of ``link_thread`` jobs, in one transaction (the worker's)."""
    services.threads_link_update(
        workspace_id=jobs[0].workspace_id, threads=[(int(j.payload["thread_id"]), j.id) for j in jobs]
    )


@task(stages.LINK_THREAD, max_attempts=5, timeout=120, batch=50, many=link_threads)
def link_thread(payload: dict, *, job) -> None:
    """Link one thread (queued when its extraction finishes, so also when new messages arrived)."""
    services.thread_link_update(workspace_id=job.workspace_id, thread_id=int(payload["thread_id"]), job_id=job.id)


@task(stages.RELINK_DEALS, max_attempts=5, timeout=600)
def relink_deals(payload: dict, *, job) -> None:
    """Deals arrived or changed: link again every thread any of them took part in (queued as
    ``link_thread`` jobs)."""
    services.deals_relink(workspace_id=job.workspace_id, deal_ids=[int(d) for d in payload["deal_ids"]], job_id=job.id)


def deals_facts_update(jobs: list) -> None:
    """A batch of ``deal_facts_update`` jobs (payloads as its), in one transaction: each deal
    named, or linked to a thread named, updated once."""
    workspace_id = jobs[0].workspace_id
    thread_ids = [int(j.payload["thread_id"]) for j in jobs if j.payload.get("thread_id")]
    linked = services.threads_deal_ids(workspace_id=workspace_id, thread_ids=thread_ids) if thread_ids else {}
    deals = []
    for job in jobs:
        ids = {int(d) for d in job.payload.get("deal_ids", [])}
        if job.payload.get("deal_id"):
            ids.add(int(job.payload["deal_id"]))
        if job.payload.get("thread_id") and linked.get(int(job.payload["thread_id"])):
            ids.add(linked[int(job.payload["thread_id"])])
        deals += [(deal_id, job.id) for deal_id in sorted(ids)]
    services.deals_facts_update(workspace_id=workspace_id, deals=deals)


@task(stages.DEAL_FACTS, max_attempts=5, timeout=120, batch=50, many=deals_facts_update)
def deal_facts_update(payload: dict, *, job) -> None:
    """Facts of one deal, or of the deal a thread is linked to (queued after a review decision)."""
    deal_ids = {int(d) for d in payload.get("deal_ids", [])}
    if payload.get("deal_id"):
        deal_ids.add(int(payload["deal_id"]))
    if payload.get("thread_id"):
        linked = services.thread_deal_id(workspace_id=job.workspace_id, thread_id=int(payload["thread_id"]))
        if linked:
            deal_ids.add(linked)
    for deal_id in sorted(deal_ids):
        services.deal_facts_update(workspace_id=job.workspace_id, deal_id=deal_id, job_id=job.id)


def deals_readiness_recompute(jobs: list) -> None:
    """A batch of ``deal_readiness_recompute`` jobs, in one transaction."""
    services.deals_readiness_compute(
        workspace_id=jobs[0].workspace_id, deals=[(int(j.payload["deal_id"]), j.id) for j in jobs]
    )


@task(stages.DEAL_READINESS, max_attempts=5, timeout=120, batch=50, many=deals_readiness_recompute)
def deal_readiness_recompute(payload: dict, *, job) -> None:
    services.deal_readiness_compute(workspace_id=job.workspace_id, deal_id=int(payload["deal_id"]), job_id=job.id)
