from django.contrib import admin, messages

from jobs.models import Job
from jobs.selectors import queue_stats
from jobs.services import JobError, job_cancel, job_retry
from workspaces.admin_mixins import ReadOnlyAdmin


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "task", "status", "attempts", "max_attempts", "run_after", "locked_by", "created_at")
    list_filter = ("status", "task")
    search_fields = ("task", "last_error", "dedupe_key")
    actions = ["retry_jobs", "cancel_jobs"]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "queue_stats": queue_stats(), "statuses": Job.Status.values}
        return super().changelist_view(request, extra_context=extra_context)

    def has_retry_permission(self, request):
        return self.has_verb_permission(request, "retry")

    def has_cancel_permission(self, request):
        return self.has_verb_permission(request, "cancel")

    @admin.action(description="Retry selected failed or cancelled jobs", permissions=["retry"])
    def retry_jobs(self, request, queryset):
        self._apply(request, queryset, job_retry, "queued again")

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel_jobs(self, request, queryset):
        self._apply(request, queryset, job_cancel, "cancelled")

    def _apply(self, request, queryset, action, done):
        count = 0
        for job in queryset:
            try:
                action(job=job, actor=request.user)
                count += 1
            except JobError as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"{count} jobs {done}.")
