"""The queue in one process: enqueue, claim, fencing, retries, isolation and the command."""

import random
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from jobs import db
from jobs.models import Job
from jobs.services import EnqueueOutsideWorkspace, enqueue
from jobs.tests import tasks
from jobs.worker import retry_delay
from review.models import ReviewItem
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context


def _job(job_id) -> Job:
    with db.queue_role():
        return Job.objects.get(pk=job_id)


def _enqueue(ws, task="test.record", **kwargs):
    with workspace_context(ws):
        return enqueue(task, workspace=ws, payload=kwargs.pop("payload", {}), **kwargs)


def _runs(job_id) -> int:
    with workspace_context(_job(job_id).workspace_id):
        return AuditEvent.objects.filter(type="test.ran", job_id=job_id).count()


# --- enqueue ---------------------------------------------------------------------------------


def test_enqueue_needs_a_workspace_context(workspace):
    with pytest.raises(EnqueueOutsideWorkspace, match="workspace_context"):
        enqueue("test.noop", workspace=workspace, payload={})


def test_job_and_notify_exist_only_if_the_transaction_commits(workspace):
    listener = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    listener.execute(f"LISTEN {db.NOTIFY_CHANNEL}")
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = _enqueue(workspace)
        raise RuntimeError("the caller's transaction fails")
    assert not Job.objects.filter(pk=rolled_back.pk).exists()
    assert list(listener.notifies(timeout=0.2)) == []
    with transaction.atomic():
        job = _enqueue(workspace)
        assert list(listener.notifies(timeout=0.2)) == []  # not before the commit
    assert len(list(listener.notifies(timeout=1, stop_after=1))) == 1
    assert _job(job.pk).status == Job.Status.QUEUED
    listener.close()


def test_enqueue_takes_max_attempts_from_the_task(workspace):
    assert _job(_enqueue(workspace, "test.slow").pk).max_attempts == 2


def test_dedupe_key_is_unique_among_queued_and_running_jobs(workspace, other_workspace, make_worker):
    first = _enqueue(workspace, dedupe_key="thread-7")
    assert _enqueue(workspace, dedupe_key="thread-7").pk == first.pk
    assert _enqueue(other_workspace, dedupe_key="thread-7").pk != first.pk
    worker = make_worker(tasks=["test.record"], worker_id="w1")
    [claimed] = [j for j in worker.claim(10) if j.id == first.pk]
    assert _enqueue(workspace, dedupe_key="thread-7").pk == first.pk  # running still counts
    worker.run_job(claimed)
    assert _enqueue(workspace, dedupe_key="thread-7").pk != first.pk  # finished: a new one


# --- claim and isolation -----------------------------------------------------------------------


def test_claim_sees_every_workspace_but_the_app_role_alone_sees_none(workspace, other_workspace, make_worker):
    ids = {_enqueue(workspace).pk, _enqueue(other_workspace).pk}
    assert Job.objects.count() == 0  # no context, no queue role: zero rows
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, %s, 'USAGE'), pg_has_role(current_user, %s, 'SET')",
            ["threadline_queue"] * 2,
        )
        assert cursor.fetchone() == (False, True)  # may SET ROLE to it, does not inherit it
    claimed = make_worker().claim(10)
    assert {j.id for j in claimed} == ids
    assert {j.workspace_id for j in claimed} == {workspace.pk, other_workspace.pk}
    assert Job.objects.count() == 0  # the queue role ended with the claim


def test_a_handler_sees_only_its_own_workspace(workspace, other_workspace, make_worker):
    tasks.SEEN.clear()
    _enqueue(other_workspace, "test.record")
    _enqueue(workspace, "test.peek")
    make_worker().run()
    assert tasks.SEEN == [{"jobs": {workspace.pk}, "events": set()}]


def test_claim_orders_by_priority_and_takes_several_per_round_trip(workspace, make_worker):
    low = _enqueue(workspace, priority=0)
    high = _enqueue(workspace, priority=5)
    later = _enqueue(workspace, run_after=timezone.now() + timedelta(hours=1))
    claimed = make_worker().claim(10)
    assert [j.id for j in claimed] == [high.pk, low.pk]
    assert _job(later.pk).status == Job.Status.QUEUED


# --- fencing and recovery ----------------------------------------------------------------------


def _expire_lease(job_id):
    with db.queue_role(), connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job_id])


def test_a_worker_whose_lease_was_taken_over_cannot_complete_the_job(workspace, make_worker):
    job = _enqueue(workspace)
    old, new = make_worker(worker_id="old"), make_worker(worker_id="new")
    [stale] = old.claim(10)
    _expire_lease(job.pk)
    [fresh] = new.claim(10)  # reclaimed by the workers themselves: no cron
    assert (stale.attempt, fresh.attempt) == (1, 2)
    assert old.heartbeat() == {job.pk}  # lost, so not extended
    old._held[job.pk] = stale.attempt
    assert old.run_job(stale) == "lease_lost"
    assert _runs(job.pk) == 0  # the stale handler's writes rolled back with its failed finish
    assert old._fail(stale, "late error") == "lease_lost"
    assert old.release([stale]) == []
    assert new.run_job(fresh) == "succeeded"
    done = _job(job.pk)
    assert (done.status, done.attempts, done.locked_by, _runs(job.pk)) == ("succeeded", 2, "new", 1)


def test_heartbeat_extends_the_leases_held(workspace, make_worker):
    job = _enqueue(workspace)
    worker = make_worker(lease_seconds=5)
    worker.claim(10)
    before = _job(job.pk).lease_expires_at
    worker.lease_seconds = 60
    assert worker.heartbeat() == set()
    assert _job(job.pk).lease_expires_at > before + timedelta(seconds=50)


def test_release_puts_claimed_jobs_back_without_using_an_attempt(workspace, make_worker):
    job = _enqueue(workspace)
    worker = make_worker()
    claimed = worker.claim(10)
    assert worker.release(claimed) == [job.pk]
    back = _job(job.pk)
    assert (back.status, back.attempts, back.locked_by, back.lease_expires_at) == ("queued", 0, "", None)


def test_a_job_reclaimed_after_its_last_attempt_fails_without_running(workspace, make_worker):
    job = _enqueue(workspace, "test.slow")  # max_attempts=2
    worker = make_worker()
    for _ in range(2):
        worker.claim(10)
        _expire_lease(job.pk)
    [last] = worker.claim(10)
    assert worker.run_job(last) == "failed"
    assert "lease expired" in _job(job.pk).last_error


# --- retries -----------------------------------------------------------------------------------


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(4)
    for attempt in range(1, 12):
        ceiling = min(300, 10 * 2 ** (attempt - 1))
        delays = [retry_delay(attempt, base=10, cap=300, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len({round(d, 6) for d in delays}) > 40  # jittered, not one value
    assert retry_delay(1, base=10, cap=300, rng=rng) <= 10
    assert retry_delay(20, base=10, cap=300, rng=rng) >= 150


def test_a_failed_attempt_is_retried_after_the_backoff(workspace, make_worker, settings):
    settings.JOBS_RETRY_BASE_SECONDS = 10
    job = _enqueue(workspace, "test.fail")
    make_worker().run()
    retried = _job(job.pk)
    assert (retried.status, retried.attempts, retried.locked_by) == ("queued", 1, "")
    wait = (retried.run_after - timezone.now()).total_seconds()
    assert 4 <= wait <= 10
    assert "RuntimeError: boom on attempt 1" in retried.last_error and "Traceback" in retried.last_error
    assert make_worker().run() == 0  # not due yet


def test_the_last_failed_attempt_fails_the_job_and_opens_a_review_item(workspace, make_worker, settings):
    settings.JOBS_RETRY_BASE_SECONDS = 0
    job = _enqueue(workspace, "test.fail")
    assert make_worker().run() == 3  # max_attempts=3, no backoff
    failed = _job(job.pk)
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.finished_at is not None
    with workspace_context(workspace):
        item = ReviewItem.objects.get()
        assert AuditEvent.objects.filter(type="job.failed", job_id=job.pk).count() == 1
    assert (item.reason, item.payload_json["job_id"]) == ("job_failed", job.pk)
    assert _runs(job.pk) == 0  # each attempt's writes rolled back with its exception


def test_a_handler_past_its_timeout_is_interrupted_and_retried(workspace, make_worker):
    job = _enqueue(workspace, "test.slow")  # timeout=0.5s, sleeps 5s
    worker = make_worker()
    [claimed] = worker.claim(10)
    started = timezone.now()
    assert worker.run_job(claimed) == "retry"
    assert (timezone.now() - started).total_seconds() < 2
    assert "timed out" in _job(job.pk).last_error


# --- the command ---------------------------------------------------------------------------------


def test_runworker_batch_max_jobs_and_tasks_filter(workspace):
    for _ in range(3):
        _enqueue(workspace, "test.record")
    noop = _enqueue(workspace, "test.noop")
    call_command("runworker", batch=True, tasks="test.noop")
    assert _job(noop.pk).status == "succeeded"
    call_command("runworker", batch=True, max_jobs=2)
    with db.queue_role():
        assert Job.objects.filter(status="succeeded").count() == 3
    call_command("runworker", batch=True)
    with db.queue_role():
        assert Job.objects.filter(status="succeeded").count() == 4


def test_runworker_rejects_unknown_tasks(transactional_db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown tasks: nope"):
        call_command("runworker", batch=True, tasks="nope")


# --- wake-up -------------------------------------------------------------------------------------


def _run_in_thread(worker):
    import threading

    def target():
        try:
            worker.run()
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


@pytest.mark.parametrize(("listen", "poll", "within"), [(True, 30, 2.0), (False, 0.3, 2.0)])
def test_an_idle_worker_wakes_on_notify_or_by_polling(workspace, make_worker, listen, poll, within):
    import time

    worker = make_worker(batch=False, max_jobs=1, listen=listen, poll_seconds=poll)
    thread = _run_in_thread(worker)
    time.sleep(0.5)  # idle, waiting
    job = _enqueue(workspace)
    thread.join(timeout=within)
    assert not thread.is_alive(), "the worker did not pick the job up in time"
    assert _job(job.pk).status == "succeeded"


def test_one_structured_log_line_per_job(workspace, make_worker, caplog):
    import json

    job = _enqueue(workspace, "test.noop")
    with caplog.at_level("INFO", logger="jobs.worker"):
        make_worker(worker_id="w-log").run()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job ")]
    fields = json.loads(line[len("job ") :])
    assert fields.keys() == {"task", "workspace", "job_id", "attempt", "duration_ms", "outcome", "worker"}
    assert (fields["job_id"], fields["workspace"], fields["outcome"]) == (job.pk, workspace.pk, "succeeded")


def test_the_queue_role_ends_with_its_statement(workspace, make_worker):
    _enqueue(workspace)
    assert len(make_worker().claim(10)) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == connection.settings_dict["USER"]
    assert Job.objects.count() == 0


def test_a_wedged_job_stops_being_extended(workspace, make_worker):
    import time

    job = _enqueue(workspace, "test.slow")  # timeout 0.5s
    worker = make_worker(lease_seconds=5)
    [claimed] = worker.claim(10)
    before = _job(job.pk).lease_expires_at
    worker._current, worker._current_started = claimed, time.monotonic() - 60
    worker.heartbeat()
    assert _job(job.pk).lease_expires_at == before  # left to lapse, then another worker takes it


def test_the_worker_carries_on_after_a_database_error(workspace, make_worker, monkeypatch):
    from django.db import OperationalError

    from jobs.worker import Worker

    job = _enqueue(workspace)
    real_claim, calls = Worker.claim, []

    def flaky_claim(self, limit):
        calls.append(limit)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_claim(self, limit)

    monkeypatch.setattr(Worker, "claim", flaky_claim)
    worker = make_worker(batch=False, max_jobs=1, poll_seconds=0.1, listen=False)
    assert worker.run() == 1
    assert _job(job.pk).status == "succeeded" and len(calls) == 2


def test_prefetch_adapts_to_job_duration_unless_given(make_worker):
    worker = make_worker(prefetch=None)
    worker.prefetch = 10
    assert worker._claim_limit() == 1  # nothing known yet
    worker._avg_seconds = 0.002
    assert worker._claim_limit() == 10  # short jobs: a full batch per round trip
    worker._avg_seconds = 0.2
    assert worker._claim_limit() == 2
    worker._avg_seconds = 3.0
    assert worker._claim_limit() == 1  # long jobs: one at a time, the rest stay for other workers
    assert make_worker(prefetch=4)._claim_limit() == 4
    assert make_worker(prefetch=4, max_jobs=3)._claim_limit() == 3


# --- claimed is not started --------------------------------------------------------------------


def _state(job_id):
    job = _job(job_id)
    return job.status, job.attempts, job.started_at is not None


def test_a_claim_starts_only_the_job_run_first_and_a_finish_starts_the_next(workspace, make_worker):
    ids = [_enqueue(workspace, "test.noop").pk for _ in range(3)]
    worker = make_worker(worker_id="w")
    claimed = worker.claim(10)
    assert [(j.id, j.started) for j in claimed] == [(ids[0], True), (ids[1], False), (ids[2], False)]
    assert [_state(i) for i in ids] == [("running", 1, True), ("running", 0, False), ("running", 0, False)]
    worker._claimed.extend(claimed[1:])
    assert worker.run_job(claimed[0]) == "succeeded"
    # the finish of the first started the second, in the same transaction; the third waits
    assert [_state(i) for i in ids] == [("succeeded", 1, True), ("running", 1, True), ("running", 0, False)]
    assert worker._claimed[0].started and worker._claimed[0].attempt == 1


def test_a_dead_workers_unstarted_claims_cost_no_attempt(workspace, make_worker):
    ids = [_enqueue(workspace, "test.record").pk for _ in range(4)]
    dead = make_worker(worker_id="dead")
    assert len(dead.claim(10)) == 4  # then it dies: nothing released, leases run out
    for job_id in ids:
        _expire_lease(job_id)
    assert make_worker(worker_id="rescuer").run() == 4
    # only the job the dead worker had started used an attempt
    assert [_state(i)[:2] for i in ids] == [("succeeded", 2), ("succeeded", 1), ("succeeded", 1), ("succeeded", 1)]
    assert [_runs(i) for i in ids] == [1, 1, 1, 1]


def test_a_job_whose_attempts_were_all_started_fails_as_lost_without_running(workspace, make_worker):
    job = _enqueue(workspace, "test.slow")  # max_attempts=2
    for name in ("a", "b"):
        [claimed] = make_worker(worker_id=name).claim(10)
        assert claimed.started
        _expire_lease(job.pk)
    [last] = make_worker(worker_id="c").claim(10)
    assert (last.attempt, last.started) == (2, False)  # not started: nothing left to charge
    assert make_worker(worker_id="c").run_job(last) in ("failed", "lease_lost")


def test_released_claims_give_back_only_the_started_attempt(workspace, make_worker):
    ids = [_enqueue(workspace).pk for _ in range(2)]
    worker = make_worker()
    claimed = worker.claim(10)
    assert sorted(worker.release(claimed)) == ids
    assert [_state(i) for i in ids] == [("queued", 0, False), ("queued", 0, False)]


# --- the queue role's columns --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("payload", "'{\"evil\": 1}'::jsonb"),
        ("workspace_id", "workspace_id + 1"),
        ("task", "'other'"),
        ("max_attempts", "100"),
        ("last_error", "''"),
        ("dedupe_key", "'k'"),
        ("priority", "9"),
    ],
)
def test_the_queue_role_cannot_change_a_jobs_content(workspace, column, value):
    job = _enqueue(workspace, payload={"thread_id": 1})
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE threadline_queue")
            try:
                cursor.execute(f"UPDATE jobs_job SET {column} = {value} WHERE id = %s", [job.pk])  # noqa: S608
            except Exception as exc:
                raise exc.__cause__ from None
    assert _job(job.pk).payload == {"thread_id": 1}


def test_the_queue_role_still_claims_starts_heartbeats_and_releases(workspace, make_worker):
    ids = [_enqueue(workspace).pk for _ in range(2)]
    worker = make_worker()
    first, second = worker.claim(10)
    second = worker.start(second)
    assert second.started and _state(second.id) == ("running", 1, True)
    assert worker.heartbeat() == set()
    assert sorted(worker.release([first, second])) == ids
    assert [_state(i) for i in ids] == [("queued", 0, False), ("queued", 0, False)]
    assert make_worker().run() == 2


# --- outages -----------------------------------------------------------------------------------


def test_reconnect_delay_grows_with_jitter_up_to_a_cap():
    from jobs.worker import reconnect_delay

    rng = random.Random(7)
    assert all(0.1 <= reconnect_delay(1, rng=rng) <= 0.2 for _ in range(20))
    late = [reconnect_delay(30, rng=rng) for _ in range(50)]
    assert all(5 <= d <= 10 for d in late) and len({round(d, 6) for d in late}) > 40


def test_an_outage_is_one_warning_then_one_info_with_backoff_and_no_traceback(
    workspace, make_worker, monkeypatch, caplog
):
    from django.db import OperationalError

    from jobs.worker import Worker

    job = _enqueue(workspace)
    real_claim, pauses = Worker.claim, []

    def down_five_times(self, limit):
        if len(pauses) < 5:
            raise OperationalError("connection failed: server closed the connection unexpectedly")
        return real_claim(self, limit)

    monkeypatch.setattr(Worker, "claim", down_five_times)
    monkeypatch.setattr(Worker, "_pause", lambda self, seconds: pauses.append(seconds))
    worker = make_worker(batch=False, max_jobs=1, poll_seconds=0.1, listen=False)
    with caplog.at_level("INFO", logger="jobs.worker"):
        assert worker.run() == 1
    assert _job(job.pk).status == "succeeded"
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if "database" in r.getMessage()]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
    assert "database unavailable" in lines[0][1] and "server closed the connection" in lines[0][1]
    assert "database back after" in lines[1][1] and "5 tries" in lines[1][1]
    assert not any(r.exc_info for r in caplog.records)
    assert len(pauses) == 5 and pauses[-1] > pauses[0]  # backing off, not a fixed poll


def test_a_worker_whose_connections_are_terminated_listens_again(workspace, make_worker, caplog):
    """pg_terminate_backend on every connection of the worker (as the same role, which may):
    it reconnects and LISTENs again, so a job queued afterwards starts on its NOTIFY even
    though the poll interval is far longer than the wait."""
    import time

    worker = make_worker(batch=False, max_jobs=1, listen=True, poll_seconds=60)
    with caplog.at_level("INFO", logger="jobs.worker"):
        thread = _run_in_thread(worker)
        assert _until(lambda: worker._listener is not None, 10)
        time.sleep(0.5)  # idle, on LISTEN
        others = (
            "FROM pg_stat_activity WHERE usename = current_user AND datname = current_database()"
            " AND pid NOT IN (pg_backend_pid(), %s)"
        )
        listener = worker._listener.info.backend_pid
        with connection.cursor() as cursor:
            # its other connections first (gone before the listener goes), so that the outage
            # the listener reports is the one the next claim finds too, as in a restart
            cursor.execute(f"SELECT count(pg_terminate_backend(pid)) {others}", [listener])  # noqa: S608
            assert cursor.fetchone()[0] >= 1
            assert _until(lambda: not _count(cursor, f"SELECT count(*) {others}", [listener]), 10)  # noqa: S608
            cursor.execute("SELECT pg_terminate_backend(%s)", [listener])
        assert _until(lambda: any("database back" in r.getMessage() for r in caplog.records), 15)
        assert _until(lambda: worker._listener is not None, 5)
        time.sleep(0.3)
        job = _enqueue(workspace)
        thread.join(timeout=5)
    assert not thread.is_alive(), "the job was not picked up: the worker did not LISTEN again"
    assert _job(job.pk).status == "succeeded"
    outage = [r.levelname for r in caplog.records if "database" in r.getMessage()]
    assert outage == ["WARNING", "INFO"], [r.getMessage() for r in caplog.records]
    assert not any(r.exc_info for r in caplog.records)


def _count(cursor, statement, params) -> int:
    cursor.execute(statement, params)
    return cursor.fetchone()[0]


def _until(predicate, timeout, step=0.05):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
