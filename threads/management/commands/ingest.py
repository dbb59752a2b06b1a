"""``manage.py ingest PATH... --workspace SLUG``: import .eml files, folders, mbox (.gz) and Maildir."""

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from threads.ingest.sources import paths_count_hint, paths_iter
from threads.management.commands._common import workspace_get
from threads.services import mail_import


class Command(BaseCommand):
    help = "Import mail from .eml files, folders of them, mbox files (also gzipped) and Maildir folders."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--workspace", required=True, help="The slug of the workspace to import into.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, paths, workspace, no_progress=False, verbosity=1, **options):
        from pathlib import Path

        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise CommandError(f"No such file or folder: {', '.join(missing)}")
        ws = workspace_get(workspace)
        bar = tqdm(
            total=paths_count_hint(paths),
            unit="msg",
            desc="Importing",
            file=sys.stderr,
            disable=no_progress or verbosity == 0 or not sys.stderr.isatty(),
        )
        with bar:
            summary = mail_import(
                workspace=ws,
                messages=paths_iter(paths),
                progress=lambda result: bar.update(1),
                label=" ".join(str(p) for p in paths)[:500],
            )
        if verbosity:
            s = summary
            self.stdout.write(
                f"read {s.read}, new {s.new}, duplicate {s.duplicate}, failed {s.failed}, "
                f"threads changed {len(s.thread_ids)}, {s.seconds:.1f} seconds"
            )
        return None
