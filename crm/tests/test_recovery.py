"""Recovery finds a crashed write by its key however busy the record is: our key property on a
deal or contact holds the latest write's key, and its history (HubSpot propertiesWithHistory,
Salesforce field history) holds every earlier one. No window of recent keys."""

from crm.adapters.hubspot import HubSpotAdapter
from crm.adapters.salesforce import SalesforceAdapter
from crm.models import CrmWriteLog
from crm.services import crm_sync_thread, crm_write_execute
from crm.tests.conftest import connect, policy_set, thread_with_values
from crm.tests.crm_servers import TOKEN
from workspaces.rls import workspace_context

S = CrmWriteLog.Status
LATER_WRITES = 60  # well past the 40 recent keys the record used to keep


def _crashed_after_send(ws, thread):
    """The thread's rows as a sender that died after each CRM call leaves them."""
    with workspace_context(ws):
        CrmWriteLog.objects.filter(thread=thread).update(status=S.SENDING, response_json=None, lease_expires_at=None)
        return {r.action: r for r in CrmWriteLog.objects.filter(thread=thread)}


def _busy(adapter, row, n):
    """``n`` later writes of other threads to the same record, each with its own key."""
    for i in range(n):
        adapter.apply(action=row.action, target=row.target, payload=row.payload_json, key=f"later-{row.action}-{i}")


def test_hubspot_finds_a_write_under_sixty_later_ones(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    rows = _crashed_after_send(workspace, thread)
    adapter = HubSpotAdapter(token=TOKEN)
    for action in ("upsert_contact", "update_deal"):
        _busy(adapter, rows[action], LATER_WRITES)
    seen = len(hubspot.requests)
    for action in ("upsert_contact", "update_deal"):
        row = crm_write_execute(workspace_id=workspace.pk, write_id=rows[action].pk, adapter=adapter)
        assert row.status == S.SENT and row.response_json["recovered"] is True, action
        assert hubspot.writes[row.idempotency_key] == 1
    # The wire: one GET per record with the key property's history; nothing written.
    looks = hubspot.requests[seen:]
    assert [(r["method"], r["query"].get("propertiesWithHistory")) for r in looks] == [
        ("GET", ["threadline_idempotency_key"]),
        ("GET", ["threadline_idempotency_key"]),
    ]
    assert looks[0]["query"]["idProperty"] == ["email"]
    contact = hubspot.contacts[thread.primary_contact_email]
    assert contact["properties"]["threadline_idempotency_key"] == f"later-upsert_contact-{LATER_WRITES - 1}"
    assert len(hubspot.history[contact["id"]]["threadline_idempotency_key"]) == LATER_WRITES + 1


def test_hubspot_writes_our_key_into_one_property_with_each_update(workspace, hubspot):
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    rows = {r.action: r for r in crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)}
    writes = [r for r in hubspot.requests if r["method"] in ("POST", "PATCH") and not r["path"].endswith("/search")]
    keys = [r["body"]["properties"]["threadline_idempotency_key"] for r in writes]
    assert keys == [rows["upsert_contact"].idempotency_key, rows["update_deal"].idempotency_key] + [
        rows["create_note"].idempotency_key
    ]
    assert not any("threadline_write_keys" in r["body"]["properties"] for r in writes)


def test_hubspot_a_contact_created_meanwhile_is_updated_not_failed(workspace, hubspot):
    """Two threads upsert the same new contact: the second POST gets HubSpot's 409, and the
    adapter updates the contact the other thread created."""
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    hubspot.add_deal("9001")
    thread, _, _ = thread_with_values(workspace)
    email = thread.primary_contact_email

    def other_thread_first(request):
        if (
            request["method"] == "POST"
            and request["path"] == "/crm/v3/objects/contacts"
            and email not in hubspot.contacts
        ):
            with hubspot.lock:
                hubspot.contacts[email] = {"id": "777", "properties": {"email": email}, "archived": False}

    hubspot.on_request = other_thread_first
    rows = {r.action: r for r in crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)}
    assert rows["upsert_contact"].status == S.SENT
    assert rows["upsert_contact"].response_json == {"id": "777", "created": False}
    assert hubspot.contacts[email]["properties"]["threadline_idempotency_key"] == rows["upsert_contact"].idempotency_key
    assert hubspot.writes[rows["upsert_contact"].idempotency_key] == 1


def test_salesforce_finds_a_write_in_field_history_across_pages(workspace, salesforce):
    policy_set(workspace, crm="salesforce", crm_mode="sync")
    connect(workspace, "salesforce", instance_url=salesforce.base_url)
    salesforce.add_opportunity("006A000000000009")
    thread, _, _ = thread_with_values(workspace, crm="salesforce", deal_id="006A000000000009")
    crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    rows = _crashed_after_send(workspace, thread)
    adapter = SalesforceAdapter(token=TOKEN, instance_url=salesforce.base_url)
    for action in ("upsert_contact", "update_deal"):
        _busy(adapter, rows[action], LATER_WRITES)
    salesforce.page_size = 25  # the history of each record comes in three pages
    seen = len(salesforce.requests)
    for action in ("upsert_contact", "update_deal"):
        row = crm_write_execute(workspace_id=workspace.pk, write_id=rows[action].pk, adapter=adapter)
        assert row.status == S.SENT and row.response_json["recovered"] is True, action
        assert salesforce.writes[row.idempotency_key] == 1
    soql = [r["query"]["q"][0] for r in salesforce.requests[seen:] if r["query"].get("q")]
    [contact] = salesforce.contacts.values()
    assert any(
        f"FROM ContactHistory WHERE ContactId = '{contact['Id']}' AND Field = 'Threadline_Key__c'" in q for q in soql
    )
    assert any(
        "FROM OpportunityFieldHistory WHERE OpportunityId = '006A000000000009' AND Field = 'Threadline_Key__c'" in q
        for q in soql
    )
    assert sum(1 for r in salesforce.requests[seen:] if "/query/" in r["path"]) == 4  # two more pages each
    # The contact was created with our key: no history row of its own, only the next change's OldValue.
    first = [h for h in salesforce.history if h.get("ContactId") == contact["Id"]][:2]
    assert [(h["Field"], h["OldValue"]) for h in first] == [
        ("created", None),
        ("Threadline_Key__c", rows["upsert_contact"].idempotency_key),
    ]


def test_a_write_that_never_arrived_is_not_found(workspace, hubspot, salesforce):
    for crm, server, deal_id in (("hubspot", hubspot, "9001"), ("salesforce", salesforce, "006A000000000010")):
        policy_set(workspace, crm=crm, crm_mode="sync")
        connect(workspace, crm, instance_url=salesforce.base_url if crm == "salesforce" else "")
        if crm == "hubspot":
            server.add_deal(deal_id)
        else:
            server.add_opportunity(deal_id)
        thread, _, _ = thread_with_values(workspace, crm=crm, deal_id=deal_id)
        rows = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
        adapter = (
            HubSpotAdapter(token=TOKEN)
            if crm == "hubspot"
            else SalesforceAdapter(token=TOKEN, instance_url=salesforce.base_url)
        )
        for row in rows[:2]:
            found = adapter.find_write(action=row.action, target=row.target, payload=row.payload_json, key="never")
            assert found is None, (crm, row.action)
