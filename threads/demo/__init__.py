"""The demo mailbox: realistic B2B sales conversations written by the team (demo.mbox)."""

from pathlib import Path

DEMO_MBOX = Path(__file__).resolve().parent / "demo.mbox"


def demo_mail_import(workspace):
    """Import the demo mailbox into ``workspace``; importing it again adds nothing."""
    from threads.ingest.sources import mbox_iter
    from threads.services import mail_import

    return mail_import(workspace=workspace, messages=mbox_iter(DEMO_MBOX), label="demo mailbox")
