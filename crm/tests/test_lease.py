"""The lease on a ledger row being sent: one sender at a time, recovery only after it runs out,
and outcomes fenced on the lease owner. Real PostgreSQL, the local HubSpot."""

import threading
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from crm.adapters.hubspot import HubSpotAdapter
from crm.models import CrmWriteLog
from crm.selectors import thread_writes_build
from crm.services import crm_write_claim, crm_write_execute, crm_write_plan, send_lease_seconds
from crm.tests.conftest import connect, policy_set, thread_with_values
from crm.tests.crm_servers import TOKEN
from jobs import db
from jobs.models import Job
from workspaces.rls import workspace_context

S = CrmWriteLog.Status


class Recording:
    """The real adapter, with the order of its calls kept (and a hook before each apply)."""

    def __init__(self, inner, before_apply=None):
        self.inner, self.calls, self.before_apply = inner, [], before_apply

    def find_write(self, **kwargs):
        self.calls.append("find_write")
        return self.inner.find_write(**kwargs)

    def apply(self, **kwargs):
        self.calls.append("apply")
        if self.before_apply is not None:
            self.before_apply()
        return self.inner.apply(**kwargs)


def _planned_deal_update(ws, hubspot):
    """A thread's deal update, planned (committed) and not sent."""
    policy_set(ws, crm="hubspot", crm_mode="sync")
    connect(ws)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(ws)
    with workspace_context(ws):
        writes, version = thread_writes_build(thread_id=thread.pk, crm="hubspot")
        [write] = [w for w in writes if w.action == "update_deal"]
        return crm_write_plan(workspace_id=ws.pk, crm="hubspot", write=write, version=version, dry_run=False)


def _row(ws, pk) -> CrmWriteLog:
    with workspace_context(ws):
        return CrmWriteLog.objects.get(pk=pk)


def _expire(ws, pk):
    with workspace_context(ws):
        CrmWriteLog.objects.filter(pk=pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_the_default_lease_outlasts_the_longest_send(settings):
    settings.CRM_SEND_LEASE_SECONDS = None
    settings.CRM_TIMEOUT_SECONDS, settings.CRM_MAX_RETRIES, settings.CRM_RETRY_MAX_SECONDS = 20.0, 4, 60.0
    # 4 requests, each 5 attempts x 3 phases x 20 s + 4 waits x 60 s, plus 60 s for the ledger.
    assert send_lease_seconds() == 4 * (5 * 3 * 20 + 4 * 60) + 60
    settings.CRM_MAX_RETRIES = 0
    assert send_lease_seconds() == 4 * (3 * 20) + 60
    settings.CRM_SEND_LEASE_SECONDS = 7.5
    assert send_lease_seconds() == 7.5


def test_a_live_lease_is_left_alone(workspace, hubspot):
    planned = _planned_deal_update(workspace, hubspot)
    held, claim = crm_write_claim(workspace_id=workspace.pk, write_id=planned.pk)  # another sender, in flight
    assert claim is not None and not claim.recovering
    assert (held.status, held.lease_owner, held.attempts) == (S.SENDING, claim.owner, 1)
    adapter = Recording(HubSpotAdapter(token=TOKEN))
    row = crm_write_execute(workspace_id=workspace.pk, write_id=planned.pk, adapter=adapter)
    assert adapter.calls == [] and hubspot.requests == []  # no look, no write
    assert (row.status, row.lease_owner, row.lease_expires_at, row.attempts, row.error) == (
        S.SENDING,
        claim.owner,
        held.lease_expires_at,
        1,
        "",
    )
    # Should the holder die, one job comes back for the row just after its lease runs out.
    with db.queue_role():
        [job] = Job.objects.filter(task="crm_write_send")
    assert job.payload == {"write_id": planned.pk} and job.run_after > held.lease_expires_at
    crm_write_execute(workspace_id=workspace.pk, write_id=planned.pk, adapter=adapter)
    with db.queue_role():
        assert Job.objects.filter(task="crm_write_send").count() == 1  # one per foreign lease


def test_an_expired_lease_is_recovered_looking_in_the_crm_first(workspace, hubspot):
    planned = _planned_deal_update(workspace, hubspot)
    adapter = HubSpotAdapter(token=TOKEN)
    # Sender A claims and its write reaches the CRM; A dies before recording it.
    _, a = crm_write_claim(workspace_id=workspace.pk, write_id=planned.pk)
    adapter.apply(
        action=planned.action, target=planned.target, payload=planned.payload_json, key=planned.idempotency_key
    )
    assert hubspot.writes[planned.idempotency_key] == 1
    before_expiry = Recording(adapter)
    crm_write_execute(workspace_id=workspace.pk, write_id=planned.pk, adapter=before_expiry)
    assert before_expiry.calls == []  # A's lease still runs
    _expire(workspace, planned.pk)
    b = Recording(adapter)
    row = crm_write_execute(workspace_id=workspace.pk, write_id=planned.pk, adapter=b)
    assert b.calls == ["find_write"]  # found by our key: not sent again
    assert (row.status, row.attempts, row.response_json["recovered"]) == (S.SENT, 2, True)
    assert row.lease_owner != a.owner and row.lease_expires_at is None
    assert hubspot.writes[planned.idempotency_key] == 1


def test_an_expired_lease_whose_write_never_arrived_is_sent(workspace, hubspot):
    planned = _planned_deal_update(workspace, hubspot)
    crm_write_claim(workspace_id=workspace.pk, write_id=planned.pk)  # A dies before its call
    _expire(workspace, planned.pk)
    b = Recording(HubSpotAdapter(token=TOKEN))
    row = crm_write_execute(workspace_id=workspace.pk, write_id=planned.pk, adapter=b)
    assert b.calls == ["find_write", "apply"] and row.status == S.SENT
    assert hubspot.writes[planned.idempotency_key] == 1


def test_a_sender_whose_lease_was_taken_over_cannot_record_its_outcome(workspace, hubspot):
    """A overruns its lease: B takes the row over and records it; A's late outcome (here an
    error) must not overwrite B's."""
    planned = _planned_deal_update(workspace, hubspot)
    taken_over = {}

    def overrun():  # while A is between its claim and its call, A's lease runs out and B steps in
        _expire(workspace, planned.pk)
        taken_over["row"] = crm_write_execute(
            workspace_id=workspace.pk, write_id=planned.pk, adapter=HubSpotAdapter(token=TOKEN)
        )
        hubspot.fail_next(
            "PATCH", r"/crm/v3/objects/deals/\d+", 400, {"status": "error", "message": "A's late write is refused"}
        )

    a = Recording(HubSpotAdapter(token=TOKEN), before_apply=overrun)
    late = crm_write_execute(workspace_id=workspace.pk, write_id=planned.pk, adapter=a)
    b_row = taken_over["row"]
    assert b_row.status == S.SENT and b_row.attempts == 2
    after = _row(workspace, planned.pk)
    assert (after.status, after.error, after.lease_owner, after.sent_at) == (
        S.SENT,
        "",
        b_row.lease_owner,
        b_row.sent_at,
    )
    assert late.status == S.SENT and late.lease_owner == b_row.lease_owner  # A reads B's outcome back


def test_of_racing_senders_exactly_one_claims_the_row(workspace, hubspot):
    planned = _planned_deal_update(workspace, hubspot)
    barrier, claims = threading.Barrier(6), []

    def race():
        try:
            barrier.wait()
            claims.append(crm_write_claim(workspace_id=workspace.pk, write_id=planned.pk)[1])
        finally:
            connection.close()

    racers = [threading.Thread(target=race) for _ in range(6)]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    won = [c for c in claims if c is not None]
    assert len(claims) == 6 and len(won) == 1
    row = _row(workspace, planned.pk)
    assert (row.status, row.lease_owner, row.attempts) == (S.SENDING, won[0].owner, 1)
