"""Big messages stay readable: pages show the first N characters (cut in SQL), with a note and
links to the whole; the raw message and stored attachments download as attachments only."""

import hashlib
from email.message import EmailMessage

import pytest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from threads.models import Attachment, Message
from threads.selectors import thread_messages
from threads.services import message_ingest
from threads.tests.mail import mail
from workspaces.rls import workspace_context
from workspaces.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

LIMIT = 1000
LINE = "We are reviewing the proposal with the team and will come back to you.\n"
BIG_TEXT = (LINE * (3_000_000 // len(LINE)))[:3_000_000] + "THE VERY END"
BIG_HTML = "<html><body>" + "<p>Pricing table row with numbers 1 2 3</p>\n" * 25_000 + "<p>HTML END</p></body></html>"
PAGE_OVERHEAD = 12_000  # the layout, navigation, headers and links of one small thread page


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.THREADLINE_BODY_DISPLAY_MAX_CHARS = LIMIT


@pytest.fixture
def member_client(client, workspace):
    user = UserFactory()
    with workspace_context(workspace):
        MembershipFactory(workspace=workspace, user=user)
    client.force_login(user)
    return client


def ingest(workspace, raw):
    result = message_ingest(workspace=workspace, raw=raw, source="test")
    with workspace_context(workspace):
        return Message.objects.defer("raw", "text", "html", "reply_text").get(pk=result.message_pk)


def with_attachments(mid: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "ana@customer.example"
    msg["To"] = "rep@threadline-demo.com"
    msg["Subject"] = "Quote attached"
    msg["Message-ID"] = f"<{mid}>"
    msg.set_content("The quote and the deck are attached.")
    msg.add_attachment(b"%PDF-1.4 quote", maintype="application", subtype="pdf", filename="quote.pdf")
    page = b"<script>alert(1)</script>"
    msg.add_attachment(page, maintype="text", subtype="html", filename="../evil.html")
    msg.add_attachment(b"x" * 5000, maintype="application", subtype="zip", filename="deck.zip")
    return msg.as_bytes()


def detail_url(workspace, message):
    return reverse("threads:detail", kwargs={"workspace_slug": workspace.slug, "thread_id": message.thread_id})


def message_url(name, workspace, message):
    return reverse(f"threads:{name}", kwargs={"workspace_slug": workspace.slug, "message_id": message.pk})


def attachment_url(workspace, attachment):
    return reverse(
        "threads:attachment-download", kwargs={"workspace_slug": workspace.slug, "attachment_id": attachment.pk}
    )


def stored(workspace, message, field):
    with workspace_context(workspace):
        return Message.objects.filter(pk=message.pk).values_list(field, flat=True).get()


def content_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_big_text_is_cut_with_a_note_and_a_link_to_the_whole(member_client, workspace, django_assert_max_num_queries):
    message = ingest(workspace, mail("big@x", body=BIG_TEXT))
    # session, auth and workspace set-up, and the panels of the apps above (values and items, deal: 4)
    with django_assert_max_num_queries(20) as captured:
        page = member_client.get(detail_url(workspace, message))
    sql = [q["sql"] for q in captured.captured_queries]
    assert sum('FROM "threads_message"' in q for q in sql) == 1
    assert sum('FROM "threads_attachment"' in q for q in sql) == 1
    body = page.content.decode()
    assert page.status_code == 200
    assert len(page.content) < LIMIT + PAGE_OVERHEAD
    reply = stored(workspace, message, "reply_text")
    assert f"showing the first 1,000 of {len(reply):,} characters" in body
    assert "THE VERY END" not in body
    whole_url = message_url("message-text", workspace, message)
    assert whole_url in body
    whole = member_client.get(whole_url + "?part=reply")
    assert whole["Content-Type"] == "text/plain; charset=utf-8"
    assert whole["X-Content-Type-Options"] == "nosniff"
    assert content_of(whole).decode() == reply
    assert content_of(member_client.get(whole_url)).decode() == stored(workspace, message, "text")


def test_the_thread_page_never_loads_the_big_columns(workspace):
    message = ingest(workspace, mail("big@x", body=BIG_TEXT, html=BIG_HTML))
    with workspace_context(workspace):
        [shown] = thread_messages(thread=message.thread)
    assert {"text", "html", "reply_text", "raw", "headers_json"} <= shown.get_deferred_fields()
    assert len(shown.body_head) == LIMIT and shown.body_cut
    assert shown.body_length == len(stored(workspace, message, "reply_text")) and shown.body_part == "reply"
    assert shown.html_size == len(stored(workspace, message, "html").encode()) and shown.html_cut


def test_a_small_message_is_shown_whole_without_a_note(member_client, workspace):
    message = ingest(workspace, mail("small@x", body="Short and sweet.", html="<p>Short and sweet.</p>"))
    body = member_client.get(detail_url(workspace, message)).content.decode()
    assert "Short and sweet." in body and "showing the first" not in body and "at most the first" not in body
    assert b"cut" not in member_client.get(message_url("message-html", workspace, message)).content


def test_the_cut_is_told_exactly_from_byte_sizes():
    from threads.selectors import is_cut

    assert not is_cut("é" * 10, limit=10, octets=20)  # ten two-byte characters: all of it
    assert is_cut("é" * 10, limit=10, octets=21)
    assert not is_cut("short", limit=10, octets=5)


def test_big_html_frame_is_cut_before_sanitizing_and_downloads_whole(member_client, workspace):
    message = ingest(workspace, mail("bightml@x", body="See the table.", html=BIG_HTML))
    page = member_client.get(detail_url(workspace, message))
    assert len(page.content) < LIMIT + PAGE_OVERHEAD
    body = page.content.decode()
    html = stored(workspace, message, "html")
    download_url = message_url("message-html-download", workspace, message)
    size = filesizeformat(len(html.encode()))
    assert download_url in body and f"first 1,000 characters of {size} of HTML" in body
    frame = member_client.get(message_url("message-html", workspace, message))
    assert frame.status_code == 200 and len(frame.content) < LIMIT + 2000
    assert b"HTML END" not in frame.content
    assert b"cut" in frame.content and f"first 1,000 characters of {size}".encode() in frame.content
    assert "default-src 'none'" in frame["Content-Security-Policy"]
    whole = member_client.get(download_url)
    assert whole["Content-Disposition"].startswith("attachment;")
    assert whole["X-Content-Type-Options"] == "nosniff"
    assert not whole["Content-Type"].startswith("text/html")
    assert content_of(whole).decode() == html


def test_raw_download_is_the_exact_bytes_as_an_attachment(member_client, workspace):
    raw = mail("big@x", body=BIG_TEXT)
    message = ingest(workspace, raw)
    page = member_client.get(detail_url(workspace, message)).content.decode()
    raw_url = message_url("message-raw", workspace, message)
    assert raw_url in page
    response = member_client.get(raw_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="message-{message.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert content_of(response) == raw


def test_attachments_download_as_octet_stream_and_unstored_ones_say_so(member_client, workspace, settings):
    settings.THREADLINE_ATTACHMENT_MAX_BYTES = 1000
    message = ingest(workspace, with_attachments("att@x"))
    with workspace_context(workspace):
        pdf, page, deck = Attachment.objects.filter(message=message).order_by("pk")
    assert not deck.file  # over the limit: metadata only
    body = member_client.get(detail_url(workspace, message)).content.decode()
    assert attachment_url(workspace, pdf) in body and attachment_url(workspace, page) in body
    assert attachment_url(workspace, deck) not in body
    assert "not stored (over the limit)" in body
    for attachment, data in ((pdf, b"%PDF-1.4 quote"), (page, b"<script>alert(1)</script>")):
        response = member_client.get(attachment_url(workspace, attachment))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/octet-stream"
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["X-Content-Type-Options"] == "nosniff"
        content = content_of(response)
        assert content == data and hashlib.sha256(content).hexdigest() == attachment.sha256
    assert 'filename="evil.html"' in member_client.get(attachment_url(workspace, page))["Content-Disposition"]
    assert member_client.get(attachment_url(workspace, deck)).status_code == 404


def test_folder_and_unparsed_status_are_shown(member_client, workspace):
    message = ingest(workspace, mail("f@x", body="Filed away."))
    other = ingest(workspace, mail("g@x", in_reply_to="f@x", body="Pending."))
    with workspace_context(workspace):
        Message.objects.filter(pk=message.pk).update(folder="Customers/Acme")
        Message.objects.filter(pk=other.pk).update(
            parse_status="failed", parse_error="parse: ValueError: bad header", text="", reply_text=""
        )
    body = member_client.get(detail_url(workspace, message)).content.decode()
    assert "Customers/Acme" in body
    assert "Failed" in body and "parse: ValueError: bad header" in body
    assert message_url("message-raw", workspace, other) in body
    with workspace_context(workspace):
        Message.objects.filter(pk=other.pk).update(parse_status="received", parse_error="")
    body = member_client.get(detail_url(workspace, message)).content.decode()
    assert "Received" in body and "not parsed yet" in body


def test_another_workspaces_message_and_attachment_are_not_found(member_client, workspace):
    other = WorkspaceFactory()
    message = ingest(other, with_attachments("theirs@x"))
    with workspace_context(other):
        attachment = Attachment.objects.filter(message=message).order_by("pk").first()
    for name in ("message-raw", "message-text", "message-html-download", "message-html"):
        assert member_client.get(message_url(name, workspace, message)).status_code == 404, name
    assert member_client.get(attachment_url(workspace, attachment)).status_code == 404


def test_downloads_need_login_and_membership(client, workspace):
    message = ingest(workspace, with_attachments("mine@x"))
    with workspace_context(workspace):
        attachment = Attachment.objects.filter(message=message).order_by("pk").first()
    urls = [message_url(n, workspace, message) for n in ("message-raw", "message-text", "message-html-download")]
    urls.append(attachment_url(workspace, attachment))
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    client.force_login(UserFactory())
    for url in urls:
        assert client.get(url).status_code == 404


def test_admin_lists_and_shows_a_big_message_without_its_whole_body(client, workspace):
    from workspaces.services import membership_add

    boss = UserFactory(is_staff=True, is_superuser=True)
    membership_add(workspace=workspace, user=boss, role="admin")
    client.force_login(boss)
    message = ingest(workspace, mail("big@x", body=BIG_TEXT, html=BIG_HTML))
    for url in (
        reverse("admin:threads_message_changelist"),
        reverse("admin:threads_message_change", args=[message.pk]),
        reverse("admin:threads_thread_change", args=[message.thread_id]),
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        assert len(page.content) < 4 * LIMIT + 40_000, url
        assert b"THE VERY END" not in page.content
    change = client.get(reverse("admin:threads_message_change", args=[message.pk])).content.decode()
    assert "showing the first 1,000 of" in change
    assert message_url("message-raw", workspace, message) in change
