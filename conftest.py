"""Test set-up shared by every app.

The suite runs as the app role under row-level security, exactly as production does.
Only the infrastructure steps that production also runs as the owner use the owner role:
creating and migrating the test database, and emptying it after tests that commit (the app
role has no TRUNCATE, which would bypass row-level security).
"""

import os

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


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium for the session (see tests/browser.py)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import ARGS, CHROMIUM

    # Playwright's sync API runs an event loop in this thread; Django's ORM calls in the
    # test body are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()
