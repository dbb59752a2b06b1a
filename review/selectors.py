"""Reads for the review console: the queue (keyset-paginated), an item in context, the dashboard."""

from __future__ import annotations

import base64
import json
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, Min, Q
from django.db.models.functions import Substr
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from review.models import ReviewItem
from review.sql import ITEM_QUERIES, QUERIES
from threads.highlight import text_cut
from threads.models import Message
from threads.selectors import body_display_limit
from workspaces.models import AuditEvent

PAGE_SIZE = 50
SORTS = {"newest": ("-created_at", "-id"), "oldest": ("created_at", "id")}
# Besides the stored statuses: every item, the open items someone skipped, the edited ones.
STATUSES = {*ReviewItem.Status.values, "all", "skipped", "edited"}


@dataclass
class QueueFilters:
    status: str = "open"
    reason: str = ""
    field: str = ""
    assignee: str = ""  # "", "me", "unassigned"
    older_than_hours: int = 0
    sort: str = "newest"

    @classmethod
    def from_query(cls, query) -> QueueFilters:
        def number(key):
            try:
                return max(0, int(query.get(key, 0)))
            except (TypeError, ValueError):
                return 0

        status = query.get("status", "open")
        return cls(
            status=status if status in STATUSES else "open",
            reason=query.get("reason", "") if query.get("reason", "") in ReviewItem.Reason.values else "",
            field=query.get("field", "")[:100],
            assignee=query.get("assignee", "") if query.get("assignee") in ("me", "unassigned") else "",
            older_than_hours=number("older_than_hours"),
            sort=query.get("sort", "newest") if query.get("sort") in SORTS else "newest",
        )

    @property
    def hidden_fields(self) -> list[tuple[str, object]]:
        """The non-default filters, to carry through a decision's POST to the next item."""
        defaults = QueueFilters().__dict__
        return [(k, v) for k, v in self.__dict__.items() if v != defaults[k]]

    def querystring(self, **changes) -> str:
        from urllib.parse import urlencode

        values = {**self.__dict__, **changes}
        defaults = QueueFilters().__dict__
        return urlencode({k: v for k, v in values.items() if v != defaults[k] and v not in ("", None)})


def queue_items(*, filters: QueueFilters, user, cursor: str | None = None, limit: int = PAGE_SIZE):
    """One page of the queue (``QueueRow`` each) and the cursor of the next (keyset: no
    OFFSET, no COUNT).

    Items I skipped come after the others (then newest or oldest first, as sorted). The two
    parts are read one after the other, each in the order of the (workspace, status,
    created_at) index, so a page reads about ``limit`` rows whatever the queue's length: one
    ORDER BY over both parts would sort every open item first."""
    items = _ordered(filters, user)
    after = _decode_cursor(cursor)
    page: list[QueueRow] = []
    for skipped in (False, True):
        if after is not None and after[0] and not skipped:
            continue  # the cursor is in the skipped part already
        part = _part(items, skipped=skipped)
        if after is not None and after[0] == skipped:
            part = part.filter(_keyset_later(filters, after[1], after[2]))
        # Tuples of only the columns a row shows: a model instance (three, with the thread and
        # the assignee) costs more than the row's query, fifty times a page.
        rows = part.order_by(*SORTS[filters.sort]).values_list(*_QUEUE_ROW_COLUMNS)[: limit + 1 - len(page)]
        page += [QueueRow(*row) for row in rows]
        if len(page) > limit:
            break
    next_cursor = _encode_cursor(page[limit - 1]) if len(page) > limit else None
    page = page[:limit]
    with_decided_values(page)
    return page, next_cursor


_QUEUE_ROW_COLUMNS = (
    *("id", "thread_id", "assigned_to_id", "reason", "status", "payload_json", "version", "created_at"),
    *("skipped_me", "thread__subject", "assigned_to__username"),
)


@dataclass(eq=False)
class QueueRow:
    """A review item as a queue row reads it (``_QUEUE_ROW_COLUMNS``, in that order)."""

    pk: int
    thread_id: int | None
    assigned_to_id: int | None
    reason: str
    status: str
    payload_json: dict
    version: int
    created_at: datetime
    skipped_me: bool
    thread_subject: str | None
    assignee_username: str | None
    decided: dict | None = None  # with_decided_values

    def get_reason_display(self) -> str:
        return ReviewItem.Reason(self.reason).label if self.reason in ReviewItem.Reason.values else self.reason


def _filtered(filters: QueueFilters, user):
    items = ReviewItem.objects.all()
    if filters.status == "skipped":
        items = items.filter(status=ReviewItem.Status.OPEN).exclude(skipped_by=[])  # review_ws_skipped
    elif filters.status == "edited":
        items = items.filter(status=ReviewItem.Status.APPROVED, payload_json__last_decision__decision="edit")
    elif filters.status != "all":
        items = items.filter(status=filters.status)
    if filters.reason:
        items = items.filter(reason=filters.reason)
    if filters.field:
        items = items.filter(payload_json__field=filters.field)
    if filters.assignee == "me":
        items = items.filter(assigned_to=user)
    elif filters.assignee == "unassigned":
        items = items.filter(assigned_to__isnull=True)
    if filters.older_than_hours:
        items = items.filter(created_at__lt=timezone.now() - timedelta(hours=filters.older_than_hours))
    return items


def _ordered(filters: QueueFilters, user):
    """The filtered items with ``skipped_me``: whether this reviewer skipped the item."""
    return _filtered(filters, user).annotate(
        skipped_me=ExpressionWrapper(Q(skipped_by__contains=[user.pk]), output_field=BooleanField())
    )


def _part(items, *, skipped: bool):
    """The items this reviewer skipped, or the others. The skipped part also says the
    partial index's condition (review_ws_skipped), which PostgreSQL cannot infer from ``@>``:
    without it, finding that there are none would read every open item."""
    if skipped:
        return items.filter(skipped_me=True).exclude(skipped_by=[])
    return items.filter(skipped_me=False)


def _keyset_later(filters: QueueFilters, created_at, pk) -> Q:
    """Items after (created_at, pk) in the sort order, within one part of the queue."""
    return _before(created_at, pk) if filters.sort == "newest" else _after(created_at, pk)


def decided_value(item: ReviewItem) -> dict | None:
    """What a decision made of the item's value: ``{"value", "edited", "proposed"}`` for a
    decided value item (an edit shows the reviewer's value beside the proposed one)."""
    if item.status == ReviewItem.Status.OPEN or "proposed_value" not in item.payload_json:
        return None
    last = item.payload_json.get("last_decision") or {}
    proposed = item.payload_json.get("proposed_value")
    if last.get("decision") == "edit":
        value = last["value"] if "value" in last else getattr(item, "_edited_value", None)
        return {"value": value, "edited": True, "proposed": proposed}
    return {"value": proposed, "edited": False, "proposed": proposed}


def with_decided_values(items: list[ReviewItem]) -> list[ReviewItem]:
    """Set each item's ``decided`` (``decided_value``). Items edited before decisions kept
    their value read it from the audit log (one query for them all)."""
    missing = [
        i.pk
        for i in items
        if (i.payload_json.get("last_decision") or {}).get("decision") == "edit"
        and "value" not in i.payload_json["last_decision"]
    ]
    found: dict[int, object] = {}
    if missing:
        events = AuditEvent.objects.filter(type="review_item.edited", review_item_id__in=missing)
        for data in events.order_by("created_at").values_list("data_json", flat=True):
            found[data.get("review_item_id")] = data.get("value")
    for item in items:
        if item.pk in found:
            item._edited_value = found[item.pk]
        item.decided = decided_value(item)
    return items


COUNT_CAP = 1000


def queue_counts_by_reason(*, status: str = "open", cap: int | None = COUNT_CAP) -> dict[str, int]:
    """Items per reason in one status. With a cap, each count stops there (shown as "1000+"),
    so the queue page does not slow down as the queue grows; the dashboard counts exactly."""
    if cap is None:
        rows = ReviewItem.objects.filter(status=status).values("reason").annotate(n=Count("id"))
        counts = {row["reason"]: row["n"] for row in rows}
        return {reason: counts.get(reason, 0) for reason in ReviewItem.Reason.values}
    with connection.cursor() as cursor:
        cursor.execute(
            QUERIES["counts_by_reason_capped"], {"status": status, "cap": cap + 1, "reasons": ReviewItem.Reason.values}
        )
        return dict(cursor.fetchall())


def queue_neighbours(*, item: ReviewItem, filters: QueueFilters, user) -> tuple[int | None, int | None]:
    """The items before and after this one in queue order (for j/k and 'next after a decision').

    Within the item's part of the queue (skipped by me or not) first, then across the border
    between the parts: one named statement (review/sql/item.sql), each probe an index range
    scan that stops at its first row, compiled by no ORM on every view of an item."""
    skipped = user.pk in (item.skipped_by or [])
    older = timezone.now() - timedelta(hours=filters.older_than_hours) if filters.older_than_hours else None
    params = {
        "pk": item.pk,
        "created_at": item.created_at,
        "user": user.pk,
        "skipped": skipped,
        "newest": filters.sort == "newest",
        "status": filters.status,
        "reason": filters.reason,
        "field": filters.field,
        "mine": filters.assignee == "me",
        "unassigned": filters.assignee == "unassigned",
        "older": older,
    }
    with connection.cursor() as cursor:
        cursor.execute(ITEM_QUERIES["queue_neighbours"], params)
        prev_id, next_id, across = cursor.fetchone()
    if prev_id is None and skipped:
        prev_id = across
    if next_id is None and not skipped:
        next_id = across
    return prev_id, next_id


def _before(created_at, pk) -> Q:
    """Keyset condition for (created_at, id) < (created_at, pk). The redundant bound on
    created_at alone is what lets the index range-scan from the cursor instead of filtering
    every newer row."""
    return Q(created_at__lte=created_at) & (Q(created_at__lt=created_at) | Q(pk__lt=pk))


def _after(created_at, pk) -> Q:
    return Q(created_at__gte=created_at) & (Q(created_at__gt=created_at) | Q(pk__gt=pk))


def _encode_cursor(item: ReviewItem) -> str:
    raw = json.dumps([item.created_at.isoformat(), item.pk, bool(getattr(item, "skipped_me", False))]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[bool, datetime, int] | None:
    if not cursor:
        return None
    try:
        created, pk, *rest = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        parsed = parse_datetime(created)
        return (bool(rest and rest[0]), parsed, int(pk)) if parsed else None
    except (ValueError, TypeError):
        return None


# --- an item in context ------------------------------------------------------------------


@dataclass
class Segment:
    text: str
    highlight: bool
    start: int = 0  # where ``text`` begins in the message's reply_text
    gap: int = 0  # a gap: this many characters are not shown here (``text`` is empty)


# Beyond the first THREADLINE_BODY_DISPLAY_MAX_CHARS characters, each evidence span is shown
# with this much text on either side.
EVIDENCE_CONTEXT = 300


def message_segments(text: str, spans: list[tuple[int, int]], *, offset: int = 0) -> list[Segment]:
    """The text cut into plain and highlighted pieces (overlapping spans merged, the white
    space at their ends left out), as the thread page marks them (``threads.highlight``).

    ``text`` is the piece of the message that starts at ``offset``; spans are offsets in the
    whole message, so a window far into a huge message highlights at the right places.
    """
    return [
        Segment(text[start:end], cited is not None, offset + start)
        for start, end, cited in text_cut(text, spans, offset=offset)
    ]


def _windows(spans: list[tuple[int, int]], *, limit: int, length: int) -> list[tuple[int, int]]:
    """The ranges beyond the first ``limit`` characters to show around the spans there, merged
    and in order; together at most ``limit`` characters, so the page stays small."""
    ranges: list[list[int]] = []
    budget = limit
    for start, end in sorted(spans):
        low, high = max(limit, start - EVIDENCE_CONTEXT), min(length, end + EVIDENCE_CONTEXT)
        if ranges and low <= ranges[-1][1]:
            low = ranges[-1][1]
        high = min(high, low + budget)
        if high <= low:
            continue
        budget -= high - low
        if ranges and low == ranges[-1][1]:
            ranges[-1][1] = high
        else:
            ranges.append([low, high])
    return [(low, high) for low, high in ranges]


def _window_texts(message_pk: int, windows: list[tuple[int, int]]) -> list[str]:
    """The windows' text, cut in SQL (one query): the message's reply_text is never loaded whole."""
    cuts = {f"w{i}": Substr("reply_text", low + 1, high - low) for i, (low, high) in enumerate(windows)}
    row = Message.objects.filter(pk=message_pk).values(**cuts).first() or {}
    return [row.get(f"w{i}") or "" for i in range(len(windows))]


def _reply_segments(message: Message, spans: list[tuple[int, int]], limit: int) -> list[Segment]:
    segments = message_segments(message.reply_head or "", spans)
    position = len(message.reply_head or "")
    windows = _windows(spans, limit=limit, length=message.reply_length) if message.reply_length > limit else []
    texts = _window_texts(message.pk, windows) if windows else []
    for (low, high), text in zip(windows, texts, strict=True):
        if low > position:
            segments.append(Segment("", False, position, gap=low - position))
        segments.extend(message_segments(text, spans, offset=low))
        position = high
    if position < message.reply_length:
        segments.append(Segment("", False, position, gap=message.reply_length - position))
    return segments


def item_messages(*, item: ReviewItem) -> list[dict]:
    """The thread's messages in order, each with the item's evidence spans marked.

    Only the first THREADLINE_BODY_DISPLAY_MAX_CHARS characters of each reply are read, plus
    a window around each span beyond them, all cut in SQL: fast whatever the message's size.
    """
    if item.thread_id is None:
        return []
    evidence = item.payload_json.get("evidence") or []
    by_message: dict[int, list[tuple[int, int]]] = {}
    for span in evidence:
        if isinstance(span, dict) and isinstance(span.get("start"), int) and isinstance(span.get("end"), int):
            by_message.setdefault(span.get("message_id"), []).append((span["start"], span["end"]))
    limit = body_display_limit()
    rows = getattr(item, "message_rows", None)  # read with the item (item_for_page)
    if rows is None:
        with connection.cursor() as cursor:
            cursor.execute(ITEM_QUERIES["item_message_rows"], {"thread": item.thread_id, "limit": limit})
            rows = cursor.fetchall()
            if [column.name for column in cursor.description[:-2]] != list(_MESSAGE_FIELDS):
                raise RuntimeError("review/sql/item.sql item_message_rows must select _MESSAGE_FIELDS, in model order")
    entries = []
    for *values, reply_head, reply_length in rows:
        m = Message.from_db(None, _MESSAGE_FIELDS, values)  # only these fields: a model instance costs per column
        m.reply_head, m.reply_length = reply_head, reply_length
        entries.append(
            {
                "message": m,
                "segments": _reply_segments(m, by_message.get(m.pk, []), limit),
                "has_evidence": m.pk in by_message,
                "cut": m.reply_length > limit,
                "length": m.reply_length,
                "limit": limit,
            }
        )
    return entries


# In the model's field order (Model.from_db takes the values in that order).
_MESSAGE_FIELDS = ("id", "subject", "from_email", "from_name", "sent_at", "parse_status", "parse_error", "folder")


@dataclass(frozen=True)
class HistoryEvent:
    created_at: datetime
    type: str
    actor_name: str | None  # None: done by the system


def item_history(*, item: ReviewItem) -> list[HistoryEvent]:
    """The item's audit events, oldest first (at most 50)."""
    events = getattr(item, "history", None)  # read with the item (item_for_page)
    if events is not None:
        return events
    with connection.cursor() as cursor:
        cursor.execute(ITEM_QUERIES["item_history"], {"pk": item.pk})
        return [HistoryEvent(*row) for row in cursor.fetchall()]


_ITEM_FIELDS = tuple(f.attname for f in ReviewItem._meta.concrete_fields)
_ITEM_PAGE_EXTRAS = (
    *("thread_subject", "assignee_name", "history_created_at", "history_type", "history_actor", "message_id"),
    *("message_subject", "from_email", "from_name", "sent_at", "parse_status", "parse_error", "folder"),
    *("reply_head", "reply_length"),
)


def item_for_page(*, pk: int) -> ReviewItem | None:
    """The review item (None when it is not there, or not in this workspace) with what its
    page shows besides j/k, in one named statement (review/sql/item.sql, no ORM compilation):
    ``thread_subject``, ``assignee_name``, and the rows ``item_history`` and ``item_messages``
    read when they are not given (``history``, ``message_rows``)."""
    with connection.cursor() as cursor:
        cursor.execute(ITEM_QUERIES["item_row"], {"pk": pk, "limit": body_display_limit()})
        row = cursor.fetchone()
        names = tuple(column.name for column in cursor.description)
    if names != (*(f.column for f in ReviewItem._meta.concrete_fields), *_ITEM_PAGE_EXTRAS):
        raise RuntimeError("review/sql/item.sql item_row must select review_reviewitem's columns in model order")
    if row is None:
        return None
    n = len(_ITEM_FIELDS)
    values = list(row[:n])
    payload = _ITEM_FIELDS.index("payload_json")
    if isinstance(values[payload], str | bytes):  # Django leaves jsonb to the field's from_db_value
        values[payload] = json.loads(values[payload])
    item = ReviewItem.from_db(connection.alias, _ITEM_FIELDS, values)
    item.thread_subject, item.assignee_name, created, types, actors, *messages = row[n:]
    item.history = [HistoryEvent(*event) for event in zip(created or [], types or [], actors or [], strict=True)]
    item.message_rows = list(zip(*(column or [] for column in messages), strict=True))
    return item


# --- the dashboard -----------------------------------------------------------------------


DASHBOARD_DAYS = 30


def dashboard_counts(*, days: int = DASHBOARD_DAYS) -> dict:
    """The dashboard's figures that count every open item and ``days`` of routing, as JSON
    (the snapshot keeps them: review.models.DashboardSnapshot). Their cost grows with the
    workspace (600 ms at a million messages), so views read them from the snapshot."""
    since = timezone.now() - timedelta(days=days)
    open_items = ReviewItem.objects.filter(status=ReviewItem.Status.OPEN)
    oldest = open_items.aggregate(oldest=Min("created_at"))["oldest"]
    routed = AuditEvent.objects.filter(created_at__gte=since).aggregate(
        accepted=Count("id", filter=Q(type="field_value.accepted")),
        reviewed=Count(
            "id",
            filter=Q(type="review_item.opened")
            & ~Q(data_json__reason__in=["audit_sample", "association", "job_failed"]),
        ),
    )
    return {
        "open_by_reason": queue_counts_by_reason(cap=None),
        "open_total": open_items.count(),
        "oldest_open_at": oldest.isoformat() if oldest else None,
        "auto_accepted": routed["accepted"],
        "sent_to_review": routed["reviewed"],
        "days": days,
    }


def dashboard_snapshot():
    """The workspace's kept dashboard counts (``DashboardSnapshot``), or None before the first."""
    from review.models import DashboardSnapshot

    return DashboardSnapshot.objects.first()


def dashboard_figures(*, counts: dict, as_of: datetime) -> dict:
    """What the dashboard shows: ``counts`` (as of ``as_of``) and today's decisions, read live."""
    now = timezone.now()
    oldest = parse_datetime(counts["oldest_open_at"]) if counts.get("oldest_open_at") else None
    total = counts["auto_accepted"] + counts["sent_to_review"]
    return {
        "open_by_reason": {key: counts["open_by_reason"].get(key, 0) for key in ReviewItem.Reason.values},
        "open_total": counts["open_total"],
        "oldest_age": (now - oldest) if oldest else None,
        "decisions_today": reviewer_figures(since=now.replace(hour=0, minute=0, second=0, microsecond=0)),
        "auto_accept_rate": (counts["auto_accepted"] / total) if total else None,
        "auto_accepted": counts["auto_accepted"],
        "sent_to_review": counts["sent_to_review"],
        "days": counts["days"],
        "as_of": as_of,
    }


# Every decision a person makes, as audited. "review_item.rejectd" is a misspelling of a
# rejection reported against an earlier build (this repository never wrote it); the audit log
# is append-only, so a store holding such events keeps them, and they count as rejections.
DECISION_TYPES = (
    "review_item.approved",
    "review_item.edited",
    "review_item.rejected",
    "review_item.rejectd",
    "association.resolved",
)


def reviewer_figures(*, since: datetime) -> list[dict]:
    """Per reviewer since ``since``: decisions (``n``), the median seconds from opening an item
    to deciding it (items decided without being opened, as in a bulk decision, are not timed),
    and undos. Most decisions first."""
    rows: dict[str, dict] = {}
    events = AuditEvent.objects.filter(
        Q(type__in=DECISION_TYPES) | Q(type="review_item.undone"), created_at__gte=since, actor__isnull=False
    ).values_list("actor__username", "type", "data_json__seconds")
    for name, kind, seconds in events:
        row = rows.setdefault(name, {"actor__username": name, "n": 0, "undone": 0, "seconds": []})
        if kind == "review_item.undone":
            row["undone"] += 1
            continue
        row["n"] += 1
        if isinstance(seconds, int | float):
            row["seconds"].append(float(seconds))
    for row in rows.values():
        row["median_seconds"] = round(statistics.median(row["seconds"]), 1) if row["seconds"] else None
        del row["seconds"]
    return sorted(rows.values(), key=lambda r: (-r["n"], r["actor__username"]))
