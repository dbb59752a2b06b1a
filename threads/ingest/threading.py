"""Which thread a message belongs to, independent of the order messages arrive in.

Two messages are in one conversation when one names the other in References or
In-Reply-To, or when both name a common ancestor (the JWZ rule that keeps replies to a
parent that has not arrived together). Messages with no references at all may also join by
subject: same RFC 5256 base subject, a shared participant and sent within the policy's
window. A thread is a connected group under these links. Each new message regroups the messages of
every thread it links to from scratch (merging threads it bridges, splitting off what a
newly present message disowns), so the grouping comes out the same whatever order a
mailbox is read in.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import psycopg
from django.db import connection
from psycopg.rows import dict_row

from threads.models import Message, MessageReference, Thread
from workspaces.named_sql import NamedQueries
from workspaces.services import audit_event_record

_SQL = NamedQueries(Path(__file__).resolve().parent.parent / "sql")


def domain_is_internal(address: str, internal_domains: list[str]) -> bool:
    domain = address.rpartition("@")[2].lower()
    return any(domain == d or domain.endswith("." + d) for d in internal_domains)


def _linked_thread_ids(message: Message) -> tuple[set[int], bool, set[str]]:
    """Threads that may be linked to the message (a superset, regrouped exactly later); whether any
    message already names it (as an absent parent); and which of the ids it names are present.

    Two index lookups: the messages it names (by Message-ID) and the messages that name it or
    one of its references (MessageReference).
    """
    ids = [message.message_id, *message.related_ids]
    present = (
        Message.objects.filter(message_id__in=ids, thread__isnull=False)
        .exclude(pk=message.pk)
        .values_list("thread_id", "message_id")
    )
    threads = {thread_id for thread_id, _ in present}
    found = {mid for _, mid in present}
    named = False
    rows = (
        MessageReference.objects.filter(ref_id__in=ids, message__thread__isnull=False)
        .exclude(message_id=message.pk)
        .values_list("message__thread_id", "ref_id")
    )
    for thread_id, ref_id in rows:
        threads.add(thread_id)
        named = named or ref_id == message.message_id
    return threads, named, found


def message_references_save(*, message: Message) -> None:
    MessageReference.objects.bulk_create(
        [MessageReference(workspace_id=message.workspace_id, message=message, ref_id=r) for r in message.related_ids]
    )


def _subject_linked(a: dict, b: dict, *, window: timedelta, internal_domains: list[str]) -> bool:
    """Two reference-less messages with one base subject, close in time, sharing a participant."""
    if a["related_ids"] or b["related_ids"] or not a["base_subject"] or a["base_subject"] != b["base_subject"]:
        return False
    if not a["sent_at"] or not b["sent_at"] or abs(a["sent_at"] - b["sent_at"]) > window:
        return False
    shared = set(a["participants"]) & set(b["participants"])
    external_a = {p for p in a["participants"] if not domain_is_internal(p, internal_domains)}
    external_b = {p for p in b["participants"] if not domain_is_internal(p, internal_domains)}
    # A colleague on both messages does not make two customers' mails one conversation.
    return bool(shared & external_a) or (bool(shared) and not external_a and not external_b)


def _subject_thread_ids(message: Message, *, window_days: int, internal_domains: list[str]) -> set[int]:
    if message.related_ids or not message.base_subject or not message.sent_at or not message.participants:
        return set()
    window = timedelta(days=window_days)
    mine = _row(message)
    candidates = (
        Message.objects.filter(
            base_subject=message.base_subject,
            related_ids=[],
            thread__isnull=False,
            sent_at__gte=message.sent_at - window,
            sent_at__lte=message.sent_at + window,
        )
        .exclude(pk=message.pk)
        .values(*_FIELDS)
    )
    return {
        row["thread_id"]
        for row in candidates
        if _subject_linked(mine, row, window=window, internal_domains=internal_domains)
    }


_FIELDS = (
    "pk",
    "thread_id",
    "message_id",
    "references_json",
    "in_reply_to_json",
    "related_ids",
    "base_subject",
    "sent_at",
    "participants",
)


def _row(message: Message) -> dict:
    return {name: getattr(message, name) for name in _FIELDS}


def _chain(row: dict) -> list[str]:
    """References, then any In-Reply-To id they lack: the last one is the message's parent."""
    refs = [r for r in row["references_json"] if r != row["message_id"]]
    return refs + [r for r in row["in_reply_to_json"] if r not in refs and r != row["message_id"]]


class _Groups:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent.get(x, x)
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def conversations(rows: list[dict], *, window_days: int, internal_domains: list[str]) -> list[list[dict]]:
    """Split messages into conversations (the JWZ links, plus subject links); order does not matter.

    A message's own last reference is its parent, always. The earlier links of a References
    chain only say who the parent of an absent message is: a message that is present says
    that for itself, so a stale or looping chain elsewhere cannot pull it into a thread.
    """
    present = {row["message_id"]: row for row in rows}
    parent_of = {mid: (_chain(row)[-1] if _chain(row) else None) for mid, row in present.items()}
    groups = _Groups()
    for row in rows:
        chain = _chain(row)
        groups.find(row["message_id"])
        if chain:
            groups.union(row["message_id"], chain[-1])
        for above, below in zip(chain, chain[1:], strict=False):
            if below not in present or parent_of[below] == above:
                groups.union(above, below)
    window = timedelta(days=window_days)
    loose = [row for row in rows if not row["related_ids"] and row["base_subject"]]
    by_subject: dict[str, list[dict]] = {}
    for row in loose:
        by_subject.setdefault(row["base_subject"], []).append(row)
    for same in by_subject.values():
        for i, a in enumerate(same):
            for b in same[i + 1 :]:
                if _subject_linked(a, b, window=window, internal_domains=internal_domains):
                    groups.union(a["message_id"], b["message_id"])
    result: dict[str, list[dict]] = {}
    for row in rows:
        result.setdefault(groups.find(row["message_id"]), []).append(row)
    return list(result.values())


def _rows_closure(message: Message, thread_ids: set[int]) -> list[dict]:
    """The messages of ``thread_ids`` and of every thread that shares an id with them.

    A thread can hold an absent message (a "phantom" named in someone's References) that the
    new message turns out to be, linked only through other absent ones; following shared ids
    until nothing new turns up loads every thread the new message can affect. ``thread_ids``
    grows in place.
    """
    rows = list(Message.objects.filter(thread_id__in=thread_ids).values(*_FIELDS))
    for _ in range(50):
        ids = {message.message_id, *message.related_ids}
        for row in rows:
            ids.add(row["message_id"])
            ids.update(row["related_ids"])
        ids = list(ids)
        more = set(
            Message.objects.filter(message_id__in=ids, thread__isnull=False)
            .exclude(thread_id__in=thread_ids)
            .values_list("thread_id", flat=True)
        ) | set(
            MessageReference.objects.filter(ref_id__in=ids, message__thread__isnull=False)
            .exclude(message__thread_id__in=thread_ids)
            .values_list("message__thread_id", flat=True)
        )
        if not more:
            break
        thread_ids |= more
        rows += list(Message.objects.filter(thread_id__in=more).values(*_FIELDS))
    return [row for row in rows if row["pk"] != message.pk]


def thread_assign(*, message: Message, window_days: int, internal_domains: list[str]):
    """Put ``message`` in its thread, merging or splitting the threads it touches.

    Returns the message's thread, the ids of the threads changed and of those removed.
    """
    message_references_save(message=message)
    linked, named, found = _linked_thread_ids(message)
    thread_ids = linked | _subject_thread_ids(message, window_days=window_days, internal_domains=internal_domains)
    chain = _chain(_row(message))
    if len(thread_ids) == 1 and not named and chain and chain[-1] in found:
        # The common case: a reply whose parent is present, in the only thread it touches,
        # and that no message names yet. It joins its parent's thread; nothing can split.
        thread = Thread.objects.get(pk=next(iter(thread_ids)))
        message.thread = thread
        message.save(update_fields=["thread"])
        _thread_append(thread=thread, message=message, internal_domains=internal_domains)
        return thread, {thread.pk}, []
    if not thread_ids:
        thread = Thread.objects.create(workspace_id=message.workspace_id, subject=message.subject[:998])
        message.thread = thread
        message.save(update_fields=["thread"])
        thread_refresh(thread=thread, internal_domains=internal_domains)
        return thread, {thread.pk}, []
    rows = _rows_closure(message, thread_ids)
    rows.append(_row(message))
    parts = conversations(rows, window_days=window_days, internal_domains=internal_domains)
    # The biggest conversation keeps the oldest thread; any other gets one of its own.
    parts.sort(key=lambda part: (-len(part), min(r["message_id"] for r in part)))
    free = sorted(thread_ids)
    touched: list[Thread] = []
    own_thread = None
    for part in parts:
        current = sorted({r["thread_id"] for r in part if r["thread_id"] in free})
        if current:
            thread = Thread.objects.get(pk=current[0])
            free.remove(current[0])
        else:
            thread = Thread.objects.create(workspace_id=message.workspace_id)
        moving = [r["pk"] for r in part if r["thread_id"] != thread.pk and r["pk"] != message.pk]
        if moving:
            Message.objects.filter(pk__in=moving).update(thread=thread)
        if any(r["pk"] == message.pk for r in part):
            message.thread = thread
            message.save(update_fields=["thread"])
            own_thread = thread
        touched.append(thread)
    if free:
        Thread.objects.filter(pk__in=free).delete()
    if free or len(parts) > 1:
        audit_event_record(
            workspace_id=message.workspace_id,
            type="thread.regrouped",
            thread_id=own_thread.pk,
            data={"threads": [t.pk for t in touched], "removed": free, "message_id": message.message_id},
        )
    for thread in touched:
        thread_refresh(thread=thread, internal_domains=internal_domains)
    return own_thread, {t.pk for t in touched}, free


def _thread_append(*, thread: Thread, message: Message, internal_domains: list[str]) -> None:
    """Add one message to the summary; a message older than the thread's last needs a full refresh."""
    latest = thread.last_message_at
    if message.sent_at is None or latest is None or message.sent_at < latest or not thread.message_count:
        thread_refresh(thread=thread, internal_domains=internal_domains)
        return
    known = set(thread.participants)
    thread.participants = (thread.participants + [p for p in message.participants if p not in known])[:500]
    if not thread.primary_contact_email:
        thread.primary_contact_email = next(
            (p for p in thread.participants if not domain_is_internal(p, internal_domains)), ""
        )[:320]
    if not thread.subject and message.subject:
        thread.subject, thread.base_subject = message.subject[:998], message.base_subject
    thread.last_message_at = message.sent_at
    thread.message_count += 1
    thread.save()


def thread_refresh(*, thread: Thread, internal_domains: list[str]) -> Thread:
    """Recompute a thread's summary fields from its messages."""
    rows = list(
        Message.objects.filter(thread=thread)
        .order_by("sent_at", "message_id")
        .values_list("sent_at", "subject", "base_subject", "participants")
    )
    participants: dict[str, None] = {}
    for _, _, _, people in rows:
        for person in people:
            participants.setdefault(person, None)
    dates = [r[0] for r in rows if r[0] is not None]
    first = next((r for r in rows if r[1]), rows[0] if rows else None)
    thread.subject = first[1][:998] if first else ""
    thread.base_subject = first[2] if first else ""
    thread.participants = list(participants)[:500]
    thread.primary_contact_email = next((p for p in participants if not domain_is_internal(p, internal_domains)), "")[
        :320
    ]
    thread.first_message_at = min(dates) if dates else None
    thread.last_message_at = max(dates) if dates else None
    thread.message_count = len(rows)
    thread.save()
    return thread


# --- a batch at a time ---------------------------------------------------------------------------
# ``mail_import`` threads a whole batch with a handful of queries: every thread the batch can
# touch is found with one query for all its ids (and one for its subjects), loaded once, and the
# batch and those threads are regrouped from scratch together. Since the grouping is the same
# whatever the order (see ``conversations``), this is the grouping message-at-a-time gives.
# The statements go through psycopg with bound parameters (arrays and one JSON document), in
# the caller's transaction and workspace context.


def _query(name: str, params: dict, *, rows: bool = True) -> list:
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection, row_factory=dict_row if rows else psycopg.rows.tuple_row) as cursor:
        cursor.execute(_SQL[name], params)
        found = cursor.fetchall() if cursor.description else []
    if rows:  # Django's connection hands jsonb over as text, for its own fields to decode
        for row in found:
            for key in ("references_json", "in_reply_to_json"):
                if isinstance(row.get(key), str):
                    row[key] = json.loads(row[key])
    return found


def _threads_naming(ids: list[str], *, known: set[int]) -> set[int]:
    """Threads (outside ``known``) with a message that has one of ``ids``, or names one."""
    if not ids:
        return set()
    return {row[0] for row in _query("threads_naming", {"ids": ids, "known": sorted(known)}, rows=False)}


def _subject_threads_batch(rows: list[dict], *, window_days: int, internal_domains: list[str]) -> set[int]:
    """Threads holding a reference-less message that subject-links to a reference-less one of ``rows``."""
    loose = [r for r in rows if not r["related_ids"] and r["base_subject"] and r["sent_at"] and r["participants"]]
    if not loose:
        return set()
    window = timedelta(days=window_days)
    by_subject: dict[str, list[dict]] = {}
    for row in loose:
        by_subject.setdefault(row["base_subject"], []).append(row)
    candidates = _query(
        "subject_candidates",
        {
            "subjects": list(by_subject),
            "since": min(r["sent_at"] for r in loose) - window,
            "until": max(r["sent_at"] for r in loose) + window,
        },
    )
    return {
        row["thread_id"]
        for row in candidates
        if any(
            _subject_linked(mine, row, window=window, internal_domains=internal_domains)
            for mine in by_subject[row["base_subject"]]
        )
    }


def _closure_batch(rows: list[dict], thread_ids: set[int]) -> list[dict]:
    """The messages of ``thread_ids`` and of every thread sharing an id with them (as in
    ``_rows_closure``, for a batch); ``thread_ids`` grows in place. Each id is looked up once."""
    asked = {r["message_id"] for r in rows} | {i for r in rows for i in r["related_ids"]}
    loaded = _query("thread_rows", {"threads": sorted(thread_ids)}) if thread_ids else []
    fresh = loaded
    for _ in range(50):
        ids = {r["message_id"] for r in fresh} | {i for r in fresh for i in r["related_ids"]}
        ids -= asked
        asked |= ids
        more = _threads_naming(sorted(ids), known=thread_ids)
        if not more:
            break
        thread_ids |= more
        fresh = _query("thread_rows", {"threads": sorted(more)})
        loaded += fresh
    return loaded


def thread_summary(rows: list[dict], *, internal_domains: list[str]) -> dict:
    """A thread's summary fields from its messages' rows (what ``thread_refresh`` computes)."""
    ordered = sorted(rows, key=lambda r: (r["sent_at"] is None, r["sent_at"] or 0, r["message_id"]))
    participants: dict[str, None] = {}
    for row in ordered:
        for person in row["participants"]:
            participants.setdefault(person, None)
    dates = [r["sent_at"] for r in ordered if r["sent_at"] is not None]
    first = next((r for r in ordered if r["subject"]), ordered[0] if ordered else None)
    return {
        "subject": first["subject"][:998] if first else "",
        "base_subject": first["base_subject"] if first else "",
        "participants": list(participants)[:500],
        "primary_contact_email": next((p for p in participants if not domain_is_internal(p, internal_domains)), "")[
            :320
        ],
        "first_message_at": min(dates).isoformat() if dates else None,
        "last_message_at": max(dates).isoformat() if dates else None,
        "message_count": len(rows),
    }


class BatchThreading:
    """The outcome of ``threads_assign_batch``: each batch message's thread, the threads whose
    messages changed, and the threads removed (merged into others)."""

    def __init__(self):
        self.thread_of: dict[int, int] = {}
        self.changed: set[int] = set()
        self.removed: list[int] = []


def threads_assign_batch(
    *, workspace_id: int, rows: list[dict], window_days: int, internal_domains: list[str]
) -> BatchThreading:
    """Thread a batch of parsed, not yet threaded messages (``rows``: the ``thread_rows``
    columns, ``thread_id`` None; their MessageReference rows stored already). Creates, merges,
    splits and refreshes threads; the caller stores each message's ``thread_of`` with its fields."""
    outcome = BatchThreading()
    if not rows:
        return outcome
    ids = sorted({r["message_id"] for r in rows} | {i for r in rows for i in r["related_ids"]})
    thread_ids = _threads_naming(ids, known=set())
    thread_ids |= _subject_threads_batch(rows, window_days=window_days, internal_domains=internal_domains)
    existing = _closure_batch(rows, thread_ids)
    parts = conversations(existing + rows, window_days=window_days, internal_domains=internal_domains)
    # As in ``thread_assign``: the biggest conversation keeps the oldest thread, any other gets
    # one of its own, and threads left with no conversation are removed.
    parts.sort(key=lambda part: (-len(part), min(r["message_id"] for r in part)))
    old_size: dict[int, int] = {}
    for row in existing:
        old_size[row["thread_id"]] = old_size.get(row["thread_id"], 0) + 1
    free = sorted(thread_ids)
    plan: list[tuple[int | None, list[dict]]] = []
    for part in parts:
        current = sorted({r["thread_id"] for r in part if r["thread_id"] in free})
        if current:
            free.remove(current[0])
        plan.append((current[0] if current else None, part))
    fresh = [
        {"n": n, **thread_summary(part, internal_domains=internal_domains)}
        for n, (thread_id, part) in enumerate(plan)
        if thread_id is None
    ]
    created = iter(
        row[0]
        for row in (
            _query("threads_insert", {"workspace_id": workspace_id, "rows": json.dumps(fresh)}, rows=False)
            if fresh
            else []
        )
    )
    moving: dict[int, int] = {}
    updates: list[dict] = []
    regrouped = bool(free)
    for thread_id, part in plan:
        if thread_id is None:
            thread_id = next(created)
        elif len(part) == old_size.get(thread_id) and all(r["thread_id"] == thread_id for r in part):
            continue  # exactly the thread it was: nothing to write
        else:
            updates.append({"id": thread_id, **thread_summary(part, internal_domains=internal_domains)})
        outcome.changed.add(thread_id)
        for row in part:
            if row["thread_id"] is None:
                outcome.thread_of[row["pk"]] = thread_id
            elif row["thread_id"] != thread_id:
                moving[row["pk"]] = thread_id
                regrouped = True
    if updates:
        _query("threads_summary_store", {"rows": json.dumps(updates)}, rows=False)
    if moving:
        _query("messages_move", {"ids": list(moving), "threads": list(moving.values())}, rows=False)
    if free:
        Thread.objects.filter(pk__in=free).delete()
        outcome.removed = free
    if regrouped:
        audit_event_record(
            workspace_id=workspace_id,
            type="thread.regrouped",
            data={
                "threads": sorted(outcome.changed),
                "removed": free,
                "moved": len(moving),
                "message_ids": sorted(r["message_id"] for r in rows)[:100],
            },
        )
    return outcome
