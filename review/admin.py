from django.contrib import admin

from review.models import ReviewItem
from workspaces.admin_mixins import WorkspaceScopedAdmin


@admin.register(ReviewItem)
class ReviewItemAdmin(WorkspaceScopedAdmin):
    list_display = ("reason", "status", "thread", "assigned_to", "created_at", "resolved_at")
    list_filter = ("reason", "status")
    search_fields = ("thread__subject", "payload_json")
    list_select_related = ("thread", "assigned_to")
    readonly_fields = ("version", "resolved_at", "resolved_by", "claimed_until")
    raw_id_fields = ("thread", "field_value")
