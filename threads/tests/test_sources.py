"""MailWalk: every file under the given paths is read or skipped with a reason, in every layout.

The trees are built in a temporary folder from the public corpus (read in place) plus a few
planted bad files. No database.
"""

import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threads.ingest.sources import (
    _MBOX_FROM,
    IN_TMP,
    STORE_INDEX,
    MailItem,
    MailWalk,
    mbox_iter,
)
from threads.tests.mail import mail

EML = "mime/stalwart-mail-parser/eml"
DOVECOT = "threading/dovecot-imaptest"
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
SENTENCE = b"Call Jane about the renewal on Monday.\n"
NOT_MAIL_SENTENCE = "not mail: it does not start with a header line (name: value)"
NOT_MAIL_BINARY = "not mail: binary data"
UIDLIST = b"3 V1700000000 N5 G0123456789abcdef\n1 :1700000000.M1P1.host\n"


def _corpus_emls(corpus: Path) -> list[bytes]:
    """The distinct corpus messages, LF-only ones first (a CRLF copy of them is a new message)."""
    raws = list(dict.fromkeys(p.read_bytes() for p in sorted((corpus / EML).rglob("*.eml"))))
    return sorted(raws, key=lambda raw: b"\r\n" in raw)


@pytest.fixture
def pool(corpus):
    """Draw distinct corpus messages one at a time: ``next(pool)``."""
    return iter(_corpus_emls(corpus))


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _lay(root: Path, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> Path:
    """Write ``files`` (relative path → bytes) under root; ``dirs`` are folders to create empty."""
    for name in dirs:
        (root / name).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _maildir(*prefixes: str) -> tuple[str, ...]:
    return tuple(f"{p}{sub}" for p in prefixes for sub in ("cur", "new", "tmp"))


def _walk(*paths):
    walk = MailWalk(list(paths))
    items = list(walk)
    assert walk.files_seen == walk.files_read + len(walk.skipped)
    return walk, items


def _skipped(walk: MailWalk, root: Path) -> dict[str, str]:
    return {os.path.relpath(s.path, root): s.reason for s in walk.skipped}


def _folders(items: list[MailItem]) -> dict[str, int]:
    return dict(Counter(item.folder for item in items))


# --- layouts -----------------------------------------------------------------------------------
def test_plain_maildir(tmp_path, pool):
    msgs = [next(pool) for _ in range(8)]
    root = _lay(
        tmp_path / "Maildir",
        {
            **{f"cur/{n}.host:2,S": msgs[n] for n in range(5)},
            "new/5.host": msgs[5],
            "new/6.host": msgs[6],
            "new/7.host": _crlf(msgs[7]),
            "new/8.host": b"",
            "tmp/9.host": msgs[0][:100],
            "tmp/10.host": b"",
            "dovecot-uidlist": UIDLIST,
            "maildirsize": b"0S\n",
        },
        _maildir(""),
    )
    walk, items = _walk(root)
    assert (walk.files_seen, walk.files_read, len(walk.skipped)) == (13, 8, 5)
    assert _skipped(walk, root) == {
        "new/8.host": "empty",
        "tmp/10.host": IN_TMP,
        "tmp/9.host": IN_TMP,
        "dovecot-uidlist": STORE_INDEX,
        "maildirsize": STORE_INDEX,
    }
    assert _folders(items) == {"INBOX": 8}
    assert [i.raw for i in items] == [*msgs[:7], _crlf(msgs[7])]
    assert items[0].source == f"maildir:{root / 'cur/0.host:2,S'}"
    assert MailWalk([root]).count_hint() == 9  # the files in cur/ and new/, counted by name


def _maildirpp_tree(root: Path, pool) -> dict[str, bytes]:
    """A Dovecot/Courier Maildir++ store: 45 files, 29 messages in 7 folders (16 files read before)."""
    m = lambda: next(pool)  # noqa: E731
    files = {
        **{f"cur/{n}.host:2,S": m() for n in range(9)},
        "cur/9.host:2,S": _crlf(m()),
        **{f"new/{n}.host": m() for n in range(10, 14)},
        "new/14.host": b"\n  \n\t\n" + m(),
        "new/15.host": b"",
        "tmp/16.host": b"Return-Path: <",
        "dovecot-uidlist": UIDLIST,
        "dovecot-uidvalidity": b"65a1b2c3\n",
        "dovecot-uidvalidity.65a1b2c3": b"",
        "dovecot.index.log": b"\x01\x02\x00\x00" * 16,
        "dovecot.list.index": b"\x07\x00\x00\x00" * 16,
        "subscriptions": b"Sent\nArchive\nCustomers\nCustomers/Acme\n",
        ".Sent/maildirfolder": b"",
        ".Sent/dovecot-uidlist": UIDLIST,
        **{f".Sent/cur/{n}.host:2,S": m() for n in range(4)},
        ".Sent/new/4.host": m(),
        ".Archive/maildirfolder": b"",
        ".Archive/cur/1.host:2,S": m(),
        ".Archive/cur/2.host:2,S": m(),
        ".Archive/cur/3.host:2,S": BINARY,
        ".Customers/maildirfolder": b"",
        ".Customers/cur/1.host:2,S": m(),
        ".Customers/cur/2.host:2,S": m(),
        ".Customers.Acme/maildirfolder": b"",
        ".Customers.Acme/cur/1.host:2,S": m(),
        ".Customers.Acme/cur/2.host:2,S": m(),
        ".Customers.Acme/new/3.host": m(),
        ".Customers.Acme/tmp/4.host": m(),
        ".Customers/.Globex/maildirfolder": b"",
        ".Customers/.Globex/cur/1.host:2,S": m(),
        ".Entw&APw-rfe/cur/1.host:2,S": m(),  # IMAP modified UTF-7: "Entwürfe"
    }
    dirs = _maildir(
        "", ".Sent/", ".Archive/", ".Customers/", ".Customers.Acme/", ".Customers/.Globex/", ".Entw&APw-rfe/"
    )
    _lay(root, files, dirs)
    return files


def test_maildirpp_store_reads_every_dot_folder(tmp_path, pool):
    root = tmp_path / "mail"
    files = _maildirpp_tree(root, pool)
    walk, items = _walk(root)
    assert len(files) == 45
    assert (walk.files_seen, walk.files_read, len(walk.skipped)) == (45, 29, 16)
    assert _skipped(walk, root) == {
        "new/15.host": "empty",
        "tmp/16.host": IN_TMP,
        **{name: STORE_INDEX for name in files if "/" not in name and not name.startswith(("cur", "new"))},
        ".Sent/maildirfolder": STORE_INDEX,
        ".Sent/dovecot-uidlist": STORE_INDEX,
        ".Archive/maildirfolder": STORE_INDEX,
        ".Archive/cur/3.host:2,S": NOT_MAIL_BINARY,
        ".Customers/maildirfolder": STORE_INDEX,
        ".Customers.Acme/maildirfolder": STORE_INDEX,
        ".Customers.Acme/tmp/4.host": IN_TMP,
        ".Customers/.Globex/maildirfolder": STORE_INDEX,
    }
    assert _folders(items) == {
        "INBOX": 15,
        "Archive": 2,
        "Customers": 2,
        "Customers/Globex": 1,
        "Customers/Acme": 3,
        "Entwürfe": 1,
        "Sent": 5,
    }
    read = [raw for name, raw in files.items() if name not in _skipped(walk, root)]
    assert sorted(i.raw for i in items) == sorted(read)  # exact bytes, leading blank lines kept
    assert MailWalk([root / ".Sent"]).count_hint() == 5
    assert {i.folder for i in MailWalk([root / ".Customers.Acme"])} == {"Customers/Acme"}


def _nested_tree(root: Path, pool, corpus: Path) -> dict[str, bytes]:
    """Maildirs inside plain folders and plain folders inside Maildirs, loose files beside cur/:
    53 files, 47 messages in 12 folders (26 files read before)."""
    m = lambda: next(pool)  # noqa: E731
    files = {
        "a.eml": m(),
        "b.eml": m(),
        ".hidden.eml": m(),
        "notes.txt": SENTENCE,
        "empty.eml": b"",
        "Sent.mbox": (corpus / DOVECOT / "thread.mbox").read_bytes(),
        # Archive/2019 is a Maildir holding loose files, a plain folder and a Maildir in that.
        **{f"Archive/2019/cur/{n}.host:2,S": m() for n in range(3)},
        "Archive/2019/new/3.host": m(),
        "Archive/2019/new/4.host": m(),
        "Archive/2019/tmp/5.host": m(),
        "Archive/2019/dovecot-uidlist": UIDLIST,
        "Archive/2019/forwarded.eml": m(),
        "Archive/2019/spaces-first.eml": b" \n\t\n" + m(),
        "Archive/2019/Projects/kickoff.eml": m(),
        "Archive/2019/Projects/budget.eml": m(),
        "Archive/2019/Projects/Q3/cur/1.host:2,S": m(),
        "Archive/2019/Projects/Q3/cur/2.host:2,S": m(),
        "Archive/2019/Projects/Q3/new/3.host": m(),
        # Archive/2020 is a plain folder with a gzipped mbox.
        "Archive/2020/1.eml": m(),
        "Archive/2020/2.eml": m(),
        "Archive/2020/3.eml": m(),
        "Archive/2020/crlf.eml": _crlf(m()),
        "Archive/2020/spaces-first.eml": b"   \n \n" + m(),
        "Archive/2020/old.mbox.gz": gzip.compress((corpus / DOVECOT / "thread5.mbox").read_bytes()),
        "Archive/2020/.DS_Store": b"\x00\x00\x00\x01Bud1" + bytes(64),
        # Clients is a Maildir (Courier) with a dot-folder, a loose file and a plain folder.
        **{f"Clients/cur/{n}.host:2,S": m() for n in range(4)},
        "Clients/new/4.host": m(),
        "Clients/.Acme/maildirfolder": b"",
        "Clients/.Acme/cur/1.host:2,S": m(),
        "Clients/.Acme/cur/2.host:2,S": m(),
        "Clients/loose.eml": m(),
        "Clients/Notes/call.eml": m(),
        "Clients/Notes/scan.png": BINARY,
        "Clients/courierimapsubscribed": b"INBOX.Acme\n",
        "Clients/courierimapkeywords/:list": b"$Label1\n",
        # Mail/Inbox: a Maildir two levels down, with a dot-folder.
        **{f"Mail/Inbox/cur/{n}.host:2,S": m() for n in range(6)},
        "Mail/Inbox/new/6.host": m(),
        "Mail/Inbox/new/7.host": m(),
        "Mail/Inbox/tmp/8.host": m(),
        "Mail/Inbox/dovecot.index": bytes(32),
        "Mail/Inbox/dovecot.index.log": bytes(32),
        "Mail/Inbox/.Team/cur/1.host:2,S": m(),
        "Mail/Inbox/.Team/cur/2.host:2,S": m(),
    }
    dirs = _maildir("Archive/2019/", "Archive/2019/Projects/Q3/", "Clients/", "Clients/.Acme/", "Mail/Inbox/")
    _lay(root, files, dirs + ("Mail/Inbox/.Team/new",))
    return files


def test_nested_maildirs_plain_folders_and_loose_files(tmp_path, pool, corpus):
    root = tmp_path / "export"
    files = _nested_tree(root, pool, corpus)
    walk, items = _walk(root)
    assert len(files) == 53
    assert (walk.files_seen, walk.files_read, len(walk.skipped)) == (53, 41, 12)
    assert _skipped(walk, root) == {
        "notes.txt": NOT_MAIL_SENTENCE,
        "empty.eml": "empty",
        "Archive/2019/tmp/5.host": IN_TMP,
        "Archive/2019/dovecot-uidlist": STORE_INDEX,
        "Archive/2020/.DS_Store": "desktop metadata (.DS_Store, Thumbs.db)",
        "Clients/.Acme/maildirfolder": STORE_INDEX,
        "Clients/Notes/scan.png": NOT_MAIL_BINARY,
        "Clients/courierimapsubscribed": STORE_INDEX,
        "Clients/courierimapkeywords/:list": STORE_INDEX,
        "Mail/Inbox/tmp/8.host": IN_TMP,
        "Mail/Inbox/dovecot.index": STORE_INDEX,
        "Mail/Inbox/dovecot.index.log": STORE_INDEX,
    }
    assert _folders(items) == {
        "": 3,
        "Sent": 3,
        "Archive/2019": 7,
        "Archive/2019/Projects": 2,
        "Archive/2019/Projects/Q3": 3,
        "Archive/2020": 5,
        "Archive/2020/old": 5,
        "Clients": 6,
        "Clients/Acme": 2,
        "Clients/Notes": 1,
        "Mail/Inbox": 8,
        "Mail/Inbox/Team": 2,
    }
    assert len(items) == 47
    singles = [raw for name, raw in files.items() if "mbox" not in name and name not in _skipped(walk, root)]
    assert sorted(i.raw for i in items if not i.source.startswith("mbox:")) == sorted(singles)
    assert MailWalk([root]).count_hint() is None  # an mbox: the number is not cheap to know


def test_plain_folder_of_files_good_and_bad(tmp_path, pool):
    good = [next(pool) for _ in range(7)]
    root = _lay(
        tmp_path / "folder",
        {
            "1.eml": good[0],
            "2.eml": good[1],
            "3.eml": good[2],
            "blank-first.eml": b"\n\n" + good[3],
            "spaces-first.eml": b" \n\t\r\n" + good[4],
            "crlf.eml": _crlf(good[5]),
            ".hidden": good[6],
            "empty.eml": b"",
            "spaces.eml": b"  \n\t\n\r\n",
            "logo.png": BINARY,
            "todo.txt": SENTENCE,
            "config.yaml": b"name: threadline\nversion: 2\n",
        },
    )
    walk, items = _walk(root)
    assert (walk.files_seen, walk.files_read, len(walk.skipped)) == (12, 7, 5)
    assert _skipped(walk, root) == {
        "empty.eml": "empty",
        "spaces.eml": "empty",
        "logo.png": NOT_MAIL_BINARY,
        "todo.txt": NOT_MAIL_SENTENCE,
        "config.yaml": "not mail: no From, Date, Subject, To, Message-ID, Received or Content-Type header",
    }
    assert _folders(items) == {"": 7}
    assert items[0].raw == good[6] and items[0].source == f"file:{root / '.hidden'}"
    assert sorted(i.raw for i in items) == sorted(
        [*good[:3], b"\n\n" + good[3], b" \n\t\r\n" + good[4], _crlf(good[5]), good[6]]
    )
    assert MailWalk([root]).count_hint() == 7


def test_files_given_directly_and_mbox_anywhere(tmp_path, pool, corpus):
    thread5 = (corpus / DOVECOT / "thread5.mbox").read_bytes()
    root = _lay(
        tmp_path,
        {
            "one.eml": b"\n" + next(pool),
            "Sent.mbox": thread5,
            "Archive/old.mbox.gz": gzip.compress(thread5),
            "Maildir/cur/1.host:2,S": next(pool),
            "Maildir/backup.mbx": (corpus / DOVECOT / "thread.mbox").read_bytes(),
            "Maildir/.Sent/cur/1.host:2,S": next(pool),
            "Maildir/.Sent/2019.mbox.gz": gzip.compress(thread5),
            "Maildir/Team/Q1.mbox": thread5,
        },
        _maildir("Maildir/", "Maildir/.Sent/"),
    )
    walk, items = _walk(root / "one.eml", root / "Sent.mbox", root / "Archive/old.mbox.gz")
    assert (walk.files_seen, walk.files_read, walk.skipped) == (3, 3, [])
    assert _folders(items) == {"": 1, "Sent": 5, "old": 5}
    assert items[1].source == f"mbox:{root / 'Sent.mbox'}#1" and items[5].source == f"mbox:{root / 'Sent.mbox'}#5"
    walk, items = _walk(root / "Maildir", root / "Archive")
    assert (walk.files_seen, walk.files_read, walk.skipped) == (6, 6, [])
    assert _folders(items) == {"INBOX": 1, "backup": 3, "Sent": 1, "Sent/2019": 5, "Team/Q1": 5, "old": 5}


def test_symlink_loop_ends_and_each_folder_is_walked_once(tmp_path, pool):
    root = _lay(tmp_path / "mail", {"a.eml": next(pool), "sub/b.eml": next(pool)})
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "again").symlink_to(root / "sub", target_is_directory=True)
    walk, items = _walk(root, root / "sub")
    assert (walk.files_seen, walk.files_read, len(items)) == (2, 2, 2)


def test_unreadable_files_and_missing_paths(tmp_path, pool):
    root = _lay(tmp_path / "mail", {"ok.eml": next(pool)})
    (root / "gone.eml").symlink_to(root / "nowhere.eml")
    os.mkfifo(root / "pipe")
    walk, items = _walk(root, tmp_path / "missing.mbox")
    assert len(items) == 1
    assert _skipped(walk, tmp_path) == {
        "mail/gone.eml": "unreadable: No such file or directory",
        "mail/pipe": "not a regular file",
        "missing.mbox": "unreadable: No such file or directory",
    }


_WALK = """
import json, sys
from threads.ingest.sources import MailWalk
walk = MailWalk([sys.argv[1]])
items = list(walk)
print(json.dumps({"items": len(items), "skipped": {s.path: s.reason for s in walk.skipped}}))
"""


def test_permission_denied_is_unreadable(tmp_path, pool):
    """Root reads files whatever their mode, so under root (as in CI) the walk runs in a child
    process without the capabilities that let root ignore file modes (util-linux's setpriv)."""
    root = _lay(tmp_path / "mail", {"secret.eml": next(pool), "locked/x.eml": next(pool)})
    (root / "secret.eml").chmod(0)
    (root / "locked").chmod(0)
    try:
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            assert setpriv, "setpriv (util-linux) is needed to drop root's file-mode override"
            done = subprocess.run(
                [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--", sys.executable, "-c", _WALK, root],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parents[2],
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            found = json.loads(done.stdout)
            count = found["items"]
            skipped = {Path(path).relative_to(root).as_posix(): reason for path, reason in found["skipped"].items()}
        else:
            walk, items = _walk(root)
            count, skipped = len(items), _skipped(walk, root)
    finally:
        (root / "locked").chmod(0o755)
    assert count == 0
    assert skipped == {"secret.eml": "unreadable: Permission denied", "locked": "unreadable: Permission denied"}


def test_a_walk_is_iterated_once(tmp_path, pool):
    root = _lay(tmp_path / "mail", {"a.eml": next(pool), "b.txt": SENTENCE})
    walk = MailWalk([root])
    list(walk)
    with pytest.raises(RuntimeError):
        iter(walk)


# --- mbox boundaries ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        b"From user@domain  Fri Feb 22 23:00:00 2008 +0200\n",  # dovecot imaptest
        b"From user@domain  Fri Feb 22 15:06:23 2008\r\n",
        b"From - Mon Jan  1 00:00:00 2024\n",  # Thunderbird
        b"From -  Mon Jan  1 00:00:00 2024\n",  # two spaces after the sender: still a From_ line
        b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n",
        b"From 1234567890123@xxx Sat Jan 03 01:05:34 +0000 2009\n",  # Gmail Takeout: zone before the year
        b"From ana@customer.example Mon Mar  2 09:00 2026\n",  # no seconds
        b"From ana@customer.example Mon Mar  2 09:00:00 PST 2026\n",
        b"From uucp!ana Mon Mar  2 09:00:00 2026 remote from bigsite\n",
    ],
)
def test_mbox_from_lines(line):
    assert _MBOX_FROM.match(line)


@pytest.mark.parametrize(
    "line",
    [
        b"From the desk of Jane, March 2025\n",
        b"From here on we talk about 2025\n",
        b"From: ana@customer.example\n",
        b"From ana@customer.example\n",
        b"From Monday Jan 1 the price is 2024 EUR\n",
        b"From ana Mon Mar 2 2026\n",
    ],
)
def test_body_lines_that_are_not_from_lines(line):
    assert not _MBOX_FROM.match(line)


def _mbox(mails: list[bytes], newline: bytes = b"\n") -> bytes:
    out = b""
    for m in mails:
        out += b"From sender@example.com Mon Mar  2 09:00:00 2026" + newline + m + newline
    return out


def _lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def test_a_from_line_in_the_body_does_not_split(tmp_path):
    first = _lf(mail("m1@x", body="Dear Ana,\n\nFrom the desk of Jane, March 2025\n\nFrom here on 2025\nok"))
    second = _lf(mail("m2@x"))
    (tmp_path / "box.mbox").write_bytes(b"\n\n" + _mbox([first, second]))
    walk, items = _walk(tmp_path / "box.mbox")
    assert [i.raw for i in items] == [first, second]
    assert (walk.files_read, [i.source for i in items]) == (
        1,
        [f"mbox:{tmp_path / 'box.mbox'}#1", f"mbox:{tmp_path / 'box.mbox'}#2"],
    )


def test_thunderbird_from_dash_line_splits(tmp_path):
    first, second = _lf(mail("t1@x")), _lf(mail("t2@x"))
    (tmp_path / "Inbox").write_bytes(
        b"From -  Mon Jan  1 00:00:00 2024\n" + first + b"\nFrom - Tue Jan  2 00:00:00 2024\n" + second
    )
    walk, items = _walk(tmp_path / "Inbox")
    assert [i.raw for i in items] == [first, second] and _folders(items) == {"Inbox": 2}


def test_quoted_from_lines_lose_one_quote(tmp_path):
    body = b"Subject: q\n\nhi\n>From the archive\n>>From deeper\nFrom not after a blank line 2024\n"
    (tmp_path / "box.mbox").write_bytes(
        b"From a@b Mon Mar  2 09:00:00 2026\n" + body + b"\nFrom a@b Mon Mar  2 09:00:00 2026\nSubject: 2\n\nx\n"
    )
    (raw, _), (raw2, _) = list(mbox_iter(tmp_path / "box.mbox"))
    assert raw == b"Subject: q\n\nhi\nFrom the archive\n>From deeper\nFrom not after a blank line 2024\n"
    assert raw2 == b"Subject: 2\n\nx\n"


def test_crlf_mbox(tmp_path):
    mails = [_crlf(mail(f"c{n}@x", body=f"line\r\n\r\nFrom the team, May 2025\r\nbye {n}")) for n in range(3)]
    (tmp_path / "crlf.mbox").write_bytes(_mbox(mails, newline=b"\r\n"))
    walk, items = _walk(tmp_path / "crlf.mbox")
    assert [i.raw for i in items] == mails


def _noise(seed: int, lines: int) -> str:
    rng = random.Random(seed)
    return "\n".join(rng.randbytes(32).hex() for _ in range(lines))


@pytest.mark.parametrize(("count", "lines"), [(3, 1), (20, 40)])
def test_truncated_gzip_mbox_yields_what_decompressed_and_says_so(tmp_path, count, lines):
    mails = [_lf(mail(f"t{n}@x", body=_noise(n, lines))) for n in range(count)]
    whole = gzip.compress(_mbox(mails))
    (tmp_path / "cut.mbox.gz").write_bytes(whole[: len(whole) * 2 // 3])
    walk, items = _walk(tmp_path / "cut.mbox.gz")
    assert (len(whole) < 4096) == (count == 3)
    assert 1 <= len(items) <= count
    assert [i.raw for i in items[:-1]] == mails[: len(items) - 1]  # the ones before the break are whole
    assert _mbox(mails).find(items[-1].raw) > 0  # and the cut one is kept as far as it goes
    assert walk.files_read == 0 and walk.files_seen == 1
    (skipped,) = walk.skipped
    assert skipped.reason == (
        f"truncated: the gzip data ends early; {len(items)} messages read before the break (the last may be cut short)"
    )


def test_truncated_gzip_message_and_gzip_cut_in_its_header(tmp_path, pool):
    raw = next(pool)
    whole = gzip.compress(raw)
    (tmp_path / "cut.eml.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "header.gz").write_bytes(whole[:5])
    (tmp_path / "whole.eml.gz").write_bytes(whole + gzip.compress(b""))  # two members
    walk, items = _walk(tmp_path)
    assert [i.source for i in items] == [f"file:{tmp_path / 'cut.eml.gz'}", f"file:{tmp_path / 'whole.eml.gz'}"]
    assert raw.startswith(items[0].raw) and items[1].raw == raw
    assert _skipped(walk, tmp_path) == {
        "cut.eml.gz": "truncated: the gzip data ends early; the message is kept as far as it goes",
        "header.gz": "truncated: the gzip data ends early; nothing could be read",
    }


def test_corpus_mboxes_split_as_dovecot_counts_them(corpus):
    expected = {"sort-subject": 15, "thread": 3, "thread5": 5, "thread-orderedsubject2": 8}
    walk, items = _walk(*(corpus / DOVECOT / f"{name}.mbox" for name in expected))
    assert _folders(items) == expected


# --- any layout: a property --------------------------------------------------------------------
BAD = {
    "empty": b"",
    "spaces": b" \n\t\n",
    "binary": BINARY,
    "sentence": SENTENCE,
}
GOOD_KINDS = ("plain", "blank-first", "crlf")
# Where a file goes in its folder; in a Maildir also "cur", "new", "tmp".
containers = st.lists(st.tuples(st.sampled_from(["plain", "maildir", "dot"]), st.integers(0, 10**6)), max_size=6)
placed = st.tuples(
    st.integers(0, 10**6),  # which container
    st.sampled_from(["loose", "cur", "new", "tmp"]),
    st.one_of(
        st.tuples(st.just("good"), st.integers(0, 5), st.sampled_from(GOOD_KINDS)),
        st.tuples(st.just("bad"), st.sampled_from(sorted(BAD)), st.just("")),
        st.tuples(st.just("uidlist"), st.just(0), st.just("")),
        st.tuples(st.just("mbox"), st.lists(st.integers(0, 5), min_size=1, max_size=3), st.booleans()),
    ),
)


def _variant(raw: bytes, kind: str) -> bytes:
    return {"plain": raw, "blank-first": b"\n \n" + raw, "crlf": _crlf(raw)}[kind]


def _mboxrd(raws: list[bytes]) -> bytes:
    return _mbox([re.sub(rb"(?m)^(>*From )", rb">\1", raw) for raw in raws])


def _layout(root: Path, seeds: list[bytes], tree, files) -> tuple[int, int, Counter]:
    """Lay ``files`` out in folders described by ``tree``; return (files, read, messages)."""
    folders = [(root, "maildir" if tree and tree[0][0] == "maildir" else "plain")]
    for n, (kind, parent) in enumerate(tree):
        parent_dir, parent_kind = folders[parent % len(folders)]
        name = f".F{n}" if kind == "dot" and parent_kind == "maildir" else f"{kind[0].upper()}{n}"
        is_maildir = kind == "maildir" or name.startswith(".")
        folders.append((parent_dir / name, "maildir" if is_maildir else "plain"))
    for folder, kind in folders:
        for sub in ("cur", "new", "tmp") if kind == "maildir" else ():
            (folder / sub).mkdir(parents=True, exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
    read, messages = 0, Counter()
    for n, (where, slot, (what, which, how)) in enumerate(files):
        folder, kind = folders[where % len(folders)]
        if kind != "maildir" or (what == "mbox" and slot != "tmp"):
            slot = "loose"  # an mbox is one message in cur/ or new/, never split there
        path = folder / (f"m{n}" if slot == "loose" else f"{slot}/{n}.host")
        if what == "good":
            data = _variant(seeds[which], how)
        elif what == "bad":
            data = BAD[which]
        elif what == "uidlist":
            path, data = folder / f"dovecot.index.log.{n}", UIDLIST
        else:
            data = _mboxrd([seeds[i] for i in which])
            path, data = (path.with_name(f"b{n}.mbox.gz"), gzip.compress(data)) if how else (path, data)
        path.write_bytes(data)
        if slot == "tmp" or what in ("bad", "uidlist"):
            continue
        read += 1
        messages.update([data] if what == "good" else [seeds[i] for i in which])
    return len(files), read, messages


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(tree=containers, files=st.lists(placed, min_size=1, max_size=30))
def test_any_layout_accounts_for_every_file(corpus, tree, files):
    seeds = [raw for raw in _corpus_emls(corpus) if raw.endswith(b"\n")][:6]  # an mbox keeps the last newline
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "root"
        laid, read, messages = _layout(root, seeds, tree, files)
        walk, items = _walk(root)
    assert walk.files_seen == laid
    assert walk.files_read == read and len(walk.skipped) == laid - read
    assert Counter(i.raw for i in items) == messages
