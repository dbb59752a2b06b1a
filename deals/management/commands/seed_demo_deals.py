from django.core.management.base import BaseCommand, CommandError

from deals.demo import demo_deals_save
from workspaces.models import Workspace


class Command(BaseCommand):
    help = "Mirror the demo CRM deals into a workspace (default: demo); the worker links threads to them."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", default="demo")

    def handle(self, *args, **options):
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['workspace']!r}; run seed_demo first")
        count = demo_deals_save(workspace)
        self.stdout.write(f"{count} demo deals saved; relink_deals is queued.")
