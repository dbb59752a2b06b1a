from django.core.management.base import BaseCommand, CommandError

from crm.management.commands._workspace import workspace_by_slug
from crm.mirror import CsvImportError, deals_import_csv


class Command(BaseCommand):
    help = (
        "Import deals from a CSV file (columns crm_deal_id,title and optionally stage,primary_domain,"
        "owner_email,amount,close_date,contact_emails,is_closed) for teams without API access."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")

    def handle(self, *args, **options):
        workspace = workspace_by_slug(options["workspace"])
        try:
            with open(options["path"], newline="", encoding="utf-8-sig") as stream:
                result = deals_import_csv(workspace_id=workspace.pk, stream=stream)
        except (OSError, CsvImportError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"imported {result['deals']} deals")
