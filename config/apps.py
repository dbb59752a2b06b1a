from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """The admin with the workspace-aware site (workspaces/admin_site.py) as ``admin.site``."""

    default_site = "workspaces.admin_site.WorkspaceAdminSite"
