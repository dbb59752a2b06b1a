"""Which thread a message belongs to, independent of the order messages arrive in.

Two messages are in one conversation when one names the other in References or
In-Reply-To, or when both name a common ancestor (the JWZ rule that keeps replies to a
parent that has not arrived together). Messages with no references at all may also join by
subject: same RFC 5256 base subject, a shared participant and sent within the policy's
window. A thread is a connected group under these links: every new message joins (and, when
it bridges several, merges) all the threads it links to, so the grouping comes out the same
whatever order a mailbox is read in.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q

from threads.models import Message, Thread
from workspaces.services import audit_event_record


def domain_is_internal(address: str, internal_domains: list[str]) -> bool:
    domain = address.rpartition("@")[2].lower()
    return any(domain == d or domain.endswith("." + d) for d in internal_domains)


def _linked_thread_ids(message: Message) -> set[int]:
    ids = [message.message_id, *message.related_ids]
    rows = (
        Message.objects.filter(Q(message_id__in=ids) | Q(related_ids__overlap=ids), thread__isnull=False)
        .exclude(pk=message.pk)
        .values_list("thread_id", flat=True)
    )
    return set(rows)


def _subject_thread_ids(message: Message, *, window_days: int, internal_domains: list[str]) -> set[int]:
    """Threads of reference-less messages with this base subject and a shared participant."""
    if message.related_ids or not message.base_subject or not message.sent_at or not message.participants:
        return set()
    window = timedelta(days=window_days)
    candidates = (
        Message.objects.filter(
            base_subject=message.base_subject,
            related_ids=[],
            thread__isnull=False,
            sent_at__gte=message.sent_at - window,
            sent_at__lte=message.sent_at + window,
        )
        .exclude(pk=message.pk)
        .values_list("thread_id", "participants")
    )
    mine = set(message.participants)
    mine_external = {p for p in mine if not domain_is_internal(p, internal_domains)}
    found = set()
    for thread_id, participants in candidates:
        shared = mine & set(participants)
        theirs_external = {p for p in participants if not domain_is_internal(p, internal_domains)}
        # A colleague on both messages does not make two customers' mails one conversation.
        if shared & mine_external or (shared and not mine_external and not theirs_external):
            found.add(thread_id)
    return found


def thread_assign(*, message: Message, window_days: int, internal_domains: list[str]) -> tuple[Thread, list[int]]:
    """Put ``message`` in its thread, merging threads it joins; returns (thread, merged ids)."""
    thread_ids = _linked_thread_ids(message) | _subject_thread_ids(
        message, window_days=window_days, internal_domains=internal_domains
    )
    if not thread_ids:
        thread = Thread.objects.create(workspace_id=message.workspace_id, subject=message.subject[:998])
        merged: list[int] = []
    else:
        target, *merged = sorted(thread_ids)
        thread = Thread.objects.get(pk=target)
        if merged:
            Message.objects.filter(thread_id__in=merged).update(thread=thread)
            Thread.objects.filter(pk__in=merged).delete()
            audit_event_record(
                workspace_id=message.workspace_id,
                type="thread.merged",
                thread_id=thread.pk,
                data={"into": thread.pk, "merged": merged, "message_id": message.message_id},
            )
    message.thread = thread
    message.save(update_fields=["thread"])
    thread_refresh(thread=thread, internal_domains=internal_domains)
    return thread, merged


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
