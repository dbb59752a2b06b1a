"""From a reviewer's approval to the CRM, through the queue and a real worker loop."""

from django.core.management import call_command

from crm.models import CrmWriteLog
from crm.tests.conftest import connect, policy_set, thread_with_values
from extraction.models import FieldValue
from jobs import db
from jobs.models import Job
from review.services import review_item_resolve
from review.tests.factories import ReviewItemFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add
from workspaces.tests.factories import UserFactory


def _approve(ws, value):
    rita = UserFactory(username="rita")
    membership_add(workspace=ws, user=rita, role="reviewer")
    with workspace_context(ws):
        item = ReviewItemFactory(
            workspace=ws,
            thread=value.thread,
            field_value=value,
            payload_json={"field": value.field_key, "proposed_value": value.field_value_json},
        )
        review_item_resolve(item_id=item.pk, reviewer=rita, decision="approve", version=0)


def test_an_approval_is_written_once_after_the_undo_window(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync", undo_window_seconds=0)
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, values = thread_with_values(workspace, statuses=("proposed", "accepted", "accepted"))
    _approve(workspace, values[0])  # budget: proposed -> verified by a person
    with db.queue_role():
        # One CRM write queued (the deal facts update that deal support queues beside it is not a CRM write).
        queued = list(Job.objects.filter(task="crm_sync_thread").values_list("task", "payload"))
        assert queued == [("crm_sync_thread", {"thread_id": thread.pk})]
    call_command("runworker", batch=True, tasks="crm_sync_thread")
    with workspace_context(workspace):
        rows = list(CrmWriteLog.objects.filter(thread=thread).order_by("pk"))
        assert FieldValue.objects.get(pk=values[0].pk).status == "verified"
    assert [(r.action, r.status) for r in rows] == [
        ("upsert_contact", "sent"),
        ("update_deal", "sent"),
        ("create_note", "sent"),
    ]
    assert hubspot.deals["9001"]["properties"]["amount"] == "40000.00"
    with db.queue_role():
        assert Job.objects.get(task="crm_sync_thread").status == "succeeded"
    assert set(hubspot.writes.values()) == {1}


def test_in_the_default_dry_run_the_worker_records_and_sends_nothing(workspace, hubspot):
    policy_set(workspace, undo_window_seconds=0)
    thread, _, values = thread_with_values(workspace, statuses=("proposed", "accepted", "accepted"))
    _approve(workspace, values[0])
    call_command("runworker", batch=True, tasks="crm_sync_thread")
    with workspace_context(workspace):
        assert set(CrmWriteLog.objects.values_list("crm", "status")) == {("dry_run", "dry_run")}
    assert hubspot.requests == []
