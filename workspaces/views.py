from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from workspaces.middleware import SESSION_KEY
from workspaces.models import Workspace
from workspaces.selectors import membership_get


def home(request):
    """Reviewers land in their workspace's queue; everyone else at the login page."""
    if not request.user.is_authenticated:
        return redirect("login")
    workspace = getattr(request, "workspace", None)
    if workspace is None:
        return redirect("admin:index")
    return redirect("review:queue", workspace_slug=workspace.slug)


@login_required
@require_POST
def workspace_switch(request):
    """Make another of the user's workspaces the active one (the admin's switcher)."""
    workspace = Workspace.objects.filter(slug=request.POST.get("workspace", "")).first()
    if workspace is None or membership_get(user=request.user, workspace_id=workspace.pk) is None:
        messages.error(request, "You are not a member of that workspace.")
    else:
        request.session[SESSION_KEY] = workspace.pk
        messages.success(request, f"Now working in {workspace.name}.")
    target = request.POST.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/admin/"
    return redirect(target)
