import gzip
import json

import pytest
from django.core.management import call_command

from jobs.models import Job
from threads.models import Attachment, Message, Thread
from threads.services import mail_import, message_ingest
from threads.tests.mail import mail
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context

pytestmark = pytest.mark.django_db


def _ingest(workspace, raw, **kw):
    return message_ingest(workspace=workspace, raw=raw, source="test", **kw)


def _groups(workspace):
    with workspace_context(workspace):
        rows = Message.objects.filter(thread__isnull=False).values_list("thread_id", "message_id")
        groups: dict[int, set] = {}
        for thread_id, mid in rows:
            groups.setdefault(thread_id, set()).add(mid)
    return sorted(sorted(g) for g in groups.values())


def test_message_is_parsed_and_threaded(workspace):
    raw = mail("a@x", body="Hi Maya,\n\nWe have budget for Q4.\n\nOn Mon, Maya wrote:\n> Any budget?\n")
    result = _ingest(workspace, raw)
    assert result.status == "new"
    with workspace_context(workspace):
        message = Message.objects.get()
        thread = Thread.objects.get()
    assert bytes(message.raw) == raw
    assert message.reply_text == "Hi Maya,\n\nWe have budget for Q4."
    assert message.participants == ["ana@customer.example", "rep@threadline-demo.com"]
    assert thread.primary_contact_email == "ana@customer.example"
    assert thread.message_count == 1 and thread.subject == "Renewal"


def test_same_mail_twice_adds_nothing(workspace):
    raw = mail("a@x")
    assert _ingest(workspace, raw).status == "new"
    assert _ingest(workspace, raw).status == "duplicate"
    with workspace_context(workspace):
        assert Message.objects.count() == 1
        assert not AuditEvent.objects.filter(type="message.duplicate_conflict").exists()


def test_same_message_id_other_content_keeps_first_and_audits(workspace):
    _ingest(workspace, mail("a@x", body="first"))
    assert _ingest(workspace, mail("a@x", body="second")).status == "conflict"
    with workspace_context(workspace):
        assert Message.objects.get().text.startswith("first")
        assert AuditEvent.objects.filter(type="message.duplicate_conflict").count() == 1


def test_missing_message_id_gets_a_content_hash_id(workspace):
    raw = mail(None)
    first = _ingest(workspace, raw)
    assert first.message_id.endswith("@threadline.invalid")
    assert _ingest(workspace, raw.replace(b"\n", b"\r\n")).status == "duplicate"


def test_unparseable_input_is_kept_with_its_error(workspace, monkeypatch):
    def broken(raw, budget=None):
        raise ValueError("boom")

    monkeypatch.setattr("threads.services.message_parse", broken)
    result = _ingest(workspace, b"Message-ID: <x@y>\n\nbody")
    assert result.status == "failed"
    with workspace_context(workspace):
        message = Message.objects.get()
        assert bytes(message.raw) == b"Message-ID: <x@y>\n\nbody"
        assert message.message_id == "x@y" and "boom" in message.parse_error
        assert message.thread is None
        assert AuditEvent.objects.filter(type="message.parse_failed").exists()


def test_reply_to_missing_parent_joins_siblings_and_merges_later(workspace):
    _ingest(workspace, mail("b@x", refs=["a@x"]))
    _ingest(workspace, mail("c@x", refs=["a@x"]))
    assert _groups(workspace) == [["b@x", "c@x"]]
    _ingest(workspace, mail("z@x", refs=["y@x"]))
    assert len(_groups(workspace)) == 2
    _ingest(workspace, mail("y@x", refs=["a@x"]))  # bridges the two threads
    assert _groups(workspace) == [["b@x", "c@x", "y@x", "z@x"]]
    with workspace_context(workspace):
        assert Thread.objects.count() == 1
        assert Thread.objects.get().message_count == 4


def test_reference_loops_and_self_references_terminate(workspace):
    _ingest(workspace, mail("a@x", refs=["b@x", "a@x"]))
    _ingest(workspace, mail("b@x", refs=["a@x"]))
    _ingest(workspace, mail("c@x", refs=["c@x"]))
    assert _groups(workspace) == [["a@x", "b@x"], ["c@x"]]


SUBJECT_MAILS = [
    mail("s1@x", subject="Pricing", sender="ana@customer.example", day=0),
    mail("s2@x", subject="RE: Pricing", sender="rep@threadline-demo.com", to="ana@customer.example", day=1),
    mail("s3@x", subject="AW: [sales] Pricing", sender="bob@other.example", day=2),
    mail("s4@x", subject="Pricing", sender="ana@customer.example", day=40),
]


def test_subject_threading_needs_shared_participant_and_window(workspace):
    mail_import(workspace=workspace, messages=[(raw, "t") for raw in SUBJECT_MAILS])
    assert _groups(workspace) == [["s1@x", "s2@x"], ["s3@x"], ["s4@x"]]


def test_subject_threading_ignores_a_shared_colleague(workspace):
    one = mail("c1@x", subject="Quote", sender="ana@customer.example")
    two = mail("c2@x", subject="Quote", sender="bob@other.example")
    mail_import(workspace=workspace, messages=[(one, "t"), (two, "t")])
    assert len(_groups(workspace)) == 2


def test_arrival_order_does_not_change_threads(workspace):
    from workspaces.tests.factories import WorkspaceFactory

    mails = [
        mail("r1@x"),
        mail("r2@x", refs=["r1@x"], subject="Re: Renewal"),
        mail("r3@x", refs=["r1@x", "r2@x"], subject="Re: Renewal"),
        mail("r4@x", refs=["gone@x"], subject="Re: Renewal"),
        mail("r5@x", refs=["gone@x", "r4@x"]),
        *SUBJECT_MAILS,
    ]
    other = WorkspaceFactory(internal_domains=workspace.internal_domains)
    mail_import(workspace=workspace, messages=[(m, "t") for m in mails])
    mail_import(workspace=other, messages=[(m, "t") for m in reversed(mails)])
    assert _groups(workspace) == _groups(other)


def test_import_enqueues_one_extraction_per_changed_thread_and_audits(workspace):
    mails = [mail("j1@x"), mail("j2@x", refs=["j1@x"]), mail("j3@x", subject="Other", sender="z@z.example")]
    summary = mail_import(workspace=workspace, messages=[(m, "t") for m in mails])
    assert (summary.read, summary.new, summary.duplicate, summary.failed) == (3, 3, 0, 0)
    with workspace_context(workspace):
        jobs = list(Job.objects.values_list("task", "payload"))
        assert sorted(p["thread_id"] for _, p in jobs) == sorted(Thread.objects.values_list("pk", flat=True))
        assert {t for t, _ in jobs} == {"extract_thread"}
        event = AuditEvent.objects.get(type="mail.imported")
        assert event.data_json["new"] == 3
    mail_import(workspace=workspace, messages=[(m, "t") for m in mails])  # nothing new: no job
    with workspace_context(workspace):
        assert Job.objects.count() == 2


def test_attachments_recorded_and_stored_up_to_the_limit(workspace, settings):
    from email.message import EmailMessage

    settings.THREADLINE_ATTACHMENT_MAX_BYTES = 1000
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "a@c.example", "b@d.example", "Files", "<att@x>"
    msg.set_content("see attached")
    msg.add_attachment(b"small", maintype="application", subtype="pdf", filename="quote.pdf")
    msg.add_attachment(b"x" * 5000, maintype="application", subtype="zip", filename="big.zip")
    _ingest(workspace, msg.as_bytes())
    with workspace_context(workspace):
        small, big = Attachment.objects.order_by("size")
    assert (small.filename, small.content_type, small.size) == ("quote.pdf", "application/pdf", 5)
    assert small.file and small.file.read() == b"small"
    assert big.size == 5000 and not big.file and len(big.sha256) == 64


def test_html_only_mail_gets_text(workspace):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = "a@c.example", "Hi", "<h@x>"
    msg.set_content("<p>Hello <b>there</b></p><script>x()</script><blockquote>old</blockquote>", subtype="html")
    _ingest(workspace, msg.as_bytes())
    with workspace_context(workspace):
        message = Message.objects.get()
    assert message.text.startswith("Hello there") and "x()" not in message.text
    assert message.reply_text == "Hello there"
    assert "<script>" in message.html  # kept as sent; sanitized when shown


# --- sources and the command -------------------------------------------------------------------
def _mbox(mails):
    out = b""
    for m in mails:
        out += b"From sender@example.com Mon Mar  2 09:00:00 2026\n" + m.replace(b"\r\n", b"\n") + b"\n"
    return out


def test_ingest_command_reads_every_source_kind(workspace, tmp_path, capsys):
    (tmp_path / "one.eml").write_bytes(mail("e1@x"))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "two.eml").write_bytes(mail("e2@x"))
    (folder / "notes.txt").write_bytes(b"not mail at all\n")
    (tmp_path / "box.mbox").write_bytes(_mbox([mail("m1@x", body="From here on\nok"), mail("m2@x")]))
    (tmp_path / "box.mbox.gz").write_bytes(gzip.compress(_mbox([mail("g1@x"), mail("g2@x")])))
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.host").write_bytes(mail("d1@x"))
    (maildir / "cur" / "2.host:2,S").write_bytes(mail("d2@x"))
    paths = [str(p) for p in (tmp_path / "one.eml", folder, tmp_path / "box.mbox", tmp_path / "box.mbox.gz", maildir)]
    call_command("ingest", *paths, workspace=workspace.slug)
    out = capsys.readouterr().out
    assert "read 8 messages from 6 of 7 files: new 8, duplicate 0, conflict 0, failed 0" in out
    assert f"skipped: not mail: it does not start with a header line (name: value): {folder / 'notes.txt'}" in out
    with workspace_context(workspace):
        body = Message.objects.get(message_id="m1@x").text
    assert "From here on" in body
    call_command("ingest", *paths, workspace=workspace.slug)
    assert "read 8 messages from 6 of 7 files: new 0, duplicate 8" in capsys.readouterr().out


def test_export_threads_json(workspace, tmp_path):
    mail_import(workspace=workspace, messages=[(mail("x1@x"), "t"), (mail("x2@x", in_reply_to="x1@x"), "t")])
    out = tmp_path / "export.json"
    call_command("export_threads", workspace=workspace.slug, output=str(out))
    document = json.loads(out.read_text())
    (thread,) = document["threads"]
    assert [m["message_id"] for m in thread["messages"]] == ["x1@x", "x2@x"]
    second = thread["messages"][1]
    assert second["in_reply_to"] == ["x1@x"] and second["references"] == []
    assert set(second) == {"message_id", "in_reply_to", "references", "subject", "from", "date", "reply_text"}


def test_demo_mailbox_imports_into_threads(workspace):
    from threads.demo import demo_mail_import

    summary = demo_mail_import(workspace)
    assert summary.new >= 40 and summary.failed == 0
    with workspace_context(workspace):
        assert Thread.objects.count() >= 12
        contacts = set(Thread.objects.values_list("primary_contact_email", flat=True))
    assert all(c and not c.endswith("threadline-demo.com") for c in contacts)
    assert demo_mail_import(workspace).new == 0


def test_large_message_raw_bytes_kept_exactly(workspace):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = "a@c.example", "Big", "<big@x>"
    msg.set_content("see attached")
    msg.add_attachment(bytes(range(256)) * 2000, maintype="application", subtype="octet-stream", filename="b.bin")
    raw = msg.as_bytes()
    assert len(raw) > 256 * 1024
    _ingest(workspace, raw)
    with workspace_context(workspace):
        message = Message.objects.get()
        assert bytes(message.raw) == raw and message.raw_size == len(raw)
        assert message.attachments.get().size == 512000


def test_truncated_gzip_mbox_keeps_what_it_could_read(workspace, tmp_path, capsys):
    whole = gzip.compress(_mbox([mail(f"t{n}@x", body="x" * 2000) for n in range(20)]))
    (tmp_path / "cut.mbox.gz").write_bytes(whole[: len(whole) * 2 // 3])
    (tmp_path / "after.eml").write_bytes(mail("after@x"))
    call_command("ingest", str(tmp_path / "cut.mbox.gz"), str(tmp_path / "after.eml"), workspace=workspace.slug)
    out = capsys.readouterr().out
    with workspace_context(workspace):
        assert Message.objects.filter(message_id="after@x").exists()
        assert Message.objects.count() >= 2
    assert "failed 0" in out or "failed 1" in out


def test_a_source_that_breaks_midway_still_hands_off_what_was_committed(workspace):
    def source():
        yield mail("ok1@x"), "t"
        raise ConnectionError("connection dropped")

    with pytest.raises(ConnectionError):
        mail_import(workspace=workspace, messages=source())
    with workspace_context(workspace):
        assert Message.objects.filter(message_id="ok1@x").exists()
        assert Job.objects.count() == 1
        assert AuditEvent.objects.filter(type="mail.imported").exists()
