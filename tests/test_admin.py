"""Admin smoke tests for every registered model, and the policy form's validation."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.tenancy import factories_by_model
from workspaces.models import AuditEvent, Policy
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def admin_client_in_workspace(client):
    user = UserFactory(username="boss", is_staff=True, is_superuser=True)
    workspace = workspace_create(slug="acme", name="Acme Sales", internal_domains=["acme.example"])
    membership_add(workspace=workspace, user=user, role="admin")
    client.force_login(user)
    return client, workspace, user


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model_admin", [item for item in REGISTERED], ids=lambda item: item[0]._meta.label)
def test_changelist_search_add_and_change_pages(admin_client_in_workspace, model_admin):
    client, workspace, user = admin_client_in_workspace
    model, model_admin = model_admin
    factory = factories_by_model().get(model)
    obj = None
    if model._meta.label not in ("auth.User", "auth.Group", "workspaces.Workspace", "workspaces.Policy"):
        with workspace_context(workspace):
            obj = factory(workspace=workspace)
    elif model._meta.label == "workspaces.Policy":
        with workspace_context(workspace):
            obj = Policy.objects.get(workspace=workspace)
    elif model._meta.label == "workspaces.Workspace":
        obj = workspace
    elif model._meta.label == "auth.User":
        obj = user

    assert client.get(_url(model, "changelist")).status_code == 200
    if model_admin.search_fields:
        assert client.get(_url(model, "changelist"), {"q": "anything"}).status_code == 200
    expected_add = 200 if model_admin.has_add_permission(_request_for(user, workspace)) else 403
    assert client.get(_url(model, "add")).status_code == expected_add
    if obj is not None:
        response = client.get(_url(model, "change", obj.pk))
        assert response.status_code == 200, response.content[:500]


def _request_for(user, workspace):
    from django.test import RequestFactory

    from workspaces.models import Membership

    request = RequestFactory().get("/admin/")
    request.user, request.workspace = user, workspace
    with workspace_context(workspace):
        request.membership = Membership.objects.get(workspace=workspace, user=user)
    return request


def test_changelist_shows_only_the_active_workspace(admin_client_in_workspace):
    client, workspace, user = admin_client_in_workspace
    other = workspace_create(slug="globex", name="Globex")
    with workspace_context(other):
        factories_by_model()[AuditEvent](workspace=other, type="globex.secret")
    with workspace_context(workspace):
        factories_by_model()[AuditEvent](workspace=workspace, type="acme.visible")
    page = client.get(_url(AuditEvent, "changelist")).content.decode()
    assert "acme.visible" in page
    assert "globex.secret" not in page


def test_policy_form_names_the_bad_key_and_saves_nothing(admin_client_in_workspace):
    client, workspace, _ = admin_client_in_workspace
    with workspace_context(workspace):
        policy = Policy.objects.get(workspace=workspace)
    before = dict(policy.policy)
    response = client.post(_url(Policy, "change", policy.pk), {"policy": '{"min_confidence": 1.7}'})
    assert response.status_code == 200
    assert "min_confidence: must be between 0 and 1" in response.content.decode()
    response = client.post(_url(Policy, "change", policy.pk), {"policy": '{"surprise": true}'})
    assert "surprise: unknown key" in response.content.decode()
    with workspace_context(workspace):
        policy.refresh_from_db()
    assert policy.policy == before


def test_policy_form_saves_a_valid_document_with_defaults_and_audits(admin_client_in_workspace):
    client, workspace, _ = admin_client_in_workspace
    with workspace_context(workspace):
        policy = Policy.objects.get(workspace=workspace)
    response = client.post(_url(Policy, "change", policy.pk), {"policy": '{"min_confidence": 0.65}'})
    assert response.status_code == 302
    with workspace_context(workspace):
        policy.refresh_from_db()
        assert policy.policy["min_confidence"] == 0.65
        assert policy.policy["crm_mode"] == "dry_run"
        assert AuditEvent.objects.filter(type="policy.updated").exists()


def test_reviewer_cannot_edit_the_policy_even_with_the_django_permission(client):
    from django.contrib.auth.models import Permission

    user = UserFactory(username="rita", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_policy", "change_policy"]))
    workspace = workspace_create(slug="acme", name="Acme")
    membership_add(workspace=workspace, user=user, role="reviewer")
    client.force_login(user)
    with workspace_context(workspace):
        policy = Policy.objects.get(workspace=workspace)
    response = client.post(_url(Policy, "change", policy.pk), {"policy": '{"min_confidence": 0.1}'})
    assert response.status_code == 403
    with workspace_context(workspace):
        policy.refresh_from_db()
    assert policy.policy["min_confidence"] != 0.1


def _staff_member(workspace, *, role: str, username: str):
    """A staff user who is a member (not a superuser), allowed to view messages and conflicts."""
    from django.contrib.auth.models import Permission

    user = UserFactory(username=username, is_staff=True)
    membership_add(workspace=workspace, user=user, role=role)
    codenames = ["view_message", "view_messageconflict", "view_mailimport"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_workspace_admin_resolves_a_conflict_and_parses_again_in_the_admin(client, settings):
    from threads.models import Message as MailMessage
    from threads.models import MessageConflict
    from threads.services import message_ingest
    from threads.tests.mail import mail

    workspace = workspace_create(slug="acme", name="Acme Sales", internal_domains=["acme.example"])
    message_ingest(workspace=workspace, raw=mail("same@x", body="first"), source="t")
    message_ingest(workspace=workspace, raw=mail("same@x", body="second"), source="t")
    settings.THREADLINE_PARSE_MAX_DEPTH = 0  # every multipart is over budget: kept as failed
    failed = message_ingest(workspace=workspace, raw=mail("deep@x", html="<p>hi</p>"), source="t")
    assert failed.status == "failed"
    settings.THREADLINE_PARSE_MAX_DEPTH = 50
    with workspace_context(workspace):
        conflict = MessageConflict.objects.get()

    reviewer = _staff_member(workspace, role="reviewer", username="rita")
    client.force_login(reviewer)
    listing = client.get(_url(MessageConflict, "changelist"))
    assert listing.status_code == 200 and b"keep_both" not in listing.content  # not theirs to decide
    refused = client.post(
        _url(MessageConflict, "changelist"), {"action": "keep_both", "_selected_action": [conflict.pk]}
    )
    assert refused.status_code == 200  # the admin answers "no action selected"; nothing changes
    with workspace_context(workspace):
        assert MessageConflict.objects.get().status == "open"

    boss = _staff_member(workspace, role="admin", username="boss")
    client.force_login(boss)
    assert b"keep_both" in client.get(_url(MessageConflict, "changelist")).content
    done = client.post(
        _url(MessageConflict, "changelist"), {"action": "keep_both", "_selected_action": [conflict.pk]}, follow=True
    )
    assert b"1 conflict resolved" in done.content
    reparsed = client.post(
        _url(MailMessage, "changelist"), {"action": "parse_again", "_selected_action": [failed.message_pk]}, follow=True
    )
    assert b"Parsed again: 1 now parsed, 0 still failed" in reparsed.content
    with workspace_context(workspace):
        conflict.refresh_from_db()
        assert conflict.status == "kept_both" and conflict.resolved_by_id == boss.pk
        assert MailMessage.objects.get(pk=failed.message_pk).parse_status == "parsed"
        assert MailMessage.objects.filter(thread__isnull=False).count() == 3
        assert AuditEvent.objects.filter(type="message.conflict_resolved", actor=boss).exists()
