"""The per-request workspace context that row-level security reads."""

from django.db import transaction
from django.http import Http404

from workspaces.authz import membership_active
from workspaces.models import Membership, Workspace
from workspaces.rls import request_context_enter, set_request_context
from workspaces.selectors import request_policy_known

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
        # The session and the user are read before the transaction opens, so that its BEGIN
        # travels with the context (workspaces.rls.request_context_enter): one round trip.
        user = request.user
        user_id = user.pk if user.is_authenticated else None
        with transaction.atomic():
            if user_id is None:
                set_request_context(workspace_id=None, user_id=None)
                request.workspace, request.membership, policy = None, None, None
            else:
                request.workspace, request.membership, policy = self._resolve(request, user_id)
            # The policy came with the membership: the views' policy_for reads it from here.
            with request_policy_known(workspace_id=getattr(request.workspace, "pk", None), policy=policy):
                # The admin's permission checks (workspaces.authz) read the role from this membership.
                with membership_active(request.membership):
                    return self.get_response(request)

    def _resolve(self, request, user_id: int):
        """The membership of the workspace in the URL (404 without one) or, elsewhere, of the
        one in the session, else the user's first by name; with its workspace and policy."""
        slug = _slug_from_path(request.path_info)
        remembered = None
        if slug is None:
            try:
                remembered = int(request.session.get(SESSION_KEY) or 0) or None
            except (TypeError, ValueError):
                remembered = None
        row = request_context_enter(user_id=user_id, slug=slug, workspace_id=remembered)
        if row is None:
            if slug is not None:
                raise Http404("No such workspace")
            return None, None, None
        workspace = _instance(Workspace, row["workspace"])
        membership = _instance(Membership, row["membership"])
        membership.workspace = workspace
        _remember(request, workspace.pk)
        return workspace, membership, row["policy"]


def _instance(model, data: dict):
    """A model instance from its row as ``row_to_json`` gave it (each value through its field)."""
    fields = model._meta.concrete_fields
    return model.from_db("default", [f.attname for f in fields], [f.to_python(data[f.column]) for f in fields])


def _remember(request, workspace_id: int) -> None:
    """Keep the workspace in the session, writing the session only when it changes: setting
    a key marks the session modified, which costs an UPDATE (and a cookie) per request."""
    if request.session.get(SESSION_KEY) != workspace_id:
        request.session[SESSION_KEY] = workspace_id


def _slug_from_path(path: str) -> str | None:
    if not path.startswith(URL_PREFIX):
        return None
    return path[len(URL_PREFIX) :].split("/", 1)[0] or None
