"""Killing the sync between the CRM call and the ledger commit, many times over.

Each round forks a real sender (a child of one warmed-up Django process, crash_forker.py)
running ``crm_sync_thread`` for one of several threads, against the test database and a
local fake HubSpot that counts writes per key,
with ``THREADLINE_CRM_CRASH`` set so that the process dies (``os._exit``) right after a
CRM call returned and before the ledger commit ("after_send"), or right after "sending"
was committed and before the call ("before_send"). Then one clean run per thread.
At most one write per key may reach the server, and every key must end "sent".

The second kills real ``runworker`` processes. The third kills senders on one busy contact:
50 threads share a contact and a deal, each sender killed right after the CRM applied a
write, 100 times, then one recovery run per thread.

    CRM_CRASH_ITERATIONS=60 pytest -q -s crm/tests/test_crash.py
    CRM_CRASH_BUSY_THREADS=50 CRM_CRASH_BUSY_KILLS=100 pytest -q -s crm/tests/test_crash.py -k busy
"""

import os
import random
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from crm.models import CrmWriteLog
from crm.services import crm_sync_thread
from crm.tests.conftest import connect, policy_set, thread_with_values
from workspaces.rls import workspace_context

pytestmark = [pytest.mark.slow]

ITERATIONS = int(os.environ.get("CRM_CRASH_ITERATIONS", "60"))
TIME_LIMIT = float(os.environ.get("CRM_CRASH_SECONDS", "240"))


BUSY_THREADS = int(os.environ.get("CRM_CRASH_BUSY_THREADS", "50"))
BUSY_KILLS = int(os.environ.get("CRM_CRASH_BUSY_KILLS", "100"))


class Forker:
    """``crm/tests/crash_forker.py``: one warmed-up Django process forking a real sender per sync."""

    def __init__(self, base_url):
        env = {
            **os.environ,
            "DATABASE_NAME": connection.settings_dict["NAME"],
            "HUBSPOT_BASE_URL": base_url,
            # A killed sender's lease runs out before the next child comes to its rows.
            "CRM_SEND_LEASE_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crm.tests.crash_forker"],
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def sync(self, ws, thread, crash: str) -> int:
        self.proc.stdin.write(f"{ws.pk} {thread.pk} {crash}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=20)


def test_killed_syncs_never_write_a_key_twice(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    threads = []
    for n in range(max(10, ITERATIONS // 5)):  # about five rounds per thread: most end in a kill
        hubspot.add_deal(str(9100 + n))
        thread, _, _ = thread_with_values(workspace, deal_id=str(9100 + n))
        threads.append(thread)
    rng = random.Random(7)
    outcomes, started, iterations = Counter(), time.monotonic(), 0
    forker = Forker(hubspot.base_url)
    try:
        while iterations < ITERATIONS and time.monotonic() - started < TIME_LIMIT:
            thread = threads[iterations % len(threads)]
            crash = "after_send" if rng.random() < 0.75 else "before_send"
            code = forker.sync(workspace, thread, crash)
            assert code in (0, 137), f"a sender failed (exit {code}); see the output above"
            outcomes[(crash, code)] += 1
            iterations += 1
    finally:
        forker.close()
    with workspace_context(workspace):
        before = Counter(CrmWriteLog.objects.values_list("status", flat=True))
    time.sleep(0.3)  # the last killed senders' leases run out
    for thread in threads:  # the retry: one clean run per thread, in this process
        crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    with workspace_context(workspace):
        rows = list(CrmWriteLog.objects.all())
    per_key = Counter(hubspot.writes[r.idempotency_key] for r in rows)
    recovered = sum(1 for r in rows if (r.response_json or {}).get("recovered"))
    print(
        f"\ncrash test: {iterations} sync processes for {len(threads)} threads in {time.monotonic() - started:.1f}s; "
        f"killed between the CRM call and the ledger commit: {outcomes[('after_send', 137)]}, "
        f"after 'sending' was committed, before the call: {outcomes[('before_send', 137)]}; "
        f"exits {dict(sorted(outcomes.items()))}\n"
        f"  ledger before the clean run: {dict(before)}\n"
        f"  keys {len(rows)}; writes per key at the server -> number of keys: {dict(per_key)}; "
        f"max {max(hubspot.writes.values())}; recovered from the CRM (found by key, not re-sent): {recovered}\n"
        f"  final statuses: {dict(Counter(r.status for r in rows))}; notes {len(hubspot.notes)}, "
        f"contacts {len(hubspot.contacts)}"
    )
    assert iterations >= min(ITERATIONS, 50)
    assert outcomes[("after_send", 137)] > 0 and outcomes[("before_send", 137)] > 0
    assert {r.status for r in rows} == {"sent"}
    assert len(rows) == 3 * len(threads)
    assert all(hubspot.writes[r.idempotency_key] == 1 for r in rows)
    assert len(hubspot.notes) == len(threads)


def _worker_process(base_url) -> int:
    env = {
        **os.environ,
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "HUBSPOT_BASE_URL": base_url,
        "THREADLINE_CRM_CRASH": "after_send",
        "CRM_SEND_LEASE_SECONDS": "1",  # like the job's lease: the next worker may recover the row
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "manage.py",
        "runworker",
        "--batch",
        "--max-jobs",
        "1",
        "--tasks",
        "crm_sync_thread,crm_write_send",
        "--lease-seconds",
        "1",
        "--prefetch",
        "1",
    ]
    done = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, timeout=60)
    assert done.returncode in (0, 137), done.stderr.decode()[-2000:]
    return done.returncode


def test_killed_workers_never_write_a_key_twice(workspace, hubspot):
    """The same through the queue: ``runworker`` processes die after the CRM call; the job's
    lease runs out, the next worker reclaims it and the ledger recovers before sending."""
    from jobs import db
    from jobs.models import Job
    from jobs.services import enqueue

    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    threads = []
    for n in range(3):
        hubspot.add_deal(str(9200 + n))
        thread, _, _ = thread_with_values(workspace, deal_id=str(9200 + n))
        with workspace_context(workspace):
            enqueue("crm_sync_thread", workspace=workspace, payload={"thread_id": thread.pk})
        threads.append(thread)
    exits, started = Counter(), time.monotonic()
    for _ in range(40):
        with db.queue_role():
            if not Job.objects.exclude(status="succeeded").exists():
                break
        exits[_worker_process(hubspot.base_url)] += 1
        time.sleep(1.1)  # let the dead worker's lease run out
    with db.queue_role():
        jobs = list(Job.objects.values_list("status", "attempts"))
    with workspace_context(workspace):
        rows = list(CrmWriteLog.objects.all())
    print(
        f"\nworker crash test: {sum(exits.values())} runworker processes in {time.monotonic() - started:.1f}s, "
        f"exits {dict(exits)}; jobs (status, attempts) {sorted(jobs)}\n"
        f"  writes per key -> keys: {dict(Counter(hubspot.writes[r.idempotency_key] for r in rows))}; "
        f"final statuses: {dict(Counter(r.status for r in rows))}"
    )
    assert exits[137] >= 9
    assert {status for status, _ in jobs} == {"succeeded"}
    assert len(rows) == 9 and {r.status for r in rows} == {"sent"}
    assert all(hubspot.writes[r.idempotency_key] == 1 for r in rows)


def test_killed_senders_on_one_busy_contact_recover_every_key(workspace, hubspot):
    """50 threads share one contact (and one deal); each sender is killed right after the CRM
    applied a write, 100 times. The first round leaves 50 contact writes unrecorded; by the
    time the second round recovers the first thread's, 49 later writes have gone to the same
    contact (the old 40-key window had lost it). Recovery must find every key by its history."""
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9400")
    with workspace_context(workspace):
        from deals.tests.factories import DealFactory

        deal = DealFactory(workspace=workspace, crm="hubspot", crm_deal_id="9400")
    threads = [thread_with_values(workspace, deal=deal)[0] for _ in range(BUSY_THREADS)]
    assert len({t.primary_contact_email for t in threads}) == 1
    forker, exits, started = Forker(hubspot.base_url), Counter(), time.monotonic()
    try:
        n = 0
        while exits[137] < BUSY_KILLS and n < 4 * BUSY_KILLS:
            code = forker.sync(workspace, threads[n % len(threads)], "after_send")
            assert code in (0, 137), f"a sender failed (exit {code}); see the output above"
            exits[code] += 1
            n += 1
    finally:
        forker.close()
    killed_in = time.monotonic() - started
    with workspace_context(workspace):
        before = Counter(CrmWriteLog.objects.values_list("status", flat=True))
    time.sleep(0.3)  # the last killed senders' leases run out
    for thread in threads:  # recovery: one clean run per thread, in this process
        crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    with workspace_context(workspace):
        rows = list(CrmWriteLog.objects.all())
    per_key = Counter(hubspot.writes[r.idempotency_key] for r in rows)
    recovered = Counter(r.action for r in rows if (r.response_json or {}).get("recovered"))
    contact = hubspot.contacts[threads[0].primary_contact_email]
    key_versions = {
        "contact": len(hubspot.history[contact["id"]]["threadline_idempotency_key"]),
        "deal": len(hubspot.history["9400"]["threadline_idempotency_key"]),
    }
    print(
        f"\nbusy-contact crash test: {BUSY_THREADS} threads, one contact, one deal; "
        f"{exits[137]} senders killed right after a CRM write, {exits[0]} finished, in {killed_in:.1f}s\n"
        f"  ledger before recovery: {dict(before)}\n"
        f"  keys {len(rows)}; writes per key at the server -> number of keys: {dict(per_key)}; "
        f"found in the CRM by key on recovery (not re-sent): {dict(recovered)}\n"
        f"  versions of threadline_idempotency_key: {key_versions}; final statuses: "
        f"{dict(Counter(r.status for r in rows))}; notes {len(hubspot.notes)}"
    )
    assert exits[137] == BUSY_KILLS
    assert len(rows) == 3 * BUSY_THREADS and {r.status for r in rows} == {"sent"}
    assert per_key == {1: len(rows)}  # every key reached the CRM exactly once
    assert sum(recovered.values()) == BUSY_KILLS
    assert len(hubspot.notes) == BUSY_THREADS
