"""poll_imap against a real Dovecot that the test starts on loopback (TLS, high port)."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command

from threads.ingest.imap import ImapAccount
from threads.models import ImapCursor, Message
from threads.services import imap_poll
from threads.tests.dovecot import PASSWORD, USER, Dovecot, dovecot_binary
from threads.tests.mail import mail
from workspaces.rls import workspace_context

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not dovecot_binary(), reason="the dovecot binary is absent (Debian package dovecot-imapd)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the private dovecot server needs root to start"),
]


@pytest.fixture
def dovecot():
    # Not under pytest's tmp folder: that is private to root, and dovecot reads mail as its own user.
    folder = Path(tempfile.mkdtemp(prefix="threadline-dovecot-"))
    folder.chmod(0o755)
    server = Dovecot(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _account(server):
    return ImapAccount(host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, ca_file=str(server.cert))


def test_poll_is_incremental_by_uid(dovecot, workspace):
    dovecot.deliver(mail("i1@x"))
    dovecot.deliver(mail("i2@x", in_reply_to="i1@x"))
    first = imap_poll(workspace=workspace, account=_account(dovecot))
    assert (first.read, first.new) == (2, 2)
    again = imap_poll(workspace=workspace, account=_account(dovecot))
    assert again.read == 0
    dovecot.deliver(mail("i3@x", in_reply_to="i2@x"))
    third = imap_poll(workspace=workspace, account=_account(dovecot))
    assert (third.read, third.new) == (1, 1)
    with workspace_context(workspace):
        assert Message.objects.filter(source__startswith="imap:").count() == 3
        assert len(set(Message.objects.values_list("thread_id", flat=True))) == 1
        cursor = ImapCursor.objects.get()
    assert cursor.last_uid == 3 and cursor.uidvalidity > 0


def test_new_uidvalidity_reads_again_without_duplicates(dovecot, workspace):
    dovecot.deliver(mail("u1@x"))
    imap_poll(workspace=workspace, account=_account(dovecot))
    with workspace_context(workspace):
        ImapCursor.objects.update(uidvalidity=1)  # as if the server had renumbered the mailbox
    summary = imap_poll(workspace=workspace, account=_account(dovecot))
    assert (summary.read, summary.new, summary.duplicate) == (1, 0, 1)


def test_poll_imap_command_reads_credentials_from_environment(dovecot, workspace, monkeypatch, capsys):
    dovecot.deliver(mail("c1@x"))
    monkeypatch.setenv("IMAP_PASSWORD", PASSWORD)
    call_command(
        "poll_imap",
        workspace=workspace.slug,
        host="127.0.0.1",
        port=dovecot.port,
        user=USER,
        ca_file=str(dovecot.cert),
    )
    assert "read 1 messages: new 1, duplicate 0" in capsys.readouterr().out


def test_wrong_certificate_is_refused(dovecot, workspace, tmp_path):
    import ssl

    from threads.tests.dovecot import _certificate

    other_cert, _ = _certificate(tmp_path)
    account = ImapAccount(host="127.0.0.1", port=dovecot.port, user=USER, password=PASSWORD, ca_file=str(other_cert))
    with pytest.raises(ssl.SSLError):
        imap_poll(workspace=workspace, account=account)
