from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from review import services
from review.models import ReviewItem
from workspaces import display
from workspaces.admin_mixins import WorkspaceScopedAdmin


def console_url(item: ReviewItem) -> str:
    return reverse("review:item", kwargs={"workspace_slug": item.workspace.slug, "pk": item.pk})


@admin.register(ReviewItem)
class ReviewItemAdmin(WorkspaceScopedAdmin):
    list_display = (
        "reason",
        "status",
        "field",
        "shown_value",
        "thread",
        "assigned_to",
        "created_at",
        "resolved_at",
        "in_console",
    )
    list_filter = ("reason", "status")
    search_fields = ("thread__subject", "payload_json")
    list_select_related = ("thread", "assigned_to", "workspace")
    readonly_fields = (
        "shown_value",
        "reason",
        "status",
        "payload_json",
        "version",
        "resolved_at",
        "resolved_by",
        "claimed_until",
        "thread",
        "field_value",
        "association_candidate",
    )
    fields = readonly_fields + ("assigned_to",)
    actions = ["approve_selected", "reject_selected"]

    def has_add_permission(self, request):
        return False  # items come from extraction, linking and the queue, never by hand

    @admin.display(description="Field")
    def field(self, obj):
        return obj.payload_json.get("field", "—")

    @admin.display(description="Value")
    def shown_value(self, obj):
        payload = obj.payload_json or {}
        shown = payload.get("verified_value", payload.get("proposed_value"))
        return display.display(shown) if shown is not None else display.EMPTY

    @admin.display(description="Console")
    def in_console(self, obj):
        return format_html('<a href="{}">open</a>', console_url(obj))

    def has_decide_permission(self, request):
        return self.has_verb_permission(request, "decide")

    def _decide(self, request, queryset, decision):
        done, refused = 0, []
        for item in queryset.filter(status=ReviewItem.Status.OPEN, association_candidate__isnull=True):
            try:
                services.review_item_resolve(
                    item_id=item.pk, reviewer=request.user, decision=decision, version=item.version
                )
                done += 1
            except (services.ReviewConflict, services.ReviewInvalid) as exc:
                refused.append(f"#{item.pk}: {exc}")
        self.message_user(request, f"{done} item(s) {decision}d.", messages.SUCCESS if done else messages.WARNING)
        for line in refused:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Approve the selected open items", permissions=["decide"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, "approve")

    @admin.action(description="Reject the selected open items", permissions=["decide"])
    def reject_selected(self, request, queryset):
        self._decide(request, queryset, "reject")
