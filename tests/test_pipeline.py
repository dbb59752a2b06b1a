"""The flow's one table of transitions (pipeline/stages.py) against the code around it."""

import re
from pathlib import Path

import pytest

from jobs.registry import autodiscover
from pipeline import stages

ROOT = Path(__file__).resolve().parent.parent
APPS = ["threads", "review", "extraction", "deals", "crm"]


def _sources():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "tests" not in path.parts and "migrations" not in path.parts:
                yield path, path.read_text()


def test_every_task_the_pipeline_queues_is_registered_and_every_task_is_a_stage():
    registered = {name for name in autodiscover() if not name.startswith("test.")}
    assert registered == set(stages.TASKS)


def test_every_event_is_emitted_by_some_app_and_every_emit_names_a_known_event():
    names = {name for name in dir(stages) if isinstance(getattr(stages, name), str)}
    events = {name for name in names if getattr(stages, name) in stages.EVENTS}
    emitted = set()
    for path, text in _sources():
        for name in re.findall(r"stages\.emit(?:_many)?\(\s*stages\.([A-Z_]+)", text):
            assert name in events, f"{path.relative_to(ROOT)} emits {name}, which is not an event"
            emitted.add(name)
    assert emitted == events


def test_an_unknown_event_is_refused():
    with pytest.raises(ValueError, match="unknown pipeline event"):
        stages.emit("thread.teleported", workspace_id=1, thread_id=1)


def test_every_key_names_one_piece_of_work():
    """A thread's CRM sync, linking and facts each have one key, so they coalesce per thread."""
    keys = {
        (t.event, t.task): t.key({"thread_id": 7, "deal_id": 3, "item": 3, "deal_ids": [3], "write_id": 5})
        for t in stages.TRANSITIONS
    }
    assert keys[(stages.VALUES_CHANGED, stages.CRM_SYNC_THREAD)] == keys[(stages.LINK_CHANGED, stages.CRM_SYNC_THREAD)]
    assert keys[(stages.VALUES_CHANGED, stages.LINK_THREAD)] == keys[(stages.THREAD_EXTRACTED, stages.LINK_THREAD)]
