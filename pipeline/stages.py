"""Every transition of the flow from mail to the CRM: which event queues which task.

Apps do not queue each other's work. An app says what happened, with ``emit(EVENT, ...)``
inside the transaction that made it happen, and this table decides what follows: the task,
its payload, its dedupe key and its delay. A new path into the flow emits an event that is
already here, so it cannot forget a stage; a new stage is one more row.

Every key coalesces (``jobs.services.enqueue(coalesce=True)``): one job per key is queued or
running at a time, a queued one waits for the latest delay asked of it, and a running one
runs once more when it ends, so a change that arrives while its job runs is never lost.
Hence at most one CRM sync per thread, due after the undo window of the latest decision.

This module sits just above ``jobs`` in the layers (README, *Architecture*): every app may
import it, and it imports none of them. The tasks named here are registered by the apps
that own them (``<app>/tasks.py``); ``tests/test_pipeline.py`` checks that each is.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from jobs.services import enqueue, enqueue_many
from workspaces.selectors import policy_for

# The tasks, by the one name each is registered under.
EXTRACT_THREAD = "extract_thread"
LINK_THREAD = "link_thread"
RELINK_DEALS = "relink_deals"
DEAL_FACTS = "deal_facts_update"
DEAL_READINESS = "deal_readiness_recompute"
CRM_SYNC_THREAD = "crm_sync_thread"
CRM_WRITE_SEND = "crm_write_send"
CRM_SYNC_DEALS = "crm_sync_deals"
DASHBOARD_REFRESH = "dashboard_refresh"

# The events, with the fields each carries.
THREAD_CHANGED = "thread.changed"  # thread_id: new messages were threaded into it (any source)
THREAD_EXTRACTED = "thread.extracted"  # thread_id: an extraction run over it finished
VALUES_CHANGED = "thread.values_changed"  # thread_id, decided: its current values changed (decided: by a person)
LINK_CHANGED = "thread.link_changed"  # thread_id, deal_ids (the old and the new), decided: its deal changed
DEALS_CHANGED = "deals.changed"  # deal_ids: deals were created or changed (admin, CSV, CRM sync)
THREADS_RELINK_DUE = "deals.threads_relink_due"  # thread_ids: threads a new or changed deal may be about
FACTS_CHANGED = "deal.facts_changed"  # deal_id: a deal's facts changed
CRM_WRITE_RETRY = "crm.write_retry"  # write_id, decided: a person asked to send a write (again)
CRM_WRITE_LEASE_HELD = "crm.write_lease_held"  # write_id, run_after: a send found another's lease on the row
CRM_DEALS_SYNC_DUE = "crm.deals_sync_due"  # run_after: the deal mirror's next periodic sync
DASHBOARD_STALE = "review.dashboard_stale"  # a dashboard view found its counted figures old


def _now(event: dict, policy: dict) -> timedelta:
    return timedelta(0)


def crm_sync_key(thread_id: int) -> str:
    """The dedupe key of a thread's ``crm_sync_thread`` job (the CRM page looks it up)."""
    return f"crm-sync:{thread_id}"


def _after_undo_window(event: dict, policy: dict) -> timedelta:
    """A person's decision can be undone for a while: nothing leaves for the CRM before."""
    return timedelta(seconds=policy["undo_window_seconds"]) if event.get("decided") else timedelta(0)


def _at_run_after(event: dict, policy: dict) -> timedelta:
    return max(event["run_after"] - timezone.now(), timedelta(0))


def _deal_ids_key(event: dict) -> str:
    return hashlib.sha256(json.dumps(sorted(event["deal_ids"])).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Transition:
    event: str
    task: str
    key: Callable[[dict], str]
    payload: Callable[[dict], dict]
    delay: Callable[[dict, dict], timedelta] = _now
    each: str = ""  # fan out: one job per element of this list field, as ``item``
    why: str = ""


def _thread(event: dict) -> dict:
    return {"thread_id": event["thread_id"]}


TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        THREAD_CHANGED,
        EXTRACT_THREAD,
        key=lambda e: f"extract:{e['thread_id']}",
        payload=_thread,
        why="new mail in a thread is read by the extractor",
    ),
    Transition(
        THREAD_EXTRACTED,
        LINK_THREAD,
        key=lambda e: f"link:{e['thread_id']}",
        payload=_thread,
        why="new messages can change which deal a thread is about",
    ),
    Transition(
        VALUES_CHANGED,
        LINK_THREAD,
        key=lambda e: f"link:{e['thread_id']}",
        payload=_thread,
        why="values and links are judged together",
    ),
    Transition(
        VALUES_CHANGED,
        DEAL_FACTS,
        key=lambda e: f"deal-facts:thread:{e['thread_id']}",
        payload=_thread,
        why="accepted and verified values are the deal's facts",
    ),
    Transition(
        VALUES_CHANGED,
        CRM_SYNC_THREAD,
        key=lambda e: crm_sync_key(e["thread_id"]),
        payload=_thread,
        delay=_after_undo_window,
        why="accepted and approved values are written to the CRM, once the undo window has passed",
    ),
    Transition(
        LINK_CHANGED,
        DEAL_FACTS,
        key=lambda e: f"deal-facts:{e['item']}",
        payload=lambda e: {"deal_id": e["item"]},
        each="deal_ids",
        why="the old and the new deal both lose or gain the thread's facts",
    ),
    Transition(
        LINK_CHANGED,
        CRM_SYNC_THREAD,
        key=lambda e: crm_sync_key(e["thread_id"]),
        payload=_thread,
        delay=_after_undo_window,
        why="the deal update and the note go to the deal the thread is linked to",
    ),
    Transition(
        DEALS_CHANGED,
        RELINK_DEALS,
        key=lambda e: f"relink:{_deal_ids_key(e)}",
        payload=lambda e: {"deal_ids": sorted(e["deal_ids"])},
        why="a new or changed deal can be the one a thread is about",
    ),
    Transition(
        THREADS_RELINK_DUE,
        LINK_THREAD,
        key=lambda e: f"link:{e['item']}",
        payload=lambda e: {"thread_id": e["item"]},
        each="thread_ids",
        why="each thread the deals' people took part in is linked again, in batches, by any worker",
    ),
    Transition(
        FACTS_CHANGED,
        DEAL_READINESS,
        key=lambda e: f"readiness:{e['deal_id']}",
        payload=lambda e: {"deal_id": e["deal_id"]},
        why="readiness is scored from the facts",
    ),
    Transition(
        CRM_WRITE_RETRY,
        CRM_WRITE_SEND,
        key=lambda e: f"crm-write:{e['write_id']}",
        payload=lambda e: {"write_id": e["write_id"]},
        delay=_after_undo_window,
        why="a failed write goes again (looking for itself in the CRM first), or a conflict's new payload goes",
    ),
    Transition(
        CRM_WRITE_LEASE_HELD,
        CRM_WRITE_SEND,
        key=lambda e: f"crm-write:{e['write_id']}",
        payload=lambda e: {"write_id": e["write_id"]},
        delay=_at_run_after,
        why="should the sender holding the row die, its write is recovered once the lease runs out",
    ),
    Transition(
        CRM_DEALS_SYNC_DUE,
        CRM_SYNC_DEALS,
        key=lambda e: "crm-sync-deals",
        payload=lambda e: {},
        delay=_at_run_after,
        why="the deal mirror refreshes itself periodically, without cron",
    ),
    Transition(
        DASHBOARD_STALE,
        DASHBOARD_REFRESH,
        key=lambda e: "dashboard",
        payload=lambda e: {},
        why="the dashboard's counts of every open item and 30 days of routing are made by a worker, not by a view",
    ),
)

EVENTS = frozenset(t.event for t in TRANSITIONS)
TASKS = frozenset(t.task for t in TRANSITIONS)


def emit(event: str, *, workspace_id: int, **fields) -> list[int]:
    """Queue what follows ``event`` (inside the workspace context and transaction that made it
    happen: the jobs exist only if it commits). Returns the ids of the jobs queued or joined."""
    if event not in EVENTS:
        raise ValueError(f"unknown pipeline event {event!r}")
    buffer = getattr(_deferred, "events", None)
    if buffer is not None:
        buffer.append((event, workspace_id, fields))
        return []
    job_ids = []
    for transition, values, delay in _planned(event, workspace_id, fields, {}):
        job = enqueue(
            transition.task,
            workspace=workspace_id,
            payload=transition.payload(values),
            run_after=timezone.now() + delay if delay else None,
            dedupe_key=transition.key(values),
            coalesce=True,
        )
        job_ids.append(job.pk)
    return job_ids


def _planned(event: str, workspace_id: int, fields: dict, policies: dict[int, dict]):
    """Each job ``event`` leads to: (transition, the values its payload and key read, delay).
    The workspace's policy is read once, into ``policies``, and only for a delay that needs it."""
    for transition in TRANSITIONS:
        if transition.event != event:
            continue
        items = [None] if not transition.each else sorted({i for i in fields[transition.each] if i})
        for item in items:
            values = {**fields, "item": item}
            delay = timedelta(0)
            if transition.delay is not _now:
                if workspace_id not in policies:
                    policies[workspace_id] = policy_for(workspace_id=workspace_id)
                delay = transition.delay(values, policies[workspace_id])
            yield transition, values, delay


def emit_many(event: str, *, workspace_id: int, events: list[dict]) -> None:
    """``emit(event, ...)`` for each of ``events``, with each transition's jobs queued together
    (``enqueue_many``: one round trip). Only for events whose transitions have no delay and no
    fan-out (``thread.changed``); ``emit`` serves the others."""
    if event not in EVENTS:
        raise ValueError(f"unknown pipeline event {event!r}")
    transitions = [t for t in TRANSITIONS if t.event == event]
    if any(t.delay is not _now or t.each for t in transitions):
        raise ValueError(f"emit_many({event!r}): a transition of it has a delay or fans out; use emit")
    for transition in transitions:
        jobs = [(transition.payload({**f, "item": None}), transition.key({**f, "item": None})) for f in events]
        enqueue_many(transition.task, workspace=workspace_id, jobs=jobs, coalesce=True)


_deferred = threading.local()


@contextmanager
def emits_deferred():
    """Collect what ``emit`` is asked inside the block and queue it all as the block ends,
    each transition's due-now jobs together (``enqueue_many``: one round trip), delayed ones
    one by one. For batched work (many threads in one transaction): the jobs, keys, payloads
    and delays are those ``emit`` would queue, and every key coalesces, so the outcome is
    the same. ``emit`` returns no job ids inside the block. Use it inside one transaction and
    workspace context, still open at its end; an exception discards what was collected."""
    if getattr(_deferred, "events", None) is not None:
        yield
        return
    _deferred.events = []
    try:
        yield
        collected = _deferred.events
    finally:
        _deferred.events = None
    _flush(collected)


def _flush(collected: list[tuple[str, int, dict]]) -> None:
    policies: dict[int, dict] = {}
    due: dict[tuple[str, int], dict[str, dict]] = {}  # (task, workspace) -> {key: payload}, in order
    for event, workspace_id, fields in collected:
        for transition, values, delay in _planned(event, workspace_id, fields, policies):
            if not delay:
                jobs = due.setdefault((transition.task, workspace_id), {})
                # The same key twice (linking after the extraction and after the values
                # changed): one job, as the second enqueue would only join the first.
                jobs.setdefault(transition.key(values), transition.payload(values))
                continue
            enqueue(
                transition.task,
                workspace=workspace_id,
                payload=transition.payload(values),
                run_after=timezone.now() + delay,
                dedupe_key=transition.key(values),
                coalesce=True,
            )
    for (task, workspace_id), jobs in due.items():
        enqueue_many(
            task, workspace=workspace_id, jobs=[(payload, key) for key, payload in jobs.items()], coalesce=True
        )
