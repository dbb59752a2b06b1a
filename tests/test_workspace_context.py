"""The workspace context: per transaction, per request, never carried further."""

import pytest
from django.db import connection
from django.urls import reverse

from threads.models import Thread
from threads.tests.factories import ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import audit_event_record, membership_add, workspace_create
from workspaces.tests.factories import UserFactory


def _setting():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.workspace_id', true)")
        return cursor.fetchone()[0] or ""


@pytest.mark.django_db
def test_no_context_means_zero_rows():
    ws = workspace_create(slug="a", name="A")
    with workspace_context(ws):
        ThreadFactory(workspace=ws)
        assert Thread.objects.count() == 1
    assert Thread.objects.count() == 0


@pytest.mark.django_db
def test_nested_context_restores_the_outer_workspace():
    a, b = workspace_create(slug="a", name="A"), workspace_create(slug="b", name="B")
    with workspace_context(a):
        with workspace_context(b):
            assert _setting() == str(b.pk)
        assert _setting() == str(a.pk)


@pytest.mark.django_db
def test_context_is_rolled_back_with_a_failed_block():
    a, b = workspace_create(slug="a", name="A"), workspace_create(slug="b", name="B")
    with workspace_context(a):
        with pytest.raises(RuntimeError), workspace_context(b):
            raise RuntimeError("handler failed")
        assert _setting() == str(a.pk)


@pytest.mark.django_db(transaction=True)
def test_context_ends_with_the_transaction_on_a_reused_connection():
    ws = workspace_create(slug="a", name="A")
    with workspace_context(ws):
        assert _setting() == str(ws.pk)
    assert _setting() == ""


@pytest.mark.django_db(transaction=True)
def test_a_request_leaves_no_context_on_its_connection(client, settings):
    user = UserFactory(username="ann", is_staff=True, is_superuser=True)
    ws = workspace_create(slug="a", name="A")
    membership_add(workspace=ws, user=user, role="admin")
    client.force_login(user)
    assert client.get(reverse("admin:index")).status_code == 200
    assert _setting() == ""


@pytest.mark.django_db
def test_admin_never_shows_a_workspace_the_user_left_in_the_session(client):
    user = UserFactory(username="bo", is_staff=True, is_superuser=True)
    mine, theirs = workspace_create(slug="mine", name="Mine"), workspace_create(slug="theirs", name="Theirs")
    membership_add(workspace=mine, user=user, role="admin")
    with workspace_context(theirs):
        audit_event_record(workspace_id=theirs.pk, type="theirs.secret")
    client.force_login(user)
    session = client.session
    session["workspace_id"] = theirs.pk
    session.save()
    page = client.get(reverse("admin:workspaces_auditevent_changelist")).content.decode()
    assert "theirs.secret" not in page
    assert client.session["workspace_id"] == mine.pk


@pytest.mark.django_db
def test_workspace_url_of_a_non_member_is_not_found(client):
    user = UserFactory(username="cy")
    workspace_create(slug="theirs", name="Theirs")
    client.force_login(user)
    assert client.get("/w/theirs/").status_code == 404


@pytest.mark.django_db
def test_switcher_changes_workspace_only_to_ones_the_user_belongs_to(client):
    user = UserFactory(username="di", is_staff=True)
    a, b = workspace_create(slug="a", name="A"), workspace_create(slug="b", name="B")
    c = workspace_create(slug="c", name="C")
    membership_add(workspace=a, user=user, role="viewer")
    membership_add(workspace=b, user=user, role="viewer")
    client.force_login(user)
    client.post(reverse("workspace-switch"), {"workspace": "b", "next": "/admin/"})
    assert client.session["workspace_id"] == b.pk
    client.post(reverse("workspace-switch"), {"workspace": "c", "next": "/admin/"})
    assert client.session["workspace_id"] == b.pk != c.pk


@pytest.mark.django_db
def test_admin_shows_the_switcher_for_users_in_several_workspaces(client):
    user = UserFactory(username="ed", is_staff=True, is_superuser=True)
    for slug in ("north", "south"):
        membership_add(workspace=workspace_create(slug=slug, name=slug.title()), user=user, role="admin")
    client.force_login(user)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="workspace-switcher"' in page
    assert '<option value="south"' in page and '<option value="north"' in page
