from django.contrib import admin

from extraction.models import ExtractionRun, FieldValue
from workspaces.admin_mixins import ReadOnlyAdmin


@admin.register(ExtractionRun)
class ExtractionRunAdmin(ReadOnlyAdmin):
    list_display = ("thread", "schema_id", "schema_version", "model", "status", "created_at")
    list_filter = ("status", "schema_id", "model")
    search_fields = ("thread__subject", "error")
    list_select_related = ("thread",)


@admin.register(FieldValue)
class FieldValueAdmin(ReadOnlyAdmin):
    list_display = ("field_key", "field_value_json", "confidence", "status", "thread", "created_at")
    list_filter = ("status", "field_key")
    search_fields = ("field_key", "thread__subject")
    list_select_related = ("thread",)
