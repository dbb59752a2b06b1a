"""Shared by the threads management commands."""

from django.core.management.base import CommandError

from workspaces.models import Workspace


def workspace_get(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise CommandError(f"No workspace with slug {slug!r}.")
    return workspace
