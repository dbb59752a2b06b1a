"""Reads about threads and messages (inside the caller's workspace context)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    F,
    Field,
    Func,
    IntegerField,
    Lookup,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Length, Substr
from django.db.models.lookups import GreaterThan, LessThan

from threads.models import Attachment, Message, Thread, ThreadTerm

# Columns that can be tens of megabytes: pages that list or show messages never load them
# whole; they annotate a cut (Substr reads only a slice of a TOASTed value) and the length.
BIG_COLUMNS = ("text", "html", "reply_text", "raw", "headers_json")


def body_display_limit() -> int:
    """How many characters of a body the pages show (THREADLINE_BODY_DISPLAY_MAX_CHARS)."""
    return max(1, settings.THREADLINE_BODY_DISPLAY_MAX_CHARS)


class OctetLength(Func):
    """Bytes in a value: PostgreSQL reads it from the TOAST header, without decompressing the
    value as LENGTH (characters) must."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()


def is_cut(head: str, *, limit: int, octets: int) -> bool:
    """Whether ``head`` (the first ``limit`` characters of a value of ``octets`` UTF-8 bytes)
    is only part of it: exact, without counting the value's characters."""
    return len(head) >= limit and octets > len(head.encode())


SEARCH_MAX_WORDS = 8


def search_words(query: str) -> list[str]:
    """The words of a search, as ThreadTerm keeps them: lower-cased; an address stays whole
    (``cfo@acme.example``), other words split where threads/sql/thread_terms.sql splits them."""
    words: list[str] = []
    for token in query.lower().split():
        token = token.strip(".,;:!?()[]{}<>\"'")
        pieces = [token] if "@" in token else re.split(r"[\W_]+", token)
        words += [w[:200] for w in pieces if w and w[:200] not in words]
    return words[:SEARCH_MAX_WORDS]


def _after_prefix(word: str) -> str:
    """The least string greater than every string that starts with ``word`` (in code point order)."""
    last = ord(word[-1]) + 1
    if last == 0xD800:  # past the surrogates, which no text holds
        last = 0xE000
    return word[:-1] + chr(last) if last <= 0x10FFFF else word + "\U0010ffff"


def thread_list(*, workspace_id: int | None = None, query: str = "") -> QuerySet[Thread]:
    """The workspace's threads, latest conversation first.

    ``workspace_id``: the context's workspace, said again as a constant. Row-level security
    alone gives the planner only a parameter (the policy's sub-select), so it plans for a
    workspace of average size: for a large one it reads and sorts every thread instead of
    walking (workspace, last_message_at) for a page. With the constant it knows the
    workspace's share of the rows, and the policy is still checked (a one-time filter).

    ``query``: threads with, for each of its words, a word of the subject or of a participant's
    address that starts with it (ThreadTerm). Each word is a btree range on
    ``(workspace_id, term)``: an index serves it under row-level security, where a substring
    match (ILIKE) would read every thread of the workspace.
    """
    threads = Thread.objects.order_by("-last_message_at", "-id")
    if workspace_id is not None:
        threads = threads.filter(workspace_id=workspace_id)
    for word in search_words(query):
        terms = ThreadTerm.objects.filter(term__gte=word, term__lt=_after_prefix(word))
        if workspace_id is not None:  # the same constant, for the terms' share of the workspace
            terms = terms.filter(workspace_id=workspace_id)
        # id = ANY(ARRAY(...)): the matches' ids are read once (an InitPlan) and their threads
        # fetched by primary key, so a search reads its matches, not the workspace. As a join
        # (IN) the planner read every thread of a large workspace to hash them against the
        # matches: 54 ms for 1,152 matches among 58,950 threads, 5 ms this way (bench/scale.py).
        threads = threads.filter(InArray(F("pk"), terms.values("thread_id")))
    return threads


class InArray(Lookup):
    """``lhs = ANY(ARRAY(subquery))``: the subquery's rows as one array, computed once."""

    lookup_name = "in_array"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY({rhs}))", [*lhs_params, *rhs_params]


class Row(Func):
    """``ROW(a, b)``: compared with another row, PostgreSQL orders by ``a`` then ``b``, and a
    btree index on ``(…, a, b)`` serves the comparison as its condition (a keyset page)."""

    function = "ROW"
    output_field = Field()


class CursorInvalid(ValueError):
    """A ``after``/``before`` value that is not a cursor this page wrote."""


@dataclass(frozen=True)
class ThreadCursor:
    """A position in the thread list: the sort key (``last_message_at``, None for a thread
    without a date, which sorts first) and the id that breaks its ties."""

    last_message_at: datetime | None
    id: int

    @classmethod
    def of(cls, thread: Thread) -> ThreadCursor:
        return cls(thread.last_message_at, thread.pk)

    def encode(self) -> str:
        stamp = self.last_message_at.isoformat() if self.last_message_at is not None else "none"
        return f"{stamp}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> ThreadCursor:
        stamp, sep, ident = text.rpartition("~")
        try:
            if not sep or not ident.isdigit():
                raise ValueError("no '~<id>' at its end")
            when = None if stamp == "none" else datetime.fromisoformat(stamp)
            if when is not None and when.tzinfo is None:
                raise ValueError("its time has no time zone")
        except ValueError as exc:
            raise CursorInvalid(f"not a thread-list position ({exc}): {text[:80]!r}") from None
        return cls(when, int(ident))


@dataclass
class ThreadPage:
    threads: list[Thread]
    next: ThreadCursor | None  # the cursor of the older page (``after``), None on the last page
    previous: ThreadCursor | None  # the cursor of the newer page (``before``), None on the first page


def thread_page(
    *,
    workspace_id: int | None = None,
    query: str = "",
    after: ThreadCursor | None = None,
    before: ThreadCursor | None = None,
    size: int = 50,
) -> ThreadPage:
    """One page of ``thread_list``: the ``size`` threads after ``after`` (older), or before
    ``before`` (newer), or the first page. A keyset page: each query starts at the cursor in
    the ``(workspace, last_message_at, id)`` index and reads about a page of rows, however
    deep the page (OFFSET would read every row before it). No COUNT(*).

    Threads without a date sort first (DESC puts NULLs first, as the index does); a
    comparison with NULL is never true, so that group is read by its own query when a page
    crosses it."""
    threads = thread_list(workspace_id=workspace_id, query=query)
    if before is None:
        rows = _older(threads, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return ThreadPage(
            threads=rows,
            next=ThreadCursor.of(rows[-1]) if more else None,
            previous=ThreadCursor.of(rows[0]) if after is not None and rows else None,
        )
    rows = _newer(threads, before, size + 1)
    more = len(rows) > size
    rows = rows[len(rows) - size :] if more else rows
    return ThreadPage(
        threads=rows,
        next=ThreadCursor.of(rows[-1]) if rows else None,
        previous=ThreadCursor.of(rows[0]) if more else None,
    )


def _older(threads: QuerySet[Thread], cursor: ThreadCursor | None, n: int) -> list[Thread]:
    """The first ``n`` threads after ``cursor`` in the list's order (newest first, NULLs first)."""
    if cursor is None:
        return list(threads[:n])
    if cursor.last_message_at is not None:  # the dated threads past it; undated ones are all before
        key = Row(F("last_message_at"), F("id"))
        return list(threads.filter(LessThan(key, Row(Value(cursor.last_message_at), Value(cursor.id))))[:n])
    rows = list(threads.filter(last_message_at__isnull=True, id__lt=cursor.id)[:n])
    if len(rows) < n:
        rows += threads.filter(last_message_at__isnull=False)[: n - len(rows)]
    return rows


def _newer(threads: QuerySet[Thread], cursor: ThreadCursor, n: int) -> list[Thread]:
    """The ``n`` threads just before ``cursor`` in the list's order, in that order."""
    backwards = threads.order_by(F("last_message_at").asc(nulls_last=True), "id")
    if cursor.last_message_at is None:
        rows = list(backwards.filter(last_message_at__isnull=True, id__gt=cursor.id)[:n])
    else:
        key = Row(F("last_message_at"), F("id"))
        rows = list(backwards.filter(GreaterThan(key, Row(Value(cursor.last_message_at), Value(cursor.id))))[:n])
        if len(rows) < n:
            rows += backwards.filter(last_message_at__isnull=True)[: n - len(rows)]
    return rows[::-1]


def thread_get(*, thread_id: int) -> Thread | None:
    return Thread.objects.filter(pk=thread_id).first()


def _shown_body():
    """The body a thread page shows: the reply, or the whole text of a message without one."""
    return Case(When(reply_text="", then=F("text")), default=F("reply_text"))


def thread_messages(*, thread: Thread, limit: int | None = None) -> list[Message]:
    """A thread's messages in the order they were sent, with the big columns deferred.

    Each carries ``body_head`` (the first ``limit`` characters of its reply, or of its text
    when it has no reply), ``body_length`` (characters), ``body_part`` ("reply" or "text", for
    the link to the whole), ``body_cut``, ``html_size`` (bytes) and ``html_cut``; and its
    attachments, in order. Only the shown body's length is counted (LENGTH reads the whole
    value inside PostgreSQL); the rest comes from byte sizes, which cost nothing.
    """
    limit = limit or body_display_limit()
    rows = list(
        Message.objects.filter(thread=thread)
        .defer(*BIG_COLUMNS)
        .annotate(
            body_head=Substr(_shown_body(), 1, limit),
            body_length=Length(_shown_body()),
            has_reply=ExpressionWrapper(~Q(reply_text=""), output_field=BooleanField()),
            html_size=OctetLength("html"),
        )
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("pk")))
        .order_by("sent_at", "id")
    )
    for message in rows:
        message.body_part = "reply" if message.has_reply else "text"
        message.body_cut = message.body_length > limit
        # Fewer bytes than the limit in characters: certainly whole; more: the frame says.
        message.html_cut = message.html_size > limit
    return rows


def message_text_whole(*, message_id: int, part: str = "text") -> str | None:
    """The whole plain text (``part="reply"``: the reply) of a message, for the "whole text" link."""
    field = "reply_text" if part == "reply" else "text"
    return Message.objects.filter(pk=message_id).values_list(field, flat=True).first()


def message_html_head(*, message_id: int, limit: int | None = None) -> tuple[str, int] | None:
    """The first ``limit`` characters of a message's HTML and its whole size in bytes, cut in SQL."""
    limit = limit or body_display_limit()
    return (
        Message.objects.filter(pk=message_id)
        .annotate(head=Substr("html", 1, limit), size=OctetLength("html"))
        .values_list("head", "size")
        .first()
    )


def message_body_heads(*, message_id: int, limit: int | None = None) -> dict[str, tuple[str, int]]:
    """The first ``limit`` characters and the length of a message's text, html and reply."""
    limit = limit or body_display_limit()
    columns = ("text", "html", "reply_text")
    cuts = {f"{c}_head": Substr(c, 1, limit) for c in columns} | {f"{c}_length": Length(c) for c in columns}
    row = Message.objects.filter(pk=message_id).values(**cuts).first()
    if row is None:
        return {c: ("", 0) for c in columns}
    return {c: (row[f"{c}_head"] or "", row[f"{c}_length"] or 0) for c in columns}


def message_column(*, message_id: int, column: str):
    """One whole column of one message (``raw`` or ``html``), for a download; None: no such message."""
    return Message.objects.filter(pk=message_id).values_list(column, flat=True).first()


def attachment_get(*, attachment_id: int) -> Attachment | None:
    return Attachment.objects.filter(pk=attachment_id).first()


def threads_export() -> list[dict]:
    """Every thread with its messages in order: the machine-readable form of threading."""
    threads = list(Thread.objects.order_by("first_message_at", "id").values("pk", "subject", "primary_contact_email"))
    rows = (
        Message.objects.filter(thread__isnull=False)
        .order_by("sent_at", "id")
        .values_list(
            "thread_id",
            "message_id",
            "in_reply_to_json",
            "references_json",
            "subject",
            "from_email",
            "sent_at",
            "reply_text",
        )
    )
    by_thread: dict[int, list[dict]] = {t["pk"]: [] for t in threads}
    for thread_id, mid, irt, refs, subject, sender, sent_at, reply in rows.iterator(chunk_size=2000):
        by_thread[thread_id].append(
            {
                "message_id": mid,
                "in_reply_to": irt,
                "references": refs,
                "subject": subject,
                "from": sender,
                "date": sent_at.isoformat() if sent_at else None,
                "reply_text": reply,
            }
        )
    return [
        {
            "id": t["pk"],
            "subject": t["subject"],
            "primary_contact_email": t["primary_contact_email"],
            "messages": by_thread[t["pk"]],
        }
        for t in threads
    ]


def messages_failed() -> QuerySet[Message]:
    """Messages that could not be parsed, for operators."""
    return Message.objects.filter(parse_status=Message.ParseStatus.FAILED).defer(*BIG_COLUMNS).order_by("-created_at")
