"""``manage.py poll_imap --workspace SLUG``: import new mail from an IMAP mailbox over TLS."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from threads.ingest.imap import ImapAccount
from threads.management.commands._common import summary_lines, workspace_get
from threads.services import imap_poll


class Command(BaseCommand):
    help = (
        "Import new messages from an IMAP mailbox (TLS), incrementally by UID. Credentials come from "
        "settings/the environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD, IMAP_MAILBOX, IMAP_CA_FILE."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--host")
        parser.add_argument("--port", type=int)
        parser.add_argument("--user")
        parser.add_argument("--mailbox")
        parser.add_argument("--ca-file")

    def handle(self, *args, workspace, **options):
        ws = workspace_get(workspace)
        account = ImapAccount(
            host=options.get("host") or settings.IMAP_HOST,
            port=options.get("port") or settings.IMAP_PORT,
            user=options.get("user") or settings.IMAP_USER,
            # The password only from settings or the environment, never on the command line.
            password=os.environ.get("IMAP_PASSWORD") or settings.IMAP_PASSWORD,
            mailbox=options.get("mailbox") or settings.IMAP_MAILBOX,
            ca_file=options.get("ca_file") or settings.IMAP_CA_FILE,
        )
        if not account.host or not account.user:
            raise CommandError("Set IMAP_HOST and IMAP_USER (and IMAP_PASSWORD) in the environment.")
        summary = imap_poll(workspace=ws, account=account)
        for line in summary_lines(summary):
            self.stdout.write(line)
