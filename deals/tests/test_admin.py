"""A deal saved in the admin goes through the same relinking as one from the CRM."""

import pytest
from django.urls import reverse

from deals.models import Deal
from jobs.models import Job
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_adding_a_deal_in_the_admin_queues_relink_deals(client):
    user = UserFactory(username="boss")  # a workspace admin: neither staff nor a superuser
    workspace = workspace_create(slug="acme", name="Acme Sales")
    membership_add(workspace=workspace, user=user, role="admin")
    client.force_login(user)

    response = client.post(
        reverse("admin:deals_deal_add"),
        {
            "crm": "hubspot",
            "crm_deal_id": "77",
            "title": "Acme pilot",
            "primary_domain": "acme.example",
            "contact_emails": "sara@acme.example",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    with workspace_context(workspace):
        deal = Deal.objects.get()
        assert list(Job.objects.filter(task="relink_deals").values_list("payload", flat=True)) == [
            {"deal_ids": [deal.pk]}
        ]
