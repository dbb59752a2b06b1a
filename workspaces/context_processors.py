from workspaces.authz import may_use_admin
from workspaces.selectors import workspaces_for_user


def workspace(request):
    """The active workspace and, for the switcher, the others the user belongs to."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "active_workspace": getattr(request, "workspace", None),
        "active_membership": getattr(request, "membership", None),
        "user_workspaces": lambda: workspaces_for_user(user=user),
        "can_use_admin": lambda: may_use_admin(user),
    }
