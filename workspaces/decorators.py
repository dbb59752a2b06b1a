"""View decorators for pages under ``/w/<slug>/``: the membership the middleware resolved."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404


def member_required(*, decide: bool = False):
    """A signed-in member of the workspace in the URL; with ``decide``, a reviewer or admin
    (viewers read but do not decide). The view gets the request without the slug."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, workspace_slug, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None or request.workspace.slug != workspace_slug:
                raise Http404("No such workspace")
            if decide and not membership.can_decide:
                raise PermissionDenied("Viewers can read the queue but not decide.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
