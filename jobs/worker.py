"""The worker behind ``manage.py runworker``: claim, run under a lease, finish or retry.

One process runs one job at a time; scaling is more processes, here or on other machines,
coordinating only through PostgreSQL. A round:

1. **Claim** up to ``prefetch`` jobs in one short transaction as the queue role
   (``claim_jobs``): due queued jobs and running jobs whose lease ran out. Only the job run
   first is started (its attempt charged); each later one is started just before it runs,
   by the message that finishes the one before it, so a worker that dies holding
   prefetched jobs charges them nothing.
2. **Run** each in ``workspace_context(job.workspace_id)`` as the app role. The fenced
   ``finish_job`` update is the last statement of the handler's own transaction: the
   handler's writes and "succeeded" commit together, and a worker that lost its lease
   matches nothing (which raises) and rolls its writes back. The transaction costs two
   round trips: BEGIN with its settings, then finish, next start and COMMIT.
   A task registered with ``atomic=False`` (one that waits on the network) runs outside
   any transaction, committing its own short ``workspace_context`` blocks; the finish
   then runs in its own short transaction, and a worker that lost its lease just fails to
   finish (such handlers are idempotent by design: the CRM ledger, extraction runs).
3. On an exception, a separate short transaction records the attempt (``fail_job``):
   queued again after an exponential backoff with jitter, or "failed" with a review item.
4. A heartbeat thread (its own connection) extends every lease this worker holds each
   third of a lease, so long jobs keep theirs and only a dead or stuck worker loses them.
5. Idle: wait on LISTEN for ``enqueue``'s NOTIFY, at most ``poll_seconds``, then claim
   again; without LISTEN (a pooler in transaction mode) the poll alone keeps it working.
6. The database gone: one WARNING line, reconnect with a capped, jittered backoff, and once
   a round goes through, LISTEN again and one INFO line.

SIGTERM/SIGINT: stop claiming, let the current job finish within ``shutdown_timeout``
(then interrupt it), and release the claimed jobs that were not started. A second signal
exits at once (releasing what it can). Leases cover whatever a ``kill -9`` leaves behind.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from jobs import db, hooks
from jobs.registry import BatchDeclined, task_get
from jobs.services import enqueue
from workspaces.rls import WORKSPACE_SETTING, workspace_context
from workspaces.services import audit_event_record

log = logging.getLogger("jobs.worker")

ERROR_LIMIT = 4000  # characters of error and traceback kept on the job row
PREFETCH_SECONDS = 0.5  # at most about this much work is claimed ahead (see _claim_limit)
RECONNECT_BASE_SECONDS = 0.2  # first pause after the database went away; doubles per try
RECONNECT_MAX_SECONDS = 10.0  # ... up to this, jittered (see reconnect_delay)


class LeaseLost(Exception):
    """The job's lease is no longer this worker's: another worker reclaimed it, or it was cancelled."""


class JobTimeout(Exception):
    """The handler ran past its task's timeout."""


class ShutdownTimeout(BaseException):
    """The worker is stopping and the current job did not finish within the shutdown timeout."""


class WorkerExit(BaseException):
    """A second stop signal: leave now."""


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    workspace_id: int
    task: str
    payload: dict
    attempt: int  # the job's attempts as this worker's lease has it (the fence)
    max_attempts: int
    priority: int = 0
    started: bool = False  # attempt counts this run; a claimed job is started just before it runs


def retry_delay(attempt: int, *, base: float, cap: float, rng=random) -> float:
    """Seconds before retry ``attempt + 1``: ``base * 2**(attempt - 1)`` capped at ``cap``,
    then "equal jitter" (a uniform draw from the upper half) so that jobs failing together
    do not retry together, while the wait still grows with every attempt."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return rng.uniform(ceiling / 2, ceiling)


def reconnect_delay(
    tries: int, *, base: float = RECONNECT_BASE_SECONDS, cap: float = RECONNECT_MAX_SECONDS, rng=random
):
    """Seconds to wait before reconnecting for the ``tries``-th time in an outage: exponential
    from ``base``, capped at ``cap``, with equal jitter so that workers do not all knock at
    once when the server comes back."""
    return retry_delay(tries, base=base, cap=cap, rng=rng)


class Worker:
    def __init__(
        self,
        *,
        tasks: list[str],
        batch: bool = False,
        max_jobs: int | None = None,
        prefetch: int | None = None,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        shutdown_timeout: float | None = None,
        listen: bool = True,
        worker_id: str | None = None,
        batch_max: int | None = None,
    ):
        self.tasks = tasks
        self.batch_max = batch_max if batch_max is not None else settings.JOBS_BATCH_MAX
        self.batch, self.max_jobs = batch, max_jobs
        # An explicit prefetch is used as given; by default it adapts (see _claim_limit).
        self.prefetch, self.adaptive = prefetch or settings.JOBS_PREFETCH, prefetch is None
        self.lease_seconds = lease_seconds or settings.JOBS_LEASE_SECONDS
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.JOBS_POLL_SECONDS
        self.shutdown_timeout = shutdown_timeout if shutdown_timeout is not None else settings.JOBS_SHUTDOWN_TIMEOUT
        self.listen = listen
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.processed = 0
        self.stopping = False
        self._claimed: deque[ClaimedJob] = deque()
        self._held: dict[int, int] = {}  # job id -> attempt, for the heartbeat
        self._held_lock = threading.Lock()
        self._current: ClaimedJob | None = None
        self._current_started = 0.0
        self._avg_seconds: float | None = None  # moving average of recent job durations
        self._alarm_reason = "timeout"
        self._in_handler = False
        self._listener = None
        self._outage_lock = threading.Lock()
        self._outage_since: float | None = None  # monotonic time the database went away
        self._outage_tries = 0

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped (or drained, with ``batch``); return the number of jobs run."""
        restore = self._install_signals()
        restore_max_age = self._keep_connection()
        heartbeat = _Heartbeat(self)
        heartbeat.start()
        self._listener = self._open_listener() if self.listen and not self.batch else None
        log.info(
            "worker %s started: tasks=%s prefetch=%s lease=%ss",
            self.worker_id,
            ",".join(self.tasks),
            self.prefetch,
            self.lease_seconds,
        )
        if not self.tasks:
            log.warning("worker %s: no task is registered, nothing will be claimed", self.worker_id)
        try:
            while not self.stopping and not self._reached_max():
                try:
                    if not self._step():
                        break
                except DatabaseError as exc:
                    # The database went away or restarted: one line when that starts, none per
                    # try, then reconnect with a capped, jittered exponential backoff (and LISTEN
                    # again, _outage_over). What this worker had claimed stays claimed; a lease
                    # that ran out meanwhile is another worker's, and its fence says so.
                    connection.close()
                    if self.batch:
                        raise
                    self._outage_begin(exc)
                    self._pause(reconnect_delay(self._outage_tries))
        except WorkerExit:
            log.warning("worker %s: second signal, exiting now", self.worker_id)
        finally:
            self._release_all()
            heartbeat.stop()
            self._close_listener()
            restore_max_age()
            restore()
        log.info("worker %s stopped after %s jobs", self.worker_id, self.processed)
        return self.processed

    def _step(self) -> bool:
        """Run one claimed job, or claim, or wait; False when a batch run is drained."""
        if not self._claimed:
            self._claimed.extend(self.claim(self._claim_limit()))
            self._outage_over()  # a claim went through: the database is there
        if self._claimed and self._is_batch(self._claimed):
            jobs = list(self._claimed)
            self._claimed.clear()
            self.run_batch(jobs)
            self._outage_over()
        elif self._claimed:
            self.run_job(self._claimed.popleft())
            self._outage_over()
        elif self.batch:
            return False
        else:
            # Check the connection (health, age) when idle, not before every job: the check
            # is a round trip, and a broken connection shows up as an error anyway.
            close_old_connections()
            self._wait()
        return True

    def _reached_max(self, extra: int = 0) -> bool:
        return self.max_jobs is not None and self.processed + extra >= self.max_jobs

    def _claim_limit(self) -> int:
        """Prefetch only what this worker can start soon: about ``PREFETCH_SECONDS`` of work at
        the recent job duration, so short jobs come ten to a round trip while a burst of long
        ones is spread over the workers instead of queueing behind one of them."""
        limit = self.prefetch
        if not self.adaptive:
            pass
        elif self._avg_seconds is None:
            limit = 1  # nothing known yet
        elif self._avg_seconds > 0:
            limit = max(1, min(limit, int(PREFETCH_SECONDS / self._avg_seconds)))
        if self.max_jobs is not None:
            limit = min(limit, self.max_jobs - self.processed)
        return max(0, limit)

    # --- the queue's statements -----------------------------------------------------------

    def claim(self, limit: int) -> list[ClaimedJob]:
        """Claim up to ``limit`` jobs (due or with an expired lease) for this worker."""
        if limit <= 0 or not self.tasks:
            return []
        rows = db.queue_fetch("claim_jobs", self.claim_params(limit))
        jobs = sorted((_claimed(row) for row in rows), key=lambda j: (-j.priority, j.id))
        with self._held_lock:
            self._held.update((j.id, j.attempt) for j in jobs)
        return jobs

    def claim_params(self, limit: int) -> dict:
        """The parameters of this worker's claim (``claim_jobs``) of up to ``limit`` jobs."""
        sizes = self._batch_sizes()
        return {
            "limit": limit,
            "tasks": self.tasks,
            "worker": self.worker_id,
            "lease_seconds": self.lease_seconds,
            "batch_tasks": list(sizes),
            "batch_sizes": list(sizes.values()),
        }

    def _batch_sizes(self) -> dict[str, int]:
        """Batch size of each of this worker's batched tasks (``@task(batch=N, many=...)``), at
        most ``batch_max`` and what ``max_jobs`` leaves; none when batching is off."""
        room = self.batch_max if self.max_jobs is None else min(self.batch_max, self.max_jobs - self.processed)
        if room <= 1:
            return {}
        sizes = {}
        for name in self.tasks:
            spec = task_get(name)
            if spec is not None and spec.many is not None and spec.batch > 1:
                sizes[name] = min(spec.batch, room)
        return sizes

    def _is_batch(self, jobs) -> bool:
        """Whether claimed jobs are a batch: more than one, of a batched task and one workspace."""
        if len(jobs) < 2:
            return False
        first = jobs[0]
        spec = task_get(first.task)
        if spec is None or spec.many is None or spec.batch < 2 or self.batch_max < 2:
            return False
        return all(j.task == first.task and j.workspace_id == first.workspace_id and not j.started for j in jobs)

    def start(self, job: ClaimedJob) -> ClaimedJob | None:
        """Start a claimed job (charge its attempt) just before it runs; None if the claim was lost."""
        params = {"start_id": job.id, "start_attempt": job.attempt, "worker": self.worker_id}
        rows = db.queue_fetch("start_job", {**params, "lease_seconds": self.lease_seconds})
        return self._started(job, rows)

    def _started(self, job: ClaimedJob, rows) -> ClaimedJob | None:
        if not rows:
            self._forget([job.id])
            return None
        started = replace(job, attempt=rows[0][1], started=True)
        with self._held_lock:
            if job.id in self._held:
                self._held[job.id] = started.attempt
        return started

    def heartbeat(self) -> set[int]:
        """Extend every lease this worker holds; forget (and return) those it lost.

        A job that has run past its task's timeout plus one lease is no longer extended: its
        handler is wedged where SIGALRM cannot reach it, and another worker should take over.
        """
        with self._held_lock:
            held = dict(self._held)
        current, started = self._current, self._current_started
        if current is not None and current.id in held:
            spec = task_get(current.task)
            if spec and time.monotonic() - started > spec.timeout + self.lease_seconds:
                log.warning(
                    "worker %s: job %s overran its timeout; letting its lease lapse", self.worker_id, current.id
                )
                held.pop(current.id)
        if not held:
            return set()
        params = {"ids": list(held), "worker": self.worker_id, "lease_seconds": self.lease_seconds}
        kept = {row[0] for row in db.queue_fetch("heartbeat", params)}
        with self._held_lock:  # a job that finished meanwhile was not lost
            lost = (set(held) - kept) & set(self._held)
        if lost:
            log.warning("worker %s lost the lease of jobs %s", self.worker_id, sorted(lost))
            self._forget(lost)
        return lost

    def release(self, jobs: list[ClaimedJob]) -> list[int]:
        """Queue again jobs this worker claimed but will not run, undoing their attempt."""
        if not jobs:
            return []
        params = {"ids": [j.id for j in jobs], "attempts": [j.attempt for j in jobs], "worker": self.worker_id}
        released = [row[0] for row in db.queue_fetch("release_jobs", params)]
        self._forget(j.id for j in jobs)
        return released

    def run_job(self, job: ClaimedJob) -> str:
        """Run one claimed job to an outcome and log one line about it."""
        started = self._current_started = time.monotonic()
        self._current = job
        try:
            # Still ours? A heartbeat may have found it cancelled or taken over meanwhile.
            outcome = self._run(job) if job.id in self._held else "lease_lost"
        finally:
            self._current = None
            self._forget([job.id])
            self.processed += 1
        seconds = time.monotonic() - started
        self._avg_seconds = seconds if self._avg_seconds is None else 0.8 * self._avg_seconds + 0.2 * seconds
        self._log_job(job, outcome, seconds)
        return outcome

    def run_batch(self, jobs: list[ClaimedJob]) -> list[str]:
        """Run a claimed batch (one task, one workspace) with one call of the task's ``many``
        handler and finish its jobs together; one line per job, as ``run_job`` logs.

        Every job is started (charged) just before the call. If the call raises, or a lease
        was lost, its writes roll back (atomic tasks; the others are idempotent by design)
        and each job runs again alone through the task's handler, within the same attempt,
        so one bad job fails only itself, retried as any job is."""
        started_at = self._current_started = time.monotonic()
        outcomes: dict[int, str] = {}
        lost = [j for j in jobs if j.id not in self._held]
        outcomes.update((j.id, "lease_lost") for j in lost)
        exhausted = [j for j in jobs if j.id in self._held and j.attempt >= j.max_attempts]
        for job in exhausted:  # reclaimed after its last attempt's worker died
            outcomes[job.id] = self._fail(job, "the worker running the last attempt was lost (lease expired)")
        ready = [j for j in jobs if j.id not in outcomes]
        running = self._start_batch(ready) if ready else []
        outcomes.update((j.id, "lease_lost") for j in ready if j.id not in {r.id for r in running})
        singles: list[ClaimedJob] = []
        if running:
            self._current = running[0]
            try:
                result = self._run_many(running)
            finally:
                self._current = None
            if result == "singles":
                singles = running
            elif result == "declined":
                # Not batchable now (it would hold a transaction across the network): the
                # first runs alone, the others go back to the queue for any worker, their
                # attempt undone, so a burst of slow jobs still spreads over the workers.
                singles = running[:1]
                released = set(self._safe(self.release, running[1:]) or [])
                outcomes.update((j.id, "released" if j.id in released else "lease_lost") for j in running[1:])
            else:
                outcomes.update((j.id, result) for j in running)
        seconds = time.monotonic() - started_at
        as_run = {j.id: j for j in running}
        for job in jobs:
            if job.id in outcomes:
                self._forget([job.id])
                self.processed += outcomes[job.id] != "released"
                self._log_job(as_run.get(job.id, job), outcomes[job.id], seconds / len(jobs), batch=len(jobs))
        for job in singles:  # the batch failed as a whole: each alone, so a bad one fails alone
            if self.stopping:
                self._safe(self.release, [j for j in singles if j.id in self._held])
                break
            outcomes[job.id] = self.run_job(job)
        per_job = seconds / max(len(jobs), 1)
        self._avg_seconds = per_job if self._avg_seconds is None else 0.8 * self._avg_seconds + 0.2 * per_job
        return [outcomes.get(j.id, "released") for j in jobs]

    def _start_batch(self, jobs: list[ClaimedJob]) -> list[ClaimedJob]:
        """Charge every job of the batch an attempt (one statement); the ones still ours."""
        params = {
            "ids": [j.id for j in jobs],
            "attempts": [j.attempt for j in jobs],
            "worker": self.worker_id,
            "lease_seconds": self.lease_seconds,
        }
        attempts = dict(db.queue_fetch("start_jobs", params))
        started = [replace(j, attempt=attempts[j.id], started=True) for j in jobs if j.id in attempts]
        with self._held_lock:
            for job in started:
                if job.id in self._held:
                    self._held[job.id] = job.attempt
        self._forget(j.id for j in jobs if j.id not in attempts)
        return started

    def _run_many(self, jobs: list[ClaimedJob]) -> str:
        """One call of the task's ``many`` handler and the batch's fenced finish: "succeeded",
        "released" (shutdown), or "singles" when the batch is to be run again job by job (the
        handler raised or ran past its timeout, or a lease was lost), or "declined" (the
        handler raised BatchDeclined before doing anything)."""
        spec = task_get(jobs[0].task)
        try:
            with self._deadline(spec.timeout):
                if spec.atomic:
                    with self._job_context(jobs[0], spec.timeout) as fast:
                        spec.many(jobs)
                        self._finish_many(jobs, commit=fast)
                else:
                    spec.many(jobs)
                    with self._job_context(jobs[0], spec.timeout) as fast:
                        self._finish_many(jobs, commit=fast)
        except BatchDeclined:
            return "declined"
        except (LeaseLost, JobTimeout):
            return "singles"
        except ShutdownTimeout:
            self._safe(self.release, jobs)
            return "released"
        except WorkerExit:
            self._safe(self.release, jobs)
            raise
        except Exception:
            log.warning(
                "worker %s: a batch of %s %s jobs failed; running them one at a time",
                self.worker_id,
                len(jobs),
                jobs[0].task,
                exc_info=True,
            )
            return "singles"
        return "succeeded"

    def _finish_many(self, jobs: list[ClaimedJob], *, commit: bool) -> None:
        params = {"finish_ids": [j.id for j in jobs], "finish_attempts": [j.attempt for j in jobs]}
        params["worker"] = self.worker_id
        try:
            if commit:
                db.commit_with([("finish_jobs", params, False)])
            else:
                db.fetch("finish_jobs", params)
        except DatabaseError as exc:
            if db.is_lease_lost(exc):
                raise LeaseLost(jobs[0].id) from exc
            raise

    def _log_job(self, job: ClaimedJob, outcome: str, seconds: float, **extra) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "job %s",
            json.dumps(
                {
                    "task": job.task,
                    "workspace": job.workspace_id,
                    "job_id": job.id,
                    "attempt": job.attempt,
                    "duration_ms": round(seconds * 1000, 1),
                    "outcome": outcome,
                    "worker": self.worker_id,
                    **extra,
                }
            ),
        )

    def _run(self, job: ClaimedJob) -> str:
        if not job.started:
            if job.attempt >= job.max_attempts:
                # Reclaimed after its last attempt's worker died (a crash, OOM, kill -9).
                return self._fail(job, "the worker running the last attempt was lost (lease expired)")
            job = self.start(job)
            if job is None:
                return "lease_lost"
        spec = task_get(job.task)
        if spec is None:
            return self._fail(job, f"no task named {job.task!r} is registered in this worker")
        committed = False
        try:
            with self._deadline(spec.timeout):
                if spec.atomic:
                    with self._job_context(job, spec.timeout) as fast:
                        spec.func(job.payload, job=job)
                        self._finish(job, commit=fast)
                        committed = True
                else:
                    # The handler commits its own short transactions (never one held open
                    # across a network call); the fenced finish is a transaction of its own.
                    spec.func(job.payload, job=job)
                    with self._job_context(job, spec.timeout) as fast:
                        self._finish(job, commit=fast)
                    committed = True
        except LeaseLost:
            return "lease_lost"
        except ShutdownTimeout:
            self._safe(self.release, [job])
            return "released"
        except WorkerExit:
            self._safe(self.release, [job])  # its writes rolled back; it runs again elsewhere
            raise
        except Exception as exc:
            if committed:
                return "succeeded"
            return self._fail(job, _describe(exc))
        return "succeeded"

    def _finish(self, job: ClaimedJob, *, commit: bool) -> None:
        """The fenced finish, the last statement of the job's transaction. With ``commit`` (the
        transaction is the worker's own, not nested in a caller's), the finish, the start of
        the next claimed job and the COMMIT go as one message: a job then costs two round
        trips (this one and the BEGIN of its transaction), and starting the next one none."""
        params = {"id": job.id, "worker": self.worker_id, "attempt": job.attempt}
        following = self._next_to_start() if commit else None
        try:
            if not commit:
                db.fetch("finish_job", params)
                return
            statements = [("finish_job", params, False)]
            if following is not None:
                start = {"start_id": following.id, "start_attempt": following.attempt}
                statements.append(("start_job", {**start, "lease_seconds": self.lease_seconds}, True))
            results = db.commit_with(statements)
        except DatabaseError as exc:
            if db.is_lease_lost(exc):
                raise LeaseLost(job.id) from exc
            raise
        if following is not None:
            started = self._started(following, results[1])
            if self._claimed and self._claimed[0].id == following.id:
                if started is None:
                    self._claimed.popleft()
                else:
                    self._claimed[0] = started

    def _next_to_start(self) -> ClaimedJob | None:
        """The claimed job this worker runs next, if it should be started with this finish."""
        if not self._claimed or self.stopping or self._reached_max(extra=1):
            return None
        following = self._claimed[0]
        if following.started or following.attempt >= following.max_attempts:
            return None
        return following

    def _fail(self, job: ClaimedJob, error: str) -> str:
        """Record a failed attempt: retry later, or "failed" with a review item."""
        delay = retry_delay(job.attempt, base=settings.JOBS_RETRY_BASE_SECONDS, cap=settings.JOBS_RETRY_MAX_SECONDS)
        params = {"id": job.id, "worker": self.worker_id, "attempt": job.attempt, "error": error[:ERROR_LIMIT]}
        for tries in (1, 2):
            try:
                with workspace_context(job.workspace_id):
                    rows = db.fetch("fail_job", {**params, "delay_seconds": delay})
                    if rows and rows[0][0] == "failed":
                        _failed(job, error)
                        if rows[0][1] is not None:  # work asked for while it ran is not lost with it
                            enqueue(
                                job.task,
                                workspace=job.workspace_id,
                                payload=job.payload,
                                run_after=rows[0][1],
                                dedupe_key=rows[0][2],
                                coalesce=True,
                            )
                break
            except DatabaseError:
                # The interrupted handler may have left the connection unusable: reconnect once.
                connection.close()
                if tries == 2:
                    raise
        if not rows:
            return "lease_lost"
        return "failed" if rows[0][0] == "failed" else "retry"

    @contextmanager
    def _job_context(self, job: ClaimedJob, timeout: float):
        """The handler's transaction: the job's workspace context, with the task's timeout as
        the statement timeout. It is what ``workspace_context`` sets; at the top level there
        is no outer workspace to save and restore, so the BEGIN and both settings go in one
        round trip, and the context yields True: the finish may COMMIT in its own message
        (_finish). Inside an outer transaction (some tests) workspace_context itself is used,
        and it yields False."""
        if connection.in_atomic_block:
            with workspace_context(job.workspace_id):
                _set_configs({"statement_timeout": f"{int(timeout * 1000)}ms"})
                yield False
            return
        with transaction.atomic():
            configs = {WORKSPACE_SETTING: str(job.workspace_id), "statement_timeout": f"{int(timeout * 1000)}ms"}
            db.begin_with_configs(configs)
            yield True

    def _keep_connection(self):
        """Keep this process's connections open between jobs (Django's default max age of 0
        would reconnect for every job); close_old_connections still retires broken ones."""
        saved = connection.settings_dict["CONN_MAX_AGE"]
        connection.settings_dict["CONN_MAX_AGE"] = settings.JOBS_CONN_MAX_AGE
        if connection.connection is not None and not connection.in_atomic_block:
            connection.close()  # opened with the old max age; reopen with the new one

        def restore():
            connection.settings_dict["CONN_MAX_AGE"] = saved

        return restore

    def _forget(self, ids) -> None:
        with self._held_lock:
            for job_id in ids:
                self._held.pop(job_id, None)

    def _release_all(self) -> None:
        pending = list(self._claimed)
        if self._current is not None:
            pending.append(self._current)
        self._claimed.clear()
        if pending:
            released = self._safe(self.release, pending) or []
            log.info("worker %s released %s claimed jobs: %s", self.worker_id, len(released), released)

    def _safe(self, func, *args):
        try:
            return func(*args)
        except Exception:
            log.exception("worker %s: %s failed", self.worker_id, func.__name__)
            connection.close()
            return None

    # --- outages: one line when the database goes away, one when it is back ----------------

    def _outage_begin(self, exc: BaseException) -> None:
        """The database (or the connection to it) failed: log once per outage, count the try."""
        with self._outage_lock:
            self._outage_tries += 1
            if self._outage_since is not None:
                return
            self._outage_since = time.monotonic()
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.warning(
            "worker %s: database unavailable (%s: %s); reconnecting with backoff (at most %ss apart)",
            self.worker_id,
            type(exc).__name__,
            reason[:300],
            RECONNECT_MAX_SECONDS,
        )

    def _outage_over(self) -> None:
        """The main loop's round went through: if it was an outage, LISTEN again and say so once."""
        if self._outage_since is None:
            return
        if self.listen and not self.batch and self._listener is None:
            self._listener = self._open_listener()
        with self._outage_lock:
            since, tries = self._outage_since, self._outage_tries
            self._outage_since, self._outage_tries = None, 0
        if since is None:
            return
        log.info(
            "worker %s: database back after %.1fs (%s tries)%s",
            self.worker_id,
            time.monotonic() - since,
            tries,
            "; listening again" if self._listener is not None else "",
        )

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless a stop signal comes first."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(0.1, remaining))

    # --- waiting: LISTEN/NOTIFY with polling as the fallback ---------------------------------

    def _open_listener(self):
        import psycopg
        from psycopg import sql

        try:
            conn = psycopg.connect(**connection.get_connection_params(), autocommit=True)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(db.NOTIFY_CHANNEL)))
            return conn
        except psycopg.Error as exc:
            if self._outage_since is None:  # in an outage, the outage's line says it all
                log.warning(
                    "worker %s: LISTEN unavailable (%s); polling every %ss", self.worker_id, exc, self.poll_seconds
                )
            return None

    def _wait(self) -> None:
        """Sleep until a NOTIFY, a stop signal or the poll interval, whichever comes first."""
        deadline = time.monotonic() + self.poll_seconds * random.uniform(0.9, 1.1)
        while not self.stopping and (remaining := deadline - time.monotonic()) > 0:
            step = min(0.25, remaining)
            if self._listener is None:
                time.sleep(step)
                continue
            try:
                if list(self._listener.notifies(timeout=step, stop_after=1)):
                    list(self._listener.notifies(timeout=0))  # one wake-up for a burst
                    return
            except Exception as exc:
                # The listening connection broke (the server restarted, most likely): close it
                # and let the main loop find out; once a claim goes through again, the worker
                # LISTENs again (_outage_over).
                self._close_listener()
                self._outage_begin(exc)
                return

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception:  # noqa: S110 - a broken connection may fail to close; it is gone anyway
                pass
            finally:
                self._listener = None

    # --- signals and deadlines -------------------------------------------------------------

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.signal(sig, self._on_stop_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore():
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def request_stop(self) -> None:
        """What the first SIGTERM does: stop claiming, give the current job its grace period."""
        self.stopping = True
        if not self._in_handler or threading.current_thread() is not threading.main_thread():
            return
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        if not remaining or remaining > self.shutdown_timeout:
            self._alarm_reason = "shutdown"
            signal.setitimer(signal.ITIMER_REAL, max(self.shutdown_timeout, 0.001))

    def _on_stop_signal(self, signum, frame):
        if self.stopping:
            raise WorkerExit
        log.info(
            "worker %s: %s, finishing the current job (at most %ss)",
            self.worker_id,
            signal.Signals(signum).name,
            self.shutdown_timeout,
        )
        self.request_stop()

    def _on_alarm(self, signum, frame):
        if self._alarm_reason == "shutdown":
            raise ShutdownTimeout
        raise JobTimeout(f"task timed out after {task_get(self._current.task).timeout}s")

    @contextmanager
    def _deadline(self, seconds: float):
        """SIGALRM interrupts the handler after ``seconds`` (or the shutdown grace, whichever
        request_stop sets); only the main thread receives signals, elsewhere no deadline."""
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            previous = signal.signal(signal.SIGALRM, self._on_alarm)
            self._alarm_reason = "timeout"
            signal.setitimer(signal.ITIMER_REAL, seconds)
        self._in_handler = True
        try:
            yield
        finally:
            self._in_handler = False
            if in_main:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)


class _Heartbeat(threading.Thread):
    """Extends the worker's leases every third of a lease, on its own database connection."""

    def __init__(self, worker: Worker):
        super().__init__(name=f"heartbeat-{worker.worker_id}", daemon=True)
        self.worker, self._stop_event = worker, threading.Event()

    def run(self):
        try:
            while not self._stop_event.wait(self.worker.lease_seconds / 3):
                try:
                    self._beat()
                except DatabaseError as exc:  # an outage: one line for it, from whoever sees it first
                    self.worker._outage_begin(exc)
                    connection.close()
                except Exception:
                    log.exception("worker %s: heartbeat failed", self.worker.worker_id)
                    connection.close()
        finally:
            connection.close()

    def _beat(self):
        """A heartbeat; a connection broken since the last one (the server restarted meanwhile)
        is replaced once at once, and only a failure on a fresh connection is an outage."""
        try:
            self.worker.heartbeat()
        except DatabaseError:
            connection.close()
            self.worker.heartbeat()

    def stop(self):
        self._stop_event.set()
        self.join(timeout=5)


def _set_configs(values: dict[str, str]) -> None:
    """Set several transaction-local settings in one round trip."""
    selects = ", ".join(["set_config(%s, %s, true)"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {selects}", [x for item in values.items() for x in item])  # noqa: S608


def _claimed(row) -> ClaimedJob:
    job_id, workspace_id, task, payload, attempt, max_attempts, priority, started = row
    return ClaimedJob(
        job_id,
        workspace_id,
        task,
        json.loads(payload) if isinstance(payload, str) else payload,
        attempt,
        max_attempts,
        priority,
        started,
    )


def _describe(exc: BaseException) -> str:
    """The error and the end of its traceback (the frames nearest the failure)."""
    text = "".join(traceback.format_exception(exc))
    head = f"{type(exc).__name__}: {exc}\n"
    return head + text[-(ERROR_LIMIT - len(head)) :]


def _failed(job: ClaimedJob, error: str) -> None:
    """The last attempt failed: audit it and tell whoever registered for it (the review app
    opens an item for a person), in the transaction that marks the job failed."""
    audit_event_record(workspace_id=job.workspace_id, type="job.failed", job_id=job.id, data={"task": job.task})
    hooks.job_failed_notify(
        workspace_id=job.workspace_id, job_id=job.id, task=job.task, attempts=job.attempt, error=error
    )
