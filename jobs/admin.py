from django.contrib import admin

from jobs.models import Job
from workspaces.admin_mixins import ReadOnlyAdmin


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "task", "status", "attempts", "max_attempts", "run_after", "locked_by", "created_at")
    list_filter = ("status", "task")
    search_fields = ("task", "last_error", "dedupe_key")
