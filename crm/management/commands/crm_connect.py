import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from crm.management.commands._workspace import workspace_by_slug
from crm.services import crm_connection_set


class Command(BaseCommand):
    help = (
        "Store a workspace's CRM access token, encrypted. The token is read from standard input "
        "(or prompted for), never from the command line, where other users could see it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--crm", required=True, choices=["hubspot", "salesforce"])
        parser.add_argument("--instance-url", default="", help="Salesforce: https://<org>.my.salesforce.com")
        parser.add_argument("--periodic-sync", action="store_true", help="Also queue the periodic deal sync.")

    def handle(self, *args, **options):
        workspace = workspace_by_slug(options["workspace"])
        if options["crm"] == "salesforce" and not options["instance_url"]:
            raise CommandError("--instance-url is required for Salesforce")
        secret = getpass.getpass("Access token: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
        if not secret:
            raise CommandError("no token given")
        crm_connection_set(
            workspace_id=workspace.pk, crm=options["crm"], secret=secret, instance_url=options["instance_url"]
        )
        if options["periodic_sync"]:
            from django.utils import timezone

            from crm.mirror import deals_sync_schedule

            deals_sync_schedule(workspace_id=workspace.pk, run_after=timezone.now())
        self.stdout.write(f"{options['crm']} credentials stored for {workspace.slug} (encrypted)")
