"""Is it mail? Decided from the first bytes, before anything is stored or parsed.

A message is a header block (RFC 5322 section 2.2: ``name: value`` lines, folded lines
starting with white space), then an empty line and the body. What does not start like that is
not mail: a program, a picture, a sentence. Leading blank or white-space-only lines are
allowed (bounces and exports start with them), and so is the mbox ``From `` envelope line.
"""

from __future__ import annotations

import re

# How much of a message is looked at to decide. A header block longer than this is still mail
# if every line read so far is a header line.
SNIFF_BYTES = 64 * 1024

_LEADING_BLANK = re.compile(rb"\A(?:[ \t]*\r?\n)+")
# Field names are printable ASCII but ":" (RFC 5322 3.6.8); "Name :" is obsolete syntax (4.5.3).
_FIELD = re.compile(rb"[!-9;-~]+[ \t]*:")
_ENVELOPE = re.compile(rb"From \S")
# At least one field that mail has (or a Content-* field: a bare MIME entity is mail too) and
# other "name: value" text (a YAML file, a config file) does not.
MAIL_FIELDS = frozenset(
    {
        b"from",
        b"sender",
        b"to",
        b"cc",
        b"date",
        b"subject",
        b"message-id",
        b"in-reply-to",
        b"references",
        b"received",
        b"return-path",
        b"delivered-to",
        b"mime-version",
        b"reply-to",
        b"x-mailer",
        b"envelope-to",
        b"resent-from",
        b"resent-date",
    }
)


def header_start(raw: bytes) -> int:
    """Offset of the first header line: after leading blank lines and an mbox envelope line."""
    match = _LEADING_BLANK.match(raw)
    start = match.end() if match else 0
    if raw.startswith(b"From ", start) and _ENVELOPE.match(raw, start):
        end = raw.find(b"\n", start)
        start = len(raw) if end < 0 else end + 1
    return start


def not_mail_reason(raw: bytes) -> str | None:
    """None for mail; else why not, in words an operator can act on."""
    if not raw:
        return "empty"
    head = raw[:SNIFF_BYTES]
    if not head.strip():
        return "empty (only white space)"
    start = header_start(head)
    end = _block_end(head, start)
    block = head[start:end]
    lines = block.splitlines()
    if not lines:
        return "not mail: no header block"
    if not _FIELD.match(lines[0]):
        if b"\x00" in head[:4096]:
            return "not mail: binary data"
        return "not mail: it does not start with a header line (name: value)"
    names = set()
    for number, line in enumerate(lines, 1):
        if line[:1] in (b" ", b"\t"):
            continue  # folded continuation of the previous field
        if not _FIELD.match(line):
            if number == len(lines) and end >= len(head):
                break  # the sniffed window ends inside a line
            return f"not mail: header line {number} is not 'name: value'"
        names.add(line.split(b":", 1)[0].strip().lower())
    if not names & MAIL_FIELDS and not any(name.startswith(b"content-") for name in names):
        return "not mail: no From, Date, Subject, To, Message-ID, Received or Content-Type header"
    return None


def _block_end(head: bytes, start: int) -> int:
    """End of the header block: the first empty line (LF or CRLF), or the end of what was read."""
    candidates = [i for i in (head.find(b"\n\n", start), head.find(b"\n\r\n", start)) if i >= 0]
    return min(candidates) + 1 if candidates else len(head)
