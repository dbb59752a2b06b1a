"""Reads for extraction."""

from __future__ import annotations

from extraction.extractors.base import MessageInput
from threads.models import Message, Thread
from workspaces.models import Workspace


def thread_inputs(*, thread: Thread) -> list[MessageInput]:
    """The thread's parsed messages in order, as extractors read them."""
    return threads_inputs(workspace_id=thread.workspace_id, thread_ids=[thread.pk]).get(thread.pk, [])


def threads_inputs(*, workspace_id: int, thread_ids: list[int]) -> dict[int, list[MessageInput]]:
    """``thread_inputs`` of many threads of one workspace, in two queries: by thread id."""
    internal = {d.lower() for d in Workspace.objects.values_list("internal_domains", flat=True).get(pk=workspace_id)}
    messages = (
        Message.objects.filter(thread_id__in=thread_ids, parse_status=Message.ParseStatus.PARSED)
        .order_by("thread_id", "sent_at", "created_at", "pk")
        .values("pk", "thread_id", "reply_text", "sent_at", "from_email", "from_name")
    )
    found: dict[int, list[MessageInput]] = {}
    for m in messages:
        found.setdefault(m["thread_id"], []).append(
            MessageInput(
                id=m["pk"],
                reply_text=m["reply_text"] or "",
                sent_at=m["sent_at"],
                from_email=m["from_email"],
                from_name=m["from_name"],
                internal=m["from_email"].rpartition("@")[2].lower() in internal,
            )
        )
    return found


def threads_current_values(*, thread_ids: list[int]) -> dict[int, dict]:
    """``thread_current_values`` of many threads in one query: by thread id (every id there)."""
    from extraction.models import FieldValue

    order = {FieldValue.Status.VERIFIED: 0, FieldValue.Status.ACCEPTED: 1, FieldValue.Status.PROPOSED: 2}
    values = FieldValue.objects.filter(thread_id__in=thread_ids, status__in=list(order)).order_by("-created_at")
    found: dict[int, dict] = {thread_id: {} for thread_id in thread_ids}
    for value in values:
        current = found[value.thread_id]
        if value.field_key not in current or order[value.status] < order[current[value.field_key].status]:
            current[value.field_key] = value
    return found


def thread_current_values(*, thread_id: int) -> dict:
    """The value each field stands at now: verified first, then accepted, then proposed."""
    from extraction.models import FieldValue

    order = {FieldValue.Status.VERIFIED: 0, FieldValue.Status.ACCEPTED: 1, FieldValue.Status.PROPOSED: 2}
    values = FieldValue.objects.filter(thread_id=thread_id, status__in=list(order)).order_by("-created_at")
    current: dict = {}
    for value in values:
        if value.field_key not in current or order[value.status] < order[current[value.field_key].status]:
            current[value.field_key] = value
    return current
