"""Coalescing enqueue: one job per key, never two at once, and nothing asked for is lost."""

from datetime import timedelta

from django.utils import timezone

from jobs import db
from jobs.models import Job
from jobs.services import enqueue
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context


def _enqueue(ws, task="test.record", **kwargs):
    with workspace_context(ws):
        return enqueue(task, workspace=ws, payload={}, dedupe_key="k", coalesce=True, **kwargs)


def _jobs(task):
    with db.queue_role():
        return list(Job.objects.filter(task=task).order_by("pk"))


def test_a_queued_job_waits_for_the_latest_delay_asked_of_it(workspace):
    soon, later = timezone.now() + timedelta(seconds=30), timezone.now() + timedelta(seconds=90)
    first = _enqueue(workspace, run_after=soon)
    assert _enqueue(workspace, run_after=later).pk == first.pk
    assert _enqueue(workspace).pk == first.pk  # "now" does not bring it forward
    [job] = _jobs("test.record")
    assert abs((job.run_after - later).total_seconds()) < 0.01


def test_work_asked_for_while_the_job_runs_runs_once_more_then_it_succeeds(workspace, make_worker):
    job = _enqueue(workspace, task="test.changes_midway")
    worker = make_worker(tasks=["test.changes_midway"], worker_id="w1", max_jobs=5)
    worker.run()
    [job] = _jobs("test.changes_midway")
    with workspace_context(workspace):
        runs = AuditEvent.objects.filter(type="test.ran", job_id=job.pk).count()
    assert runs == 2  # the run after the change, not a second job beside the first
    assert (job.status, job.attempts, job.rerun_after) == ("succeeded", 1, None)


def test_a_rerun_asked_of_a_job_that_then_fails_for_good_is_queued_afresh(workspace, make_worker):
    job = _enqueue(workspace, task="test.fail")
    with db.queue_role():
        Job.objects.filter(pk=job.pk).update(attempts=2)  # its last attempt comes next
    worker = make_worker(tasks=["test.fail"], worker_id="w1", max_jobs=1)
    [claimed] = worker.claim(1)
    _enqueue(workspace, task="test.fail")  # a change arrives while it runs
    assert worker.run_job(claimed) == "failed"
    jobs = _jobs("test.fail")
    assert [j.status for j in jobs] == ["failed", "queued"]
    assert jobs[1].dedupe_key == "k" and jobs[1].attempts == 0
