"""What one claim reads as the backlog grows: the job first in line, its batch and the claimed
rows, never the other tasks' and workspaces' jobs (PostgreSQL's own EXPLAIN ANALYZE row
counts, on the real database as the queue role). At a million messages the claim once read
the whole table, 1.4 s a claim (jobs/README.md, Storage); speed itself is bench/scale.py's."""

import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from jobs import db
from jobs.models import Job
from jobs.sql import query
from workspaces.db import owner_connection
from workspaces.rls import workspace_context
from workspaces.tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db(transaction=True)

BACKLOG = 2000
WORKSPACES = 25
RUNNING = 10  # running jobs are few (workers x prefetch): the recovery reads them all


def _jobs(ws, task: str, n: int, *, age_minutes: int, status: str = "queued") -> None:
    at = timezone.now() - timedelta(minutes=age_minutes)
    running = status == "running"
    with workspace_context(ws):
        Job.objects.bulk_create(
            Job(
                workspace=ws,
                task=task,
                payload={"n": i},
                status=status,
                run_after=at,
                locked_by="elsewhere" if running else "",
                lease_expires_at=timezone.now() + timedelta(minutes=10) if running else None,
                finished_at=at if status == "succeeded" else None,
            )
            for i in range(n)
        )


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _read(plan: dict) -> list[tuple[str, str, int]]:
    """(node, index, rows) of every scan of jobs_job or one of its indexes, every loop counted."""
    out = []
    for node in _nodes(plan):
        index = node.get("Index Name", "")
        if "Scan" in node["Node Type"] and (node.get("Relation Name") == "jobs_job" or index.startswith("job")):
            rows = node.get("Actual Rows", 0) * node.get("Actual Loops", 1) + node.get("Rows Removed by Filter", 0)
            out.append((node["Node Type"], index, int(rows)))
    return out


def test_a_claim_reads_its_batch_not_the_backlog_of_other_tasks_and_workspaces(workspace, other_workspace, make_worker):
    # First in line: three jobs of a batched task in a workspace whose other jobs are many.
    _jobs(other_workspace, "test.batched", 3, age_minutes=60)
    _jobs(other_workspace, "test.record", BACKLOG // 2, age_minutes=30)
    _jobs(other_workspace, "test.batched", BACKLOG // 2, age_minutes=90, status="succeeded")
    # Behind them: the same task in many other workspaces (as in production, where the
    # statistics then tell the planner a workspace's share of the queue is small), and jobs
    # running elsewhere.
    for _ in range(WORKSPACES):
        _jobs(WorkspaceFactory(), "test.batched", BACKLOG // WORKSPACES, age_minutes=30)
    _jobs(workspace, "test.batched", RUNNING, age_minutes=30, status="running")
    worker = make_worker()
    # Analyzed as the owner (as autovacuum would): the plan follows this data, not whatever
    # statistics earlier tests left on the table.
    with owner_connection() as conn, conn.cursor() as cursor:
        cursor.execute("ANALYZE jobs_job")

    with transaction.atomic():
        with db.queue_role(), connection.cursor() as cursor:
            # Tables this small fit in a few pages, which a sequential scan could read for less
            # than an index; at size it cannot, so only plans that also hold at size are left.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query("claim_jobs"), worker.claim_params(10))
            raw = cursor.fetchone()[0]
        transaction.set_rollback(True)  # ANALYZE ran the claim: nothing of it stays
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    read = _read(plan)
    # The head (a running job and a queued one), the batch (its running and queued jobs), the
    # plain claim's two halves and the update: the running jobs at most twice, then the batch.
    assert sum(rows for *_, rows in read) <= 2 * RUNNING + 3 * 3 + 5, (read, json.dumps(plan, indent=1))

    claimed = worker.claim(10)
    assert len(claimed) == 3
    assert {(j.task, j.workspace_id) for j in claimed} == {("test.batched", other_workspace.pk)}
