"""The write ledger against a local HubSpot: dry run, sync, idempotency, conflicts, retries, recovery."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.adapters import CrmTransientError
from crm.adapters.hubspot import HubSpotAdapter
from crm.models import CrmWriteLog
from crm.services import crm_sync_thread, crm_write_execute, crm_write_retry
from crm.tests.conftest import connect, policy_set, thread_with_values
from crm.tests.crm_servers import TOKEN
from extraction.models import FieldValue
from jobs.models import Job
from review.models import ReviewItem
from workspaces.rls import workspace_context

S = CrmWriteLog.Status


def _rows(ws, thread):
    with workspace_context(ws):
        return {r.action: r for r in CrmWriteLog.objects.filter(thread=thread)}


def test_dry_run_is_the_default_and_sends_nothing(workspace, hubspot):
    thread, deal, _ = thread_with_values(workspace)
    rows = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert {r.action: (r.crm, r.status) for r in rows} == {
        "upsert_contact": ("dry_run", "dry_run"),
        "update_deal": ("dry_run", "dry_run"),
        "create_note": ("dry_run", "dry_run"),
    }
    assert hubspot.requests == []
    policy_set(workspace, crm="hubspot")  # a CRM chosen, still in dry-run mode
    connect(workspace)
    rows = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert {r.status for r in rows} == {"dry_run"} and hubspot.requests == []
    update = _rows(workspace, thread)["update_deal"]
    assert update.payload_json == {
        "deal_id": "9001",
        "properties": {
            "amount": "40000.00",
            "close_date": "2026-12-31",
            "next_step": "Send the security questionnaire",
        },
    }


def test_only_accepted_or_verified_values_are_written(workspace):
    thread, _, values = thread_with_values(workspace, statuses=("proposed", "rejected", "accepted"))
    crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    update = _rows(workspace, thread)["update_deal"]
    assert update.payload_json["properties"] == {"next_step": "Send the security questionnaire"}
    note = _rows(workspace, thread)["create_note"]
    assert "budget" not in note.payload_json["body"] and "next_step" in note.payload_json["body"]


def test_sync_writes_each_action_once_with_the_v3_shapes(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001", amount="25000")
    thread, _, _ = thread_with_values(workspace)
    rows = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert [(r.action, r.status, r.attempts) for r in rows] == [
        ("upsert_contact", "sent", 1),
        ("update_deal", "sent", 1),
        ("create_note", "sent", 1),
    ]
    assert all(r.auth == f"Bearer {TOKEN}" for r in map(lambda q: type("R", (), q), hubspot.requests))
    assert hubspot.deals["9001"]["properties"]["amount"] == "40000.00"
    assert hubspot.deals["9001"]["properties"]["closedate"] == "2026-12-31"
    [note] = hubspot.notes.values()
    contact_id = hubspot.contacts[thread.primary_contact_email]["id"]
    assert {(a["to"]["id"], a["types"][0]["associationTypeId"]) for a in note["associations"]} == {
        ("9001", 214),
        (contact_id, 202),
    }
    assert "“Our budget is $40,000”" in note["properties"]["hs_note_body"]
    assert set(hubspot.writes.values()) == {1} and len(hubspot.writes) == 3
    # Running again (a retried job) sends nothing and returns the stored outcome.
    before = len(hubspot.requests)
    again = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert [r.pk for r in again] == [r.pk for r in rows] and {r.status for r in again} == {"sent"}
    assert len(hubspot.requests) == before


def test_changed_accepted_values_make_new_keys(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, values = thread_with_values(workspace)
    first = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    with workspace_context(workspace):
        FieldValue.objects.filter(pk=values[1].pk).update(status=FieldValue.Status.VERIFIED)
    second = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert {r.idempotency_key for r in first}.isdisjoint({r.idempotency_key for r in second})
    assert len(hubspot.notes) == 2


def test_same_key_with_another_payload_is_a_conflict_and_a_review_item(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    with workspace_context(workspace):  # plan only: the deal update waits, unsent
        from crm.selectors import thread_writes_build
        from crm.services import crm_write_plan

        writes, version = thread_writes_build(thread_id=thread.pk, crm="hubspot")
        planned = crm_write_plan(
            workspace_id=workspace.pk, crm="hubspot", write=writes[1], version=version, dry_run=False
        )
        thread.subject = "Renamed"  # the note's payload changes, not its values
        thread.save()
    rows = {r.action: r for r in crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)}
    assert rows["update_deal"].pk == planned.pk and rows["update_deal"].status == "sent"
    with workspace_context(workspace):
        from crm.services import PlannedWrite

        changed = PlannedWrite(
            writes[1].action,
            writes[1].target,
            {**writes[1].payload, "properties": {"amount": "1.00"}},
            thread_id=thread.pk,
        )
        row = crm_write_plan(workspace_id=workspace.pk, crm="hubspot", write=changed, version=version, dry_run=False)
        assert row.status == S.SENT  # what was sent stays sent
        item = ReviewItem.objects.get(reason=ReviewItem.Reason.CRM_CONFLICT)
        assert item.payload_json["write_id"] == row.pk and item.payload_json["new_hash"] != row.payload_hash
        crm_write_plan(workspace_id=workspace.pk, crm="hubspot", write=changed, version=version, dry_run=False)
        assert ReviewItem.objects.filter(reason=ReviewItem.Reason.CRM_CONFLICT).count() == 1  # not one per retry
    assert hubspot.deals["9001"]["properties"]["amount"] == "40000.00"  # never written twice
    assert hubspot.writes[row.idempotency_key] == 1


def test_an_unsent_row_planned_again_with_another_payload_becomes_a_conflict(workspace):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    thread, _, _ = thread_with_values(workspace)
    from crm.selectors import thread_writes_build
    from crm.services import PlannedWrite, crm_write_plan

    with workspace_context(workspace):
        writes, version = thread_writes_build(thread_id=thread.pk, crm="hubspot")
        row = crm_write_plan(workspace_id=workspace.pk, crm="hubspot", write=writes[0], version=version, dry_run=False)
        other = PlannedWrite(writes[0].action, writes[0].target, {"email": "x@y.example", "properties": {}})
        again = crm_write_plan(workspace_id=workspace.pk, crm="hubspot", write=other, version=version, dry_run=False)
        assert again.pk == row.pk and again.status == S.CONFLICT
        assert ReviewItem.objects.filter(reason="crm_conflict").count() == 1


def test_429_is_retried_after_retry_after(workspace, hubspot, fast_retries):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    hubspot.fail_next(
        "PATCH",
        r"/crm/v3/objects/deals/\d+",
        429,
        {"status": "error", "message": "You have reached your secondly limit.", "category": "RATE_LIMITS"},
        {"Retry-After": "1"},
    )
    started = time.monotonic()
    rows = {r.action: r for r in crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)}
    patches = [r["at"] for r in hubspot.requests if r["method"] == "PATCH" and "/deals/" in r["path"]]
    gap = patches[1] - patches[0]
    print(f"\n429 Retry-After: 1 -> retried after {gap:.3f}s (sync took {time.monotonic() - started:.3f}s)")
    assert len(patches) == 2 and 1.0 <= gap < 1.9
    assert rows["update_deal"].status == "sent" and rows["update_deal"].attempts == 1


def test_a_4xx_is_a_clear_error_on_the_row_not_a_retry_loop(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    hubspot.fail_next(
        "PATCH",
        r"/crm/v3/objects/deals/\d+",
        400,
        {"status": "error", "message": "Property values were not valid: amount", "category": "VALIDATION_ERROR"},
    )
    rows = {r.action: r for r in crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)}
    assert rows["update_deal"].status == "failed"
    assert rows["update_deal"].error == "HTTP 400: Property values were not valid: amount"
    assert sum(1 for r in hubspot.requests if r["method"] == "PATCH" and "/deals/" in r["path"]) == 1
    assert rows["create_note"].status == "sent"
    # A rerun of the sync leaves the failed row alone; the console's retry sends it again.
    crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert _rows(workspace, thread)["update_deal"].status == "failed"
    crm_write_retry(workspace_id=workspace.pk, write_id=rows["update_deal"].pk)
    from django.core.management import call_command

    call_command("runworker", batch=True, tasks="crm_write_send")
    row = _rows(workspace, thread)["update_deal"]
    assert (row.status, row.attempts, row.error) == ("sent", 2, "")


def test_5xx_on_a_create_is_not_retried_blindly_but_recovered(workspace, hubspot, fast_retries):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    hubspot.fail_next("POST", "/crm/v3/objects/notes", 502, {"status": "error", "message": "Bad gateway"})
    with pytest.raises(CrmTransientError):
        crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk, final=False)
    assert _rows(workspace, thread)["create_note"].status == "sending"
    rows = {r.action: r for r in crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)}
    assert rows["create_note"].status == "sent" and rows["create_note"].attempts == 2
    assert len(hubspot.notes) == 1


def test_a_row_left_sending_is_found_in_the_crm_not_written_again(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    with workspace_context(workspace):  # as if the process died after the calls, before the commits
        CrmWriteLog.objects.filter(thread=thread).update(status=S.SENDING, response_json=None)
    adapter = HubSpotAdapter(token=TOKEN)
    for row in _rows(workspace, thread).values():
        done = crm_write_execute(workspace_id=workspace.pk, write_id=row.pk, adapter=adapter)
        assert done.status == "sent" and done.response_json["recovered"] is True
    assert set(hubspot.writes.values()) == {1}


def test_deal_update_on_a_deal_of_another_crm_is_not_planned(workspace):
    policy_set(workspace, crm="salesforce", crm_mode="dry_run")
    thread, _, _ = thread_with_values(workspace, crm="hubspot")
    rows = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert [r.action for r in rows] == ["upsert_contact"]


def test_the_row_is_committed_as_sending_before_the_crm_sees_the_write(workspace, hubspot):
    """Seen from another connection (the server's thread) while the request is in flight."""
    from django.db import connection

    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    seen = []

    def look(request):
        if request["method"] in ("POST", "PATCH") and not request["path"].endswith("/search"):
            with workspace_context(workspace):
                seen.append(sorted(CrmWriteLog.objects.filter(thread=thread).values_list("action", "status")))
            connection.close()  # this thread's own connection

    hubspot.on_request = look
    crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert seen == [
        [("create_note", "planned"), ("update_deal", "planned"), ("upsert_contact", "sending")],
        [("create_note", "planned"), ("update_deal", "sending"), ("upsert_contact", "sent")],
        [("create_note", "sending"), ("update_deal", "sent"), ("upsert_contact", "sent")],
    ]


def _conflict(workspace):
    """An unsent row planned again with another payload, and the review item it opened."""
    from crm.selectors import thread_writes_build
    from crm.services import PlannedWrite, crm_write_plan

    policy_set(workspace, crm="hubspot", crm_mode="sync", undo_window_seconds=60)
    thread, _, _ = thread_with_values(workspace)
    with workspace_context(workspace):
        writes, version = thread_writes_build(thread_id=thread.pk, crm="hubspot")
        row = crm_write_plan(workspace_id=workspace.pk, crm="hubspot", write=writes[0], version=version, dry_run=False)
        newer = {"email": writes[0].payload["email"], "properties": {"job_title": "CFO"}}
        other = PlannedWrite(writes[0].action, writes[0].target, newer)
        crm_write_plan(workspace_id=workspace.pk, crm="hubspot", write=other, version=version, dry_run=False)
        return row, ReviewItem.objects.get(reason="crm_conflict"), newer


def test_approving_a_crm_conflict_sends_the_newer_payload_and_undo_puts_it_back(workspace, hubspot):
    from django.core.management import call_command

    from review.services import review_item_resolve, review_item_undo
    from workspaces.services import membership_add
    from workspaces.tests.factories import UserFactory

    connect(workspace)
    row, item, newer = _conflict(workspace)
    rita = UserFactory(username="rita")
    membership_add(workspace=workspace, user=rita, role="reviewer")
    with workspace_context(workspace):
        review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=item.version)
        row.refresh_from_db()
        assert (row.status, row.payload_json) == (S.PLANNED, newer)
        review_item_undo(item_id=item.pk, user=rita)
        row.refresh_from_db()
        assert row.status == S.CONFLICT  # back as it was, for the next decision
        item.refresh_from_db()
        review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=item.version)
        [job] = Job.objects.filter(task="crm_write_send")  # the pipeline queued the send, after the window
        assert job.run_after > timezone.now() + timedelta(seconds=50)
        Job.objects.filter(pk=job.pk).update(run_after=timezone.now())  # as if the window had passed
    call_command("runworker", batch=True, tasks="crm_write_send")
    with workspace_context(workspace):
        row.refresh_from_db()
    assert row.status == S.SENT and hubspot.contacts[newer["email"]]["properties"]["jobtitle"] == "CFO"


def test_rejecting_a_crm_conflict_keeps_the_stored_payload_and_sends_nothing(workspace, hubspot):
    from review.services import review_item_resolve
    from workspaces.services import membership_add
    from workspaces.tests.factories import UserFactory

    row, item, _ = _conflict(workspace)
    stored = row.payload_json
    rita = UserFactory(username="rita")
    membership_add(workspace=workspace, user=rita, role="reviewer")
    with workspace_context(workspace):
        review_item_resolve(item_id=item.pk, reviewer=rita, decision="reject", version=item.version)
        row.refresh_from_db()
    assert (row.status, row.payload_json) == (S.SKIPPED, stored)
    assert not hubspot.writes
