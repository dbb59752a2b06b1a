"""Before any table exists: the app role's rights on every table the owner will create."""

from django.db import migrations

from workspaces.rls import RunSQLFile


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    run_before = [("contenttypes", "0001_initial"), ("auth", "0001_initial")]

    operations = [RunSQLFile(forward="app_role_grants", backward="app_role_grants_revoke")]
