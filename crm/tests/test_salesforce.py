"""The Salesforce adapter against a local server with the REST API's shapes."""

from datetime import UTC, datetime

from crm.adapters.salesforce import SalesforceAdapter
from crm.models import CrmWriteLog
from crm.services import crm_sync_thread, crm_write_execute
from crm.tests.conftest import connect, policy_set, thread_with_values
from crm.tests.crm_servers import TOKEN
from workspaces.rls import workspace_context


def test_sync_upserts_task_by_external_id_and_patches_the_opportunity(workspace, salesforce):
    policy_set(workspace, crm="salesforce", crm_mode="sync")
    connect(workspace, "salesforce", instance_url=salesforce.base_url)
    salesforce.add_opportunity("006A000000000001")
    thread, _, _ = thread_with_values(workspace, crm="salesforce", deal_id="006A000000000001")
    rows = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert [(r.action, r.status) for r in rows] == [
        ("upsert_contact", "sent"),
        ("update_deal", "sent"),
        ("create_note", "sent"),
    ]
    opp = salesforce.opportunities["006A000000000001"]
    assert (opp["Amount"], opp["CloseDate"], opp["NextStep"]) == (
        "40000.00",
        "2026-12-31",
        "Send the security questionnaire",
    )
    [task] = salesforce.tasks.values()
    [contact] = salesforce.contacts.values()
    assert (task["WhatId"], task["WhoId"], task["Status"]) == ("006A000000000001", contact["Id"], "Completed")
    email = thread.primary_contact_email
    assert contact["Email"] == email and contact["LastName"] == email.partition("@")[0]
    paths = {r["path"] for r in salesforce.requests}
    assert f"/services/data/v62.0/sobjects/Task/Threadline_Key__c/{rows[2].idempotency_key}" in paths
    # A crash while sending the Task: the upsert by external id updates the same Task.
    with workspace_context(workspace):
        CrmWriteLog.objects.filter(pk=rows[2].pk).update(status="sending")
    adapter = SalesforceAdapter(token=TOKEN, instance_url=salesforce.base_url)
    again = crm_write_execute(workspace_id=workspace.pk, write_id=rows[2].pk, adapter=adapter)
    assert again.status == "sent" and again.response_json["created"] is False and len(salesforce.tasks) == 1
    # The deal and the contact are found by our key field (current value or its history) instead.
    with workspace_context(workspace):
        CrmWriteLog.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).update(status="sending")
    for row in rows[:2]:
        assert crm_write_execute(workspace_id=workspace.pk, write_id=row.pk, adapter=adapter).response_json == {
            "id": contact["Id"] if row.action == "upsert_contact" else "006A000000000001",
            "recovered": True,
        }


def test_a_salesforce_error_list_becomes_the_rows_error(workspace, salesforce):
    policy_set(workspace, crm="salesforce", crm_mode="sync")
    connect(workspace, "salesforce", instance_url=salesforce.base_url)
    salesforce.add_opportunity("006A000000000002")
    thread, _, _ = thread_with_values(workspace, crm="salesforce", deal_id="006A000000000002")
    salesforce.fail_next(
        "PATCH",
        r".*/Opportunity/\w+",
        400,
        [
            {
                "message": "Amount: value outside of valid range",
                "errorCode": "NUMBER_OUTSIDE_VALID_RANGE",
                "fields": ["Amount"],
            }
        ],
    )
    rows = {r.action: r for r in crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)}
    assert rows["update_deal"].status == "failed"
    assert rows["update_deal"].error == "HTTP 400: Amount: value outside of valid range"


def test_list_deals_follows_next_records_url_and_filters_by_last_modified(salesforce):
    salesforce.page_size = 2
    for n in range(5):
        salesforce.add_opportunity(f"006B00000000000{n}", Amount=1000 * n, CloseDate="2027-01-15")
    adapter = SalesforceAdapter(token=TOKEN, instance_url=salesforce.base_url)
    pages = list(adapter.list_deals())
    assert [len(p) for p in pages] == [2, 2, 1]
    first = pages[0][1]
    assert (first.amount, first.close_date.isoformat(), first.owner_email) == (
        1000,
        "2027-01-15",
        "owner@seller.example",
    )
    assert list(adapter.list_deals(since=datetime(2099, 1, 1, tzinfo=UTC))) == [[]]
    soql = salesforce.requests[-1]["query"]["q"][0]
    assert "WHERE LastModifiedDate >= 2099-01-01T00:00:00Z" in soql
