"""Reads about workspaces and memberships."""

from workspaces.models import Membership, Policy, Workspace
from workspaces.policy import policy_validate


def membership_get(*, user, workspace_id: int) -> Membership | None:
    """The user's membership of a workspace; needs app.user_id set (membership_own_rows policy)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, workspace_id=workspace_id).first()


def membership_by_slug(*, user, slug: str) -> Membership | None:
    """The user's membership of the workspace with this slug, the workspace with it (one query)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("workspace").filter(user=user, workspace__slug=slug).first()


def workspaces_for_user(*, user) -> list[Workspace]:
    if not user.is_authenticated:
        return []
    ids = Membership.objects.filter(user=user).values_list("workspace_id", flat=True)
    return list(Workspace.objects.filter(pk__in=list(ids)).order_by("name"))


def policy_for(*, workspace_id: int) -> dict:
    """The workspace's policy with defaults filled in (inside its workspace context)."""
    policy = Policy.objects.filter(workspace_id=workspace_id).values_list("policy", flat=True).first()
    return policy_validate(policy or {})
