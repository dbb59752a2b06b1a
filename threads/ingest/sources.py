"""Mail sources on disk: .eml files, folders, mbox files (gzipped too), Maildir and Maildir++.

``MailWalk(paths)`` yields every message under the given paths as a ``MailItem`` (raw bytes,
source label, mail folder), one at a time: a large mbox is streamed, never loaded whole. Every
file it meets is accounted for: it was read (``files_read``) or it is in ``skipped`` with the
reason, so an operator can see what an import left out and why.

What a file is, is decided from its content (``sniff.not_mail_reason`` on the first 64 KiB,
gunzipped first when it is gzip); where it sits decides only its folder and whether it is a
Maildir message (one message per file, never split), a delivery in progress (``tmp/``) or a
mail store's own index.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import re
import stat
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from threads.ingest.sniff import SNIFF_BYTES, not_mail_reason

logger = logging.getLogger(__name__)
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 64 * 1024

# The mbox "From_" line (mboxo/mboxrd): "From ", a sender (an address, "-" as Thunderbird
# writes, MAILER-DAEMON) and an asctime date "Www Mmm [ d]d hh:mm[:ss] [zone] yyyy", maybe
# followed by a zone ("+0200") or "remote from host". A body line "From the desk of Jane,
# March 2025" is not one, so it no longer splits a message.
_MBOX_FROM = re.compile(
    rb"From (?:\S+[ \t]+)?"
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[ \t]+"
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[ \t]+\d{1,2}[ \t]+"
    rb"\d{1,2}:\d\d(?::\d\d)?[ \t]+"
    rb"(?:(?:[A-Za-z]{1,5}|[+-]\d{4})[ \t]+){0,2}"
    rb"\d{4}(?![0-9A-Za-z])"
)
_QUOTED_FROM = re.compile(rb">+From ")
_LEADING_BLANK = re.compile(rb"(?:[ \t]*\r?\n)*")
_MBOX_SUFFIXES = (".mbox", ".mbx")

# Files a mail server or client keeps beside the mail: indexes, UID lists, subscriptions.
_STORE_FILE = re.compile(
    r"dovecot[.-].*|courierimap.*|subscriptions|maildirfolder|maildirsize|\.mh_sequences|.*\.msf", re.IGNORECASE
)
_STORE_DIRS = frozenset({"courierimapkeywords", "courierimaphieracl"})
_DESKTOP_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})

STORE_INDEX = "mail store index"
DESKTOP_METADATA = "desktop metadata (.DS_Store, Thumbs.db)"
IN_TMP = "in tmp/: delivery not finished"
EMPTY = "empty"


@dataclass(frozen=True)
class MailItem:
    raw: bytes  # the message's bytes as found (gunzipped; an mbox message without its From_ line)
    source: str  # "file:<path>", "mbox:<path>#<n>" or "maildir:<path>"
    folder: str  # the mail folder, relative to the path given: "INBOX", "Sent", "Archive/2019", ""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class _Entry:
    """A file found by the walk, and what its place in the tree says about it."""

    path: Path
    role: str  # "message" (in a Maildir's cur/ or new/), "loose", "tmp", "store", "problem"
    folder: str = ""  # the folder of a message read from it
    mbox_folder: str = ""  # the folder if it turns out to be an mbox
    reason: str = ""  # for a "problem" (a folder that cannot be listed)


class MailWalk:
    """Every message under ``paths``, and an account of every file met on the way.

    Iterate it once; afterwards ``files_seen == files_read + len(skipped)``. A folder is walked
    once however many paths or symbolic links lead to it (so a link loop ends). A folder that
    cannot be listed is one ``skipped`` entry ("unreadable: ...") and counts as one file seen,
    so nothing disappears without a word.
    """

    def __init__(self, paths: list[str | Path]):
        self.paths = [Path(p) for p in paths]
        self.files_seen = 0
        self.files_read = 0
        self.skipped: list[Skipped] = []
        self._started = False

    def __iter__(self) -> Iterator[MailItem]:
        if self._started:
            raise RuntimeError("a MailWalk can be iterated only once")
        self._started = True
        return self._walk()

    def _walk(self) -> Iterator[MailItem]:
        for entry in _entries(self.paths):
            self.files_seen += 1
            reason = yield from _entry_read(entry)
            if reason:
                self.skipped.append(Skipped(str(entry.path), reason))
                logger.debug("%s: skipped: %s", entry.path, reason)
            else:
                self.files_read += 1

    def count_hint(self) -> int | None:
        """How many messages to expect, for a progress bar; None when an mbox is involved.

        Maildir messages are counted by name; other files by their first bytes.
        """
        total = 0
        for entry in _entries(self.paths):
            if entry.role == "message":
                total += _name_reason(entry.path) is None
            elif entry.role == "loose":
                kind = _kind_peek(entry.path)
                if kind == "mbox":
                    return None
                total += kind == "mail"
        return total


# --- the walk ----------------------------------------------------------------------------------
def is_maildir(path: Path) -> bool:
    """A Maildir has cur/ and new/ (tmp/ too, but copies often lose an empty folder).

    A folder that cannot be looked into is not one: the walk lists it as unreadable."""
    try:
        return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()
    except OSError:
        return False


def _entries(paths: list[Path]) -> Iterator[_Entry]:
    """Every file under ``paths`` in sorted order, each once, with its role and folder."""
    seen: set[str] = set()  # the real paths of the folders walked
    for path in paths:
        if is_maildir(path) and path.name.startswith(".") and (path / "maildirfolder").exists():
            name = _maildirpp_name(path.name)  # a Maildir++ folder given alone: ".Sent" is "Sent"
            yield from _maildir_entries(path, name, name, seen)
        elif is_maildir(path):
            yield from _maildir_entries(path, "INBOX", "", seen)
        elif path.is_dir():
            yield from _plain_entries(path, "", seen)
        else:
            yield _Entry(path, "loose", folder="", mbox_folder=_mbox_name("", path.name))


def _listing(path: Path, seen: set[str]) -> list[os.DirEntry] | _Entry | None:
    """The folder's entries by name; an _Entry for a folder that cannot be listed; None if walked."""
    real = os.path.realpath(path)
    if real in seen:
        logger.debug("%s: already walked as %s", path, real)
        return None
    seen.add(real)
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        return _Entry(path, "problem", reason=f"unreadable: {exc.strerror or exc}")


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _maildir_entries(path: Path, folder: str, prefix: str, seen: set[str]) -> Iterator[_Entry]:
    """A Maildir: ``folder`` names its messages, ``prefix`` its subfolders ("" under INBOX)."""
    return _folder_entries(path, prefix, seen, maildir_folder=folder)


def _plain_entries(path: Path, prefix: str, seen: set[str]) -> Iterator[_Entry]:
    return _folder_entries(path, prefix, seen, maildir_folder=None)


def _folder_entries(path: Path, prefix: str, seen: set[str], *, maildir_folder: str | None) -> Iterator[_Entry]:
    """The files of one folder and, recursively, of its subfolders. In a Maildir
    (``maildir_folder`` names its messages) cur/, new/ and tmp/ hold messages and every
    dot-folder is a Maildir++ folder; in a plain folder only a subfolder with cur/ and new/ is
    a Maildir (a ".Name" one is a Maildir++ folder whose root has no cur/ and new/)."""
    listing = _listing(path, seen)
    if listing is None or isinstance(listing, _Entry):
        yield from [listing] if listing else []
        return
    in_maildir = maildir_folder is not None
    folder = maildir_folder if in_maildir else prefix
    for entry in listing:
        sub = Path(entry.path)
        if not _is_dir(entry):
            yield _Entry(sub, "loose", folder=folder, mbox_folder=_mbox_name(prefix, entry.name))
        elif in_maildir and entry.name in ("cur", "new"):
            yield from _files_under(sub, "message", folder, seen)
        elif in_maildir and entry.name == "tmp":
            yield from _files_under(sub, "tmp", folder, seen)
        elif entry.name.lower() in _STORE_DIRS:
            yield from _files_under(sub, "store", folder, seen)
        elif (in_maildir and entry.name.startswith(".")) or is_maildir(sub):
            name = _join(prefix, _maildirpp_name(entry.name) if entry.name.startswith(".") else entry.name)
            yield from _folder_entries(sub, name, seen, maildir_folder=name)
        else:
            yield from _folder_entries(sub, _join(prefix, entry.name), seen, maildir_folder=None)


def _files_under(path: Path, role: str, folder: str, seen: set[str]) -> Iterator[_Entry]:
    """Every file under a Maildir's cur/, new/ or tmp/ (or an index folder), at any depth."""
    listing = _listing(path, seen)
    if listing is None or isinstance(listing, _Entry):
        yield from [listing] if listing else []
        return
    for entry in listing:
        if _is_dir(entry):
            yield from _files_under(Path(entry.path), role, folder, seen)
        else:
            yield _Entry(Path(entry.path), role, folder=folder)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix and name else prefix or name


def _maildirpp_name(name: str) -> str:
    """``.Customers.Acme`` → ``Customers/Acme``: Maildir++ separates levels with dots."""
    return "/".join(_imap_utf7_decode(part) for part in name[1:].split(".") if part)


def _imap_utf7_decode(name: str) -> str:
    """IMAP folder names are modified UTF-7 (RFC 3501 5.1.3): ``Entw&APw-rfe`` is ``Entwürfe``."""

    def decode(match: re.Match) -> str:
        encoded = match.group(1)
        if not encoded:
            return "&"
        try:
            data = base64.b64decode(encoded.replace(",", "/") + "=" * (-len(encoded) % 4))
            return data.decode("utf-16-be")
        except (binascii.Error, UnicodeDecodeError):
            return match.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", decode, name)


def _mbox_name(prefix: str, filename: str) -> str:
    """``Sent.mbox`` → ``Sent``, ``old.mbox.gz`` → ``old``; an mbox-format ``x.eml`` stays in its folder."""
    stem = filename[:-3] if filename.lower().endswith(".gz") else filename
    if stem.lower().endswith(".eml"):
        return prefix
    for suffix in _MBOX_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    return _join(prefix, stem)


# --- reading one file --------------------------------------------------------------------------
# Yields a file's messages, then returns None when it was read, else why it was skipped.
_Reading = Generator[MailItem, None, str | None]


def _name_reason(path: Path) -> str | None:
    name = path.name.lower()
    if name in _DESKTOP_FILES:
        return DESKTOP_METADATA
    if _STORE_FILE.fullmatch(name):
        return STORE_INDEX
    return None


def _entry_read(entry: _Entry) -> _Reading:
    """Yield the file's messages; return None when it was read, else why it was skipped."""
    if entry.role == "problem":
        return entry.reason
    if entry.role == "tmp":
        return IN_TMP
    if entry.role == "store":
        return STORE_INDEX
    reason = _name_reason(entry.path)
    if reason:
        return reason
    try:
        st = os.stat(entry.path)
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        with open(entry.path, "rb") as f:
            stream = _decoded(f)
            return (yield from _stream_read(entry, stream))
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"


def _stream_read(entry: _Entry, stream: io.BufferedIOBase) -> _Reading:
    head = stream.read(SNIFF_BYTES)
    cut = _cut(stream)
    if not head.strip():
        if cut:
            return f"truncated: {cut}; nothing could be read"
        return EMPTY
    if entry.role == "loose" and _MBOX_FROM.match(head, _LEADING_BLANK.match(head).end()):
        return (yield from _mbox_read(entry, head, stream))
    reason = not_mail_reason(head)
    if reason:
        return reason
    raw = head + stream.read()
    label = "maildir" if entry.role == "message" else "file"
    yield MailItem(raw, f"{label}:{entry.path}", entry.folder)
    cut = _cut(stream)
    return f"truncated: {cut}; the message is kept as far as it goes" if cut else None


def _mbox_read(entry: _Entry, head: bytes, stream: io.BufferedIOBase) -> _Reading:
    count = 0
    try:
        for raw in _mbox_messages(_lines(head, stream)):
            count += 1
            yield MailItem(raw, f"mbox:{entry.path}#{count}", entry.mbox_folder)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}; {count} messages read before the break"
    cut = _cut(stream)
    if cut:
        return f"truncated: {cut}; {count} messages read before the break (the last may be cut short)"
    return None


def _kind_peek(path: Path) -> str | None:
    """ "mbox", "mail" or None (not mail, or unreadable), from the first bytes; for count_hint."""
    if _name_reason(path):
        return None
    try:
        with open(path, "rb") as f:
            head = _decoded(f).read(4096)
    except OSError:
        return None
    if _MBOX_FROM.match(head, _LEADING_BLANK.match(head).end()):
        return "mbox"
    return "mail" if head.strip() and not_mail_reason(head) is None else None


# --- mbox --------------------------------------------------------------------------------------
def mbox_iter(path: Path) -> Iterator[tuple[bytes, str]]:
    """``(raw, "mbox:<path>#<n>")`` for each message of one mbox file (gzipped too), streamed."""
    with open(path, "rb") as f:
        stream = _decoded(f)
        count = 0
        for raw in _mbox_messages(_lines(b"", stream)):
            count += 1
            yield raw, f"mbox:{path}#{count}"
        if cut := _cut(stream):
            logger.warning("%s: stopped reading after %d messages: %s", path, count, cut)


def _mbox_messages(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Split mbox lines (mboxo or mboxrd) into messages; ``>From`` lines lose one ``>``.

    A From_ line starts a message when it is the first line or follows a blank line; the blank
    line before it belongs to the mbox, not to the message. Blank lines before the first From_
    line are not a message (other text there is: nothing is dropped).
    """
    message: list[bytes] | None = None
    previous_blank = True
    for line in lines:
        if previous_blank and line.startswith(b"From ") and _MBOX_FROM.match(line):
            if message:
                yield _mbox_message(message)
            message = []
            previous_blank = False
            continue
        previous_blank = line.isspace()
        if message is None:
            if previous_blank:
                continue
            message = []
        if line.startswith(b">") and _QUOTED_FROM.match(line):
            line = line[1:]
        message.append(line)
    if message:
        yield _mbox_message(message)


def _mbox_message(lines: list[bytes]) -> bytes:
    if lines and lines[-1].isspace():
        lines = lines[:-1]
    return b"".join(lines)


def _lines(head: bytes, stream: io.BufferedIOBase) -> Iterator[bytes]:
    """The lines of ``head`` and then of the rest of ``stream`` (head's last line completed)."""
    last = b""
    for line in io.BytesIO(head):
        if line.endswith(b"\n"):
            yield line
        else:
            last = line
    if last:
        yield last + stream.readline()
    yield from stream


# --- gzip --------------------------------------------------------------------------------------
def _decoded(f) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when it starts with the gzip magic; a cut gzip ends early."""
    if f.peek(2)[:2] == GZIP_MAGIC:
        return io.BufferedReader(_Gunzip(f), CHUNK)
    return f


def _cut(stream) -> str | None:
    """Why a gunzipped stream ended before its end (None for a plain file or a whole gzip)."""
    raw = getattr(stream, "raw", None)
    return raw.error if isinstance(raw, _Gunzip) else None


class _Gunzip(io.RawIOBase):
    """Gunzip a file as a stream that ends, with ``error`` set, where the data stops making sense.

    Unlike ``gzip.open`` it keeps what decompressed before a truncation instead of raising, so a
    cut mbox still gives the messages before the cut. Multi-member files are read whole.
    """

    def __init__(self, f):
        self._file = f
        self._inflate = zlib.decompressobj(wbits=31)
        self._out = memoryview(b"")
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._out:
            if not self._fill():
                return 0
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _fill(self) -> bool:
        # 16 KiB in at a time bounds what one step can inflate to (zlib's ratio is about 1000:1).
        if self._inflate.eof:
            data = self._inflate.unused_data or self._file.read(16384)
            if not data:
                return False
            if not data.startswith(GZIP_MAGIC[: len(data)]):
                logger.warning("%s: data after the end of the gzip stream ignored", getattr(self._file, "name", ""))
                return False
            self._inflate = zlib.decompressobj(wbits=31)
        else:
            data = self._file.read(16384)
            if not data:
                self.error = "the gzip data ends early"
                return False
        try:
            self._out = memoryview(self._inflate.decompress(data))
        except zlib.error as exc:
            self.error = f"corrupt gzip data ({exc})"
            return False
        return True


# --- the old interface, until ingest and mail_import take MailWalk -----------------------------
