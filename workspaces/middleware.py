"""The per-request workspace context that row-level security reads."""

from django.db import transaction
from django.http import Http404

from workspaces.authz import membership_active
from workspaces.models import Workspace
from workspaces.rls import set_request_context
from workspaces.selectors import membership_by_slug, membership_get

SESSION_KEY = "workspace_id"
URL_PREFIX = "/w/"
# Paths that manage their own transactions: the inbound hook commits a message's raw bytes
# before it parses them, which a transaction around the whole request would undo on a crash.
OWN_TRANSACTIONS = ("/inbound/",)


class WorkspaceContextMiddleware:
    """Open the request's transaction and set the user and workspace in it, locally.

    The workspace is the one in the URL (``/w/<slug>/...``) or, elsewhere (the admin),
    the one chosen in the session; either way only after checking the user's membership.
    ``set_config(..., true)`` ends with the transaction, so a pooled connection cannot
    carry one request's workspace into the next. Without a membership there is no
    context, and row-level security then shows zero rows.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(OWN_TRANSACTIONS):
            request.workspace, request.membership = None, None
            return self.get_response(request)
        with transaction.atomic():
            user = request.user
            user_id = user.pk if user.is_authenticated else None
            set_request_context(workspace_id=None, user_id=user_id)
            request.workspace, request.membership = self._resolve(request, user)
            if request.workspace is not None:
                set_request_context(workspace_id=request.workspace.pk, user_id=user_id)
            # The admin's permission checks (workspaces.authz) read the role from this membership.
            with membership_active(request.membership):
                return self.get_response(request)

    def _resolve(self, request, user):
        if not user.is_authenticated:
            return None, None
        slug = _slug_from_path(request.path_info)
        if slug is not None:
            membership = membership_by_slug(user=user, slug=slug)
            if not membership:
                raise Http404("No such workspace")
            _remember(request, membership.workspace_id)
            return membership.workspace, membership
        workspace_id = request.session.get(SESSION_KEY)
        membership = workspace_id and membership_get(user=user, workspace_id=workspace_id)
        if not membership:
            membership = user.memberships.order_by("workspace__name").first()
        if not membership:
            return None, None
        _remember(request, membership.workspace_id)
        return Workspace.objects.get(pk=membership.workspace_id), membership


def _remember(request, workspace_id: int) -> None:
    """Keep the workspace in the session, writing the session only when it changes: setting
    a key marks the session modified, which costs an UPDATE (and a cookie) per request."""
    if request.session.get(SESSION_KEY) != workspace_id:
        request.session[SESSION_KEY] = workspace_id


def _slug_from_path(path: str) -> str | None:
    if not path.startswith(URL_PREFIX):
        return None
    return path[len(URL_PREFIX) :].split("/", 1)[0] or None
