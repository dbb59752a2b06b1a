"""Writes for workspaces, memberships, policies and the audit log."""

from django.db import transaction

from workspaces.models import AuditEvent, Membership, Policy, Workspace
from workspaces.policy import policy_validate
from workspaces.rls import workspace_context


def audit_event_record(
    *,
    workspace_id: int,
    type: str,
    data: dict | None = None,
    actor=None,
    thread_id: int | None = None,
    job_id: int | None = None,
) -> AuditEvent:
    """Append one event to the audit log (inside the caller's workspace context)."""
    return AuditEvent.objects.create(
        workspace_id=workspace_id,
        type=type,
        data_json=data or {},
        actor=actor,
        thread_id=thread_id,
        job_id=job_id,
    )


def workspace_create(*, slug: str, name: str, internal_domains: list[str] | None = None, actor=None) -> Workspace:
    """A workspace with its default policy and an audit event."""
    with transaction.atomic():
        workspace = Workspace.objects.create(slug=slug, name=name, internal_domains=internal_domains or [])
        with workspace_context(workspace):
            Policy.objects.create(workspace=workspace, policy=policy_validate({}))
            audit_event_record(workspace_id=workspace.pk, type="workspace.created", actor=actor, data={"slug": slug})
    return workspace


def membership_add(*, workspace: Workspace, user, role: str, actor=None) -> Membership:
    with workspace_context(workspace):
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


def policy_update(*, workspace: Workspace, document: dict, actor=None) -> Policy:
    """Validate (PolicyError names the bad key) and save the policy, with an audit event."""
    validated = policy_validate(document)
    with workspace_context(workspace):
        policy, _ = Policy.objects.get_or_create(workspace=workspace)
        before = policy.policy
        policy.policy, policy.updated_by = validated, actor
        policy.save()
        changed = sorted(k for k in validated if before.get(k) != validated[k])
        audit_event_record(workspace_id=workspace.pk, type="policy.updated", actor=actor, data={"changed": changed})
    return policy
