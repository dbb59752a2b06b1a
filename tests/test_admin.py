"""The admin as its users meet it: a workspace admin who is neither staff nor a superuser,
for every registered model; reviewers and viewers sent back to the console; superusers keep
everything; one workspace's admin sees nothing of another's; the policy form's validation."""

import hashlib

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.tenancy import factories_by_model
from workspaces import authz
from workspaces.models import AuditEvent, Membership, Policy
from workspaces.rls import workspace_context
from workspaces.services import audit_event_record, membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
PASSWORD = "a long admin password"

# What a workspace admin may do with each registered model, stated here independently of
# workspaces/authz.py so that a change there is a deliberate change here too.
VIEW_ONLY = {
    "workspaces.AuditEvent",
    "threads.Thread",
    "threads.Message",
    "threads.MessageConflict",
    "threads.MailImport",
    "threads.Attachment",
    "threads.ImapCursor",
    "threads.InboundToken",  # rotated with its own button, never typed in
    "jobs.Job",
    "extraction.ExtractionRun",
    "extraction.FieldValue",
    "review.ReviewItem",
    "deals.ThreadLink",
    "deals.AssociationCandidate",
    "deals.DealFact",
    "deals.DealReadiness",
    "crm.CrmWriteLog",
}
CHANGE = {"workspaces.Workspace", "workspaces.Policy", "workspaces.Membership", "deals.Deal", "crm.CrmConnection"}
ADD = {"workspaces.Membership", "deals.Deal", "crm.CrmConnection"}
SUPERUSER_ONLY = {"auth.User", "auth.Group"}


def _member(workspace, *, role, username, **flags):
    user = UserFactory(username=username, **flags)
    user.set_password(PASSWORD)
    user.save()
    membership_add(workspace=workspace, user=user, role=role)
    return user


@pytest.fixture
def workspace():
    return workspace_create(slug="acme", name="Acme Sales", internal_domains=["acme.example"])


@pytest.fixture
def boss(client, workspace):
    """A workspace admin: not staff, not a superuser, no permission rows."""
    user = _member(workspace, role="admin", username="boss")
    assert not (user.is_staff or user.is_superuser or user.user_permissions.exists())
    client.force_login(user)
    return user


@pytest.fixture
def root(client, workspace):
    user = _member(workspace, role="admin", username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _object_for(model, workspace, user):
    label = model._meta.label
    if label == "auth.User":
        return user
    if label == "auth.Group":
        from django.contrib.auth.models import Group

        return Group.objects.create(name="operators")
    if label == "workspaces.Workspace":
        return workspace
    with workspace_context(workspace):
        if label == "workspaces.Policy":
            return Policy.objects.get(workspace=workspace)
        if label == "workspaces.Membership":
            return Membership.objects.get(workspace=workspace, user=user)
        return factories_by_model()[model](workspace=workspace)


def test_every_registered_model_has_a_decision_for_workspace_admins():
    labels = {model._meta.label for model, _ in REGISTERED}
    assert labels == VIEW_ONLY | CHANGE | SUPERUSER_ONLY
    assert {label.lower() for label in labels - SUPERUSER_ONLY} == set(authz.WORKSPACE_ADMIN)
    assert set(authz.SUPERUSER_ONLY) == {label.lower() for label in SUPERUSER_ONLY}


@pytest.mark.parametrize("model_admin", REGISTERED, ids=lambda item: item[0]._meta.label)
def test_a_workspace_admin_uses_every_model_they_may_and_only_as_far_as_they_may(client, workspace, boss, model_admin):
    model, model_admin = model_admin
    label = model._meta.label
    obj = _object_for(model, workspace, boss)
    if label in SUPERUSER_ONLY:
        for url in (_url(model, "changelist"), _url(model, "add"), _url(model, "change", obj.pk)):
            assert client.get(url).status_code == 403, url
        return

    assert client.get(_url(model, "changelist")).status_code == 200
    if model_admin.search_fields:
        assert client.get(_url(model, "changelist"), {"q": "anything"}).status_code == 200
    assert client.get(_url(model, "add")).status_code == (200 if label in ADD else 403)
    change = client.get(_url(model, "change", obj.pk))
    assert change.status_code == 200, change.content[:500]
    editable = 'name="_save"' in change.content.decode()
    assert editable == (label in CHANGE), f"{label}: save button shown={editable}"


@pytest.mark.parametrize("model_admin", REGISTERED, ids=lambda item: item[0]._meta.label)
def test_a_superuser_still_sees_every_model(client, workspace, root, model_admin):
    model, model_admin = model_admin
    obj = _object_for(model, workspace, root)
    assert client.get(_url(model, "changelist")).status_code == 200
    if model_admin.search_fields:
        assert client.get(_url(model, "changelist"), {"q": "anything"}).status_code == 200
    response = client.get(_url(model, "change", obj.pk))
    assert response.status_code == 200, response.content[:500]


def test_the_admin_index_lists_what_a_workspace_admin_manages_and_the_app_pages_answer(client, boss):
    page = client.get(reverse("admin:index")).content.decode()
    assert "permission to view or edit anything" not in page
    for model in (Policy, Membership, AuditEvent):
        assert _url(model, "changelist") in page
    assert reverse("admin:app_list", args=["auth"]) not in page  # accounts are for operators
    for app_label in sorted({label.split(".")[0] for label in authz.WORKSPACE_ADMIN}):
        response = client.get(reverse("admin:app_list", args=[app_label]))
        assert response.status_code == 200, app_label  # the breadcrumbs' app pages
    assert client.get(reverse("admin:app_list", args=["auth"])).status_code == 404


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
@pytest.mark.parametrize("staff", [False, True], ids=["member", "legacy-staff-flag"])
def test_reviewers_and_viewers_are_sent_back_to_the_console_from_every_admin_url(client, workspace, role, staff):
    user = _member(workspace, role=role, username="rita", is_staff=staff)
    client.force_login(user)
    urls = [reverse("admin:index"), reverse("admin:app_list", args=["workspaces"]), reverse("admin:login")]
    urls += [_url(model, "changelist") for model, _ in REGISTERED]
    for url in urls:
        response = client.get(url)
        assert (response.status_code, response.url) == (302, "/w/acme/review/"), url
    queue = client.get(reverse("admin:index"), follow=True).content.decode()
    assert f"The admin is for workspace admins; your role in Acme Sales is {role}" in queue
    assert f'href="{reverse("admin:index")}"' not in queue  # no "Admin" link in the console's nav


def test_a_signed_in_user_of_no_workspace_gets_a_403_that_says_why(client):
    client.force_login(UserFactory(username="nobody", is_staff=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 403


def test_the_console_shows_the_admin_link_to_workspace_admins_only(client, workspace, boss):
    page = client.get(reverse("review:queue", args=["acme"])).content.decode()
    assert f'<a href="{reverse("admin:index")}">Admin</a>' in page


def test_the_role_is_known_only_while_the_request_runs_and_only_for_its_user(client, workspace, boss):
    assert client.get(reverse("admin:index")).status_code == 200
    assert authz.active_role(boss) is None  # nothing carried beyond the request
    rita = _member(workspace, role="reviewer", username="rita")
    with workspace_context(workspace):
        membership = Membership.objects.get(user=boss)
    with authz.membership_active(membership):
        assert boss.has_perm("workspaces.change_policy") and authz.may_use_admin(boss)
        assert not rita.has_perm("workspaces.change_policy") and not authz.may_use_admin(rita)
        boss.is_active = False
        assert not boss.has_perm("workspaces.change_policy") and not authz.may_use_admin(boss)


def test_a_non_staff_workspace_admin_signs_in_at_the_admin_login(client, workspace):
    _member(workspace, role="admin", username="ada")
    response = client.post(
        reverse("admin:login") + "?next=/admin/", {"username": "ada", "password": PASSWORD, "next": "/admin/"}
    )
    assert (response.status_code, response.url) == (302, "/admin/")
    assert client.get("/admin/").status_code == 200


def test_an_admin_of_one_workspace_sees_nothing_of_another(client, workspace, boss):
    other = workspace_create(slug="globex", name="Globex")
    stranger = _member(other, role="admin", username="gus")
    membership_add(workspace=other, user=boss, role="viewer")  # a member there, but not its admin
    with workspace_context(other):
        audit_event_record(workspace_id=other.pk, type="globex.secret")
        their_policy = Policy.objects.get(workspace=other)
        their_membership = Membership.objects.get(workspace=other, user=stranger)
    with workspace_context(workspace):
        audit_event_record(workspace_id=workspace.pk, type="acme.visible")

    page = client.get(_url(AuditEvent, "changelist")).content.decode()
    assert "acme.visible" in page and "globex.secret" not in page
    members = client.get(_url(Membership, "changelist")).content.decode()
    assert "boss" in members and "gus" not in members
    workspaces = client.get(reverse("admin:workspaces_workspace_changelist")).content.decode()
    ours, theirs = (reverse("admin:workspaces_workspace_change", args=[w.pk]) for w in (workspace, other))
    assert ours in workspaces and theirs not in workspaces  # (the switcher still offers Globex)
    for url in (
        _url(Membership, "change", their_membership.pk),
        _url(Policy, "change", their_policy.pk),
        reverse("admin:workspaces_workspace_change", args=[other.pk]),
    ):
        response = client.get(url)
        assert (response.status_code, response.url) == (302, reverse("admin:index")), url  # "does not exist"
    for url in (reverse("admin:auth_user_changelist"), reverse("admin:auth_user_change", args=[stranger.pk])):
        assert client.get(url).status_code == 403
    lookup = {"app_label": "workspaces", "model_name": "membership", "field_name": "user", "term": "g"}
    assert client.get(reverse("admin:autocomplete"), lookup).status_code == 403  # no account search

    # Switching to the workspace where they are a viewer takes the admin away.
    client.post(reverse("workspace-switch"), {"workspace": "globex", "next": "/admin/"})
    response = client.get(reverse("admin:index"))
    assert (response.status_code, response.url) == (302, "/w/globex/review/")


def test_the_policy_is_found_from_the_index_and_a_bad_value_names_the_key(client, workspace, boss):
    with workspace_context(workspace):
        policy = Policy.objects.get(workspace=workspace)
    before = dict(policy.policy)
    listing = client.get(_url(Policy, "changelist")).content.decode()
    assert _url(Policy, "change", policy.pk) in listing
    response = client.post(_url(Policy, "change", policy.pk), {"policy": '{"min_confidence": 1.7}'})
    assert response.status_code == 200
    assert "min_confidence: must be between 0 and 1" in response.content.decode()
    response = client.post(_url(Policy, "change", policy.pk), {"policy": '{"surprise": true}'})
    assert "surprise: unknown key" in response.content.decode()
    with workspace_context(workspace):
        policy.refresh_from_db()
    assert policy.policy == before


def test_the_policy_saves_a_valid_document_with_defaults_and_audits(client, workspace, boss):
    with workspace_context(workspace):
        policy = Policy.objects.get(workspace=workspace)
    response = client.post(_url(Policy, "change", policy.pk), {"policy": '{"min_confidence": 0.65}'})
    assert response.status_code == 302
    with workspace_context(workspace):
        policy.refresh_from_db()
        assert policy.policy["min_confidence"] == 0.65
        assert policy.policy["crm_mode"] == "dry_run"
        assert AuditEvent.objects.filter(type="policy.updated", actor=boss).exists()


def test_a_reviewer_cannot_edit_the_policy_even_with_the_django_permission(client, workspace):
    from django.contrib.auth.models import Permission

    user = _member(workspace, role="reviewer", username="rita", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_policy", "change_policy"]))
    client.force_login(user)
    with workspace_context(workspace):
        policy = Policy.objects.get(workspace=workspace)
    response = client.post(_url(Policy, "change", policy.pk), {"policy": '{"min_confidence": 0.1}'})
    assert (response.status_code, response.url) == (302, "/w/acme/review/")
    with workspace_context(workspace):
        policy.refresh_from_db()
    assert policy.policy["min_confidence"] != 0.1


def test_a_member_is_added_by_exact_username_or_email_and_told_when_none_exists(client, workspace, boss):
    UserFactory(username="sam", email="Sam@Acme.example")
    UserFactory(username="samantha", email="samantha@acme.example")
    add = _url(Membership, "add")
    missing = client.post(add, {"account": "sa", "role": "reviewer"})
    assert missing.status_code == 200
    assert "No active account has the username or email “sa”." in missing.content.decode()
    assert client.post(add, {"account": "sam@acme.example", "role": "reviewer"}).status_code == 302
    assert client.post(add, {"account": "samantha", "role": "viewer"}).status_code == 302
    again = client.post(add, {"account": "sam", "role": "admin"})
    assert "sam is already a member (reviewer)" in again.content.decode()
    with workspace_context(workspace):
        roles = dict(Membership.objects.values_list("user__username", "role"))
        assert AuditEvent.objects.filter(type="membership.saved", actor=boss).count() == 2
    assert roles == {"boss": "admin", "sam": "reviewer", "samantha": "viewer"}
    assert "samantha" not in client.get(add).content.decode()  # no list of accounts to pick from


def test_the_last_admin_cannot_be_demoted_or_removed_and_others_can(client, workspace, boss):
    with workspace_context(workspace):
        mine = Membership.objects.get(user=boss)
    demote = client.post(_url(Membership, "change", mine.pk), {"role": "viewer"})
    assert "boss is the only admin of Acme Sales: make someone else an admin first." in demote.content.decode()
    refused = client.post(_url(Membership, "delete", mine.pk), {"post": "yes"}, follow=True)
    assert "Boss is the only admin of Acme Sales" in refused.content.decode()  # the admin capitalises messages
    rita = _member(workspace, role="reviewer", username="rita")
    with workspace_context(workspace):
        theirs = Membership.objects.get(user=rita)
    assert client.post(_url(Membership, "delete", theirs.pk), {"post": "yes"}).status_code == 302
    with workspace_context(workspace):
        assert list(Membership.objects.values_list("user__username", "role")) == [("boss", "admin")]
        assert AuditEvent.objects.filter(type="membership.removed", actor=boss).count() == 1


def test_a_workspace_admin_rotates_the_inbound_token_and_sees_it_once(client, workspace, boss):
    from threads.models import InboundToken

    listing = client.get(_url(InboundToken, "changelist")).content.decode()
    rotate = reverse("admin:threads_inboundtoken_rotate")
    assert rotate in listing
    assert "Rotate the token" in client.get(rotate).content.decode()
    page = client.post(rotate).content.decode()
    token = page.split('<code id="inbound-token">')[1].split("</code>")[0]
    with workspace_context(workspace):
        stored = InboundToken.objects.get(workspace=workspace)
    assert stored.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in client.get(_url(InboundToken, "change", stored.pk)).content.decode()


def test_a_workspace_admin_reads_the_extraction_schemas(client, boss):
    assert "sales_bant · version 1" in client.get(reverse("admin:extraction_schemas")).content.decode()


def test_a_workspace_admin_resolves_a_conflict_and_parses_again_in_the_admin(client, workspace, settings):
    from threads.models import Message as MailMessage
    from threads.models import MessageConflict
    from threads.services import message_ingest
    from threads.tests.mail import mail

    message_ingest(workspace=workspace, raw=mail("same@x", body="first"), source="t")
    message_ingest(workspace=workspace, raw=mail("same@x", body="second"), source="t")
    settings.THREADLINE_PARSE_MAX_DEPTH = 0  # every multipart is over budget: kept as failed
    failed = message_ingest(workspace=workspace, raw=mail("deep@x", html="<p>hi</p>"), source="t")
    assert failed.status == "failed"
    settings.THREADLINE_PARSE_MAX_DEPTH = 50
    with workspace_context(workspace):
        conflict = MessageConflict.objects.get()

    boss = _member(workspace, role="admin", username="boss")
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


def test_a_workspace_admin_changes_the_name_and_domains_but_not_the_slug(client, workspace, boss):
    url = reverse("admin:workspaces_workspace_change", args=[workspace.pk])
    response = client.post(url, {"slug": "hijack", "name": "Acme Europe", "internal_domains": "acme.example,acme.eu"})
    assert response.status_code == 302, response.content.decode()[:2000]
    workspace.refresh_from_db()
    assert (workspace.slug, workspace.name, workspace.internal_domains) == (
        "acme",
        "Acme Europe",
        ["acme.example", "acme.eu"],
    )
    assert client.get(reverse("admin:workspaces_workspace_add")).status_code == 403  # new tenants: operators
