"""The operator page of a workspace's queue: /w/<slug>/jobs/ (the middleware sets the context)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from jobs.models import Job
from jobs.selectors import jobs_failed_list, jobs_running_list, queue_stats
from jobs.services import JobError, job_cancel, job_retry


@login_required
def queue_view(request, workspace_slug):
    context = {
        "stats": queue_stats(),
        "statuses": Job.Status.values,
        "failed": jobs_failed_list(),
        "running": jobs_running_list(),
        "can_act": request.membership.can_decide,
    }
    return render(request, "jobs/queue.html", {**context, "nav": "jobs"})


def _act(request, job_id, action):
    if not request.membership.can_decide:
        raise PermissionDenied("viewers cannot retry or cancel jobs")
    job = get_object_or_404(Job, pk=job_id)  # row-level security: this workspace's jobs only
    try:
        action(job=job, actor=request.user)
        messages.success(request, f"Job #{job.pk}: {job.status}")
    except JobError as exc:
        messages.error(request, str(exc))
    return redirect("jobs:queue", workspace_slug=request.workspace.slug)


@login_required
@require_POST
def job_retry_view(request, workspace_slug, job_id):
    return _act(request, job_id, job_retry)


@login_required
@require_POST
def job_cancel_view(request, workspace_slug, job_id):
    return _act(request, job_id, job_cancel)
