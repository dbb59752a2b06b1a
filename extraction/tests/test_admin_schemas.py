import pytest
from django.urls import reverse

from workspaces.models import Policy
from workspaces.policy import policy_validate
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = UserFactory(username="ada")  # a workspace admin: neither staff nor a superuser
    ws = workspace_create(slug="acme", name="Acme")
    membership_add(workspace=ws, user=user, role="admin")
    client.force_login(user)
    return client, ws


def test_admins_see_the_schemas_with_every_field(admin_client):
    client, _ = admin_client
    page = client.get(reverse("admin:extraction_schemas")).content.decode()
    assert "sales_bant · version 1" in page
    for key in ("budget", "authority", "need", "timeline", "competitors", "next_step"):
        assert f"<code>{key}</code>" in page


def test_the_runs_page_says_when_the_llm_is_asked_for_but_not_configured(admin_client, settings):
    client, ws = admin_client
    settings.LLM_BASE_URL = ""
    url = reverse("admin:extraction_extractionrun_changelist")
    assert "not set" not in client.get(url).content.decode()
    with workspace_context(ws):
        Policy.objects.filter(workspace=ws).update(policy=policy_validate({"extractor": "llm"}))
    assert "LLM_BASE_URL and LLM_MODEL are not set" in client.get(url).content.decode()
