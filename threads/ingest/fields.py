"""From raw bytes to the stored fields of a message: pure, so it runs in a process pool.

``parsed_fields`` is what ingest does between storing the raw bytes and threading: parse
within the budget, then the reply text, identity and subject key. It never touches the
database, and imports no Django model, so a worker process only needs this package.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from threads.ingest.identity import related_ids_build
from threads.ingest.parse import ParseBudget, ParseBudgetExceeded, ParsedAttachment, ParsedMessage, message_parse
from threads.ingest.reply import is_forward, reply_text
from threads.ingest.subject import subject_key

logger = logging.getLogger(__name__)


def message_fields(parsed: ParsedMessage, message_id: str) -> dict:
    """The columns of ``threads_message`` that parsing fills, cut to their sizes."""
    related = related_ids_build(message_id=message_id, in_reply_to=parsed.in_reply_to, references=parsed.references)
    return {
        "in_reply_to": parsed.in_reply_to[0] if parsed.in_reply_to else "",
        "in_reply_to_json": parsed.in_reply_to,
        "references_json": parsed.references,
        "related_ids": related[:500],
        "subject": parsed.subject[:998],
        "base_subject": subject_key(parsed.subject),
        "participants": [p[:320] for p in parsed.participants][:200],
        "from_email": parsed.from_email[:320],
        "from_name": parsed.from_name[:300],
        "to_json": parsed.to,
        "cc_json": parsed.cc,
        "sent_at": parsed.sent_at,
        "text": parsed.text,
        "html": parsed.html,
        "reply_text": reply_text(parsed.text, forwarded=is_forward(parsed.subject)),
        "headers_json": parsed.headers,
    }


# What threading reads of a parsed message (the rest goes to the database as JSON text).
ROW_FIELDS = (
    "references_json",
    "in_reply_to_json",
    "related_ids",
    "base_subject",
    "sent_at",
    "participants",
    "subject",
)


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


@dataclass
class Parsed:
    """One message's outcome: what threading reads (``row``), all its fields as a JSON object
    (``stored``: serialized where it was parsed, so a worker sends one string back) and its
    attachments; or the ``error`` it is kept with."""

    row: dict | None = None
    stored: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    error: str = ""


def parsed_fields(raw: bytes, message_id: str, budget: ParseBudget, *, parse: Callable = message_parse) -> Parsed:
    """Parse and derive the fields; past the budget or on any error, the reason (never raises
    an ``Exception``: a message that cannot be read is kept as failed with it)."""
    stage = "parse"
    try:
        parsed = parse(raw, budget)
        stage = "fields"
        fields = message_fields(parsed, message_id)
        stored = json.dumps(fields, default=_json_default, ensure_ascii=False, check_circular=False)
        row = {name: fields[name] for name in ROW_FIELDS}
        return Parsed(row=row, stored=stored, attachments=parsed.attachments)
    except ParseBudgetExceeded as exc:
        return Parsed(error=str(exc)[:2000])
    except Exception as exc:
        if stage != "parse":
            logger.warning("message %s kept as failed at %s: %s", message_id, stage, exc)
        return Parsed(error=f"{stage}: {type(exc).__name__}: {exc}"[:2000])


def parsed_many(items: list[tuple[bytes, str]], seconds: float, max_depth: int) -> list[Parsed]:
    """A batch in a worker process: each message with its own budget."""
    return [parsed_fields(raw, mid, ParseBudget(seconds=seconds, max_depth=max_depth)) for raw, mid in items]
