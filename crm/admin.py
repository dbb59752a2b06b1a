from django.contrib import admin

from crm.models import CrmWriteLog
from workspaces.admin_mixins import ReadOnlyAdmin


@admin.register(CrmWriteLog)
class CrmWriteLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "crm", "action", "status", "target", "thread", "deal", "attempts")
    list_filter = ("status", "crm", "action")
    search_fields = ("idempotency_key", "target", "error")
    list_select_related = ("thread", "deal")
