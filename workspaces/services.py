"""Writes for workspaces, memberships, policies and the audit log."""

import threading
from contextlib import contextmanager

from django.db import transaction

from workspaces.models import AuditEvent, Membership, Policy, Workspace
from workspaces.policy import policy_validate
from workspaces.rls import workspace_context
from workspaces.selectors import request_policy_forget


def audit_event_record(
    *,
    workspace_id: int,
    type: str,
    data: dict | None = None,
    actor=None,
    thread_id: int | None = None,
    job_id: int | None = None,
) -> AuditEvent:
    """Append one event to the audit log (inside the caller's workspace context). Inside
    ``audit_events_deferred()`` the event is written when that block ends (its pk is None
    until then)."""
    event = AuditEvent(
        workspace_id=workspace_id,
        type=type,
        data_json=data or {},
        actor=actor,
        thread_id=thread_id,
        job_id=job_id,
    )
    buffer = getattr(_deferred, "events", None)
    if buffer is not None:
        buffer.append(event)
        return event
    event.save(force_insert=True)
    return event


_deferred = threading.local()


@contextmanager
def audit_events_deferred():
    """Collect the audit events recorded inside the block and append them in one INSERT as
    it ends (batched pipeline work: one statement instead of one per event, in order). Use
    it inside one transaction and workspace context, which must still be open at the end;
    an exception discards the events, as the transaction's rollback would. Nested: the
    outermost block writes."""
    if getattr(_deferred, "events", None) is not None:
        yield
        return
    _deferred.events = []
    try:
        yield
        events = _deferred.events
    finally:
        _deferred.events = None
    if events:
        AuditEvent.objects.bulk_create(events)


def workspace_create(*, slug: str, name: str, internal_domains: list[str] | None = None, actor=None) -> Workspace:
    """A workspace with its default policy and an audit event."""
    with transaction.atomic():
        workspace = Workspace.objects.create(slug=slug, name=name, internal_domains=internal_domains or [])
        with workspace_context(workspace):
            Policy.objects.create(workspace=workspace, policy=policy_validate({}))
            audit_event_record(workspace_id=workspace.pk, type="workspace.created", actor=actor, data={"slug": slug})
    return workspace


class MembershipError(ValueError):
    """A membership change that would leave the workspace without an admin."""


def membership_add(*, workspace: Workspace, user, role: str, actor=None) -> Membership:
    """Add the user to the workspace, or change their role (never the last admin's)."""
    with workspace_context(workspace):
        membership_check(workspace=workspace, user=user, role=role)
        membership, created = Membership.objects.update_or_create(
            workspace=workspace, user=user, defaults={"role": role}
        )
        audit_event_record(
            workspace_id=workspace.pk,
            type="membership.saved",
            actor=actor,
            data={"user_id": user.pk, "role": role, "created": created},
        )
    return membership


def membership_remove(*, membership: Membership, actor=None) -> None:
    """Take the user out of the workspace (never its last admin), with an audit event."""
    with workspace_context(membership.workspace_id):
        membership_check(workspace=membership.workspace, user=membership.user, role=None)
        Membership.objects.filter(pk=membership.pk).delete()
        audit_event_record(
            workspace_id=membership.workspace_id,
            type="membership.removed",
            actor=actor,
            data={"user_id": membership.user_id, "role": membership.role},
        )


def membership_check(*, workspace: Workspace, user, role: str | None) -> None:
    """Raise MembershipError if giving the user ``role`` (None: removing them) would leave the
    workspace without an admin. The forms call it to say so before anything is saved."""
    if role == Membership.Role.ADMIN:
        return
    with workspace_context(workspace):
        admins = Membership.objects.filter(workspace=workspace, role=Membership.Role.ADMIN)
        last = admins.filter(user=user).exists() and not admins.exclude(user=user).exists()
    if last:
        raise MembershipError(
            f"{user.get_username()} is the only admin of {workspace.name}: make someone else an admin first."
        )


def policy_update(*, workspace: Workspace, document: dict, actor=None) -> Policy:
    """Validate (PolicyError names the bad key) and save the policy, with an audit event."""
    validated = policy_validate(document)
    with workspace_context(workspace):
        policy, _ = Policy.objects.get_or_create(workspace=workspace)
        before = policy.policy
        policy.policy, policy.updated_by = validated, actor
        policy.save()
        request_policy_forget()  # a request that read it before must read it again
        changed = sorted(k for k in validated if before.get(k) != validated[k])
        audit_event_record(workspace_id=workspace.pk, type="policy.updated", actor=actor, data={"changed": changed})
    return policy
