"""Batched tasks: ``@task(..., batch=N, many=...)`` claims up to N due jobs of one task and one
workspace in one statement and runs them with one handler call; each job still ends on its
own (succeeded, retried, failed), leases and coalescing hold, and a bad job fails alone."""

import signal
import time

import pytest

from jobs import db
from jobs.models import Job
from jobs.services import enqueue
from jobs.tests.tasks import SEEN
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context

pytestmark = pytest.mark.django_db(transaction=True)


def _queue(ws, task, n, **payload):
    with workspace_context(ws):
        return [enqueue(task, workspace=ws, payload={**payload, "n": i}).pk for i in range(n)]


def _all_jobs():
    with db.queue_role():
        return {j.pk: j for j in Job.objects.all()}


def _ran(ws) -> list[tuple[int, int, int]]:
    """(job id, attempt, batch size) of every committed run."""
    with workspace_context(ws):
        return sorted(
            (job_id, data["attempt"], data.get("batch", 0))
            for job_id, data in AuditEvent.objects.filter(type="test.ran").values_list("job_id", "data_json")
        )


def test_one_claim_takes_a_batch_of_one_task_in_one_workspace_none_started(workspace, other_workspace, make_worker):
    first = _queue(workspace, "test.batched", 7)
    _queue(other_workspace, "test.batched", 2)
    _queue(workspace, "test.record", 3)
    claimed = make_worker(prefetch=10).claim(10)
    assert sorted(j.id for j in claimed) == first[:5]  # the batch size, in queue order
    assert {(j.task, j.workspace_id, j.started, j.attempt) for j in claimed} == {
        ("test.batched", workspace.pk, False, 0)
    }
    held = _all_jobs()
    assert [(held[i].status, held[i].attempts, held[i].started_at) for i in first[:5]] == [("running", 0, None)] * 5
    assert all(held[i].status == "queued" for i in first[5:])


def test_a_batch_runs_in_one_call_and_each_job_is_finished(workspace, make_worker):
    ids = _queue(workspace, "test.batched", 7)
    SEEN.clear()
    assert make_worker().run() == 7
    batches = [s["batch"] for s in SEEN if "batch" in s]
    assert sorted(len(b) for b in batches) == [2, 5]  # two claims, not seven
    jobs = _all_jobs()
    assert {(jobs[i].status, jobs[i].attempts) for i in ids} == {("succeeded", 1)}
    assert _ran(workspace) == sorted([(i, 1, 5) for i in ids[:5]] + [(i, 1, 2) for i in ids[5:]])


def test_a_plain_claim_is_unchanged_when_the_first_job_is_not_batched(workspace, other_workspace, make_worker):
    plain = _queue(workspace, "test.record", 2) + _queue(other_workspace, "test.record", 2)
    batched = _queue(workspace, "test.batched", 2)
    claimed = make_worker(prefetch=10).claim(10)
    assert sorted(j.id for j in claimed) == sorted(plain + batched)  # any task, any workspace
    assert [j.started for j in sorted(claimed, key=lambda j: j.id)] == [True] + [False] * 5  # the first started


def test_batching_off_runs_every_job_alone(workspace, make_worker):
    ids = _queue(workspace, "test.batched", 3)
    SEEN.clear()
    assert make_worker(batch_max=1).run() == 3
    assert not [s for s in SEEN if "batch" in s]
    assert _ran(workspace) == [(i, 1, 1) for i in ids]


def test_a_bad_job_in_a_batch_fails_only_itself_and_is_retried(workspace, make_worker, settings):
    settings.JOBS_RETRY_BASE_SECONDS = 60
    good = _queue(workspace, "test.batched", 4)
    with workspace_context(workspace):
        bad = enqueue("test.batched", workspace=workspace, payload={"bad": True}).pk
    assert make_worker().run() == 5
    jobs = _all_jobs()
    assert {(jobs[i].status, jobs[i].attempts) for i in good} == {("succeeded", 1)}
    # The batch's writes rolled back; each good job then ran alone, once, in the same attempt.
    assert _ran(workspace) == [(i, 1, 1) for i in good]
    failed = jobs[bad]
    assert (failed.status, failed.attempts) == ("queued", 1)
    assert "bad job" in failed.last_error and failed.run_after.timestamp() > time.time() + 20


def test_work_asked_for_while_its_batch_runs_is_not_lost(workspace, make_worker):
    with workspace_context(workspace):
        ids = [
            enqueue(
                "test.batched",
                workspace=workspace,
                payload={"key": f"k{i}", "again": i == 1},
                dedupe_key=f"k{i}",
                coalesce=True,
            ).pk
            for i in range(3)
        ]
    make_worker().run()
    jobs = _all_jobs()
    assert len(jobs) == 3  # the key was joined, not queued twice
    assert {(jobs[i].status, jobs[i].attempts) for i in ids} == {("succeeded", 1)}
    runs = _ran(workspace)
    assert [r for r in runs if r[0] == ids[1]] == [(ids[1], 1, 1), (ids[1], 1, 3)]  # in the batch, then again
    assert [r[0] for r in runs if r[0] != ids[1]] == [ids[0], ids[2]]


def test_a_dead_workers_batch_is_claimed_again_after_its_lease_unstarted_jobs_uncharged(workspace, make_worker):
    ids = _queue(workspace, "test.batched", 5)
    victim = make_worker(lease_seconds=1)
    assert len(victim.claim(10)) == 5  # claimed, then the worker "dies" before starting them
    assert make_worker(worker_id="early").claim(10) == []  # leases still held
    time.sleep(1.3)
    assert make_worker(worker_id="rescuer").run() == 5
    jobs = _all_jobs()
    assert {(jobs[i].status, jobs[i].attempts, jobs[i].locked_by) for i in ids} == {("succeeded", 1, "rescuer")}
    assert _ran(workspace) == [(i, 1, 5) for i in ids]


def test_a_started_batch_whose_worker_died_is_run_again_and_charged_once_more(workspace, make_worker):
    ids = _queue(workspace, "test.batched", 3)
    victim = make_worker(lease_seconds=1)
    started = victim._start_batch(victim.claim(10))  # started, then the worker "dies" mid-batch
    assert [j.attempt for j in started] == [1, 1, 1]
    time.sleep(1.3)
    make_worker(worker_id="rescuer").run()
    jobs = _all_jobs()
    assert {(jobs[i].status, jobs[i].attempts) for i in ids} == {("succeeded", 2)}


def test_a_job_cancelled_after_its_batch_was_claimed_is_not_run_the_others_are(workspace, make_worker):
    ids = _queue(workspace, "test.batched", 3)
    worker = make_worker()
    claimed = worker.claim(10)
    with workspace_context(workspace):  # an operator cancels one while the batch is claimed
        Job.objects.filter(pk=ids[1]).update(status="cancelled")
    worker.run_batch(claimed)
    jobs = _all_jobs()
    assert [jobs[i].status for i in ids] == ["succeeded", "cancelled", "succeeded"]
    assert [r[0] for r in _ran(workspace)] == [ids[0], ids[2]]


@pytest.mark.slow
def test_kill_9_mid_batch_the_batch_runs_again_after_its_lease(tmp_path):
    from jobs.tests.test_processes import WorkerProcess, _until
    from workspaces.tests.factories import WorkspaceFactory

    ws = WorkspaceFactory()
    marker = tmp_path / "started"
    ids = _queue(ws, "test.batched", 4, seconds=30, marker=str(marker))
    victim = WorkerProcess(tmp_path, "victim", "--lease-seconds", "1.5")
    try:
        assert _until(lambda: all(marker.with_suffix(f".{i}.1").exists() for i in ids), 30), victim.output()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        with workspace_context(ws):
            Job.objects.filter(pk__in=ids).update(payload={"n": 0})  # the rerun need not sleep
        rescuer = WorkerProcess(tmp_path, "rescuer", "--lease-seconds", "1.5")
        try:
            assert _until(lambda: all(j.status == "succeeded" for j in _all_jobs().values()), 30), rescuer.output()
        finally:
            rescuer.stop()
    finally:
        victim.stop()
    jobs = _all_jobs()
    assert {(jobs[i].attempts, jobs[i].locked_by) for i in ids} == {(2, "rescuer")}
    assert _ran(ws.pk) == [(i, 2, 4) for i in ids]  # one batch again, each once
