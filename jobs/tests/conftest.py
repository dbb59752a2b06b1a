import pytest

import jobs.tests.tasks  # noqa: F401  (registers the test.* tasks in this process)
from jobs.registry import task_names
from jobs.worker import Worker
from workspaces.tests.factories import WorkspaceFactory


@pytest.fixture
def workspace(transactional_db):
    return WorkspaceFactory()


@pytest.fixture
def other_workspace(transactional_db):
    return WorkspaceFactory()


@pytest.fixture
def make_worker():
    def make(**kwargs):
        kwargs.setdefault("tasks", task_names())
        kwargs.setdefault("batch", True)
        kwargs.setdefault("lease_seconds", 30)
        return Worker(**kwargs)

    return make
