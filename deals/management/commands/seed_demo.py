"""A demo workspace with an admin and a reviewer, so a new user lands in a working product.

Neither account is staff or a superuser: what each may do follows from its membership's role
(workspaces/authz.py), so demo-admin uses the admin as any workspace admin would.

It lives in the deals app because it seeds the demo deals as well as the demo mailbox, and
the deals app is above threads (an app imports only those below it).
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from deals.demo import demo_deals_save
from threads.demo import demo_mail_import
from workspaces.models import Workspace
from workspaces.services import membership_add, workspace_create

DEMO_SLUG = "demo"
ACCOUNTS = (("demo-admin", "admin"), ("demo-reviewer", "reviewer"))


class Command(BaseCommand):
    help = (
        "Create the demo workspace with an admin and a reviewer account. Passwords are printed "
        "once, when the accounts are created (set DEMO_PASSWORD to choose one). Imports the bundled "
        "demo mailbox. Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--password", default=None, help="Password for both accounts (default: random).")
        parser.add_argument("--no-mail", action="store_true", help="Do not import the bundled demo mailbox.")

    def handle(self, *args, **options):
        import os

        password = options["password"] or os.environ.get("DEMO_PASSWORD")
        with transaction.atomic():
            workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
            created = workspace is None
            if created:
                workspace = workspace_create(
                    slug=DEMO_SLUG, name="Threadline Demo", internal_domains=["threadline-demo.com"]
                )
            credentials = [self._account(workspace, name, role, password) for name, role in ACCOUNTS]
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created workspace '{workspace.name}' (/w/{DEMO_SLUG}/)."))
        if not options["no_mail"]:
            deals = demo_deals_save(workspace)
            summary = demo_mail_import(workspace)
            self.stdout.write(
                f"Demo mailbox: {summary.read} read, {summary.new} new, {summary.duplicate} already there; "
                f"{deals} demo deals (the worker extracts and links each new thread)."
            )
        for username, role, new_password in credentials:
            if new_password:
                self.stdout.write(f"  {role:<9} {username} / {new_password}   (shown once)")
            else:
                self.stdout.write(f"  {role:<9} {username} exists; reset with `manage.py changepassword {username}`")

    def _account(self, workspace, username, role, password):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        new_password = None
        if user is None:
            new_password = password or secrets.token_urlsafe(12)
            user = User.objects.create_user(
                username=username,
                email=f"{username}@threadline-demo.com",
                password=new_password,
            )
        membership_add(workspace=workspace, user=user, role=role)
        return username, role, new_password
