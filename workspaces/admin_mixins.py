"""Admin building blocks shared by every app: the active workspace, set by the middleware.

Who may see or change what is not decided here but in ``workspaces.authz`` (from the role in
the active workspace); these classes only add what is true whoever asks.
"""

from django.contrib import admin


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Admin for a tenant model. Row-level security already limits every queryset (and every
    foreign-key choice) to the active workspace; new rows are put in that workspace."""

    exclude = ("workspace",)

    def has_add_permission(self, request):
        return getattr(request, "workspace", None) is not None and super().has_add_permission(request)

    def has_verb_permission(self, request, verb: str) -> bool:
        """A custom permission of this model (``<app>.<verb>_<model>``, see workspaces.authz),
        for admin actions (``permissions=[verb]`` with ``has_<verb>_permission``) and views."""
        return request.user.has_perm(f"{self.opts.app_label}.{verb}_{self.opts.model_name}")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.workspace = request.workspace
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(WorkspaceScopedAdmin):
    """For records the system writes (audit, ledger, runs): browse, never edit by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
