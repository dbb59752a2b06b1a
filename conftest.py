"""Test set-up shared by every app.

The suite runs as the app role under row-level security, exactly as production does.
Only the infrastructure steps that production also runs as the owner use the owner role:
creating and migrating the test database, and emptying it after tests that commit (the app
role has no TRUNCATE, which would bypass row-level security).
"""

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations

from workspaces.db import owner_connection

_app_flush = DatabaseOperations.execute_sql_flush


def _flush_as_owner(self, sql_list):
    with owner_connection(self.connection.alias) as conn:
        _app_flush(conn.ops, sql_list)


DatabaseOperations.execute_sql_flush = _flush_as_owner


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_createdb):
    from django.test.utils import setup_databases, teardown_databases

    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock(), owner_connection():
        config = setup_databases(verbosity=request.config.option.verbose, interactive=False, keepdb=keepdb)
    yield
    if not keepdb:
        with django_db_blocker.unblock(), owner_connection():
            teardown_databases(config, verbosity=request.config.option.verbose)
