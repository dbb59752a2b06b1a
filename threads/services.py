"""Writes for mail: ingesting messages, importing batches, inbound tokens, IMAP cursors."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction

from pipeline import stages
from threads.ingest.identity import content_fingerprint, message_id_normalize, message_id_synthetic, related_ids_build
from threads.ingest.parse import ParsedMessage, clean_text, message_parse
from threads.ingest.reply import is_forward, reply_text
from threads.ingest.subject import subject_key
from threads.ingest.threading import thread_assign
from threads.models import Attachment, ImapCursor, InboundToken, Message, Thread
from workspaces.named_sql import NamedQueries
from workspaces.rls import workspace_context
from workspaces.selectors import policy_for
from workspaces.services import audit_event_record

logger = logging.getLogger(__name__)

_MESSAGE_ID_LINE = re.compile(rb"^message-id:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
IMPORT_BATCH = 200
RAW_INLINE_MAX = 256 * 1024
_RAW_WRITE_SQL = NamedQueries(Path(__file__).resolve().parent / "sql")["message_raw_write"]
IMPORT_BATCH_BYTES = 16 * 1024 * 1024


@dataclass
class IngestResult:
    """``status``: new (parsed), failed (kept with its error), duplicate or conflict (not stored)."""

    status: str
    message_id: str
    message_pk: int | None = None
    thread_id: int | None = None
    changed_thread_ids: set[int] = field(default_factory=set)
    removed_thread_ids: set[int] = field(default_factory=set)


@dataclass
class ImportSummary:
    read: int = 0
    new: int = 0
    duplicate: int = 0
    failed: int = 0
    seconds: float = 0.0
    thread_ids: set[int] = field(default_factory=set)

    def as_dict(self) -> dict:
        return {
            "read": self.read,
            "new": self.new,
            "duplicate": self.duplicate,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "threads_changed": len(self.thread_ids),
        }


@dataclass(frozen=True)
class _Context:
    workspace_id: int
    window_days: int
    internal_domains: list[str]


def _context(workspace) -> _Context:
    policy = policy_for(workspace_id=workspace.pk)
    return _Context(
        workspace_id=workspace.pk,
        window_days=policy["subject_thread_window_days"],
        internal_domains=[d.lower() for d in workspace.internal_domains],
    )


def _fallback_message_id(raw: bytes) -> str | None:
    """The Message-ID of a message the parser gave up on, read straight from the header block."""
    head = raw[: raw.find(b"\n\n")] if b"\n\n" in raw else raw[:65536]
    match = _MESSAGE_ID_LINE.search(head)
    if not match:
        return None
    return message_id_normalize(clean_text(match.group(1).decode("utf-8", "replace")))


def _message_fields(parsed: ParsedMessage, message_id: str) -> dict:
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


def _attachments_store(*, message: Message, parsed: ParsedMessage) -> None:
    limit = settings.THREADLINE_ATTACHMENT_MAX_BYTES
    for part in parsed.attachments:
        name = ""
        if part.size <= limit:
            name = f"attachments/{message.workspace_id}/{part.sha256[:2]}/{part.sha256}"
            if not default_storage.exists(name):
                name = default_storage.save(name, ContentFile(part.data))
        Attachment.objects.create(
            workspace_id=message.workspace_id,
            message=message,
            filename=part.filename,
            content_type=part.content_type,
            size=part.size,
            sha256=part.sha256,
            file=name,
        )


def _duplicate(ctx: _Context, *, message_id: str, raw: bytes, raw_sha256: str, source: str) -> IngestResult:
    first = Message.objects.filter(message_id=message_id).values_list("pk", "raw_sha256", "thread_id").first()
    pk, first_sha, thread_id = first
    if first_sha == raw_sha256 or _same_content(pk, raw):
        return IngestResult(status="duplicate", message_id=message_id, message_pk=pk, thread_id=thread_id)
    audit_event_record(
        workspace_id=ctx.workspace_id,
        type="message.duplicate_conflict",
        thread_id=thread_id,
        data={
            "message_id": message_id,
            "kept": pk,
            "kept_sha256": first_sha,
            "ignored_sha256": raw_sha256,
            "source": source,
        },
    )
    return IngestResult(status="conflict", message_id=message_id, message_pk=pk, thread_id=thread_id)


def _raw_write(pk: int, raw: bytes) -> None:
    """Large raw bytes as a binary parameter: Django would send them hex-escaped in the query text."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_RAW_WRITE_SQL, {"raw": raw, "id": pk})


def _same_content(pk: int, raw: bytes) -> bool:
    kept = Message.objects.filter(pk=pk).values_list("raw", flat=True).first()
    return kept is not None and content_fingerprint(bytes(kept)) == content_fingerprint(raw)


def _store(ctx: _Context, *, raw: bytes, raw_sha256: str, source: str, message_id: str, fields: dict, error: str):
    base = {
        "workspace_id": ctx.workspace_id,
        "message_id": message_id,
        "raw": raw,
        "raw_sha256": raw_sha256,
        "raw_size": len(raw),
        "source": source[:200],
    }
    large = len(raw) > RAW_INLINE_MAX
    if large:
        base["raw"] = b""
    try:
        with transaction.atomic():
            status = Message.ParseStatus.FAILED if error else Message.ParseStatus.PARSED
            message = Message.objects.create(**base, **fields, parse_status=status, parse_error=error)
            if large:
                _raw_write(message.pk, raw)
            return message
    except IntegrityError:
        raise
    except Exception as exc:  # a value the database refused: keep the raw bytes and say why
        logger.warning("message %s stored raw only: %s", message_id, exc)
        message = Message.objects.create(
            **base, parse_status=Message.ParseStatus.FAILED, parse_error=f"store: {type(exc).__name__}: {exc}"
        )
        if large:
            _raw_write(message.pk, raw)
        return message


def _ingest_one(ctx: _Context, *, raw: bytes, source: str) -> IngestResult:
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    parsed, error = None, ""
    try:
        parsed = message_parse(raw)
    except Exception as exc:  # nothing received is lost: the raw bytes are kept with the error
        error = f"parse: {type(exc).__name__}: {exc}"[:2000]
    message_id = (parsed.message_id if parsed else _fallback_message_id(raw)) or message_id_synthetic(raw)
    message_id = message_id[:998]
    fields = {}
    if parsed is not None:
        try:
            fields = _message_fields(parsed, message_id)
        except Exception as exc:
            error = f"fields: {type(exc).__name__}: {exc}"[:2000]
    try:
        message = _store(
            ctx, raw=raw, raw_sha256=raw_sha256, source=source, message_id=message_id, fields=fields, error=error
        )
    except IntegrityError:  # the same Message-ID arrived concurrently
        return _duplicate(ctx, message_id=message_id, raw=raw, raw_sha256=raw_sha256, source=source)
    if message.parse_status == Message.ParseStatus.FAILED:
        audit_event_record(
            workspace_id=ctx.workspace_id,
            type="message.parse_failed",
            data={"message": message.pk, "message_id": message_id, "error": message.parse_error[:500]},
        )
        return IngestResult(status="failed", message_id=message_id, message_pk=message.pk)
    if parsed.attachments:
        _attachments_store(message=message, parsed=parsed)
    thread, changed, removed = thread_assign(
        message=message, window_days=ctx.window_days, internal_domains=ctx.internal_domains
    )
    return IngestResult(
        status="new",
        message_id=message_id,
        message_pk=message.pk,
        thread_id=thread.pk,
        changed_thread_ids=set(changed),
        removed_thread_ids=set(removed),
    )


def _extraction_enqueue(*, workspace, thread_ids: Iterable[int]) -> None:
    """Tell the pipeline which threads got new mail: one extraction per thread follows."""
    workspace_id = getattr(workspace, "pk", workspace)
    with workspace_context(workspace):
        existing = set(Thread.objects.filter(pk__in=list(thread_ids)).values_list("pk", flat=True))
        for thread_id in sorted(existing):
            stages.emit(stages.THREAD_CHANGED, workspace_id=workspace_id, thread_id=thread_id)


def message_ingest(*, workspace, raw: bytes, source: str, enqueue_extraction: bool = True) -> IngestResult:
    """Store, parse and thread one raw message in its own transaction.

    The extraction job for its thread is queued after that transaction commits.
    """
    with workspace_context(workspace):
        result = _ingest_guarded(_context(workspace), raw=raw, source=source)
        audit_event_record(
            workspace_id=workspace.pk,
            type="mail.imported",
            thread_id=result.thread_id,
            data={"source": source[:200], "status": result.status, "message_id": result.message_id},
        )
        if enqueue_extraction and result.changed_thread_ids:
            ids = set(result.changed_thread_ids)
            transaction.on_commit(lambda: _extraction_enqueue(workspace=workspace, thread_ids=ids))
    return result


def mail_import(
    *,
    workspace,
    messages: Iterable[tuple[bytes, str]],
    progress: Callable[[IngestResult], None] | None = None,
    label: str = "",
    actor=None,
) -> ImportSummary:
    """Import (raw, source) pairs; one bad message never stops the rest.

    After the last commit: one extraction job per new or changed thread and an audit event
    with the summary.
    """
    summary = ImportSummary()
    started = time.monotonic()
    with workspace_context(workspace):
        ctx = _context(workspace)
    removed: set[int] = set()
    try:
        for batch in _batches(messages, IMPORT_BATCH):
            # One transaction per batch, one savepoint per message: a message that fails rolls
            # back alone, and the batch commits together (one fsync instead of hundreds).
            results = []
            with workspace_context(workspace):
                for raw, source in batch:
                    results.append(_ingest_guarded(ctx, raw=raw, source=source))
            for result in results:
                summary.read += 1
                summary.new += result.status == "new"
                summary.duplicate += result.status in ("duplicate", "conflict")
                summary.failed += result.status == "failed"
                summary.thread_ids |= result.changed_thread_ids
                removed |= result.removed_thread_ids
                if progress:
                    progress(result)
    finally:
        # Also when the source fails midway (a dropped IMAP connection): what was committed
        # is handed on and audited before the error goes up.
        _import_finish(workspace=workspace, summary=summary, removed=removed, started=started, label=label, actor=actor)
    return summary


def _import_finish(*, workspace, summary: ImportSummary, removed: set[int], started: float, label: str, actor):
    summary.thread_ids -= removed
    if summary.thread_ids:
        _extraction_enqueue(workspace=workspace, thread_ids=summary.thread_ids)
    summary.seconds = time.monotonic() - started
    with workspace_context(workspace):
        audit_event_record(
            workspace_id=workspace.pk, type="mail.imported", actor=actor, data={"source": label, **summary.as_dict()}
        )


def _batches(messages: Iterable[tuple[bytes, str]], size: int):
    """Lists of at most ``size`` messages and about IMPORT_BATCH_BYTES, read before the batch's
    transaction opens (so no transaction waits on a network fetch)."""
    batch, total = [], 0
    try:
        for item in messages:
            batch.append(item)
            total += len(item[0])
            if len(batch) >= size or total >= IMPORT_BATCH_BYTES:
                yield batch
                batch, total = [], 0
    except Exception:
        if batch:  # what was read before the source failed is still imported
            yield batch
        raise
    if batch:
        yield batch


def _ingest_guarded(ctx: _Context, *, raw: bytes, source: str) -> IngestResult:
    """``_ingest_one`` in a savepoint; after a database error there, the raw bytes alone."""
    try:
        with transaction.atomic():
            return _ingest_one(ctx, raw=raw, source=source)
    except Exception as exc:
        logger.exception("ingest of %s failed", source)
        return _ingest_raw_only(ctx, raw=raw, source=source, exc=exc)


def _ingest_raw_only(ctx: _Context, *, raw: bytes, source: str, exc: Exception) -> IngestResult:
    message_id = message_id_synthetic(raw)
    try:
        with transaction.atomic():
            if Message.objects.filter(message_id=message_id).exists():
                return IngestResult(status="duplicate", message_id=message_id)
            message = Message.objects.create(
                workspace_id=ctx.workspace_id,
                message_id=message_id,
                raw=raw,
                raw_sha256=hashlib.sha256(raw).hexdigest(),
                raw_size=len(raw),
                source=source[:200],
                parse_status=Message.ParseStatus.FAILED,
                parse_error=f"ingest: {type(exc).__name__}: {exc}"[:2000],
            )
        return IngestResult(status="failed", message_id=message_id, message_pk=message.pk)
    except Exception:
        logger.exception("could not even keep the raw bytes of %s", source)
        return IngestResult(status="failed", message_id=message_id)


def inbound_token_rotate(*, workspace, actor=None) -> str:
    """A new inbound secret for the workspace; only its hash is kept, so it is shown once."""
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    with workspace_context(workspace):
        InboundToken.objects.update_or_create(workspace=workspace, defaults={"token_sha256": digest})
        audit_event_record(workspace_id=workspace.pk, type="inbound_token.rotated", actor=actor)
    return token


def imap_poll(*, workspace, account, mailbox_factory=None) -> ImportSummary:
    """Import what is new in an IMAP mailbox since the last poll (by UID, within one UIDVALIDITY)."""
    from threads.ingest.imap import ImapMailbox

    with workspace_context(workspace):
        cursor = ImapCursor.objects.filter(workspace=workspace, mailbox_key=account.key).first()
    with (mailbox_factory or ImapMailbox)(account) as mailbox:
        same_epoch = cursor is not None and cursor.uidvalidity == mailbox.uidvalidity
        start = cursor.last_uid if same_epoch else 0
        seen = {"last": start}

        def messages():
            for uid, raw in mailbox.messages_after(start):
                seen["last"] = max(seen["last"], uid)
                yield raw, f"imap:{account.key}#{uid}"

        summary = mail_import(workspace=workspace, messages=messages(), label=f"imap:{account.key}")
    imap_cursor_save(
        workspace=workspace, mailbox_key=account.key, uidvalidity=mailbox.uidvalidity, last_uid=seen["last"]
    )
    return summary


def imap_cursor_save(*, workspace, mailbox_key: str, uidvalidity: int, last_uid: int) -> ImapCursor:
    with workspace_context(workspace):
        cursor, _ = ImapCursor.objects.update_or_create(
            workspace=workspace,
            mailbox_key=mailbox_key,
            defaults={"uidvalidity": uidvalidity, "last_uid": last_uid},
        )
    return cursor
