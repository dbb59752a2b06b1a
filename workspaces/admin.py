import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.shortcuts import redirect

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
        # The workspaces table is not under RLS (it is the tenancy key): superusers see the
        # ones they belong to, a workspace admin the active one (the switcher reaches the rest).
        if request.user.is_superuser:
            ids = [w.pk for w in workspaces_for_user(user=request.user)]
        else:
            ids = [request.workspace.pk] if getattr(request, "workspace", None) else []
        return super().get_queryset(request).filter(pk__in=ids)

    def get_readonly_fields(self, request, obj=None):
        # The slug is in every console URL and bookmark: only an operator renames it.
        return () if request.user.is_superuser else ("slug",)

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if request.user.is_superuser else {}

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


class MembershipAddForm(forms.ModelForm):
    """A member is added by the exact username or email of an existing account: no browsing
    of the accounts of other workspaces (auth users are not under row-level security)."""

    account = forms.CharField(
        label="Username or email",
        max_length=254,
        help_text="The exact username or email of an existing account (an operator creates accounts).",
    )

    class Meta:
        model = Membership
        fields = ("account", "role")

    def clean_account(self):
        ref = self.cleaned_data["account"].strip()
        matches = list(get_user_model().objects.filter(Q(username=ref) | Q(email__iexact=ref), is_active=True)[:2])
        if not matches:
            raise forms.ValidationError(f"No active account has the username or email “{ref}”.", code="no_account")
        if len(matches) > 1:
            raise forms.ValidationError(
                f"More than one account matches “{ref}”: enter the username instead.", code="ambiguous_account"
            )
        user = matches[0]
        existing = Membership.objects.filter(workspace=self.workspace, user=user).first()
        if existing:
            raise forms.ValidationError(
                f"{user.get_username()} is already a member ({existing.get_role_display().lower()}): "
                "change the role on their membership instead.",
                code="already_member",
            )
        return user


class MembershipChangeForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("role",)

    def clean_role(self):
        role = self.cleaned_data["role"]
        try:
            services.membership_check(workspace=self.instance.workspace, user=self.instance.user, role=role)
        except services.MembershipError as exc:
            raise forms.ValidationError(str(exc), code="last_admin") from exc
        return role


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ("user", "email", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    actions = None  # removing members one at a time keeps the last-admin check readable

    def get_queryset(self, request):
        # Membership rows of the user's other workspaces are visible too (membership_own_rows).
        return super().get_queryset(request).filter(workspace=getattr(request, "workspace", None))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, form=MembershipChangeForm if obj else MembershipAddForm)
        form.workspace = getattr(request, "workspace", None)
        return form

    def get_fields(self, request, obj=None):
        return ("user", "role") if obj else ("account", "role")

    def get_readonly_fields(self, request, obj=None):
        return ("user",) if obj else ()

    @admin.display(description="Email", ordering="user__email")
    def email(self, obj):
        return obj.user.email

    def save_model(self, request, obj, form, change):
        if not change:
            obj.user = form.cleaned_data["account"]
        saved = services.membership_add(workspace=request.workspace, user=obj.user, role=obj.role, actor=request.user)
        obj.pk, obj.workspace_id, obj.created_at = saved.pk, saved.workspace_id, saved.created_at

    def delete_model(self, request, obj):
        services.membership_remove(membership=obj, actor=request.user)

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            try:
                services.membership_check(workspace=obj.workspace, user=obj.user, role=None)
            except services.MembershipError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return redirect("admin:workspaces_membership_change", obj.pk)
        return super().delete_view(request, object_id, extra_context)


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
