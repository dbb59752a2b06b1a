"""Writes for mail: ingesting messages, importing batches, inbound tokens, IMAP cursors."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from pipeline import stages
from threads.ingest.fields import Parsed, message_fields, parsed_fields
from threads.ingest.identity import content_fingerprint, message_id_synthetic
from threads.ingest.parse import ParseBudget, ParseBudgetExceeded, ParsedAttachment, message_id_scan, message_parse
from threads.ingest.pool import ParsePool
from threads.ingest.sniff import not_mail_reason
from threads.ingest.threading import thread_assign, threads_assign_batch
from threads.models import Attachment, ImapCursor, InboundToken, MailImport, Message, MessageConflict, Thread
from workspaces.named_sql import NamedQueries
from workspaces.rls import workspace_context
from workspaces.selectors import policy_for
from workspaces.services import audit_event_record

logger = logging.getLogger(__name__)

IMPORT_BATCH = 500
RAW_INLINE_MAX = 256 * 1024
_SQL = NamedQueries(Path(__file__).resolve().parent / "sql")
IMPORT_BATCH_BYTES = 16 * 1024 * 1024
# How many skipped files an import keeps by name (all are counted by reason).
SKIPPED_LISTED = 1000
# Changed threads are handed to extraction at the end, or whenever this many wait (memory stays flat).
HANDOFF_EVERY = 2_000


@dataclass
class IngestResult:
    """``status``: new (parsed and threaded), failed (kept with ``reason``), duplicate (already
    there), conflict (its Message-ID is taken by other content: kept as a MessageConflict), or
    skipped (not mail: nothing stored, ``reason`` says why)."""

    status: str
    message_id: str
    message_pk: int | None = None
    thread_id: int | None = None
    changed_thread_ids: set[int] = field(default_factory=set)
    removed_thread_ids: set[int] = field(default_factory=set)
    reason: str = ""
    conflict_pk: int | None = None


@dataclass
class ImportSummary:
    read: int = 0
    new: int = 0
    duplicate: int = 0
    conflict: int = 0
    failed: int = 0
    files_seen: int = 0
    files_read: int = 0
    skipped: list[dict] = field(default_factory=list)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # Changed threads not handed to extraction yet; those handed off already are counted.
    thread_ids: set[int] = field(default_factory=set)
    threads_handed_off: int = 0
    # Batches whose fields could not be stored at once, redone message by message (logged).
    batches_one_by_one: int = 0
    # Worker processes that parsed (0: parsed in this process, a small import).
    parse_workers: int = 0
    import_id: int | None = None

    @property
    def threads_changed(self) -> int:
        return self.threads_handed_off + len(self.thread_ids)

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped_by_reason.values())

    def skip(self, path: str, reason: str) -> None:
        if len(self.skipped) < SKIPPED_LISTED:
            self.skipped.append({"path": path, "reason": reason})
        kind = reason.split(":", 1)[0]
        self.skipped_by_reason[kind] = self.skipped_by_reason.get(kind, 0) + 1

    def as_dict(self) -> dict:
        return {
            "read": self.read,
            "new": self.new,
            "duplicate": self.duplicate,
            "conflict": self.conflict,
            "failed": self.failed,
            "files_seen": self.files_seen,
            "files_read": self.files_read,
            "skipped": self.skipped_count,
            "skipped_by_reason": self.skipped_by_reason,
            "seconds": round(self.seconds, 3),
            "threads_changed": self.threads_changed,
            "batches_one_by_one": self.batches_one_by_one,
            "parse_workers": self.parse_workers,
            "import": self.import_id,
        }


@dataclass(frozen=True)
class _Context:
    workspace_id: int
    window_days: int
    internal_domains: list[str]


@dataclass
class _Received:
    """A message whose raw bytes are stored (``pk``) and wait to be parsed, or its final result."""

    raw: bytes
    source: str
    message_id: str
    pk: int | None = None
    result: IngestResult | None = None
    folder: str = ""
    sha256: str = ""


def _context(workspace) -> _Context:
    policy = policy_for(workspace_id=workspace.pk)
    return _Context(
        workspace_id=workspace.pk,
        window_days=policy["subject_thread_window_days"],
        internal_domains=[d.lower() for d in workspace.internal_domains],
    )


def parse_budget() -> ParseBudget:
    return ParseBudget(seconds=settings.THREADLINE_PARSE_SECONDS, max_depth=settings.THREADLINE_PARSE_MAX_DEPTH)


def _attachments_store(*, message: Message, attachments: list[ParsedAttachment]) -> None:
    limit = settings.THREADLINE_ATTACHMENT_MAX_BYTES
    for part in attachments:
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


def _raw_write(pk: int, raw: bytes, *, query: str = "message_raw_write") -> None:
    """Large raw bytes as a binary parameter: Django would send them hex-escaped in the query text."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_SQL[query], {"raw": raw, "id": pk})


def _same_content(pk: int, raw: bytes) -> bool:
    kept = Message.objects.filter(pk=pk).values_list("raw", flat=True).first()
    return kept is not None and content_fingerprint(bytes(kept)) == content_fingerprint(raw)


def _receive(ctx: _Context, *, raw: bytes, source: str, folder: str, message_id: str | None = None) -> _Received:
    """Step one: the raw bytes are stored (status ``received``) before anything parses them.

    The Message-ID comes from a linear scan of the header block (``message_id_scan``), so a
    message the parser later gives up on is still found again by it.
    """
    reason = not_mail_reason(raw)
    if reason:
        return _Received(raw, source, "", result=IngestResult(status="skipped", message_id="", reason=reason))
    if message_id is None:
        try:
            message_id = message_id_scan(raw)
        except Exception:  # the id is only a key: the content hash serves as well
            message_id = None
        message_id = (message_id or message_id_synthetic(raw))[:998]
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    large = len(raw) > RAW_INLINE_MAX
    try:
        with transaction.atomic():
            message = Message.objects.create(
                workspace_id=ctx.workspace_id,
                message_id=message_id,
                raw=b"" if large else raw,
                raw_sha256=raw_sha256,
                raw_size=len(raw),
                source=source[:200],
                folder=folder[:500],
                parse_status=Message.ParseStatus.RECEIVED,
            )
            if large:
                _raw_write(message.pk, raw)
        return _Received(raw, source, message_id, pk=message.pk)
    except IntegrityError:  # the Message-ID is there already (or arrived concurrently)
        pass
    pk, kept_sha, thread_id, status = (
        Message.objects.filter(message_id=message_id).values_list("pk", "raw_sha256", "thread_id", "parse_status").get()
    )
    if kept_sha == raw_sha256 or _same_content(pk, raw):
        if status == Message.ParseStatus.RECEIVED:  # an earlier run stored it and stopped before parsing
            return _Received(raw, source, message_id, pk=pk)
        result = IngestResult(status="duplicate", message_id=message_id, message_pk=pk, thread_id=thread_id)
        return _Received(raw, source, message_id, result=result)
    return _Received(
        raw, source, message_id, result=_conflict_keep(ctx, raw, raw_sha256, source, folder, pk, message_id)
    )


def _conflict_keep(ctx: _Context, raw, raw_sha256, source, folder, kept_pk, message_id) -> IngestResult:
    """Other content under a Message-ID already taken: kept whole, for an operator to decide."""
    large = len(raw) > RAW_INLINE_MAX
    with transaction.atomic():
        conflict, created = MessageConflict.objects.get_or_create(
            workspace_id=ctx.workspace_id,
            message_id=message_id,
            raw_sha256=raw_sha256,
            defaults={
                "kept_id": kept_pk,
                "raw": b"" if large else raw,
                "raw_size": len(raw),
                "source": source[:200],
                "folder": folder[:500],
            },
        )
        if created and large:
            _raw_write(conflict.pk, raw, query="conflict_raw_write")
    kept_thread = Message.objects.filter(pk=kept_pk).values_list("thread_id", flat=True).first()
    if not created:  # the same conflicting copy again
        return IngestResult(status="duplicate", message_id=message_id, message_pk=kept_pk, thread_id=kept_thread)
    audit_event_record(
        workspace_id=ctx.workspace_id,
        type="message.duplicate_conflict",
        thread_id=kept_thread,
        data={
            "message_id": message_id,
            "kept": kept_pk,
            "conflict": conflict.pk,
            "sha256": raw_sha256,
            "source": source,
        },
    )
    return IngestResult(
        status="conflict",
        message_id=message_id,
        message_pk=kept_pk,
        thread_id=kept_thread,
        conflict_pk=conflict.pk,
        reason="its Message-ID belongs to another message with other content; kept for an operator to resolve",
    )


def _parse_stored(ctx: _Context, received: _Received) -> IngestResult:
    """Step two: parse within the budget, store the fields, thread. Past the budget or on any
    error the message stays, as failed with the reason."""
    stage = "parse"
    try:
        with transaction.atomic():
            parsed = message_parse(received.raw, parse_budget())
            stage = "fields"
            fields = message_fields(parsed, received.message_id)
            stage = "store"
            message = Message(pk=received.pk, workspace_id=ctx.workspace_id, message_id=received.message_id, **fields)
            message.parse_status, message.parse_error = Message.ParseStatus.PARSED, ""
            message._state.adding = False
            message.save(update_fields=[*fields, "parse_status", "parse_error"])
            if parsed.attachments:
                _attachments_store(message=message, attachments=parsed.attachments)
            stage = "thread"
            thread, changed, removed = thread_assign(
                message=message, window_days=ctx.window_days, internal_domains=ctx.internal_domains
            )
    except Exception as exc:  # nothing received is lost: the raw bytes stay, with the reason
        if isinstance(exc, ParseBudgetExceeded):
            error = str(exc)
        else:
            if stage != "parse":
                logger.warning("message %s kept as failed at %s: %s", received.message_id, stage, exc)
            error = f"{stage}: {type(exc).__name__}: {exc}"
        return _failed(ctx, received, error[:2000])
    return IngestResult(
        status="new",
        message_id=received.message_id,
        message_pk=received.pk,
        thread_id=thread.pk,
        changed_thread_ids=set(changed),
        removed_thread_ids=set(removed),
    )


def _failed(ctx: _Context, received: _Received, error: str) -> IngestResult:
    Message.objects.filter(pk=received.pk).update(parse_status=Message.ParseStatus.FAILED, parse_error=error)
    audit_event_record(
        workspace_id=ctx.workspace_id,
        type="message.parse_failed",
        data={"message": received.pk, "message_id": received.message_id, "error": error[:500]},
    )
    return IngestResult(status="failed", message_id=received.message_id, message_pk=received.pk, reason=error)


def _receive_guarded(ctx: _Context, *, raw: bytes, source: str, folder: str) -> _Received:
    """``_receive`` in a savepoint; a database error there is logged and counted, never raised."""
    try:
        with transaction.atomic():
            return _receive(ctx, raw=raw, source=source, folder=folder)
    except Exception as exc:
        logger.exception("could not store the raw bytes of %s", source)
        result = IngestResult(status="failed", message_id="", reason=f"store: {type(exc).__name__}: {exc}"[:2000])
        return _Received(raw, source, "", result=result)


def _extraction_enqueue(*, workspace, thread_ids: Iterable[int]) -> None:
    """Tell the pipeline which threads got new mail: one extraction per thread follows."""
    workspace_id = getattr(workspace, "pk", workspace)
    ids = sorted(thread_ids)
    with workspace_context(workspace):
        for start in range(0, len(ids), 1000):  # a thousand at a time: memory stays flat
            chunk = ids[start : start + 1000]
            existing = sorted(Thread.objects.filter(pk__in=chunk).values_list("pk", flat=True))
            events = [{"thread_id": thread_id} for thread_id in existing]
            stages.emit_many(stages.THREAD_CHANGED, workspace_id=workspace_id, events=events)


def message_ingest(
    *, workspace, raw: bytes, source: str, folder: str = "", enqueue_extraction: bool = True
) -> IngestResult:
    """Store one raw message (committed), then parse and thread it in a second transaction.

    Not mail: nothing is stored and the result says why (``skipped``). Whatever happens after
    the first commit, the raw bytes stay: a message that cannot be parsed is kept as failed,
    and one whose parsing never finished stays ``received`` for ``messages_reparse``. The
    extraction job for its thread is queued after the second transaction commits.
    """
    ctx = _context_in(workspace)
    with workspace_context(workspace):
        received = _receive_guarded(ctx, raw=raw, source=source, folder=folder)
    result = received.result
    try:
        return _ingest_finish(workspace, ctx, received, result, source=source, enqueue_extraction=enqueue_extraction)
    except Exception as exc:
        if received.pk is None:
            raise
        raise StoredNotProcessed(received.pk, received.message_id) from exc


class StoredNotProcessed(Exception):
    """The raw bytes were committed, but what follows them failed (the database went away):
    the message waits as ``received`` for ``messages_reparse`` (admin: Parse again)."""

    def __init__(self, message_pk: int, message_id: str):
        super().__init__(f"message {message_id} stored (#{message_pk}) but not processed")
        self.message_pk, self.message_id = message_pk, message_id


def _ingest_finish(workspace, ctx, received: _Received, result, *, source: str, enqueue_extraction: bool):
    with workspace_context(workspace):
        if result is None:
            result = _parse_stored(ctx, received)
        if result.status != "skipped":
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


def _context_in(workspace) -> _Context:
    with workspace_context(workspace):
        return _context(workspace)


def _item(entry) -> tuple[bytes, str, str]:
    """(raw, source, folder) from a ``MailItem`` or a ``(raw, source[, folder])`` tuple."""
    if hasattr(entry, "raw"):
        return entry.raw, entry.source, getattr(entry, "folder", "")
    raw, source, *rest = entry
    return raw, source, rest[0] if rest else ""


def mail_import(
    *,
    workspace,
    messages: Iterable,
    progress: Callable[[IngestResult], None] | None = None,
    label: str = "",
    actor=None,
) -> ImportSummary:
    """Import messages (``MailItem`` or ``(raw, source[, folder])``); one bad message never stops the rest.

    Batch by batch (``IMPORT_BATCH`` messages, at most ``IMPORT_BATCH_BYTES``): the raw bytes of
    the batch are committed first, in one statement; then the batch is parsed, and its fields,
    threads and audit are written in a second transaction, with a few statements for the
    whole batch (``_batch_store``). Should that transaction fail, the batch is done again one
    message at a time, each in its own savepoint, so one bad message is kept as failed and the
    rest go on. Once an import has read ``THREADLINE_INGEST_POOL_MIN`` messages, parsing moves
    to a pool of ``THREADLINE_INGEST_WORKERS`` processes, a bounded number of batches ahead of
    the database work (a small import is parsed here: a pool costs a second to start).

    A source that counts what it skipped (``MailWalk``: files that are not mail, empty,
    unreadable) has those counted and named in the summary, the ``MailImport`` record and
    the audit event. After the last commit (and whenever ``HANDOFF_EVERY`` threads wait): one
    extraction job per new or changed thread.
    """
    summary = ImportSummary()
    started = time.monotonic()
    ctx = _context_in(workspace)
    with workspace_context(workspace):
        record = MailImport.objects.create(workspace_id=workspace.pk, label=label[:500], actor=actor)
    summary.import_id = record.pk
    removed: set[int] = set()
    error = ""
    pool: ParsePool | None = None
    pending: deque = deque()  # (received, to parse, future) of the batches whose raw bytes are in
    read = 0

    def finish(batch) -> None:
        received, todo, future = batch
        outcomes = pool.result(future) if pool is not None and future is not None else None
        changed, gone = _batch_finish(workspace, ctx, record, summary, received, todo, outcomes)
        removed.update(gone)
        summary.thread_ids |= changed
        for entry in received:
            _count(summary, entry.result, entry.source)
            removed.update(entry.result.removed_thread_ids)
            if progress:
                progress(entry.result)
        if len(summary.thread_ids) >= HANDOFF_EVERY:
            _handoff(workspace, summary, removed)

    try:
        for batch in _batches(messages, IMPORT_BATCH):
            with workspace_context(workspace):
                received = _receive_batch(ctx, batch)
            # The raw bytes are committed: from here on nothing of this batch can be lost.
            todo = _to_parse(received)
            read += len(batch)
            if pool is None and read >= settings.THREADLINE_INGEST_POOL_MIN and _pool_workers() > 1:
                pool = ParsePool(_pool_workers(), seconds=settings.THREADLINE_PARSE_SECONDS, max_depth=_depth())
                summary.parse_workers = pool.workers
            future = pool.submit([(e.raw, e.message_id) for e in todo]) if pool is not None and todo else None
            pending.append((received, todo, future))
            while len(pending) > (pool.in_flight if pool is not None else 0):
                finish(pending.popleft())
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    except BaseException:  # interrupted (Ctrl-C): what is stored stays received, for a re-import
        pending.clear()
        raise
    finally:
        try:
            # Also when the source fails midway (a dropped IMAP connection): what was stored is
            # parsed, handed on and audited before the error goes up.
            while pending:
                finish(pending.popleft())
        finally:
            if pool is not None:
                pool.close()
            _import_finish(
                workspace=workspace,
                summary=summary,
                removed=removed,
                started=started,
                label=label,
                actor=actor,
                record=record,
                source=messages,
                error=error,
            )
    return summary


def _pool_workers() -> int:
    workers = settings.THREADLINE_INGEST_WORKERS
    return workers if workers is not None else min(os.cpu_count() or 1, 4)


def _depth() -> int:
    return settings.THREADLINE_PARSE_MAX_DEPTH


def _receive_batch(ctx: _Context, batch: list[tuple[bytes, str, str]]) -> list[_Received]:
    """Step one for a batch: every raw message stored (status ``received``) in one statement.

    What is not mail is skipped with its reason. A Message-ID that is taken (an earlier import,
    or a second copy in this batch) is told apart as ``_receive`` does: the same bytes are a
    duplicate (or still to parse, if a run stopped before parsing them), other bytes a
    conflict. Should the statement fail, each message is stored on its own (``_receive_guarded``),
    so one the database refuses is counted and named, and the others are kept.
    """
    received: list[_Received] = []
    mail: list[_Received] = []
    for raw, source, folder in batch:
        reason = not_mail_reason(raw)
        if reason:
            received.append(_Received(raw, source, "", result=_skipped(reason)))
            continue
        try:
            message_id = message_id_scan(raw)
        except Exception:  # the id is only a key: the content hash serves as well
            message_id = None
        entry = _Received(raw, source, (message_id or message_id_synthetic(raw))[:998], folder=folder)
        entry.sha256 = hashlib.sha256(raw).hexdigest()
        received.append(entry)
        mail.append(entry)
    if not mail:
        return received
    try:
        with transaction.atomic():
            _receive_many(ctx, mail)
    except Exception:
        logger.warning("storing a batch of %d messages at once failed: storing them one by one", len(mail))
        for entry in mail:
            again = _receive_guarded(ctx, raw=entry.raw, source=entry.source, folder=entry.folder)
            entry.message_id, entry.pk, entry.result = again.message_id, again.pk, again.result
    return received


def _skipped(reason: str) -> IngestResult:
    return IngestResult(status="skipped", message_id="", reason=reason)


def _receive_many(ctx: _Context, mail: list[_Received]) -> None:
    params = {
        "workspace_id": ctx.workspace_id,
        "message_ids": [e.message_id for e in mail],
        "raws": [e.raw for e in mail],
        "shas": [e.sha256 for e in mail],
        "sizes": [len(e.raw) for e in mail],
        "sources": [e.source[:200] for e in mail],
        "folders": [e.folder[:500] for e in mail],
    }
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_SQL["messages_receive"], params)
        inserted = dict((mid, pk) for pk, mid in cursor.fetchall())
        taken = sorted({e.message_id for e in mail} - set(inserted))
        found = {}
        if taken:
            cursor.execute(_SQL["messages_found"], {"message_ids": taken})
            found = {row[0]: row[1:] for row in cursor.fetchall()}
    for entry in mail:
        pk = inserted.pop(entry.message_id, None)
        if pk is not None:  # the first of its Message-ID in this batch, stored now
            entry.pk = pk
            continue
        kept_pk, kept_sha, thread_id, status = found.get(entry.message_id) or _found_in_batch(mail, entry)
        if kept_sha == entry.sha256 or _same_content(kept_pk, entry.raw):
            if status == Message.ParseStatus.RECEIVED:  # stored now or by a run that stopped before parsing
                entry.pk = kept_pk
            else:
                entry.result = IngestResult(
                    status="duplicate", message_id=entry.message_id, message_pk=kept_pk, thread_id=thread_id
                )
        else:
            entry.result = _conflict_keep(
                ctx, entry.raw, entry.sha256, entry.source, entry.folder, kept_pk, entry.message_id
            )


def _found_in_batch(mail: list[_Received], entry: _Received) -> tuple:
    """A second copy of a Message-ID first stored by this very batch."""
    first = next(e for e in mail if e.message_id == entry.message_id and e.pk is not None)
    return first.pk, first.sha256, None, Message.ParseStatus.RECEIVED


def _to_parse(received: list[_Received]) -> list[_Received]:
    """The stored messages to parse, each once: a second copy in the same batch is a duplicate."""
    todo: dict[int, _Received] = {}
    for entry in received:
        if entry.result is not None:
            continue
        if entry.pk in todo:
            entry.result = IngestResult(status="duplicate", message_id=entry.message_id, message_pk=entry.pk)
        else:
            todo[entry.pk] = entry
    return list(todo.values())


def _batch_finish(workspace, ctx, record, summary, received, todo, outcomes) -> tuple[set[int], set[int]]:
    """Step two for a batch: parse here unless a worker did, then store it all at once; on any
    database error, the batch again message by message. The changed and the removed threads."""
    if outcomes is None:
        budget = parse_budget
        outcomes = [parsed_fields(e.raw, e.message_id, budget(), parse=message_parse) for e in todo]
    changed: set[int] = set()
    removed: set[int] = set()
    with workspace_context(workspace):
        try:
            with transaction.atomic():
                changed, removed = _batch_store(ctx, todo, outcomes)
        except Exception as exc:
            logger.warning("a batch of %d messages could not be stored at once (%s): one by one", len(todo), exc)
            summary.batches_one_by_one += 1
            for entry in todo:
                entry.result = _parse_stored(ctx, entry)
        _record_progress(record, summary, [e.result for e in received])
    return changed, removed


def _batch_store(ctx: _Context, todo: list[_Received], outcomes: list[Parsed]) -> tuple[set[int], set[int]]:
    """The parsed fields, references, threads and attachments of a batch in a few statements,
    and each failed message kept with its reason. Sets each entry's result."""
    ok = [(entry, parsed) for entry, parsed in zip(todo, outcomes, strict=True) if parsed.row is not None]
    rows = [{"pk": entry.pk, "thread_id": None, "message_id": entry.message_id, **parsed.row} for entry, parsed in ok]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        pks = [row["pk"] for row in rows for _ in row["related_ids"]]
        if pks:
            refs = [ref for row in rows for ref in row["related_ids"]]
            cursor.execute(
                _SQL["message_references_insert"], {"workspace_id": ctx.workspace_id, "pks": pks, "refs": refs}
            )
    threading = threads_assign_batch(
        workspace_id=ctx.workspace_id, rows=rows, window_days=ctx.window_days, internal_domains=ctx.internal_domains
    )
    if ok:  # one JSON array of the objects serialized where each was parsed, with its id and thread
        stored = ",".join(
            f'{{"id": {entry.pk}, "thread_id": {threading.thread_of[entry.pk]}, {parsed.stored[1:]}'
            for entry, parsed in ok
        )
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_SQL["messages_parsed_store"], {"rows": f"[{stored}]"})
    for entry, parsed in ok:
        if parsed.attachments:
            message = Message(pk=entry.pk, workspace_id=ctx.workspace_id)
            _attachments_store(message=message, attachments=parsed.attachments)
        thread_id = threading.thread_of[entry.pk]
        entry.result = IngestResult(
            status="new",
            message_id=entry.message_id,
            message_pk=entry.pk,
            thread_id=thread_id,
            changed_thread_ids={thread_id},
        )
    for entry, parsed in zip(todo, outcomes, strict=True):
        if parsed.row is None:
            entry.result = _failed(ctx, entry, parsed.error)
    return threading.changed, set(threading.removed)


def _handoff(workspace, summary: ImportSummary, removed: set[int]) -> None:
    """The changed threads so far to extraction (not those merged away meanwhile)."""
    summary.thread_ids -= removed
    removed.clear()
    if summary.thread_ids:
        _extraction_enqueue(workspace=workspace, thread_ids=summary.thread_ids)
    summary.threads_handed_off += len(summary.thread_ids)
    summary.thread_ids = set()


def _count(summary: ImportSummary, result: IngestResult, source: str) -> None:
    if result.status == "skipped":
        summary.skip(source, result.reason)
        return
    if result.status == "failed" and result.message_pk is None:  # the database refused even the raw bytes
        summary.skip(source, f"not stored: {result.reason}")
        return
    summary.read += 1
    summary.new += result.status == "new"
    summary.duplicate += result.status == "duplicate"
    summary.conflict += result.status == "conflict"
    summary.failed += result.status == "failed"
    summary.thread_ids |= result.changed_thread_ids


def _record_progress(record: MailImport, summary: ImportSummary, results: list[IngestResult]) -> None:
    """The import's record shows how far it got while it runs (one UPDATE per batch)."""
    statuses = [r.status for r in results]
    MailImport.objects.filter(pk=record.pk).update(
        messages_read=summary.read + sum(s != "skipped" for s in statuses),
        messages_new=summary.new + statuses.count("new"),
        messages_failed=summary.failed + statuses.count("failed"),
    )


def _import_finish(
    *, workspace, summary: ImportSummary, removed: set[int], started: float, label: str, actor, record, source, error
):
    for skipped in getattr(source, "skipped", None) or []:
        summary.skip(skipped.path, skipped.reason)
    summary.files_seen = getattr(source, "files_seen", 0)
    summary.files_read = getattr(source, "files_read", 0)
    summary.thread_ids -= removed
    if summary.thread_ids:
        _extraction_enqueue(workspace=workspace, thread_ids=summary.thread_ids)
    summary.seconds = time.monotonic() - started
    with workspace_context(workspace):
        MailImport.objects.filter(pk=record.pk).update(
            finished_at=timezone.now(),
            files_seen=summary.files_seen,
            files_skipped=summary.skipped_count,
            messages_read=summary.read,
            messages_new=summary.new,
            messages_duplicate=summary.duplicate,
            messages_conflict=summary.conflict,
            messages_failed=summary.failed,
            skipped_json=summary.skipped,
            skipped_by_reason=summary.skipped_by_reason,
            error=error[:2000],
        )
        audit_event_record(
            workspace_id=workspace.pk,
            type="mail.imported",
            actor=actor,
            data={"source": label, **summary.as_dict(), "skipped_files": summary.skipped[:100]},
        )


def _batches(messages: Iterable, size: int):
    """Lists of at most ``size`` messages and about IMPORT_BATCH_BYTES, read before the batch's
    transaction opens (so no transaction waits on a network fetch)."""
    batch, total = [], 0
    try:
        for entry in messages:
            item = _item(entry)
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


def messages_reparse(*, workspace, message_pks: Iterable[int], actor=None) -> ImportSummary:
    """Parse stored messages again (failed ones, or ones left ``received`` by a run that stopped),
    for instance after raising the parse budget. Parsed messages are left alone."""
    summary = ImportSummary()
    started = time.monotonic()
    ctx = _context_in(workspace)
    with workspace_context(workspace):
        rows = list(
            Message.objects.filter(pk__in=list(message_pks))
            .exclude(parse_status=Message.ParseStatus.PARSED)
            .values_list("pk", "message_id", "raw", "source")
        )
    for pk, message_id, raw, source in rows:
        with workspace_context(workspace):
            result = _parse_stored(ctx, _Received(bytes(raw), source, message_id, pk=pk))
            audit_event_record(
                workspace_id=workspace.pk,
                type="message.reparsed",
                actor=actor,
                data={"message": pk, "status": result.status, "reason": result.reason[:500]},
            )
        _count(summary, result, source)
    if summary.thread_ids:
        _extraction_enqueue(workspace=workspace, thread_ids=summary.thread_ids)
    summary.seconds = time.monotonic() - started
    return summary


def message_conflict_resolve(
    *, workspace, conflict: MessageConflict, keep_both: bool, actor=None
) -> IngestResult | None:
    """An operator's decision on a conflict. ``keep_both``: the conflicting content becomes a
    message of its own (under a derived Message-ID, threaded by its references). Otherwise the
    first message alone stays; the conflicting bytes remain on the conflict record.

    None when the conflict was decided already (by someone else meanwhile).
    """
    ctx = _context_in(workspace)
    result = None
    with workspace_context(workspace):
        conflict = MessageConflict.objects.select_for_update().filter(pk=conflict.pk).first()
        if conflict is None or conflict.status != MessageConflict.Status.OPEN:
            return None
        if keep_both:
            derived = f"conflict-{conflict.raw_sha256[:16]}.{conflict.message_id}"[:998]
            received = _receive(
                ctx, raw=bytes(conflict.raw), source=conflict.source, folder=conflict.folder, message_id=derived
            )
            result = received.result or _parse_stored(ctx, received)
        status = MessageConflict.Status.KEPT_BOTH if keep_both else MessageConflict.Status.KEPT_EXISTING
        MessageConflict.objects.filter(pk=conflict.pk).update(
            status=status,
            resolved_by=actor,
            resolved_at=timezone.now(),
            resolved_message_id=result.message_pk if result else None,
        )
        audit_event_record(
            workspace_id=workspace.pk,
            type="message.conflict_resolved",
            actor=actor,
            data={"conflict": conflict.pk, "message_id": conflict.message_id, "decision": status.value},
        )
        if result is not None and result.changed_thread_ids:
            ids = set(result.changed_thread_ids)
            transaction.on_commit(lambda: _extraction_enqueue(workspace=workspace, thread_ids=ids))
    return result


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
                yield raw, f"imap:{account.key}#{uid}", account.mailbox

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
