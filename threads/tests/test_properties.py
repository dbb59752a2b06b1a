"""Property-based: no input crashes ingestion or loses its bytes; arrival order never matters."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threads.ingest.parse import message_parse
from threads.ingest.reply import reply_text
from threads.ingest.sniff import not_mail_reason
from threads.ingest.subject import base_subject
from threads.ingest.threading import conversations
from threads.models import Message, MessageConflict
from threads.services import mail_import
from threads.tests.mail import mail
from workspaces.rls import workspace_context
from workspaces.tests.factories import WorkspaceFactory

SEED = mail("seed@x", subject="=?utf-8?q?Pr=C3=BCfung?=", html="<p>Hi</p>", refs=["p@x"])
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, position, value in edits:
        if not buf:
            buf.append(value)
            continue
        i = position % len(buf)
        if kind == 0:
            buf[i] = value
        elif kind == 1:
            buf.insert(i, value)
        else:
            del buf[i]
    return bytes(buf)


mutated = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255)), max_size=40).map(
    lambda edits: _mutate(SEED, edits)
)
raw_inputs = st.one_of(st.binary(max_size=2000), mutated)


@FUZZ
@given(raw_inputs)
def test_parse_and_reply_never_raise_on_mutations(raw):
    try:
        parsed = message_parse(raw)
    except Exception:  # the service keeps such input as failed; here only the mutated seed matters
        return
    reply_text(parsed.text)
    base_subject(parsed.subject)


@pytest.mark.django_db(transaction=True)
@FUZZ
@given(st.lists(raw_inputs, min_size=1, max_size=4))
def test_ingestion_never_crashes_and_keeps_raw_bytes(raws):
    workspace = WorkspaceFactory()
    summary = mail_import(workspace=workspace, messages=[(raw, "fuzz") for raw in raws])
    # Every input is accounted for: read (stored), or skipped as not mail with its reason.
    assert summary.read + summary.skipped_count == len(raws)
    assert summary.skipped_count == sum(not_mail_reason(raw) is not None for raw in raws)
    with workspace_context(workspace):
        stored = {bytes(r) for r in Message.objects.values_list("raw", flat=True)}
        stored |= {bytes(r) for r in MessageConflict.objects.values_list("raw", flat=True)}
        count = Message.objects.count()
        assert not Message.objects.filter(parse_status=Message.ParseStatus.RECEIVED).exists()
    assert summary.new + summary.failed == count
    for raw in raws:
        # Either this exact input is stored, or it was a copy of one that is, or it is not mail.
        assert raw in stored or summary.duplicate or not_mail_reason(raw)


ids = st.sampled_from([f"m{n}@x" for n in range(8)])
message_rows = st.lists(
    st.tuples(ids, st.lists(ids, max_size=3), st.lists(ids, max_size=1)),
    min_size=1,
    max_size=8,
    unique_by=lambda t: t[0],
)


def _rows(specs):
    return [
        {
            "pk": n,
            "thread_id": None,
            "message_id": mid,
            "references_json": refs,
            "in_reply_to_json": irt,
            "related_ids": sorted(set(refs + irt) - {mid}),
            "base_subject": "",
            "sent_at": None,
            "participants": [],
        }
        for n, (mid, refs, irt) in enumerate(specs)
    ]


def _partition(parts):
    return sorted(sorted(r["message_id"] for r in part) for part in parts)


@settings(max_examples=30, deadline=None)
@given(message_rows, st.randoms())
def test_conversations_do_not_depend_on_order(specs, rnd):
    rows = _rows(specs)
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert _partition(conversations(rows, window_days=14, internal_domains=[])) == _partition(
        conversations(shuffled, window_days=14, internal_domains=[])
    )


@pytest.mark.django_db(transaction=True)
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(message_rows, st.integers(0, 2**32))
def test_import_order_does_not_change_threads(specs, seed):
    raws = [mail(mid, refs=refs, in_reply_to=(irt[0] if irt else None), subject="s") for mid, refs, irt in specs]
    shuffled = raws[:]
    random.Random(seed).shuffle(shuffled)
    groups = []
    for batch in (raws, shuffled):
        workspace = WorkspaceFactory(internal_domains=["threadline-demo.com"])
        mail_import(workspace=workspace, messages=[(raw, "h") for raw in batch])
        with workspace_context(workspace):
            rows = Message.objects.values_list("thread_id", "message_id")
            by_thread: dict = {}
            for thread_id, mid in rows:
                by_thread.setdefault(thread_id, []).append(mid)
        groups.append(sorted(sorted(v) for v in by_thread.values()))
    assert groups[0] == groups[1]
