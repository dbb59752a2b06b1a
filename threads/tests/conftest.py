import pytest

from tests.corpus import CORPUS_ENV, corpus_dir
from workspaces.rls import workspace_context
from workspaces.tests.factories import WorkspaceFactory


@pytest.fixture
def corpus():
    path = corpus_dir()
    if not path.is_dir():
        pytest.skip(f"public corpus not found at {path}: set {CORPUS_ENV} to the shared/corpus folder")
    return path


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(slug="sales", internal_domains=["threadline-demo.com"])


@pytest.fixture
def in_workspace(workspace):
    """Run a block inside the workspace's RLS context: ``with in_workspace(): ...``."""
    return lambda: workspace_context(workspace)


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
