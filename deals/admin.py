from django.contrib import admin

from deals.models import AssociationCandidate, Deal, DealFact, DealReadiness, ThreadLink
from workspaces.admin_mixins import ReadOnlyAdmin, WorkspaceScopedAdmin


@admin.register(Deal)
class DealAdmin(WorkspaceScopedAdmin):
    list_display = ("title", "crm", "stage", "primary_domain", "amount", "close_date")
    list_filter = ("crm", "stage", "is_closed")
    search_fields = ("title", "primary_domain", "crm_deal_id")


@admin.register(ThreadLink)
class ThreadLinkAdmin(WorkspaceScopedAdmin):
    list_display = ("thread", "deal", "link_confidence", "linked_by", "created_at")
    list_filter = ("linked_by",)
    search_fields = ("thread__subject", "deal__title", "link_reason")
    raw_id_fields = ("thread", "deal")
    list_select_related = ("thread", "deal")


@admin.register(AssociationCandidate)
class AssociationCandidateAdmin(WorkspaceScopedAdmin):
    list_display = ("thread", "status", "chosen_deal", "created_at")
    list_filter = ("status",)
    search_fields = ("thread__subject",)
    raw_id_fields = ("thread", "chosen_deal")
    list_select_related = ("thread", "chosen_deal")


@admin.register(DealFact)
class DealFactAdmin(ReadOnlyAdmin):
    list_display = ("deal", "key", "value_json", "confidence", "confirmed", "status")
    list_filter = ("key", "status", "confirmed")
    search_fields = ("deal__title", "key")
    list_select_related = ("deal",)


@admin.register(DealReadiness)
class DealReadinessAdmin(ReadOnlyAdmin):
    list_display = ("deal", "framework", "readiness_score", "missing_keys", "updated_at")
    list_filter = ("framework",)
    search_fields = ("deal__title",)
    list_select_related = ("deal",)
