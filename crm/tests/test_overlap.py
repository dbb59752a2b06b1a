"""Overlapping senders: four real ``manage.py runworker`` processes against the test database
and a local HubSpot that takes 0.3 s over each write, and for every thread two
``crm_sync_thread`` jobs queued a fraction of a second apart (distinct dedupe keys, as two
review decisions on the same thread queue them). The two jobs of a thread run at the same
time on two workers; the lease on each ledger row lets exactly one of them send it.

    CRM_OVERLAP_THREADS=20 pytest -q -s crm/tests/test_overlap.py
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from crm.models import CrmWriteLog
from crm.tests.conftest import connect, policy_set, thread_with_values
from jobs import db
from jobs.models import Job
from jobs.services import enqueue
from workspaces.rls import workspace_context

pytestmark = [pytest.mark.slow]

THREADS = int(os.environ.get("CRM_OVERLAP_THREADS", "20"))
WORKERS = 4
WRITE_SECONDS = 0.3
GAP_SECONDS = 0.25  # between a thread's two jobs


def _until(predicate, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _worker(tmp_path, name, base_url):
    env = {
        **os.environ,
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "HUBSPOT_BASE_URL": base_url,  # LOG_LEVEL stays INFO: "worker ... started" is awaited
    }
    command = [
        sys.executable,
        "manage.py",
        "runworker",
        "--worker-id",
        name,
        "--tasks",
        "crm_sync_thread",
        "--prefetch",
        "1",  # one job at a time: a thread's second job goes to another worker
        "--poll-seconds",
        "0.2",
    ]
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def _sync_jobs():
    with db.queue_role():
        return list(Job.objects.filter(task="crm_sync_thread").values_list("status", "attempts", "locked_by"))


def test_overlapping_senders_write_each_key_once_and_one_note_per_thread(workspace, hubspot, tmp_path):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.write_delay = WRITE_SECONDS
    threads = []
    for n in range(THREADS):
        hubspot.add_deal(str(9500 + n))
        threads.append(thread_with_values(workspace, deal_id=str(9500 + n))[0])
    workers = [_worker(tmp_path, f"w{i}", hubspot.base_url) for i in range(WORKERS)]
    try:
        for proc, log in workers:
            assert _until(lambda p=proc, lg=log: "started" in lg.read_text() or p.poll() is not None, 60)
            assert proc.poll() is None, log.read_text()
        started = time.monotonic()
        for thread in threads:
            for copy in ("a", "b"):
                with workspace_context(workspace):
                    enqueue(
                        "crm_sync_thread",
                        workspace=workspace,
                        payload={"thread_id": thread.pk},
                        dedupe_key=f"crm-thread:{thread.pk}:{copy}",
                    )
                time.sleep(GAP_SECONDS)
        done = _until(lambda: {s for s, _, _ in _sync_jobs()} == {"succeeded"}, timeout=180)
        elapsed = time.monotonic() - started
    finally:
        for proc, _ in workers:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    logs = "\n".join(log.read_text()[-2000:] for _, log in workers)
    jobs = _sync_jobs()
    assert done, (Counter(s for s, _, _ in jobs), logs)
    with workspace_context(workspace):
        rows = list(CrmWriteLog.objects.all())
    with db.queue_role():
        left_alone = Job.objects.filter(task="crm_write_send").count()  # one per row found under a live lease
    per_key = Counter(hubspot.writes[r.idempotency_key] for r in rows)
    note_keys = {r.thread_id: r.idempotency_key for r in rows if r.action == "create_note"}
    notes_by_key = Counter(n["properties"]["threadline_idempotency_key"] for n in hubspot.notes.values())
    notes_per_thread = Counter(notes_by_key[note_keys[t.pk]] for t in threads)
    print(
        f"\noverlap test: {WORKERS} runworker processes, {THREADS} threads x 2 jobs {GAP_SECONDS}s apart, "
        f"HubSpot {WRITE_SECONDS}s per write, {elapsed:.1f}s; jobs per worker "
        f"{dict(sorted(Counter(w for _, _, w in jobs).items()))}\n"
        f"  keys {len(rows)}; writes per key at the server -> number of keys: {dict(per_key)}; "
        f"notes per thread -> number of threads: {dict(notes_per_thread)}; "
        f"rows left alone under another sender's live lease: {left_alone}; "
        f"final statuses: {dict(Counter(r.status for r in rows))}"
    )
    assert len(rows) == 3 * THREADS and {r.status for r in rows} == {"sent"}
    assert per_key == {1: len(rows)}  # every idempotency key reached the CRM exactly once
    assert notes_per_thread == {1: THREADS} and len(hubspot.notes) == THREADS
    assert left_alone > 0, "the two jobs of a thread never overlapped: the test proved nothing"
    assert {a for _, a, _ in jobs} == {1}  # leaving a row to its sender is not an error
