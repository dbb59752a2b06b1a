"""The deal mirror: incremental sync from HubSpot, the periodic task, the CSV import, credentials."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from crm.credentials import secret_decrypt
from crm.mirror import CsvImportError, deals_import_csv
from crm.models import CrmConnection
from crm.tests.conftest import connect, policy_set
from deals.models import Deal
from jobs import db
from jobs.models import Job
from workspaces.rls import workspace_context


def _deals(ws):
    with workspace_context(ws):
        return {d.crm_deal_id: d for d in Deal.objects.all()}


def test_sync_deals_pages_then_fetches_only_what_changed(workspace, hubspot, monkeypatch):
    monkeypatch.setattr("crm.adapters.hubspot.PAGE_SIZE", 2)
    policy_set(workspace, crm="hubspot")
    connect(workspace)
    for n in range(5):
        old = (datetime.now(UTC) - timedelta(days=2, minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        hubspot.add_deal(
            str(7000 + n),
            amount=str(1000 * n),
            closedate="2027-03-01T00:00:00.000Z",
            hubspot_owner_id="12345",
            hs_lastmodifieddate=old,
        )
    out = io.StringIO()
    call_command("sync_deals", workspace=workspace.slug, stdout=out)
    assert out.getvalue().strip() == "hubspot: 5 deals in 3 pages"
    deal = _deals(workspace)["7003"]
    assert (deal.title, deal.amount, deal.close_date.isoformat(), deal.owner_user_id) == (
        "Deal 7003",
        3000,
        "2027-03-01",
        "12345",
    )
    hubspot.deals["7001"]["properties"].update(
        dealstage="closedwon", hs_is_closed="true", hs_lastmodifieddate=datetime.now(UTC).isoformat()
    )
    out = io.StringIO()
    before = len(hubspot.requests)
    call_command("sync_deals", workspace=workspace.slug, stdout=out)
    # Only what changed since the newest mirrored deal (GTE: that boundary deal comes again).
    assert out.getvalue().strip() == "hubspot: 2 deals in 1 pages"
    paths = [r["path"] for r in hubspot.requests[before:]]
    assert "/crm/v3/objects/deals/search" in paths and "/crm/v3/objects/deals" not in paths
    assert paths.count("/crm/v3/owners/12345") == 1  # the owner's email, looked up once per sync
    assert (_deals(workspace)["7001"].stage, _deals(workspace)["7001"].is_closed) == ("closedwon", True)


def test_sync_deals_without_a_crm_or_credentials_is_a_clear_error(workspace):
    with pytest.raises(CommandError, match="names no CRM"):
        call_command("sync_deals", workspace=workspace.slug)
    policy_set(workspace, crm="hubspot")
    with pytest.raises(CommandError, match="no hubspot credentials"):
        call_command("sync_deals", workspace=workspace.slug)


def test_the_periodic_task_syncs_and_queues_its_next_run(workspace, hubspot):
    policy_set(workspace, crm="hubspot")
    connect(workspace)
    hubspot.add_deal("7100")
    from django.utils import timezone

    from crm.mirror import deals_sync_schedule

    deals_sync_schedule(workspace_id=workspace.pk, run_after=timezone.now())
    call_command("runworker", batch=True, tasks="crm_sync_deals", max_jobs=1)
    assert "7100" in _deals(workspace)
    with db.queue_role():
        jobs = list(Job.objects.filter(task="crm_sync_deals").order_by("id"))
    # One job per workspace: the run that finished is queued again for the next period.
    assert [(j.status, j.attempts) for j in jobs] == [("queued", 0)]
    assert jobs[0].run_after > timezone.now() + timedelta(seconds=800)


def test_csv_import_all_or_nothing(workspace):
    good = (
        "crm_deal_id,title,stage,primary_domain,owner_email,amount,close_date,contact_emails\n"
        'D-1,Acme rollout,negotiation,Acme.example,kim@seller.example,"12,500",2027-02-01,a@acme.example; b@acme.example\n'
        "D-2,Globex pilot,,,,,,\n"
    )
    assert deals_import_csv(workspace_id=workspace.pk, stream=io.StringIO(good)) == {"deals": 2, "changed": 2}
    deal = _deals(workspace)["D-1"]
    assert (deal.crm, deal.amount, deal.primary_domain, deal.contact_emails) == (
        "csv",
        12500,
        "acme.example",
        ["a@acme.example", "b@acme.example"],
    )
    bad = "crm_deal_id,title,amount\nD-3,Initech,12\nD-4,Umbrella,lots\n"
    with pytest.raises(CsvImportError, match="line 3"):
        deals_import_csv(workspace_id=workspace.pk, stream=io.StringIO(bad))
    assert "D-3" not in _deals(workspace)


def test_import_deals_csv_command(workspace, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("crm_deal_id,title\nD-9,Hooli\n")
    out = io.StringIO()
    call_command("import_deals_csv", str(path), workspace=workspace.slug, stdout=out)
    assert out.getvalue().strip() == "imported 1 deals" and "D-9" in _deals(workspace)


def test_credentials_are_encrypted_at_rest_and_never_in_repr(workspace, settings, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("pat-secret-123\n"))
    call_command("crm_connect", workspace=workspace.slug, crm="hubspot", stdout=io.StringIO())
    with workspace_context(workspace):
        conn = CrmConnection.objects.get()
    assert "pat-secret-123" not in conn.secret_encrypted and "pat-secret-123" not in repr(conn) + str(conn)
    assert secret_decrypt(conn.secret_encrypted) == "pat-secret-123"
    settings.CRM_CREDENTIALS_KEY = "A" * 43 + "="
    from crm.credentials import CredentialsUnreadable

    with pytest.raises(CredentialsUnreadable):
        secret_decrypt(conn.secret_encrypted)


def test_synced_hubspot_deals_carry_their_company_domain_and_contacts_full_and_incremental(workspace, settings):
    """A HubSpot deal's domain and people are its associations; linking needs both."""
    from tests.journeys.hubspot import PortalHubSpot

    with PortalHubSpot() as portal:
        settings.HUBSPOT_BASE_URL = portal.base_url
        policy_set(workspace, crm="hubspot")
        connect(workspace)
        portal.add_deal("8100", dealname="Kestrel Pay - inbox", hs_lastmodifieddate="2026-11-01T00:00:00Z")
        company = portal.add_company("WWW.KestrelPay.com", "Kestrel Pay")
        portal.associate("8100", companies=[company], contacts=[portal.add_contact("Ana.Ruiz@kestrelpay.com")])
        call_command("sync_deals", workspace=workspace.slug, stdout=io.StringIO())
        deal = _deals(workspace)["8100"]
        assert (deal.primary_domain, deal.contact_emails) == ("kestrelpay.com", ["ana.ruiz@kestrelpay.com"])

        portal.associate("8100", contacts=[portal.add_contact("li.wei@kestrelpay.com")])
        portal.deals["8100"]["properties"]["hs_lastmodifieddate"] = datetime.now(UTC).isoformat()
        call_command("sync_deals", workspace=workspace.slug, stdout=io.StringIO())  # the search path
        deal = _deals(workspace)["8100"]
        assert deal.contact_emails == ["ana.ruiz@kestrelpay.com", "li.wei@kestrelpay.com"]
        with db.queue_role():
            relinks = Job.objects.filter(task="relink_deals").count()
        assert relinks >= 1  # a changed deal links its threads again


def test_sync_keeps_each_stage_label_from_the_portals_pipelines(workspace, hubspot):
    policy_set(workspace, crm="hubspot")
    connect(workspace)
    hubspot.add_deal("7200", dealstage="99001")  # a custom pipeline: its id is a number
    hubspot.add_deal("7201", dealstage="closedwon")
    call_command("sync_deals", workspace=workspace.slug, stdout=io.StringIO())
    deals = _deals(workspace)
    assert (deals["7200"].stage, deals["7200"].stage_label) == ("99001", "Renewal negotiation")
    assert deals["7201"].stage_label == "Closed Won"
    paths = [r["path"] for r in hubspot.requests]
    assert paths.count("/crm/v3/pipelines/deals") == 1  # once per sync, not per deal


def test_sync_without_the_pipelines_scope_keeps_stage_ids(workspace, hubspot, caplog):
    policy_set(workspace, crm="hubspot")
    connect(workspace)
    hubspot.pipelines = None
    hubspot.add_deal("7300", dealstage="qualifiedtobuy")
    call_command("sync_deals", workspace=workspace.slug, full=True, stdout=io.StringIO())
    deal = _deals(workspace)["7300"]
    assert (deal.stage, deal.stage_label) == ("qualifiedtobuy", "")
    assert "pipelines unreadable" in caplog.text
