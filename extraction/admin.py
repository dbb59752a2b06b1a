from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from extraction.extractors.llm import LLMConfig
from extraction.models import ExtractionRun, FieldValue
from extraction.schemas import SCHEMAS
from workspaces import display
from workspaces.admin_mixins import ReadOnlyAdmin
from workspaces.selectors import policy_for


@admin.register(ExtractionRun)
class ExtractionRunAdmin(ReadOnlyAdmin):
    list_display = (
        "thread",
        "schema_id",
        "schema_version",
        "extractor",
        "model",
        "status",
        "prompt_tokens",
        "cost_usd",
        "created_at",
    )
    list_filter = ("status", "schema_id", "extractor")
    search_fields = ("thread__subject", "error", "model")
    list_select_related = ("thread",)
    change_list_template = "admin/extraction/extractionrun/change_list.html"

    def get_urls(self):
        schemas = path("schemas/", self.admin_site.admin_view(self.schemas_view), name="extraction_schemas")
        return [schemas, *super().get_urls()]

    def schemas_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied("Viewing the extraction schemas needs the view permission on extraction runs.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Extraction schemas",
            "schemas": sorted(SCHEMAS.values(), key=lambda s: (s.id, s.version)),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/extraction/schemas.html", context)

    def changelist_view(self, request, extra_context=None):
        workspace = getattr(request, "workspace", None)
        if workspace is not None and LLMConfig.from_settings() is None:
            if policy_for(workspace_id=workspace.pk)["extractor"] == "llm":
                messages.warning(
                    request,
                    "The policy asks for the LLM extractor, but LLM_BASE_URL and LLM_MODEL are not set: "
                    "threads are read by the offline rules extractor.",
                )
        return super().changelist_view(request, extra_context)


@admin.register(FieldValue)
class FieldValueAdmin(ReadOnlyAdmin):
    list_display = ("field_key", "shown_value", "confidence", "grounded", "status", "thread", "created_at")
    list_filter = ("status", "field_key", "grounded")
    search_fields = ("field_key", "thread__subject")
    list_select_related = ("thread",)
    readonly_fields = ("shown_value",)

    @admin.display(description="Value")
    def shown_value(self, obj):
        return display.display(obj.field_value_json)
