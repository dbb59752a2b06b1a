"""The write log pages: per thread and per deal, the diff, the status filter, retry."""

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import CrmConnection, CrmWriteLog
from crm.services import crm_sync_thread
from crm.tests.conftest import policy_set, thread_with_values
from crm.tests.factories import CrmConnectionFactory
from jobs import db
from jobs.models import Job
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory


@pytest.fixture
def ws(transactional_db):
    return workspace_create(slug="acme", name="Acme Sales")


def member(ws, username, role):
    user = UserFactory(username=username)
    membership_add(workspace=ws, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_thread_page_shows_the_dry_run_diff_and_filters_by_status(ws, django_assert_max_num_queries):
    thread, deal, _ = thread_with_values(ws)
    crm_sync_thread(workspace_id=ws.pk, thread_id=thread.pk)
    client = member(ws, "vera", "viewer")
    url = reverse("crm:thread", kwargs={"workspace_slug": "acme", "pk": thread.pk})
    page = client.get(url).content.decode()
    assert "Dry run: nothing is sent" in page
    assert page.count('data-status="dry_run"') == 3
    # amount: 25,000 in the CRM now, 40,000 would be written (numbers as the reader reads them)
    assert "<td>25,000</td>" in page and ">40,000</td>" in page and "not mirrored" in page
    assert "Retry" not in page
    assert client.get(url, {"status": "failed"}).content.decode().count("data-status=") == 0
    with django_assert_max_num_queries(
        17
    ):  # session, user, membership, thread, rows, policy, pending syncs: none per row
        assert client.get(url).status_code == 200
    deal_page = client.get(reverse("crm:deal", kwargs={"workspace_slug": "acme", "pk": deal.pk})).content.decode()
    assert deal_page.count('data-status="dry_run"') == 2  # the deal update and the note, not the contact


def test_retry_is_for_deciders_and_queues_the_write(ws):
    thread, _, _ = thread_with_values(ws)
    policy_set(ws, crm="hubspot", crm_mode="sync")
    crm_sync_thread(workspace_id=ws.pk, thread_id=thread.pk)  # no credentials: every write fails
    with workspace_context(ws):
        row = CrmWriteLog.objects.filter(thread=thread, status="failed").first()
        assert row is not None and "no hubspot credentials" in row.error
    url = reverse("crm:retry", kwargs={"workspace_slug": "acme", "pk": row.pk})
    assert member(ws, "vera", "viewer").post(url).status_code == 403
    reviewer = member(ws, "rita", "reviewer")
    thread_url = reverse("crm:thread", kwargs={"workspace_slug": "acme", "pk": thread.pk})
    assert "Retry" in reviewer.get(thread_url).content.decode()
    response = reviewer.post(url, {"next": thread_url + "?status=failed"})
    assert response.status_code == 302 and response["Location"] == thread_url + "?status=failed"
    with workspace_context(ws):
        assert CrmWriteLog.objects.get(pk=row.pk).status == "sending"
    with db.queue_role():
        assert Job.objects.filter(task="crm_write_send", payload__write_id=row.pk).exists()
    assert reviewer.post(url).status_code == 302  # not failed any more: a message, no second job
    with db.queue_role():
        assert Job.objects.filter(task="crm_write_send").count() == 1


def test_admin_never_shows_the_secret(ws):
    admin_user = UserFactory(username="boss")  # a workspace admin: neither staff nor a superuser
    membership_add(workspace=ws, user=admin_user, role="admin")
    client = Client()
    client.force_login(admin_user)
    with workspace_context(ws):
        conn = CrmConnectionFactory(workspace=ws)
    page = client.get(reverse("admin:crm_crmconnection_change", args=[conn.pk])).content.decode()
    assert "pat-test-token" not in page and conn.secret_encrypted not in page and "set" in page
    client.post(
        reverse("admin:crm_crmconnection_change", args=[conn.pk]),
        {"crm": "hubspot", "instance_url": "", "new_secret": "pat-new"},
    )
    from crm.credentials import secret_decrypt

    with workspace_context(ws):
        assert secret_decrypt(CrmConnection.objects.get(pk=conn.pk).secret_encrypted) == "pat-new"
        event = AuditEvent.objects.get(type="crm.credentials_set")  # the admin goes through the service
        assert (event.actor, event.data_json["token_changed"]) == (admin_user, True)
        assert "pat-new" not in str(event.data_json)
    client.post(
        reverse("admin:crm_crmconnection_change", args=[conn.pk]),
        {"crm": "hubspot", "instance_url": "", "new_secret": ""},
    )
    with workspace_context(ws):
        assert secret_decrypt(CrmConnection.objects.get(pk=conn.pk).secret_encrypted) == "pat-new"  # blank keeps it
        assert AuditEvent.objects.filter(type="crm.connection_updated", actor=admin_user).count() == 1
