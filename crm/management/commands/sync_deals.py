from django.core.management.base import BaseCommand, CommandError

from crm.adapters import CrmClientError, CrmTransientError
from crm.management.commands._workspace import workspace_by_slug
from crm.mirror import deals_sync


class Command(BaseCommand):
    help = "Fill the deal mirror from the workspace's CRM, incrementally by last-modified (--full: everything)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--full", action="store_true", help="Fetch every deal, not only those modified since.")

    def handle(self, *args, **options):
        workspace = workspace_by_slug(options["workspace"])
        try:
            result = deals_sync(workspace_id=workspace.pk, full=options["full"])
        except (CrmClientError, CrmTransientError) as exc:
            raise CommandError(str(exc)) from exc
        if result["crm"] == "none":
            raise CommandError("the workspace policy names no CRM (policy key 'crm')")
        self.stdout.write(f"{result['crm']}: {result['deals']} deals in {result['pages']} pages")
