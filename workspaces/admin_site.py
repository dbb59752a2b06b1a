"""The admin site: for workspace admins (and superusers), whatever their is_staff flag.

Django's own site lets in staff only and shows an authenticated member without rights a
login form ("you are not authorized"), which for a reviewer is a dead end. Here who may
enter is ``workspaces.authz.may_use_admin`` (a superuser, or an admin membership of the
active workspace); anyone else who is signed in is sent back to the console with a
message saying why. ``config.apps.AdminConfig`` makes this the default site, so every
``admin.site.register`` / ``@admin.register`` registers here.
"""

from functools import wraps

from django.contrib import admin, messages
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from workspaces.authz import may_use_admin

NOT_FOR_YOU = "The admin is for workspace admins; your role in {workspace} is {role}, so you work here in the console."
NO_WORKSPACE = "The admin is for workspace admins, and you are not a member of any workspace yet."


class WorkspaceAdminSite(admin.AdminSite):
    site_header = "Threadline"
    site_title = "Threadline admin"
    # Django's admin login form refuses non-staff; a workspace admin need not be staff.
    login_form = AuthenticationForm

    def has_permission(self, request):
        return may_use_admin(request.user)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.user.is_authenticated and not self.has_permission(request):
                return send_back_to_console(request)
            return inner(request, *args, **kwargs)

        return wrapper

    def login(self, request, extra_context=None):
        if request.user.is_authenticated and not self.has_permission(request):
            return send_back_to_console(request)
        return super().login(request, extra_context)


def send_back_to_console(request):
    """A member who is not an admin: their workspace's queue, with the reason; no workspace: 403."""
    workspace, membership = getattr(request, "workspace", None), getattr(request, "membership", None)
    if workspace is None or membership is None:
        raise PermissionDenied(NO_WORKSPACE)
    messages.info(request, NOT_FOR_YOU.format(workspace=workspace.name, role=membership.get_role_display().lower()))
    return redirect("review:queue", workspace_slug=workspace.slug)
