"""The database, not the app, holds the domain's rules."""

import pytest
from django.db import IntegrityError, connection, transaction

from crm.tests.factories import CrmWriteLogFactory
from deals.tests.factories import DealFactory, ThreadLinkFactory
from jobs.models import Job
from jobs.tests.factories import JobFactory
from review.tests.factories import ReviewItemFactory
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import audit_event_record
from workspaces.tests.factories import MembershipFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws():
    workspace = WorkspaceFactory()
    with workspace_context(workspace):
        yield workspace


def _refused(factory, **kwargs):
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(**kwargs)


def test_one_message_per_workspace_and_message_id(ws):
    MessageFactory(workspace=ws, message_id="a@x")
    _refused(MessageFactory, workspace=ws, message_id="a@x")
    other = WorkspaceFactory()
    with workspace_context(other):
        MessageFactory(workspace=other, message_id="a@x")  # another workspace may hold it


def test_one_deal_link_per_thread(ws):
    link = ThreadLinkFactory(workspace=ws)
    _refused(ThreadLinkFactory, workspace=ws, thread=link.thread)


def test_one_ledger_row_per_workspace_and_idempotency_key(ws):
    CrmWriteLogFactory(workspace=ws, idempotency_key="k1")
    _refused(CrmWriteLogFactory, workspace=ws, idempotency_key="k1")


def test_one_deal_per_workspace_crm_and_crm_id(ws):
    DealFactory(workspace=ws, crm="hubspot", crm_deal_id="42")
    DealFactory(workspace=ws, crm="salesforce", crm_deal_id="42")
    _refused(DealFactory, workspace=ws, crm="hubspot", crm_deal_id="42")


def test_one_membership_per_user_and_workspace(ws):
    membership = MembershipFactory(workspace=ws)
    _refused(MembershipFactory, workspace=ws, user=membership.user)


@pytest.mark.parametrize(
    ("factory", "field", "value"),
    [
        (ThreadFactory, "status", "deleted"),
        (ReviewItemFactory, "status", "maybe"),
        (ReviewItemFactory, "reason", "vibes"),
        (JobFactory, "status", "stuck"),
        (CrmWriteLogFactory, "status", "probably_sent"),
        (MembershipFactory, "role", "owner"),
    ],
)
def test_every_status_is_checked_by_the_database(ws, factory, field, value):
    _refused(factory, workspace=ws, **{field: value})


def test_confidence_outside_0_1_is_refused(ws):
    _refused(ThreadLinkFactory, workspace=ws, link_confidence=1.2)


def test_dedupe_key_unique_among_queued_and_running_jobs_only(ws):
    JobFactory(workspace=ws, dedupe_key="extract:1")
    _refused(JobFactory, workspace=ws, dedupe_key="extract:1")
    Job.objects.filter(dedupe_key="extract:1").update(status=Job.Status.SUCCEEDED)
    JobFactory(workspace=ws, dedupe_key="extract:1")


def test_audit_log_is_append_only_for_the_app_role(ws):
    event = audit_event_record(workspace_id=ws.pk, type="test.appended")
    for sql in (
        "UPDATE workspaces_auditevent SET type = 'x' WHERE id = %s",
        "DELETE FROM workspaces_auditevent WHERE id = %s",
    ):
        with pytest.raises(Exception, match="permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).type == "test.appended"
