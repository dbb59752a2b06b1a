"""The suite itself runs as the app role, the way the web and the worker do."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_tests_connect_as_the_app_role_without_superuser_or_bypassrls():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
            "FROM pg_roles WHERE rolname = current_user"
        )
        user, superuser, bypassrls, createrole, createdb = cursor.fetchone()
    assert user == connection.settings_dict["USER"]
    assert (superuser, bypassrls, createrole, createdb) == (False, False, False, False)


def test_app_role_owns_no_table():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert cursor.fetchone()[0] > 20
