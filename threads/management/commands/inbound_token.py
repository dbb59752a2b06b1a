"""``manage.py inbound_token --workspace SLUG``: create or rotate the HTTP inbound secret, shown once."""

from django.core.management.base import BaseCommand

from threads.management.commands._common import workspace_get
from threads.services import inbound_token_rotate


class Command(BaseCommand):
    help = "Create or rotate the workspace's inbound token. It is printed once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True)

    def handle(self, *args, workspace, **options):
        ws = workspace_get(workspace)
        token = inbound_token_rotate(workspace=ws)
        self.stdout.write(token)
        self.stderr.write(f"POST raw message/rfc822 to /inbound/{ws.slug}/ with 'Authorization: Bearer <token>'.")
