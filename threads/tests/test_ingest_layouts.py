"""``manage.py ingest`` on real mail layouts: every file read or listed as skipped, folders kept."""

import pytest
from django.core.management import call_command

from threads.ingest.parse import message_parse
from threads.models import MailImport, Message
from threads.tests.test_sources import _maildirpp_tree, _nested_tree
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context

pytestmark = pytest.mark.django_db


def _ingest(workspace, capsys, *paths) -> str:
    call_command("ingest", *map(str, paths), workspace=workspace.slug, no_progress=True)
    return capsys.readouterr().out


def _folders(workspace) -> dict[str, int]:
    with workspace_context(workspace):
        rows = Message.objects.values_list("folder", flat=True)
        return {folder: list(rows).count(folder) for folder in set(rows)}


def test_maildirpp_store_is_read_whole_with_its_folders(workspace, tmp_path, capsys, corpus):
    pool = iter(sorted({p.read_bytes() for p in (corpus / "mime/stalwart-mail-parser/eml").rglob("*.eml")}))
    root = tmp_path / "Maildir"
    files = _maildirpp_tree(root, pool)
    out = _ingest(workspace, capsys, root)
    print(out)
    assert len(files) == 45
    assert "read 29 messages from 29 of 45 files:" in out
    assert "skipped 16 files (empty 1, in tmp/ 2, mail store index 12, not mail 1):" in out
    assert f"  skipped: in tmp/: delivery not finished: {root / 'tmp/16.host'}" in out
    with workspace_context(workspace):
        assert Message.objects.count() + _duplicates(out) == 29
        record = MailImport.objects.get()
        assert (record.files_seen, record.files_skipped, record.messages_read) == (45, 16, 29)
        assert len(record.skipped_json) == 16 and record.finished_at
        event = AuditEvent.objects.filter(type="mail.imported").latest("id")
        assert event.data_json["files_seen"] == 45 and event.data_json["skipped"] == 16
        assert event.data_json["skipped_by_reason"] == {"empty": 1, "in tmp/": 2, "mail store index": 12, "not mail": 1}
    folders = _folders(workspace)
    assert {"INBOX", "Sent", "Archive", "Customers", "Customers/Acme", "Customers/Globex", "Entwürfe"} == set(folders)
    # Again: nothing new, the same accounting.
    again = _ingest(workspace, capsys, root)
    assert "read 29 messages from 29 of 45 files: new 0," in again and "skipped 16 files" in again


def test_nested_maildirs_and_loose_files_are_read_whole(workspace, tmp_path, capsys, corpus):
    pool = iter(sorted({p.read_bytes() for p in (corpus / "mime/stalwart-mail-parser/eml").rglob("*.eml")}))
    root = tmp_path / "export"
    files = _nested_tree(root, pool, corpus)
    out = _ingest(workspace, capsys, root)
    print(out)
    assert len(files) == 53
    assert "read 47 messages from 41 of 53 files:" in out
    assert "skipped 12 files" in out
    folders = _folders(workspace)
    assert {"Sent", "Archive/2019/Projects/Q3", "Clients/Acme", "Mail/Inbox/Team"} <= set(folders)


def _duplicates(out: str) -> int:
    """Messages of the corpus that share a Message-ID with another (counted, not stored twice)."""
    counts = out.split(":", 1)[1].split(";", 1)[0]
    parts = dict(part.strip().rsplit(" ", 1) for part in counts.split(","))
    return int(parts["duplicate"]) + int(parts["conflict"])


def test_a_folder_of_eml_files_some_starting_with_blank_lines(workspace, tmp_path, capsys, corpus):
    """47 real messages, 8 of them starting with blank or white-space-only lines (39 of 47 were read)."""
    emls = sorted({p.read_bytes() for p in (corpus / "mime/stalwart-mail-parser/eml").rglob("*.eml")})[:47]
    folder = tmp_path / "exported"
    folder.mkdir()
    leads = [b"\n", b"\r\n", b" \n", b"\t\n\n", b"\n   \n", b"\r\n\r\n", b"  \t  \n", b"\n\n\n"]
    for n, raw in enumerate(emls):
        (folder / f"{n:02}.eml").write_bytes((leads[n % 8] if n < 8 else b"") + raw)
    out = _ingest(workspace, capsys, folder)
    print(out)
    assert "read 47 messages from 47 of 47 files:" in out and "skipped" not in out
    with workspace_context(workspace):
        blank_led = Message.objects.filter(source__in=[f"file:{folder / f'{n:02}.eml'}" for n in range(8)])
        assert blank_led.count() + _duplicates(out) >= 8
        assert not blank_led.exclude(parse_status="parsed").exists()
        for message in blank_led:  # the header block is read as headers, not taken for body text
            original = emls[int(message.source[-6:-4])]
            assert message.headers_json == message_parse(original).headers and message.headers_json
