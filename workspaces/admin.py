import json

from django import forms
from django.contrib import admin, messages

from workspaces import services
from workspaces.admin_mixins import ReadOnlyAdmin, WorkspaceScopedAdmin
from workspaces.models import AuditEvent, Membership, Policy, Workspace
from workspaces.policy import PolicyError, policy_validate
from workspaces.selectors import workspaces_for_user


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "domains", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        # The workspaces table is not under RLS (it is the tenancy key): filter by membership.
        ids = [w.pk for w in workspaces_for_user(user=request.user)]
        return super().get_queryset(request).filter(pk__in=ids)

    @admin.display(description="Internal domains")
    def domains(self, obj):
        return ", ".join(obj.internal_domains)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        workspace = services.workspace_create(
            slug=obj.slug, name=obj.name, internal_domains=obj.internal_domains, actor=request.user
        )
        services.membership_add(workspace=workspace, user=request.user, role="admin", actor=request.user)
        obj.pk = workspace.pk


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ("user", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email")
    autocomplete_fields = ("user",)

    def get_queryset(self, request):
        # Membership rows of the user's other workspaces are visible too (membership_own_rows).
        return super().get_queryset(request).filter(workspace=getattr(request, "workspace", None))

    def save_model(self, request, obj, form, change):
        services.membership_add(workspace=request.workspace, user=obj.user, role=obj.role, actor=request.user)


class PolicyForm(forms.ModelForm):
    policy = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 24, "cols": 80, "class": "tl-monospace"}),
        help_text="JSON. Absent keys take their defaults; unknown keys are refused.",
    )

    class Meta:
        model = Policy
        fields = ("policy",)

    def clean_policy(self):
        try:
            return policy_validate(self.cleaned_data["policy"])
        except PolicyError as exc:
            raise forms.ValidationError(str(exc), code="invalid_policy") from exc


@admin.register(Policy)
class PolicyAdmin(WorkspaceScopedAdmin):
    form = PolicyForm
    list_display = ("__str__", "summary", "updated_at", "updated_by")
    search_fields = ("policy",)

    def has_add_permission(self, request):
        return False  # every workspace gets its policy when it is created

    def has_change_permission(self, request, obj=None):
        membership = getattr(request, "membership", None)
        return bool(membership and membership.role == Membership.Role.ADMIN)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Policy")
    def summary(self, obj):
        keys = ("extractor", "min_confidence", "crm_mode")
        return json.dumps({k: obj.policy.get(k) for k in keys})

    def save_model(self, request, obj, form, change):
        services.policy_update(workspace=request.workspace, document=form.cleaned_data["policy"], actor=request.user)
        messages.info(request, "Policy validated and saved.")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "type", "actor", "thread_id", "job_id")
    list_filter = ("type",)
    search_fields = ("type", "data_json")
    date_hierarchy = "created_at"
