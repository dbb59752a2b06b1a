"""``manage.py export_threads --workspace SLUG [--output FILE]``: threads and their messages as JSON."""

import json

from django.core.management.base import BaseCommand

from threads.management.commands._common import workspace_get
from threads.selectors import threads_export
from workspaces.rls import workspace_context


class Command(BaseCommand):
    help = "Write the workspace's threads, each with its messages in order, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--output", "-o", help="A file to write; standard output by default.")

    def handle(self, *args, workspace, output=None, **options):
        ws = workspace_get(workspace)
        with workspace_context(ws):
            document = {"workspace": ws.slug, "threads": threads_export()}
        text = json.dumps(document, ensure_ascii=False, indent=2)
        if output:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        else:
            self.stdout.write(text)
