"""Resolving ``--workspace SLUG`` (the workspaces table is not a tenant table)."""

from django.core.management.base import CommandError

from workspaces.models import Workspace


def workspace_by_slug(slug: str) -> Workspace:
    try:
        return Workspace.objects.get(slug=slug)
    except Workspace.DoesNotExist as exc:
        raise CommandError(f"no workspace {slug!r}") from exc
