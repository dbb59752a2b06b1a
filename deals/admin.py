from django.contrib import admin

from deals.models import AssociationCandidate, Deal, DealFact, DealReadiness, ThreadLink
from workspaces import display
from workspaces.admin_mixins import ReadOnlyAdmin, WorkspaceScopedAdmin


@admin.register(Deal)
class DealAdmin(WorkspaceScopedAdmin):
    list_display = ("title", "crm", "stage_label", "primary_domain", "shown_amount", "close_date")
    list_filter = ("crm", "stage", "is_closed")
    search_fields = ("title", "primary_domain", "crm_deal_id")

    @admin.display(description="Stage", ordering="stage")
    def stage_label(self, obj):
        return display.crm_stage(obj.stage, crm=obj.crm, label=obj.stage_label)

    @admin.display(description="Amount", ordering="amount")
    def shown_amount(self, obj):
        return display.number(obj.amount) if obj.amount is not None else display.EMPTY

    def save_model(self, request, obj, form, change):
        """A deal edited by hand (a contact added, a stage closed) is linked again, like one from the CRM."""
        from deals.services import deals_changed

        super().save_model(request, obj, form, change)
        deals_changed(workspace_id=obj.workspace_id, deal_ids=[obj.pk])


@admin.register(ThreadLink)
class ThreadLinkAdmin(WorkspaceScopedAdmin):
    list_display = ("thread", "deal", "link_confidence", "linked_by", "created_at")
    list_filter = ("linked_by",)
    search_fields = ("thread__subject", "deal__title", "link_reason")
    raw_id_fields = ("thread", "deal")
    list_select_related = ("thread", "deal")


@admin.register(AssociationCandidate)
class AssociationCandidateAdmin(WorkspaceScopedAdmin):
    """Read here; decided in the console (the same service as the queue), linked per row."""

    list_display = ("thread", "status", "decision", "chosen_deal", "created_at", "in_console")
    readonly_fields = ("thread", "candidates_json", "status", "decision", "chosen_deal", "resolved_by", "resolved_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Console")
    def in_console(self, obj):
        from django.urls import reverse
        from django.utils.html import format_html

        items = sorted(obj.review_items.all(), key=lambda i: i.created_at, reverse=True)
        if not items:
            return "—"
        url = reverse("review:item", kwargs={"workspace_slug": obj.workspace.slug, "pk": items[0].pk})
        return format_html('<a href="{}">decide</a>', url)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("review_items")

    list_filter = ("status",)
    search_fields = ("thread__subject",)
    list_select_related = ("thread", "chosen_deal", "workspace")


@admin.register(DealFact)
class DealFactAdmin(ReadOnlyAdmin):
    list_display = ("deal", "key", "shown_value", "confidence", "confirmed", "status")
    list_filter = ("key", "status", "confirmed")
    search_fields = ("deal__title", "key")
    list_select_related = ("deal",)
    readonly_fields = ("shown_value",)

    @admin.display(description="Value")
    def shown_value(self, obj):
        return display.display(obj.value_json)


@admin.register(DealReadiness)
class DealReadinessAdmin(ReadOnlyAdmin):
    list_display = ("deal", "framework", "readiness_score", "missing_keys", "updated_at")
    list_filter = ("framework",)
    search_fields = ("deal__title",)
    list_select_related = ("deal",)
