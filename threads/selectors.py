"""Reads about threads and messages (inside the caller's workspace context)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from threads.models import Message, Thread


def thread_list(*, query: str = "") -> QuerySet[Thread]:
    """The workspace's threads, latest conversation first; ``query`` searches subject and participants."""
    threads = Thread.objects.order_by("-last_message_at", "-id")
    query = query.strip()
    if query:
        threads = threads.filter(
            Q(subject__icontains=query)
            | Q(primary_contact_email__icontains=query)
            | Q(participants__contains=[query.lower()])
        )
    return threads


def thread_get(*, thread_id: int) -> Thread | None:
    return Thread.objects.filter(pk=thread_id).first()


def thread_messages(*, thread: Thread) -> QuerySet[Message]:
    """A thread's messages in the order they were sent (raw bytes deferred)."""
    return (
        Message.objects.filter(thread=thread)
        .defer("raw", "headers_json")
        .prefetch_related("attachments")
        .order_by("sent_at", "id")
    )


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
    return Message.objects.filter(parse_status=Message.ParseStatus.FAILED).defer("raw").order_by("-created_at")
