from django import forms
from django.contrib import admin
from django.template.defaultfilters import linebreaksbr
from django.utils.html import format_html_join

from crm.models import CrmConnection, CrmWriteLog
from crm.services import crm_connection_set
from workspaces import display
from workspaces.admin_mixins import ReadOnlyAdmin, WorkspaceScopedAdmin


@admin.register(CrmWriteLog)
class CrmWriteLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "crm", "action", "status", "target", "thread", "deal", "attempts")
    list_filter = ("status", "crm", "action")
    search_fields = ("idempotency_key", "target", "error")
    list_select_related = ("thread", "deal")
    readonly_fields = ("shown_payload",)

    @admin.display(description="What is written")
    def shown_payload(self, obj):
        rows = ((field, linebreaksbr(shown)) for field, shown in display.payload_fields(obj.payload_json))
        return format_html_join("", "<div><strong>{}</strong>: {}</div>", rows)


class CrmConnectionForm(forms.ModelForm):
    """The secret is write-only: a blank field keeps the stored one."""

    new_secret = forms.CharField(
        label="Access token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the stored token.",
    )

    instance_url = forms.URLField(
        required=False, assume_scheme="https", help_text="Salesforce: the org's instance URL."
    )

    class Meta:
        model = CrmConnection
        fields = ("crm", "instance_url")


@admin.register(CrmConnection)
class CrmConnectionAdmin(WorkspaceScopedAdmin):
    form = CrmConnectionForm
    exclude = ("workspace", "secret_encrypted")
    list_display = ("workspace", "crm", "secret_state", "instance_url", "updated_at")
    readonly_fields = ("secret_state",)

    @admin.display(description="Token")
    def secret_state(self, obj):
        return "set" if obj and obj.secret_encrypted else "not set"

    def save_model(self, request, obj, form, change):
        """Through the service, as ``manage.py crm_connect`` does: encrypted and audited."""
        saved = crm_connection_set(
            workspace_id=request.workspace.pk if not change else obj.workspace_id,
            crm=form.cleaned_data["crm"],
            secret=form.cleaned_data.get("new_secret") or None,
            instance_url=form.cleaned_data.get("instance_url") or "",
            actor=request.user,
            connection_id=obj.pk if change else None,
        )
        obj.pk, obj.workspace_id, obj.secret_encrypted = saved.pk, saved.workspace_id, saved.secret_encrypted
