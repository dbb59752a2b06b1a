"""The CRM write log per thread and per deal, with the dry-run diff and retry for failed writes.

Viewers read; reviewers and admins retry (a POST with CSRF, through ``crm_write_retry``).
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from crm import selectors
from crm.models import CrmWriteLog
from crm.services import crm_write_retry
from deals.models import Deal, ThreadLink
from threads.models import Thread
from workspaces import display
from workspaces.decorators import member_required
from workspaces.selectors import policy_for


def _page(request, *, title, rows, status, thread=None, deal=None):
    policy = policy_for(workspace_id=request.workspace.pk)
    diffs = selectors.write_diffs(rows)
    for row in rows:
        row.diff = [
            {
                **d,
                "current_shown": display.payload_value(d["field"], d["current"]),
                "proposed_shown": display.payload_value(d["field"], d["proposed"]),
            }
            for d in diffs.get(row.pk) or []
        ]
    thread_ids = (
        [thread.pk] if thread else list(ThreadLink.objects.filter(deal=deal).values_list("thread_id", flat=True))
    )
    pending = selectors.pending_syncs(thread_ids=thread_ids, policy=policy)
    return render(
        request,
        "crm/writes.html",
        {
            "title": title,
            "rows": rows,
            "pending": pending,
            "now": timezone.now(),
            "status": status,
            "thread": thread,
            "deal": deal,
            "statuses": CrmWriteLog.Status.choices,
            "policy": policy,
            "can_retry": request.membership.can_decide,
        },
    )


def _status(request) -> str:
    status = request.GET.get("status", "")
    return status if status in CrmWriteLog.Status.values else ""


@member_required()
def thread_writes(request, pk: int):
    thread = get_object_or_404(Thread, pk=pk)
    status = _status(request)
    rows = selectors.writes_for(thread_id=thread.pk, status=status)
    return _page(request, title=f"CRM writes: {thread}", rows=rows, status=status, thread=thread)


@member_required()
def deal_writes(request, pk: int):
    deal = get_object_or_404(Deal, pk=pk)
    status = _status(request)
    rows = selectors.writes_for(deal_id=deal.pk, status=status)
    return _page(request, title=f"CRM writes: {deal}", rows=rows, status=status, deal=deal)


@require_POST
@member_required(decide=True)
def retry(request, pk: int):
    row = get_object_or_404(CrmWriteLog, pk=pk)
    try:
        crm_write_retry(workspace_id=request.workspace.pk, write_id=row.pk, user=request.user)
        messages.success(request, "The write was queued again; it looks for itself in the CRM before sending.")
    except ValueError as exc:
        messages.error(request, str(exc))
    back = request.POST.get("next", "")
    if back.startswith(f"/w/{request.workspace.slug}/crm/"):
        return redirect(back)
    return (
        redirect("crm:thread", workspace_slug=request.workspace.slug, pk=row.thread_id)
        if row.thread_id
        else redirect("crm:deal", workspace_slug=request.workspace.slug, pk=row.deal_id)
    )
