"""Who may do what in the admin: one table, derived from the role in the active workspace.

A permission check gets only the user (and perhaps an object), not the request, so the
membership that ``WorkspaceContextMiddleware`` resolved for the request is kept in a context
variable for as long as the request runs (``membership_active``). The predicates read it;
nothing is stored per user, so there are no permission rows to grant or to forget. The
`rules` backend answers for the permissions below; Django's ``ModelBackend`` still
authenticates. Per-user permission rows are never needed, and cannot open the admin to a
reviewer or viewer: entering it is the ``use_admin`` rule, which reads the role only.
Active superusers pass every check (``User.has_perm`` does that before any backend).

Row-level security already limits every row to the active workspace, so the predicates only
look at the role. Reviewers and viewers decide in the console, not in the admin: they get
nothing here.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import rules

ADMIN_ROLE = "admin"
# Who may open /admin/ at all: a rule, not a permission, so that asking (the console's nav
# asks on every page) never falls through to ModelBackend's permission queries.
USE_ADMIN = "use_admin"

VIEW = ("view",)
EDIT = ("view", "add", "change")
MANAGE = ("view", "add", "change", "delete")

# model label -> what a workspace admin may do with it. Besides Django's view/add/change/delete,
# custom verbs name the admin actions and views that check them (``<app>.<verb>_<model>``).
# Every model registered in the admin is listed, or deliberately left to superusers
# (SUPERUSER_ONLY); tests/test_admin.py checks both lists against the admin's registry.
WORKSPACE_ADMIN = {
    "workspaces.workspace": ("view", "change"),  # their own workspace only (its queryset)
    "workspaces.membership": MANAGE,
    "workspaces.policy": ("view", "change"),
    "workspaces.auditevent": VIEW,
    "threads.inboundtoken": ("view", "rotate"),
    "threads.thread": VIEW,
    "threads.message": ("view", "reparse"),
    "threads.messageconflict": ("view", "resolve"),
    "threads.mailimport": VIEW,
    "threads.attachment": VIEW,
    "threads.imapcursor": VIEW,
    "jobs.job": ("view", "retry", "cancel"),
    "extraction.extractionrun": VIEW,
    "extraction.fieldvalue": VIEW,
    "review.reviewitem": ("view", "decide"),
    "deals.deal": EDIT,
    # Links, candidates, facts and readiness follow from the deals and the console's decisions.
    "deals.threadlink": VIEW,
    "deals.associationcandidate": VIEW,
    "deals.dealfact": VIEW,
    "deals.dealreadiness": VIEW,
    "crm.crmconnection": EDIT,
    "crm.crmwritelog": VIEW,
}
# Accounts span workspaces: creating users and browsing them is for operators.
SUPERUSER_ONLY = ("auth.user", "auth.group")

_active_membership: ContextVar = ContextVar("active_membership", default=None)


@contextmanager
def membership_active(membership):
    """Make ``membership`` the one the permission checks read for the block (a request)."""
    token = _active_membership.set(membership)
    try:
        yield
    finally:
        _active_membership.reset(token)


def active_role(user) -> str | None:
    """The user's role in the active workspace, or None (no request, not a member, inactive)."""
    membership = _active_membership.get()
    if membership is None or user is None or not user.is_active or membership.user_id != user.pk:
        return None
    return membership.role


@rules.predicate
def is_workspace_admin(user) -> bool:
    return active_role(user) == ADMIN_ROLE


def may_use_admin(user) -> bool:
    """The admin site's has_permission and the console's "Admin" link."""
    return rules.test_rule(USE_ADMIN, user)


def permission_name(label: str, verb: str) -> str:
    app_label, model_name = label.split(".")
    return f"{app_label}.{verb}_{model_name}"


def _register() -> None:
    rules.add_rule(USE_ADMIN, rules.is_active & (rules.is_superuser | is_workspace_admin))
    for label, verbs in WORKSPACE_ADMIN.items():
        for verb in verbs:
            rules.add_perm(permission_name(label, verb), is_workspace_admin)
    # has_module_perms(app_label): the admin index lists an app only if this says yes.
    for app_label in sorted({label.split(".")[0] for label in WORKSPACE_ADMIN}):
        rules.add_perm(app_label, is_workspace_admin)


_register()
