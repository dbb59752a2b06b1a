"""Reads for the review console: the queue (keyset-paginated), an item in context, the dashboard."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Min, Q
from django.db.models.functions import Length, Substr
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from review.models import ReviewItem
from review.sql import QUERIES
from threads.models import Message
from threads.selectors import body_display_limit
from workspaces.models import AuditEvent

PAGE_SIZE = 50
SORTS = {"newest": ("-created_at", "-id"), "oldest": ("created_at", "id")}


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
            status=status if status in {*ReviewItem.Status.values, "all"} else "open",
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
    """One page of the queue and the cursor of the next (keyset: no OFFSET, no COUNT)."""
    items = _filtered(filters, user).select_related("thread", "field_value", "assigned_to")
    order = SORTS[filters.sort]
    after = _decode_cursor(cursor)
    if after is not None:
        created_at, pk = after
        items = items.filter(_before(created_at, pk) if filters.sort == "newest" else _after(created_at, pk))
    page = list(items.order_by(*order)[: limit + 1])
    next_cursor = _encode_cursor(page[limit - 1]) if len(page) > limit else None
    return page[:limit], next_cursor


def _filtered(filters: QueueFilters, user):
    items = ReviewItem.objects.all()
    if filters.status != "all":
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
    """The items before and after this one in queue order (for j/k and 'next after a decision')."""
    base = _filtered(filters, user).exclude(pk=item.pk)
    newer = base.filter(_after(item.created_at, item.pk))
    older = base.filter(_before(item.created_at, item.pk))
    prev_q, next_q = (newer.order_by("created_at", "id"), older.order_by("-created_at", "-id"))
    if filters.sort == "oldest":
        prev_q, next_q = older.order_by("-created_at", "-id"), newer.order_by("created_at", "id")
    prev_id = prev_q.values_list("pk", flat=True).first()
    next_id = next_q.values_list("pk", flat=True).first()
    return prev_id, next_id


def _before(created_at, pk) -> Q:
    """Keyset condition for (created_at, id) < (created_at, pk). The redundant bound on
    created_at alone is what lets the index range-scan from the cursor instead of filtering
    every newer row."""
    return Q(created_at__lte=created_at) & (Q(created_at__lt=created_at) | Q(pk__lt=pk))


def _after(created_at, pk) -> Q:
    return Q(created_at__gte=created_at) & (Q(created_at__gt=created_at) | Q(pk__gt=pk))


def _encode_cursor(item: ReviewItem) -> str:
    raw = json.dumps([item.created_at.isoformat(), item.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        created, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        parsed = parse_datetime(created)
        return (parsed, int(pk)) if parsed else None
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
    """The text cut into plain and highlighted pieces (overlapping spans merged).

    ``text`` is the piece of the message that starts at ``offset``; spans are offsets in the
    whole message, so a window far into a huge message highlights at the right places.
    """
    merged: list[list[int]] = []
    clipped = ((max(0, s - offset), min(len(text), e - offset)) for s, e in spans)
    for start, end in sorted((s, e) for s, e in clipped if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    segments, position = [], 0
    for start, end in merged:
        if start > position:
            segments.append(Segment(text[position:start], False, offset + position))
        segments.append(Segment(text[start:end], True, offset + start))
        position = end
    if position < len(text):
        segments.append(Segment(text[position:], False, offset + position))
    return segments


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
    messages = (
        Message.objects.filter(thread_id=item.thread_id)
        .order_by("sent_at", "created_at", "pk")
        .only("pk", "from_email", "from_name", "sent_at", "subject", "parse_status", "parse_error", "folder")
        .annotate(reply_head=Substr("reply_text", 1, limit), reply_length=Length("reply_text"))
    )
    return [
        {
            "message": m,
            "segments": _reply_segments(m, by_message.get(m.pk, []), limit),
            "has_evidence": m.pk in by_message,
            "cut": m.reply_length > limit,
            "length": m.reply_length,
            "limit": limit,
        }
        for m in messages
    ]


def item_history(*, item: ReviewItem) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(data_json__review_item_id=item.pk).select_related("actor").order_by("created_at")[:50]
    )


# --- the dashboard -----------------------------------------------------------------------


def dashboard_figures(*, days: int = 30) -> dict:
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    open_items = ReviewItem.objects.filter(status=ReviewItem.Status.OPEN)
    oldest = open_items.aggregate(oldest=Min("created_at"))["oldest"]
    decision_types = ["review_item.approved", "review_item.edited", "review_item.rejected", "association.resolved"]
    per_reviewer = list(
        AuditEvent.objects.filter(type__in=decision_types, created_at__gte=midnight, actor__isnull=False)
        .values("actor__username")
        .annotate(n=Count("id"))
        .order_by("-n", "actor__username")
    )
    since = now - timedelta(days=days)
    routed = AuditEvent.objects.filter(created_at__gte=since).aggregate(
        accepted=Count("id", filter=Q(type="field_value.accepted")),
        reviewed=Count(
            "id",
            filter=Q(type="review_item.opened")
            & ~Q(data_json__reason__in=["audit_sample", "association", "job_failed"]),
        ),
    )
    total = routed["accepted"] + routed["reviewed"]
    return {
        "open_by_reason": queue_counts_by_reason(cap=None),
        "open_total": open_items.count(),
        "oldest_age": (now - oldest) if oldest else None,
        "decisions_today": per_reviewer,
        "auto_accept_rate": (routed["accepted"] / total) if total else None,
        "auto_accepted": routed["accepted"],
        "sent_to_review": routed["reviewed"],
        "days": days,
    }
