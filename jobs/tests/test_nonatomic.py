"""Tasks registered with ``atomic=False``: no transaction around the handler, a finish of its own."""

from django.db import connection

from jobs import db
from jobs.models import Job
from jobs.registry import task_get
from jobs.services import enqueue
from jobs.tests import tasks
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context


def _enqueue(ws, payload=None):
    with workspace_context(ws):
        return enqueue("test.nonatomic", workspace=ws, payload=payload or {})


def _job(job_id) -> Job:
    with db.queue_role():
        return Job.objects.get(pk=job_id)


def _runs(ws, job_id) -> int:
    with workspace_context(ws):
        return AuditEvent.objects.filter(type="test.ran", job_id=job_id).count()


def test_atomic_is_the_default_and_the_flag_is_kept():
    assert task_get("test.record").atomic is True
    assert task_get("test.nonatomic").atomic is False
    assert task_get("extract_thread").atomic is False


def test_a_non_atomic_handler_runs_outside_any_transaction_and_finishes(workspace, make_worker):
    tasks.SEEN.clear()
    job = _enqueue(workspace)
    assert make_worker(tasks=["test.nonatomic"]).run() == 1
    assert tasks.SEEN == [{"in_atomic_block": False, "job": job.pk}]
    assert not connection.in_atomic_block
    assert (_job(job.pk).status, _runs(workspace, job.pk)) == ("succeeded", 1)


def test_a_failing_non_atomic_handler_keeps_what_it_committed_and_is_retried(workspace, make_worker):
    job = _enqueue(workspace, {"fail": True})
    worker = make_worker(tasks=["test.nonatomic"], max_jobs=1)
    worker.run()
    done = _job(job.pk)
    assert (done.status, done.attempts) == ("queued", 1)
    assert "boom after the commit" in done.last_error
    assert _runs(workspace, job.pk) == 1  # its own committed block stays: such handlers are idempotent


def test_a_non_atomic_worker_that_lost_its_lease_fails_to_finish(workspace, make_worker):
    job = _enqueue(workspace)
    old, new = make_worker(worker_id="old"), make_worker(worker_id="new")
    [stale] = old.claim(10)
    with db.queue_role(), connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job.pk])
    [fresh] = new.claim(10)
    assert old.run_job(stale) == "lease_lost"  # its handler ran and committed; the finish matched nothing
    assert new.run_job(fresh) == "succeeded"
    done = _job(job.pk)
    assert (done.status, done.locked_by, _runs(workspace, job.pk)) == ("succeeded", "new", 2)
