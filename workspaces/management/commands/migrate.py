"""``migrate`` as the owner role: the app role that everything else uses owns no table."""

from django.core.management.commands.migrate import Command as MigrateCommand

from workspaces.db import owner_connection


class Command(MigrateCommand):
    help = MigrateCommand.help + " Runs as the database owner (DATABASE_OWNER_URL)."

    def handle(self, *args, **options):
        with owner_connection(options["database"]):
            return super().handle(*args, **options)
