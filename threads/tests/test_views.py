import re
from urllib.parse import unquote

import pytest
from django.core.management import call_command
from django.urls import reverse

from threads.models import Message
from threads.services import inbound_token_rotate, message_ingest
from threads.tests.factories import MessageFactory, ThreadFactory
from threads.tests.mail import mail
from workspaces.rls import workspace_context
from workspaces.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client(client, workspace):
    user = UserFactory()
    with workspace_context(workspace):
        MembershipFactory(workspace=workspace, user=user)
    client.force_login(user)
    return client


def test_thread_list_search_and_paging(member_client, workspace, django_assert_max_num_queries):
    with workspace_context(workspace):
        for n in range(55):
            ThreadFactory(workspace=workspace, subject=f"Deal {n}")
        ThreadFactory(workspace=workspace, subject="Budget", participants=["cfo@acme.example"])
    url = reverse("threads:list", kwargs={"workspace_slug": workspace.slug})
    with django_assert_max_num_queries(16) as captured:  # session, auth and workspace set-up included
        page = member_client.get(url)
    sql = [q["sql"] for q in captured.captured_queries]
    assert not any("COUNT(" in q for q in sql)
    assert sum('FROM "threads_thread"' in q for q in sql) == 1
    assert page.status_code == 200
    assert page.content.count(b"<tr>") == 51  # header + 50 threads
    older = re.search(rb'href="\?q=&amp;after=([^"]+)" rel="next"', page.content)
    assert older, "no Older link"
    assert member_client.get(url, {"after": unquote(older[1].decode())}).content.count(b"<tr>") == 7
    found = member_client.get(url, {"q": "cfo@acme.example"})
    assert b"Budget" in found.content and b"Deal 1<" not in found.content


def test_list_needs_login_and_membership(client, workspace):
    url = reverse("threads:list", kwargs={"workspace_slug": workspace.slug})
    assert client.get(url).status_code == 302
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404


def test_thread_page_and_sandboxed_html(member_client, workspace):
    html = (
        '<p>Hi</p><script>alert(1)</script><img src="https://tracker.example/p.gif"><a href="https://x.example">x</a>'
    )
    message_ingest(workspace=workspace, raw=mail("v1@x", html=html), source="t")
    message_ingest(workspace=workspace, raw=mail("v2@x", in_reply_to="v1@x", body="Thanks!"), source="t")
    with workspace_context(workspace):
        first = Message.objects.get(message_id="v1@x")
    page = member_client.get(
        reverse("threads:detail", kwargs={"workspace_slug": workspace.slug, "thread_id": first.thread_id})
    )
    body = page.content.decode()
    assert page.status_code == 200
    assert body.index("Hello") < body.index("Thanks!")
    assert "<iframe" in body and "sandbox" in body and "<script>alert" not in body
    frame_url = reverse("threads:message-html", kwargs={"workspace_slug": workspace.slug, "message_id": first.pk})
    frame = member_client.get(frame_url)
    assert "script-src" not in frame["Content-Security-Policy"]
    assert "default-src 'none'" in frame["Content-Security-Policy"]
    assert b"<script" not in frame.content and b"tracker.example" not in frame.content
    with_images = member_client.get(frame_url, {"images": "1"})
    assert b"tracker.example" in with_images.content and "https:" in with_images["Content-Security-Policy"]


def test_other_workspace_thread_is_not_found(member_client, workspace):
    other = WorkspaceFactory()
    with workspace_context(other):
        message = MessageFactory(workspace=other)
    url = reverse("threads:detail", kwargs={"workspace_slug": workspace.slug, "thread_id": message.thread_id})
    assert member_client.get(url).status_code == 404


# --- inbound -----------------------------------------------------------------------------------
def _post(client, slug, body, token=None, content_type="message/rfc822"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(f"/inbound/{slug}/", data=body, content_type=content_type, **headers)


def test_inbound_accepts_raw_message_with_token(client, workspace, django_capture_on_commit_callbacks):
    token = inbound_token_rotate(workspace=workspace)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, workspace.slug, mail("in1@x"), token)
    assert response.status_code == 201 and response.json()["status"] == "new"
    assert _post(client, workspace.slug, mail("in1@x"), token).json()["status"] == "duplicate"
    with workspace_context(workspace):
        assert Message.objects.get().source == "inbound"
        from jobs.models import Job

        assert Job.objects.filter(task="extract_thread").count() == 1


def test_inbound_rejects_bad_token_type_and_size(client, workspace, settings):
    token = inbound_token_rotate(workspace=workspace)
    assert _post(client, workspace.slug, mail("a@x")).status_code == 401
    assert _post(client, workspace.slug, mail("a@x"), "wrong").status_code == 401
    assert _post(client, "nope", mail("a@x"), token).status_code == 401
    assert _post(client, workspace.slug, mail("a@x"), token, content_type="text/plain").status_code == 415
    settings.THREADLINE_INBOUND_MAX_BYTES = 100
    assert _post(client, workspace.slug, mail("a@x"), token).status_code == 413
    with workspace_context(workspace):
        assert not Message.objects.exists()
    rotated = inbound_token_rotate(workspace=workspace)
    settings.THREADLINE_INBOUND_MAX_BYTES = 10**6
    assert _post(client, workspace.slug, mail("a@x"), token).status_code == 401
    assert _post(client, workspace.slug, mail("a@x"), rotated).status_code == 201


def test_inbound_token_command_prints_token_once(workspace, capsys):
    call_command("inbound_token", workspace=workspace.slug)
    token = capsys.readouterr().out.strip()
    assert len(token) > 30
    with workspace_context(workspace):
        from threads.models import InboundToken

        assert token not in InboundToken.objects.get().token_sha256


def test_factories_create_one_valid_row_each(workspace):
    from threads.tests import factories

    with workspace_context(workspace):
        for factory in (
            factories.ThreadFactory,
            factories.MessageFactory,
            factories.AttachmentFactory,
            factories.MessageReferenceFactory,
            factories.InboundTokenFactory,
            factories.ImapCursorFactory,
            factories.MessageConflictFactory,
            factories.MailImportFactory,
        ):
            row = factory(workspace=workspace)
            assert row.pk and row.workspace_id == workspace.pk
