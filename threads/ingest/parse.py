"""RFC 5322 / MIME parsing that keeps going where real mail breaks the rules.

The standard library's ``email`` package with the modern policy does the parsing. Header
values are read raw and decoded here, so an unknown charset, raw 8-bit bytes or a broken
encoded word in one header never costs the others. Bodies are decoded with the declared
charset, then UTF-8, then Windows-1252, which maps every byte.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.policy
import email.utils
import hashlib
import quopri
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message as EmailMessage
from email.parser import BytesParser

from threads.ingest.html_text import html_to_text
from threads.ingest.identity import ids_parse, message_id_normalize
from threads.ingest.sniff import header_start

# A structured field (Content-Type, Content-Disposition) longer than this is read as plain text,
# cut to this length: the modern policy's header parser grows with the square of a value's
# size (a filename of 30,000 encoded words took 84 s), and no real field comes near it.
STRUCTURED_FIELD_MAX = 8 * 1024


class _Policy(email.policy.EmailPolicy):
    def header_fetch_parse(self, name, value):
        if len(value) > STRUCTURED_FIELD_MAX:
            return _FOLD.sub(" ", value[:STRUCTURED_FIELD_MAX])
        return super().header_fetch_parse(name, value)


_PARSER = BytesParser(policy=_Policy())
_FOLD = re.compile(r"\r?\n[ \t]*")
# RFC 2047 encoded word (RFC 2231 allows a "*language" after the charset).
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
MAX_HEADER_VALUES = 50
_SPACED_COLON = re.compile(rb"[!-9;-~]+[ \t]+:")
_SPACED_COLON_ALL = re.compile(rb"^([!-9;-~]+)[ \t]+:", re.MULTILINE)


DEFAULT_SECONDS = 10.0
DEFAULT_DEPTH = 50
# The deadline is looked at every so many encoded words, headers or parts.
_CHECK_EVERY = 1024


class ParseBudgetExceeded(Exception):
    """The message took more time or nesting than its parse budget allows."""


@dataclass
class ParseBudget:
    """How much one message may cost: seconds of parsing and depth of MIME nesting.

    Checked as the parse goes (between headers, encoded words and parts), so one message can
    overrun by at most one such step, and every step is linear in its input.
    """

    seconds: float = DEFAULT_SECONDS
    max_depth: int = DEFAULT_DEPTH
    deadline: float = field(init=False, default=0.0)

    def start(self) -> ParseBudget:
        self.deadline = time.monotonic() + self.seconds
        return self

    def check(self, what: str) -> None:
        if self.deadline and time.monotonic() > self.deadline:
            raise ParseBudgetExceeded(f"parse budget: more than {self.seconds:g} s ({what})")


_NO_BUDGET = ParseBudget(seconds=float("inf"), max_depth=10**6)


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    size: int
    sha256: str


@dataclass
class ParsedMessage:
    message_id: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_name: str = ""
    from_email: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    sent_at: datetime | None = None
    text: str = ""
    html: str = ""
    headers: dict[str, list[str]] = field(default_factory=dict)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def participants(self) -> list[str]:
        """Everyone on the message, sender first, without repeats."""
        seen: dict[str, None] = {}
        for address in [self.from_email, *self.to, *self.cc]:
            if address:
                seen.setdefault(address, None)
        return list(seen)


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; lone surrogates cannot be encoded."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from bytes in the declared charset, falling back to UTF-8 then Windows-1252."""
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            codec = codecs.lookup(candidate.strip().strip('"').lower())
        except (LookupError, ValueError):
            continue
        if codec.name in ("ascii", "us-ascii") and not data.isascii():
            continue  # wrong charset: 8-bit data labelled ASCII
        try:
            return data.decode(codec.name)
        except (UnicodeDecodeError, ValueError):
            continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unescape_8bit(value: str) -> str:
    """Header strings from the bytes parser carry raw 8-bit bytes as surrogate escapes."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return decode_bytes(value.encode("utf-8", "surrogateescape"))


def header_decode(value: str, budget: ParseBudget = _NO_BUDGET) -> str:
    """Unfold, turn raw 8-bit into text and decode RFC 2047 encoded words, leniently."""
    value = _unescape_8bit(_FOLD.sub(" ", value)).strip()
    if "=?" not in value:
        return clean_text(value)
    return clean_text(_encoded_words_decode(value, budget))


def _encoded_words_decode(value: str, budget: ParseBudget) -> str:
    """RFC 2047 decoding in one pass, linear in the value's length.

    ``email.header.decode_header`` grows with the square of the number of words (it joins
    adjacent words by repeated bytes concatenation): 300,000 words took minutes. Here the
    bytes of adjacent words in one charset are collected in a list and decoded together (a
    character may be split across words), and white space between two encoded words is
    dropped (RFC 2047 section 6.2).
    """
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    position = 0
    after_word = False
    for count, match in enumerate(_ENCODED_WORD.finditer(value), 1):
        gap = value[position : match.start()]
        if gap and not (after_word and gap.isspace()):
            if pending:
                out.append(decode_bytes(b"".join(pending), pending_charset))
                pending = []
            out.append(gap)
        charset, encoding, text = match.group(1).lower(), match.group(2).lower(), match.group(3)
        data = _word_bytes(encoding, text)
        if data is None:  # not decodable: keep the word as written
            if pending:
                out.append(decode_bytes(b"".join(pending), pending_charset))
                pending = []
            out.append(match.group(0))
        else:
            if pending and charset != pending_charset:
                out.append(decode_bytes(b"".join(pending), pending_charset))
                pending = []
            pending.append(data)
            pending_charset = charset
        after_word = True
        position = match.end()
        if count % _CHECK_EVERY == 0:
            budget.check("decoding encoded words")
    if pending:
        out.append(decode_bytes(b"".join(pending), pending_charset))
    out.append(value[position:])
    return "".join(out)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        return None
    if encoding == "q":
        return binascii.a2b_qp(data, header=True)
    try:
        decoded = binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return None
    return decoded if decoded or not data else None


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    try:
        pairs = email.utils.getaddresses(values)
    except Exception:
        return []
    return [(name.strip(), addr.strip().lower()) for name, addr in pairs if "@" in addr]


def date_parse(value: str | None) -> datetime | None:
    """An aware datetime, or None for what cannot be read (never an exception)."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1970 <= parsed.year <= 2200:
        return None
    return parsed


def _headers(msg: EmailMessage, budget: ParseBudget) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for count, (name, value) in enumerate(msg.raw_items(), 1):
        key = clean_text(_unescape_8bit(str(name))).strip().lower()
        values = headers.setdefault(key, [])
        if len(values) < MAX_HEADER_VALUES:
            values.append(header_decode(str(value), budget))
        if count % _CHECK_EVERY == 0:
            budget.check("reading headers")
    return headers


def _first(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


# Large messages: long runs of base64 lines are cut out before parsing and decoded straight
# from the raw bytes, so a 30 MB attachment is not also held as text, lines and copies.
LARGE_MESSAGE = 2 * 1024 * 1024
_BASE64_RUN = re.compile(rb"^(?:[A-Za-z0-9+/]{40,998}={0,2}\r?\n){1000,}", re.MULTILINE)
_BLOB_MARK = "THREADLINE-BLOB-"
_BLOB_LINE = re.compile(rb"THREADLINE-BLOB-(\d+)\r?\n?")


def _skeleton(raw: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    if len(raw) < LARGE_MESSAGE:
        return raw, []
    pieces, blobs, position = [], [], 0
    for match in _BASE64_RUN.finditer(raw):
        pieces.append(raw[position : match.start()])
        pieces.append(f"{_BLOB_MARK}{len(blobs)}\n".encode())
        blobs.append((match.start(), match.end()))
        position = match.end()
    if not blobs:
        return raw, []
    pieces.append(raw[position:])
    return b"".join(pieces), blobs


class _Blobs:
    """The cut-out runs of a large message, read from its raw bytes without copying them."""

    def __init__(self, raw: bytes, spans: list[tuple[int, int]]):
        self.view, self.spans = memoryview(raw), spans

    def payload(self, part: EmailMessage) -> bytes | None:
        if not self.spans:
            return None
        payload = part.get_payload()
        if not isinstance(payload, str) or not payload.startswith(_BLOB_MARK):
            return None
        match = _BLOB_LINE.match(payload.encode("ascii", "surrogateescape"))
        if not match or int(match.group(1)) >= len(self.spans):
            return None
        start, end = self.spans[int(match.group(1))]
        tail = payload[match.end() :].encode("ascii", "surrogateescape")  # the short last line
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if encoding != "base64":
            return bytes(self.view[start:end]) + tail
        try:
            return binascii.a2b_base64(self.view[start:end]) + binascii.a2b_base64(tail)
        except binascii.Error:
            return binascii.a2b_base64(bytes(self.view[start:end]) + tail)

    def restore(self, data: bytes) -> bytes:
        if not self.spans or _BLOB_MARK.encode() not in data:
            return data
        return _BLOB_LINE.sub(lambda m: bytes(self.view[slice(*self.spans[int(m.group(1))])]), data)


def message_parse(raw: bytes, budget: ParseBudget | None = None) -> ParsedMessage:
    """Parse one message within ``budget`` (time and MIME depth; unlimited when None).

    Raises ``ParseBudgetExceeded`` past the budget, and otherwise only for input the email
    package cannot read at all. Blank lines and an mbox envelope line before the header block
    are passed over (bounces and exports start with them).
    """
    budget = budget.start() if budget is not None else _NO_BUDGET
    start = header_start(raw)
    if start:
        raw = raw[start:]
    skeleton, spans = _skeleton(raw)
    blobs = _Blobs(raw, spans)
    try:
        msg = _PARSER.parsebytes(skeleton)
    except RecursionError:
        raise ParseBudgetExceeded("parse budget: MIME parts nested too deeply to read") from None
    del skeleton
    budget.check("reading the MIME structure")
    _depth_check(msg, budget)
    if not msg.keys() and _SPACED_COLON.match(raw):
        # "Name :" is obsolete syntax (RFC 5322 4.5.3) that the email package does not read.
        end = raw.find(b"\n\n")
        head = raw if end < 0 else raw[:end]
        msg = _PARSER.parsebytes(_SPACED_COLON_ALL.sub(rb"\1:", head) + raw[len(head) :])
    headers = _headers(msg, budget)
    result = ParsedMessage(headers=headers)
    result.message_id = message_id_normalize(_first(headers, "message-id"))
    result.in_reply_to = ids_parse(" ".join(headers.get("in-reply-to", [])))
    result.references = ids_parse(" ".join(headers.get("references", [])))
    result.subject = _first(headers, "subject")
    senders = _addresses(headers.get("from", [])[:1]) or _addresses(headers.get("sender", [])[:1])
    if senders:
        result.from_name, result.from_email = senders[0]
    result.to = [a for _, a in _addresses(headers.get("to", []))]
    result.cc = [a for _, a in _addresses(headers.get("cc", []))]
    result.sent_at = date_parse(_first(headers, "date"))
    _walk(msg, result, blobs, budget)
    if not result.text and not result.html:
        _lenient_bodies(raw, result)
    if not result.text and result.html:
        result.text = html_to_text(result.html)
    result.defects = [type(d).__name__ for d in getattr(msg, "defects", [])]
    return result


def _depth_check(msg: EmailMessage, budget: ParseBudget) -> None:
    """Refuse MIME trees nested deeper than the budget (multiparts and attached messages alike),
    walked without recursion so that the check itself cannot overflow."""
    stack = [(msg, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        if depth > budget.max_depth:
            raise ParseBudgetExceeded(f"parse budget: MIME parts nested deeper than {budget.max_depth}")
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, EmailMessage))
        seen += 1
        if seen % _CHECK_EVERY == 0:
            budget.check("walking MIME parts")


_MESSAGE_ID_FIELD = re.compile(rb"^message-id[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.IGNORECASE | re.MULTILINE)


def message_id_scan(raw: bytes) -> str | None:
    """The Message-ID read straight from the header block, without parsing the message.

    The same value ``message_parse`` gives (first Message-ID field, unfolded and decoded the
    same way), found in one linear scan: ingest needs it to store the raw bytes before parsing.
    """
    start = header_start(raw)
    end = raw.find(b"\n\n", start)
    crlf = raw.find(b"\n\r\n", start)
    if crlf >= 0 and (end < 0 or crlf < end):
        end = crlf
    head = raw[start : end + 1] if end >= 0 else raw[start:]
    match = _MESSAGE_ID_FIELD.search(head.replace(b"\r\n", b"\n") if b"\r" in head else head)
    if not match:
        return None
    value = match.group(1).decode("ascii", "surrogateescape")
    return message_id_normalize(header_decode(value))


def _content_type(part: EmailMessage) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _filename(part: EmailMessage) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return clean_text(header_decode(str(name)))[:500] if name else ""


def _is_attachment(part: EmailMessage, content_type: str, filename: str) -> bool:
    try:
        disposition = (part.get_content_disposition() or "").lower()
    except Exception:
        disposition = ""
    if disposition == "attachment":
        return True
    if content_type in ("text/plain", "text/html") and not filename:
        return False
    return bool(filename) or not content_type.startswith("text/")


def _payload(part: EmailMessage, blobs: _Blobs) -> bytes:
    data = blobs.payload(part)
    if data is not None:
        return data
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data


def _walk(part: EmailMessage, result: ParsedMessage, blobs: _Blobs, budget: ParseBudget, depth: int = 0) -> None:
    budget.check("reading parts")
    content_type = _content_type(part)
    if content_type == "message/rfc822" or (depth > 0 and content_type.startswith("message/")):
        try:
            data = part.as_bytes() if not part.is_multipart() else b"".join(p.as_bytes() for p in part.get_payload())
        except Exception as exc:  # never a silent empty attachment
            raise ValueError(f"an attached message could not be read back: {type(exc).__name__}: {exc}") from exc
        _attach(result, _filename(part) or "message.eml", content_type, blobs.restore(data))
        return
    if part.is_multipart():
        payload = part.get_payload()
        for child in payload if isinstance(payload, list) else []:
            _walk(child, result, blobs, budget, depth + 1)
        return
    filename = _filename(part)
    if _is_attachment(part, content_type, filename):
        _attach(result, filename, content_type, _payload(part, blobs))
        return
    text = clean_text(decode_bytes(_payload(part, blobs), _charset(part)))
    if content_type == "text/html":
        if not result.html:
            result.html = text
    elif not result.text:
        result.text = text
    else:
        result.text += "\n\n" + text


def _charset(part: EmailMessage) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _attach(result: ParsedMessage, filename: str, content_type: str, data: bytes) -> None:
    result.attachments.append(
        ParsedAttachment(
            filename=filename,
            content_type=content_type[:200],
            data=data,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    )


_LENIENT_PART = re.compile(
    rb"^content-type:[ \t]*text/(plain|html)([^\n]*\n(?:[ \t][^\n]*\n|[!-9;-~]+:[^\n]*\n)*)\r?\n(.*?)(?=^--|\Z)",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)


def _lenient_bodies(raw: bytes, result: ParsedMessage) -> None:
    """Text parts that broken or missing boundaries hid from the MIME parser, found by their headers."""
    start = raw.find(b"\n\n")
    if start < 0:
        return
    for match in _LENIENT_PART.finditer(raw, start):
        subtype, headers, body = match.group(1).lower(), match.group(2).lower(), match.group(3)
        if b"base64" in headers:
            try:
                body = base64.b64decode(body, validate=False)
            except ValueError:
                pass
        elif b"quoted-printable" in headers:
            body = quopri.decodestring(body)
        charset = re.search(rb'charset="?([\w.:-]+)', headers)
        text = clean_text(decode_bytes(body, charset.group(1).decode() if charset else None)).strip()
        if subtype == b"html" and not result.html:
            result.html = text
        elif subtype == b"plain" and not result.text:
            result.text = text
