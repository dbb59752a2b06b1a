from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from workspaces.models import Membership, Workspace
from workspaces.rls import workspace_context

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_demo_creates_accounts_once_and_prints_passwords_once():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = out.getvalue()
    assert "demo-admin / " in first and "demo-reviewer / " in first
    password = first.split("demo-admin / ")[1].split()[0]
    assert get_user_model().objects.get(username="demo-admin").check_password(password)

    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert " / " not in out.getvalue()
    assert "changepassword demo-admin" in out.getvalue()
    workspace = Workspace.objects.get(slug="demo")
    with workspace_context(workspace):
        roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"demo-admin": "admin", "demo-reviewer": "reviewer"}


def test_the_demo_admin_uses_the_admin_without_being_staff_and_the_reviewer_is_sent_to_the_queue(client):
    from django.contrib.auth.models import Permission

    call_command("seed_demo", "--no-mail", "--password", "a demo password", stdout=StringIO())
    users = get_user_model().objects.filter(username__startswith="demo-")
    assert not users.filter(is_staff=True).exists() and not users.filter(is_superuser=True).exists()
    assert not Permission.objects.filter(user__in=users).exists()
    client.login(username="demo-admin", password="a demo password")
    index = client.get("/admin/")
    assert index.status_code == 200 and "/admin/workspaces/policy/" in index.content.decode()
    client.login(username="demo-reviewer", password="a demo password")
    assert client.get("/admin/")["Location"] == "/w/demo/review/"


def test_seed_demo_imports_the_demo_mailbox_once_and_queues_extraction():
    from jobs.models import Job
    from threads.models import Thread

    out = StringIO()
    call_command("seed_demo", stdout=out)
    workspace = Workspace.objects.get(slug="demo")
    with workspace_context(workspace):
        threads = Thread.objects.count()
        jobs = Job.objects.filter(task="extract_thread").count()
    assert threads >= 12 and jobs == threads
    call_command("seed_demo", stdout=StringIO())
    with workspace_context(workspace):
        assert Thread.objects.count() == threads
