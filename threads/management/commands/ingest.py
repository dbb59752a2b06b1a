"""``manage.py ingest PATH... --workspace SLUG``: import .eml files, folders, mbox (.gz) and Maildir."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from threads.ingest.sources import MailWalk
from threads.management.commands._common import summary_lines, workspace_get
from threads.services import mail_import


class Command(BaseCommand):
    help = (
        "Import mail from .eml files, folders of them, mbox files (also gzipped) and Maildir / Maildir++ "
        "folders, at any depth. Every file is either read or listed as skipped with its reason; the "
        "folder each message came from is kept with it."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="Files or folders to import.")
        parser.add_argument("--workspace", required=True, help="The slug of the workspace to import into.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--list-skipped", type=int, default=50, metavar="N", help="Skipped files listed by name (default 50)."
        )

    def handle(self, *args, paths, workspace, no_progress=False, list_skipped=50, verbosity=1, **options):
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise CommandError(f"No such file or folder: {', '.join(missing)}")
        ws = workspace_get(workspace)
        walk = MailWalk(paths)
        show = not (no_progress or verbosity == 0 or not sys.stderr.isatty())
        bar = tqdm(
            total=walk.count_hint() if show else None, unit="msg", desc="Importing", file=sys.stderr, disable=not show
        )
        with bar:
            summary = mail_import(
                workspace=ws,
                messages=walk,
                progress=lambda result: bar.update(1),
                label=" ".join(str(p) for p in paths)[:500],
            )
        if verbosity:
            for line in summary_lines(summary, listed=list_skipped):
                self.stdout.write(line)
