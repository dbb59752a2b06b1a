"""Raw bytes first, a bounded parse, non-mail refused, conflicts kept: ingest loses nothing and says so."""

import time

import pytest

from threads.ingest.parse import ParseBudget, message_parse
from threads.models import Attachment, MailImport, Message, MessageConflict, Thread
from threads.services import (
    inbound_token_rotate,
    mail_import,
    message_conflict_resolve,
    message_ingest,
    messages_reparse,
)
from threads.tests.mail import mail
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context

pytestmark = pytest.mark.django_db

BINARY = bytes(range(256)) * 8  # a program's bytes: NULs and control characters from the start
SENTENCE = b"Hi team, the budget for the pilot is $8 and we can start next week."


def encoded_word_mail(words: int) -> bytes:
    subject = " ".join(["=?utf-8?q?caf=C3=A9?="] * words)
    return f"From: ana@customer.example\nMessage-ID: <ew-{words}@x>\nSubject: {subject}\n\nHello\n".encode()


def nested_mail(levels: int) -> bytes:
    raw = b"From: core@customer.example\nSubject: core\n\ncore body\n"
    for level in range(levels):
        raw = (
            b"From: ana@customer.example\nMessage-ID: <nest-%d@x>\nSubject: level %d\n"
            b"MIME-Version: 1.0\nContent-Type: message/rfc822\n\n" % (level, level)
        ) + raw
    return raw


# --- raw first -------------------------------------------------------------------------------------
def test_raw_bytes_are_committed_before_parsing_starts(workspace, monkeypatch):
    """A process that dies while parsing (here: SystemExit from inside the parser, which no
    handler catches) leaves the message stored, as received, and it is parsed later."""
    import threads.services

    real_parse = threads.services.message_parse

    def dying(raw, budget=None):
        raise SystemExit("killed while parsing")

    monkeypatch.setattr(threads.services, "message_parse", dying)
    raw = mail("first@x", body="The budget is 60k.")
    with pytest.raises(SystemExit):
        message_ingest(workspace=workspace, raw=raw, source="inbound")
    with workspace_context(workspace):
        kept = Message.objects.get()
        assert (bytes(kept.raw), kept.parse_status, kept.message_id) == (raw, "received", "first@x")
    monkeypatch.setattr(threads.services, "message_parse", real_parse)
    # The same file imported again finds its stored bytes and parses them: nothing twice, nothing lost.
    summary = mail_import(workspace=workspace, messages=[(raw, "file:again.eml")])
    assert (summary.new, summary.duplicate) == (1, 0)
    with workspace_context(workspace):
        kept = Message.objects.get()
        assert kept.parse_status == "parsed" and kept.thread_id and "60k" in kept.text


def test_reparse_parses_received_and_failed_messages(workspace, monkeypatch, settings):
    settings.THREADLINE_PARSE_MAX_DEPTH = 5
    result = message_ingest(workspace=workspace, raw=nested_mail(8), source="t")
    assert result.status == "failed" and "nested deeper than 5" in result.reason
    settings.THREADLINE_PARSE_MAX_DEPTH = 50
    summary = messages_reparse(workspace=workspace, message_pks=[result.message_pk])
    assert (summary.new, summary.failed) == (1, 0)
    with workspace_context(workspace):
        message = Message.objects.get(pk=result.message_pk)
        assert message.parse_status == "parsed" and message.parse_error == ""
        assert AuditEvent.objects.filter(type="message.reparsed").count() == 1


# --- the parse budget ---------------------------------------------------------------------------
def test_deep_nesting_is_failed_with_its_reason_not_an_empty_attachment(workspace):
    result = message_ingest(workspace=workspace, raw=nested_mail(300), source="t")
    assert result.status == "failed"
    assert result.reason == "parse budget: MIME parts nested deeper than 50"
    with workspace_context(workspace):
        message = Message.objects.get()
        assert bytes(message.raw) == nested_mail(300) and message.parse_status == "failed"
        assert not Attachment.objects.exists()
        assert AuditEvent.objects.get(type="message.parse_failed").data_json["error"] == result.reason


def test_nesting_within_the_budget_keeps_the_attached_message_whole(workspace):
    result = message_ingest(workspace=workspace, raw=nested_mail(40), source="t")
    assert result.status == "new"
    with workspace_context(workspace):
        attachment = Attachment.objects.get()
        assert attachment.size > 0 and attachment.content_type == "message/rfc822"


def test_time_budget_keeps_the_message_as_failed_with_the_reason(workspace, settings):
    settings.THREADLINE_PARSE_SECONDS = 0.000001
    result = message_ingest(workspace=workspace, raw=encoded_word_mail(50_000), source="t")
    assert result.status == "failed" and result.reason.startswith("parse budget: more than 1e-06 s")
    with workspace_context(workspace):
        assert bytes(Message.objects.get().raw) == encoded_word_mail(50_000)


def _parse_seconds(words: int) -> float:
    raw = encoded_word_mail(words)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        parsed = message_parse(raw, ParseBudget(seconds=60))
        best = min(best, time.perf_counter() - started)
    assert parsed.subject == "café" * words
    return best


def test_encoded_word_decoding_grows_linearly():
    """10k, 100k and 300k encoded words. Decoding used to grow with the square of the count
    (300k took longer than a web worker's timeout). A ratio of times measured in the same run,
    not a time: 3x the words must cost well under the 9x that quadratic growth gives."""
    t10, t100, t300 = (_parse_seconds(n) for n in (10_000, 100_000, 300_000))
    print(f"encoded words: 10k {t10:.3f} s, 100k {t100:.3f} s, 300k {t300:.3f} s; 300k/100k {t300 / t100:.2f}")
    assert t300 / t100 < 6
    assert t100 / t10 < 30


def test_encoded_words_decode_like_rfc2047():
    raw = (
        b"From: =?iso-8859-1?q?J=F6rg?= <j@x.example>\n"
        b"Subject: =?utf-8?b?4oKs?= =?UTF-8?B?IDUw?=  =?utf-8?q?_k?= plain =?utf-8?q?end?=\n\nx\n"
    )
    parsed = message_parse(raw)
    assert parsed.subject == "€ 50 k plain end"
    assert parsed.from_name == "Jörg"


# --- not mail ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (BINARY, "not mail: binary data"),
        (SENTENCE, "not mail: it does not start with a header line (name: value)"),
        (b"   \n\t\n", "empty (only white space)"),
        (
            b"name: x\nversion: 2\n\nbody",
            "not mail: no From, Date, Subject, To, Message-ID, Received or Content-Type header",
        ),
    ],
)
def test_inbound_refuses_what_is_not_mail_and_stores_nothing(client, workspace, body, reason):
    token = inbound_token_rotate(workspace=workspace)
    response = client.post(
        f"/inbound/{workspace.slug}/", data=body, content_type="message/rfc822", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 422
    assert response.json() == {"error": "not mail", "detail": reason}
    with workspace_context(workspace):
        assert not Message.objects.exists() and not Thread.objects.exists()


def test_inbound_keeps_a_message_that_starts_with_blank_lines(client, workspace):
    token = inbound_token_rotate(workspace=workspace)
    raw = b"\n \r\n" + mail("blank@x", body="Budget is 40k")
    response = client.post(
        f"/inbound/{workspace.slug}/", data=raw, content_type="message/rfc822", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 201 and response.json()["message_id"] == "blank@x"
    with workspace_context(workspace):
        message = Message.objects.get()
        assert bytes(message.raw) == raw and message.subject == "Renewal" and "40k" in message.text


def test_inbound_answers_what_happened_never_500(client, workspace, settings, monkeypatch):
    token = inbound_token_rotate(workspace=workspace)

    def post(raw):
        return client.post(
            f"/inbound/{workspace.slug}/", data=raw, content_type="message/rfc822", HTTP_AUTHORIZATION=f"Bearer {token}"
        )

    started = time.perf_counter()
    big_header = post(encoded_word_mail(300_000))
    assert big_header.status_code == 201 and big_header.json()["status"] == "new"
    print(f"inbound, 300k encoded words: {time.perf_counter() - started:.2f} s")
    deep = post(nested_mail(300))
    assert deep.status_code == 202
    assert deep.json()["status"] == "failed" and "nested deeper than 50" in deep.json()["detail"]
    first = post(mail("same@x", body="first"))
    conflict = post(mail("same@x", body="other content"))
    assert (first.status_code, conflict.status_code) == (201, 202)
    assert conflict.json()["status"] == "conflict"

    # A fault after the raw bytes were committed (here: the database refusing the thread step).
    import threads.services

    def broken(*args, **kwargs):
        raise RuntimeError("threading is down")

    monkeypatch.setattr(threads.services, "thread_assign", broken)
    response = post(mail("later@x"))
    assert response.status_code == 202
    assert (
        response.json()["status"] == "failed" and "thread: RuntimeError: threading is down" in response.json()["detail"]
    )
    with workspace_context(workspace):
        assert Message.objects.filter(message_id="later@x", parse_status="failed").exists()


# --- conflicts -----------------------------------------------------------------------------------
def test_reused_message_id_is_kept_whole_as_a_conflict_and_resolved(workspace, admin_user):
    first = message_ingest(workspace=workspace, raw=mail("dup@x", body="first"), source="t")
    other = mail("dup@x", body="second, other content", refs=["root@x"])
    result = message_ingest(workspace=workspace, raw=other, source="file:b.eml", folder="Sent")
    assert result.status == "conflict" and result.message_pk == first.message_pk
    # The same conflicting copy again is one conflict, not two.
    assert message_ingest(workspace=workspace, raw=other, source="file:b.eml").status == "duplicate"
    with workspace_context(workspace):
        conflict = MessageConflict.objects.get()
        assert bytes(conflict.raw) == other and (conflict.folder, conflict.status) == ("Sent", "open")
        assert conflict.kept_id == first.message_pk
    resolved = message_conflict_resolve(workspace=workspace, conflict=conflict, keep_both=True, actor=admin_user)
    assert resolved.status == "new"
    with workspace_context(workspace):
        conflict.refresh_from_db()
        assert conflict.status == "kept_both" and conflict.resolved_message_id == resolved.message_pk
        copy = Message.objects.get(pk=resolved.message_pk)
        assert copy.message_id == f"conflict-{conflict.raw_sha256[:16]}.dup@x" and "second" in copy.text
        assert AuditEvent.objects.filter(type="message.conflict_resolved", actor=admin_user).count() == 1
    assert message_conflict_resolve(workspace=workspace, conflict=conflict, keep_both=False) is None


def test_import_counts_conflicts_apart_and_keeps_an_import_record(workspace):
    mail_import(workspace=workspace, messages=[(mail("c@x", body="one"), "t")])
    summary = mail_import(
        workspace=workspace,
        messages=[(mail("c@x", body="two"), "t"), (mail("c@x", body="one"), "t"), (SENTENCE, "file:note.txt")],
        label="second",
    )
    assert (summary.read, summary.new, summary.duplicate, summary.conflict) == (2, 0, 1, 1)
    assert summary.skipped == [
        {"path": "file:note.txt", "reason": "not mail: it does not start with a header line (name: value)"}
    ]
    with workspace_context(workspace):
        record = MailImport.objects.get(pk=summary.import_id)
        assert (record.label, record.messages_read, record.messages_conflict, record.files_skipped) == (
            "second",
            2,
            1,
            1,
        )
        assert record.finished_at is not None and record.skipped_by_reason == {"not mail": 1}
        event = AuditEvent.objects.filter(type="mail.imported").latest("id")
        assert event.data_json["conflict"] == 1 and event.data_json["skipped_files"] == summary.skipped
