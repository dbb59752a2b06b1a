"""Reads about workspaces and memberships."""

import copy
import json
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from workspaces.models import Membership, Policy, Workspace
from workspaces.policy import policy_validate


def membership_get(*, user, workspace_id: int) -> Membership | None:
    """The user's membership of a workspace; needs app.user_id set (membership_own_rows policy)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, workspace_id=workspace_id).first()


def workspaces_for_user(*, user) -> list[Workspace]:
    if not user.is_authenticated:
        return []
    ids = Membership.objects.filter(user=user).values_list("workspace_id", flat=True)
    return list(Workspace.objects.filter(pk__in=list(ids)).order_by("name"))


# The policy the request's middleware read with the membership (workspace id, stored document),
# so the views' policy_for does not read it again; policy_update forgets it.
_request_policy: ContextVar[tuple[int, object] | None] = ContextVar("request_policy", default=None)


@contextmanager
def request_policy_known(*, workspace_id: int | None, policy):
    token = _request_policy.set((workspace_id, policy) if workspace_id is not None else None)
    try:
        yield
    finally:
        _request_policy.reset(token)


def request_policy_forget() -> None:
    _request_policy.set(None)


def policy_for(*, workspace_id: int) -> dict:
    """The workspace's policy with defaults filled in (inside its workspace context)."""
    known = _request_policy.get()
    if known is not None and known[0] == workspace_id:
        policy = known[1]
    else:
        policy = Policy.objects.filter(workspace_id=workspace_id).values_list("policy", flat=True).first()
    return copy.deepcopy(_policy_validated(json.dumps(policy or {}, sort_keys=True)))


@lru_cache(maxsize=256)
def _policy_validated(document: str) -> dict:
    """policy_validate of a stored document, once per process (JSON Schema costs a page's worth)."""
    return policy_validate(json.loads(document))
