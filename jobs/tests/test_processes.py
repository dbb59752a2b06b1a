"""Real ``manage.py runworker`` processes against the test database.

The subprocesses reach the test database through DATABASE_NAME (config/settings.py) and
load the test tasks through THREADLINE_EXTRA_TASK_MODULES.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from jobs import db
from jobs.models import Job
from jobs.services import enqueue
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.tests.factories import WorkspaceFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class WorkerProcess:
    def __init__(self, log_dir: Path, name: str, *args: str):
        self.log = log_dir / f"{name}.log"
        env = {
            **os.environ,
            "DATABASE_NAME": connection.settings_dict["NAME"],
            "THREADLINE_EXTRA_TASK_MODULES": "jobs.tests.tasks",
            "JOBS_RETRY_BASE_SECONDS": "0.1",
        }
        command = [sys.executable, "manage.py", "runworker", "--worker-id", name, "--poll-seconds", "0.2", *args]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text()

    def wait_started(self, timeout=20):
        _until(lambda: "started" in self.output() or self.proc.poll() is not None, timeout)
        assert "started" in self.output(), self.output()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _until(predicate, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _jobs():
    with db.queue_role():
        return list(Job.objects.order_by("id"))


def _ran(workspace_ids) -> list[tuple[int, int]]:
    runs = []
    for ws in workspace_ids:
        with workspace_context(ws):
            runs += AuditEvent.objects.filter(type="test.ran").values_list("job_id", "data_json__attempt")
    return sorted(runs)


@pytest.fixture
def workers(tmp_path):
    started = []

    def start(name, *args):
        worker = WorkerProcess(tmp_path, name, *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def test_four_workers_drain_2000_jobs_each_exactly_once(workers):
    spaces = [WorkspaceFactory() for _ in range(4)]
    procs = [workers(f"w{i}", "--prefetch", "10") for i in range(4)]
    for proc in procs:
        proc.wait_started()
    started = time.monotonic()
    for ws in spaces:
        with workspace_context(ws):
            for n in range(500):
                enqueue("test.record", workspace=ws, payload={"n": n})
    done = _until(lambda: len([j for j in _jobs() if j.status == "succeeded"]) == 2000, timeout=90, step=0.25)
    elapsed = time.monotonic() - started
    for proc in procs:
        proc.proc.send_signal(signal.SIGTERM)
    assert all(proc.proc.wait(timeout=20) == 0 for proc in procs)
    jobs = _jobs()
    assert done, {s: sum(j.status == s for j in jobs) for s in Job.Status.values}
    assert {(j.status, j.attempts) for j in jobs} == {("succeeded", 1)}
    runs = _ran([ws.pk for ws in spaces])
    assert runs == [(j.id, 1) for j in jobs]  # every job ran exactly once
    by_worker = {name: sum(j.locked_by == name for j in jobs) for name in ("w0", "w1", "w2", "w3")}
    print(f"\n2000 jobs, 4 workers: {elapsed:.1f}s (enqueue included), per worker {by_worker}")
    assert sum(1 for n in by_worker.values() if n) >= 2


def test_kill_9_mid_job_runs_it_again_after_its_lease(workers, tmp_path):
    ws = WorkspaceFactory()
    marker = tmp_path / "started"
    with workspace_context(ws):
        job = enqueue("test.sleep", workspace=ws, payload={"seconds": 2, "marker": str(marker)})
    victim = workers("victim", "--lease-seconds", "1.5")
    assert _until(lambda: marker.with_suffix(f".{job.pk}.1").exists(), timeout=20), victim.output()
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    killed_at = time.monotonic()
    rescuer = workers("rescuer", "--lease-seconds", "1.5")
    assert _until(lambda: _jobs()[0].status == "succeeded", timeout=30), rescuer.output()
    [done] = _jobs()
    assert (done.attempts, done.locked_by) == (2, "rescuer")
    assert _ran([ws.pk]) == [(job.pk, 2)]  # the killed attempt's writes never committed
    assert time.monotonic() - killed_at >= 2  # the 2s handler of the second attempt


def test_sigterm_finishes_the_current_job_and_releases_the_rest(workers, tmp_path):
    ws = WorkspaceFactory()
    marker = tmp_path / "started"
    with workspace_context(ws):
        ids = [
            enqueue("test.sleep", workspace=ws, payload={"seconds": 1.5, "marker": str(marker)}).pk for _ in range(4)
        ]
    worker = workers("w", "--prefetch", "4", "--shutdown-timeout", "10")
    assert _until(lambda: any(marker.with_suffix(f".{i}.1").exists() for i in ids), timeout=20), worker.output()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=15) == 0, worker.output()
    jobs = _jobs()
    assert [j.status for j in jobs] == ["succeeded", "queued", "queued", "queued"], worker.output()
    assert [(j.attempts, j.locked_by) for j in jobs[1:]] == [(0, "")] * 3
    assert _ran([ws.pk]) == [(ids[0], 1)]
    assert "released 3 claimed jobs" in worker.output()


def test_a_second_signal_exits_at_once_and_releases_the_job(workers, tmp_path):
    ws = WorkspaceFactory()
    marker = tmp_path / "started"
    with workspace_context(ws):
        job = enqueue("test.sleep", workspace=ws, payload={"seconds": 30, "marker": str(marker)})
    worker = workers("w", "--shutdown-timeout", "60")
    assert _until(lambda: marker.with_suffix(f".{job.pk}.1").exists(), timeout=20), worker.output()
    worker.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert worker.proc.poll() is None  # still finishing the job
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.wait(timeout=5)
    [back] = _jobs()
    assert (back.status, back.attempts) == ("queued", 0), worker.output()


def test_a_long_job_keeps_its_lease_by_heartbeat(workers, tmp_path):
    ws = WorkspaceFactory()
    marker = tmp_path / "started"
    with workspace_context(ws):
        job = enqueue("test.sleep", workspace=ws, payload={"seconds": 3, "marker": str(marker)})
    runner = workers("runner", "--lease-seconds", "1")
    assert _until(lambda: marker.with_suffix(f".{job.pk}.1").exists(), timeout=20), runner.output()
    workers("thief", "--lease-seconds", "1")  # would reclaim the job if its lease ran out
    assert _until(lambda: _jobs()[0].status == "succeeded", timeout=20), runner.output()
    [done] = _jobs()
    assert (done.attempts, done.locked_by) == (1, "runner")
    assert not marker.with_suffix(f".{job.pk}.2").exists()
    assert _ran([ws.pk]) == [(job.pk, 1)]
