"""Message identity: normalized Message-IDs, reference lists and the synthetic id.

A Message-ID is kept without its angle brackets, trimmed, as the sender wrote it: ids are
compared exactly (RFC 5322 does not make them case-insensitive, and real clients rely on that).
"""

from __future__ import annotations

import hashlib
import re

_BRACKETED = re.compile(r"<([^<>]*)>")
_WS = re.compile(r"\s+")
SYNTHETIC_DOMAIN = "threadline.invalid"
MAX_ID_LENGTH = 900


def ids_parse(value: str | None) -> list[str]:
    """Every id in a Message-ID, In-Reply-To or References value, in order, without repeats.

    Bracketed ids when there are any (their inside trimmed; ``<>`` is dropped); otherwise the
    whitespace-separated words, for the many senders that leave the brackets out.
    """
    if not value:
        return []
    value = value.replace("\x00", "")
    found = _BRACKETED.findall(value)
    if found:
        candidates = [c.strip() for c in found]
    else:
        candidates = [w for w in _WS.split(value.strip()) if w]
    seen: dict[str, None] = {}
    for candidate in candidates:
        if candidate and len(candidate) <= MAX_ID_LENGTH:
            seen.setdefault(candidate, None)
    return list(seen)


def message_id_normalize(value: str | None) -> str | None:
    ids = ids_parse(value)
    return ids[0] if ids else None


def message_id_synthetic(raw: bytes) -> str:
    """The id of a message without a usable Message-ID: a hash of its content.

    Line endings and trace headers do not count (``content_fingerprint``), so the same
    message read from a CRLF file, an LF mbox or another mailbox is imported once.
    """
    digest = content_fingerprint(raw)
    return f"sha256-{digest[:48]}@{SYNTHETIC_DOMAIN}"


def related_ids_build(*, message_id: str, in_reply_to: list[str], references: list[str]) -> list[str]:
    """References then In-Reply-To, without repeats and without the message's own id."""
    seen: dict[str, None] = {}
    for ref in [*references, *in_reply_to]:
        if ref != message_id:
            seen.setdefault(ref, None)
    return list(seen)


# Headers that differ between copies of one message (delivery trace, mailbox state).
_TRACE_HEADERS = re.compile(
    rb"^(?:received|return-path|delivered-to|x-[\w-]*|status|content-length|lines|arc-[\w-]*)\s*:"
    rb".*(?:\n[ \t].*)*\n?",
    re.IGNORECASE | re.MULTILINE,
)


def content_fingerprint(raw: bytes) -> str:
    """A hash that two copies of one message share: line endings, trace headers and
    trailing blank lines do not count."""
    raw = raw.replace(b"\r\n", b"\n")
    end = raw.find(b"\n\n")
    head, body = (raw, b"") if end < 0 else (raw[: end + 1], raw[end + 2 :])
    head = _TRACE_HEADERS.sub(b"", head)
    return hashlib.sha256(head + b"\n" + body.rstrip()).hexdigest()
