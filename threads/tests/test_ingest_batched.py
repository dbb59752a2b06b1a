"""The batched import (``mail_import``): the same threads as message at a time, nothing lost.

``mail_import`` stores a batch's raw bytes in one statement, parses the batch (in worker
processes once an import is large) and writes its fields, threads and audit with a few
statements. These tests hold it to what message-at-a-time ingest (``message_ingest``, which
threads each message with ``thread_assign``) does: same conversations, same thread summaries,
duplicates and conflicts told apart, a bad message kept as failed without stopping the rest.
Small batches (``IMPORT_BATCH``) make conversations cross batches, so merges and the threads
they remove happen between batches too.
"""

from __future__ import annotations

import random
import signal

import psutil
import pytest

import threads.services
from jobs.models import Job
from threads.ingest.sources import mbox_iter
from threads.models import Message, MessageReference, Thread
from threads.services import mail_import, message_ingest
from threads.tests.mail import mail
from threads.tests.test_corpus import DOVECOT_REFERENCES
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

DOMAINS = ["threadline-demo.com"]


def mailbox(seed: int = 5) -> list[bytes]:
    """~150 messages of every shape threading knows: References chains, In-Reply-To only,
    replies to a parent that never arrives (siblings join, and a late message bridges two of
    them), reference loops, and reference-less mail that joins by subject (or does not: other
    customer, or outside the window)."""
    rnd = random.Random(seed)
    raws = []
    for t in range(20):  # chains with References
        ids = []
        customer = f"buyer{t}@c{t % 4}.example"
        for n in range(rnd.randint(1, 6)):
            mid = f"c{t}.{n}@x"
            sender = customer if n % 2 == 0 else "rep@threadline-demo.com"
            raws.append(mail(mid, refs=list(ids), subject=("Re: " if n else "") + f"Plan {t}", sender=sender, day=n))
            ids.append(mid)
    for t in range(8):  # In-Reply-To only
        raws.append(mail(f"i{t}.0@x", subject=f"Order {t}", day=1))
        raws.append(mail(f"i{t}.1@x", in_reply_to=f"i{t}.0@x", subject=f"Re: Order {t}", day=2))
    for t in range(6):  # siblings of an absent parent; the bridge arrives for some
        raws.append(mail(f"s{t}.a@x", refs=[f"gone{t}@x"], subject="Re: Pilot", day=3))
        raws.append(mail(f"s{t}.b@x", refs=[f"gone{t}@x"], subject="Re: Pilot", day=3))
        raws.append(mail(f"s{t}.z@x", refs=[f"other{t}@x"], subject="Re: Pilot", day=4))
        if t % 2 == 0:
            raws.append(mail(f"other{t}@x", refs=[f"gone{t}@x"], subject="Re: Pilot", day=4))
    raws.append(mail("loop.a@x", refs=["loop.b@x", "loop.a@x"]))
    raws.append(mail("loop.b@x", refs=["loop.a@x"]))
    for t in range(10):  # reference-less: subject, participant and window decide
        customer = f"ana{t % 3}@s{t % 3}.example"
        raws.append(mail(f"q{t}.0@x", subject=f"Quote {t % 4}", sender=customer, day=t))
        raws.append(
            mail(f"q{t}.1@x", subject=f"RE: Quote {t % 4}", sender="rep@threadline-demo.com", to=customer, day=t + 1)
        )
        raws.append(mail(f"q{t}.2@x", subject=f"Quote {t % 4}", sender=customer, day=t + 40))
    raws.append(mail(None, subject="No id at all", body="hash id"))
    return raws


def groups(workspace) -> list[list[str]]:
    with workspace_context(workspace):
        by_thread: dict[int, list[str]] = {}
        for thread_id, mid in Message.objects.values_list("thread_id", "message_id"):
            by_thread.setdefault(thread_id, []).append(mid)
    return sorted(sorted(v) for v in by_thread.values())


def summaries(workspace) -> list[tuple]:
    """Each thread as its messages and summary fields (ids differ between workspaces)."""
    with workspace_context(workspace):
        members: dict[int, list[str]] = {}
        for thread_id, mid in Message.objects.values_list("thread_id", "message_id"):
            members.setdefault(thread_id, []).append(mid)
        rows = Thread.objects.values_list(
            "pk",
            "subject",
            "base_subject",
            "primary_contact_email",
            "participants",
            "message_count",
            "first_message_at",
            "last_message_at",
        )
        return sorted(
            (tuple(sorted(members.get(pk, []))), subject, base, contact, tuple(sorted(people)), count, first, last)
            for pk, subject, base, contact, people, count, first, last in rows
        )


def one_at_a_time(raws: list[bytes]):
    workspace = WorkspaceFactory(internal_domains=DOMAINS)
    for raw in raws:
        message_ingest(workspace=workspace, raw=raw, source="one")
    return workspace


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batched_import_threads_a_shuffled_mailbox_as_message_at_a_time_does(monkeypatch, seed):
    monkeypatch.setattr(threads.services, "IMPORT_BATCH", 16)
    raws = mailbox()
    random.Random(seed).shuffle(raws)
    batched = WorkspaceFactory(internal_domains=DOMAINS)
    summary = mail_import(workspace=batched, messages=[(raw, "t") for raw in raws])
    assert (summary.read, summary.new, summary.failed, summary.batches_one_by_one) == (len(raws), len(raws), 0, 0)
    reference = one_at_a_time(raws)
    assert groups(batched) == groups(reference)
    assert summaries(batched) == summaries(reference)
    with workspace_context(batched):
        # Every thread row holds messages (merged-away threads are gone); every reference is indexed.
        assert Thread.objects.filter(messages__isnull=True).count() == 0
        assert MessageReference.objects.count() == sum(len(m.related_ids) for m in Message.objects.all())


@pytest.mark.parametrize("name", DOVECOT_REFERENCES)
def test_batched_import_threads_the_dovecot_mailboxes_as_message_at_a_time_does(corpus, monkeypatch, name):
    monkeypatch.setattr(threads.services, "IMPORT_BATCH", 3)
    raws = [raw for raw, _ in mbox_iter(corpus / f"threading/dovecot-imaptest/{name}.mbox")]
    for order in (raws, raws[::-1]):
        batched = WorkspaceFactory(internal_domains=DOMAINS)
        mail_import(workspace=batched, messages=[(raw, "mbox") for raw in order])
        assert groups(batched) == groups(one_at_a_time(order))


def test_copies_and_conflicts_in_one_batch_and_on_reimport(workspace):
    first = mail("d1@x", body="first")
    other = mail("d1@x", body="other content, same Message-ID")
    raws = [first, mail("d2@x", refs=["d1@x"]), first, other, first.replace(b"\n", b"\r\n")]
    summary = mail_import(workspace=workspace, messages=[(raw, "t") for raw in raws])
    assert (summary.read, summary.new, summary.duplicate, summary.conflict) == (5, 2, 2, 1)
    again = mail_import(workspace=workspace, messages=[(raw, "t") for raw in raws])
    assert (again.read, again.new, again.duplicate, again.conflict) == (5, 0, 5, 0)
    with workspace_context(workspace):
        assert Message.objects.count() == 2 and Thread.objects.count() == 1


def test_a_bad_message_in_a_batch_is_kept_named_and_the_rest_imported(workspace, settings):
    settings.THREADLINE_PARSE_MAX_DEPTH = 5
    nested = b"From: core@customer.example\nSubject: core\n\ncore\n"
    for level in range(8):
        nested = (
            b"From: ana@customer.example\nMessage-ID: <nest-%d@x>\nSubject: level %d\n"
            b"MIME-Version: 1.0\nContent-Type: message/rfc822\n\n" % (level, level)
        ) + nested
    raws = [mail("ok1@x"), nested, mail("ok2@x", refs=["ok1@x"]), b"\x00\x01binary", mail("ok3@x", subject="Other")]
    summary = mail_import(workspace=workspace, messages=[(raw, f"file:{n}") for n, raw in enumerate(raws)])
    assert (summary.read, summary.new, summary.failed, summary.skipped_count) == (4, 3, 1, 1)
    assert summary.skipped[0]["path"] == "file:3"
    with workspace_context(workspace):
        bad = Message.objects.get(message_id="nest-7@x")
        assert bad.parse_status == "failed" and "nested deeper than 5" in bad.parse_error
        assert bytes(bad.raw) == nested and bad.thread_id is None
        event = AuditEvent.objects.get(type="message.parse_failed")
        assert event.data_json["message_id"] == "nest-7@x"
        assert Message.objects.filter(parse_status="parsed").count() == 3
    assert groups(workspace) == [["nest-7@x"], ["ok1@x", "ok2@x"], ["ok3@x"]]


def test_a_batch_that_cannot_be_stored_at_once_is_redone_one_by_one(workspace, monkeypatch):
    """Whatever fails in a batch's statements (here: the batch threading raises once), the
    batch rolls back and each message is parsed and threaded on its own: nothing is lost."""
    real = threads.services.threads_assign_batch
    calls = []

    def failing_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the batch statement failed")
        return real(**kwargs)

    monkeypatch.setattr(threads.services, "threads_assign_batch", failing_once)
    monkeypatch.setattr(threads.services, "IMPORT_BATCH", 4)
    raws = [mail(f"r{n}@x", refs=[f"r{n - 1}@x"] if n else None) for n in range(10)]
    summary = mail_import(workspace=workspace, messages=[(raw, "t") for raw in raws])
    assert (summary.read, summary.new, summary.failed, summary.batches_one_by_one) == (10, 10, 0, 1)
    assert groups(workspace) == [sorted(f"r{n}@x" for n in range(10))]
    with workspace_context(workspace):
        assert Thread.objects.get().message_count == 10
        assert not Message.objects.exclude(parse_status="parsed").exists()


def test_extraction_is_queued_once_per_thread_even_across_batches_and_merges(workspace, monkeypatch):
    monkeypatch.setattr(threads.services, "IMPORT_BATCH", 2)
    monkeypatch.setattr(threads.services, "HANDOFF_EVERY", 2)  # hand-offs in the middle too
    raws = [
        mail("a1@x", refs=["root@x"]),
        mail("b1@x", refs=["other@x"]),
        mail("a2@x", refs=["root@x", "a1@x"]),
        mail("c1@x", subject="Else", sender="zed@z.example"),
        mail("other@x", refs=["root@x"]),  # merges the b thread into the a thread, two batches later
        mail("c2@x", refs=["c1@x"], subject="Re: Else", sender="rep@threadline-demo.com", to="zed@z.example"),
    ]
    summary = mail_import(workspace=workspace, messages=[(raw, "t") for raw in raws])
    assert summary.new == 6
    with workspace_context(workspace):
        threads_now = set(Thread.objects.values_list("pk", flat=True))
        jobs = list(Job.objects.filter(task="extract_thread").values_list("payload", flat=True))
        merge = AuditEvent.objects.get(type="thread.regrouped")
    assert len(threads_now) == 2
    assert len(merge.data_json["removed"]) == 1 and not set(merge.data_json["removed"]) & threads_now
    job_threads = [p["thread_id"] for p in jobs]
    assert len(job_threads) == len(set(job_threads))  # one job per thread id
    assert threads_now <= set(job_threads)  # every thread that exists is extracted
    assert summary.threads_changed >= 2


def test_a_large_import_parses_in_worker_processes(workspace, settings, monkeypatch):
    settings.THREADLINE_INGEST_POOL_MIN = 1
    settings.THREADLINE_INGEST_WORKERS = 2
    monkeypatch.setattr(threads.services, "IMPORT_BATCH", 20)
    raws = mailbox()
    random.Random(9).shuffle(raws)
    summary = mail_import(workspace=workspace, messages=[(raw, "t") for raw in raws])
    assert summary.parse_workers == 2
    assert (summary.read, summary.new, summary.failed) == (len(raws), len(raws), 0)
    assert summaries(workspace) == summaries(one_at_a_time(raws))
    settings.THREADLINE_INGEST_POOL_MIN = 500  # the default: a full first batch
    small = mail_import(workspace=WorkspaceFactory(), messages=[(mail("alone@x"), "t")])
    assert (small.parse_workers, small.new) == (0, 1)
    assert mail_import(workspace=WorkspaceFactory(), messages=[(r, "t") for r in raws[:40]]).parse_workers == 0


def test_a_parse_worker_killed_midway_loses_nothing(workspace, settings, monkeypatch):
    """SIGKILL to a worker process while batches are out: the pool breaks, and this process
    parses what the workers did not return. Every message ends parsed and threaded."""
    settings.THREADLINE_INGEST_POOL_MIN = 1
    settings.THREADLINE_INGEST_WORKERS = 2
    monkeypatch.setattr(threads.services, "IMPORT_BATCH", 10)
    raws = mailbox()
    killed = []

    def kill_a_worker(result):
        if not killed:
            workers = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
            if workers:
                workers[0].send_signal(signal.SIGKILL)
                killed.append(workers[0].pid)

    summary = mail_import(workspace=workspace, messages=[(raw, "t") for raw in raws], progress=kill_a_worker)
    assert killed
    assert (summary.read, summary.new, summary.failed) == (len(raws), len(raws), 0)
    with workspace_context(workspace):
        assert not Message.objects.exclude(parse_status="parsed").exists()
        assert not Message.objects.filter(thread__isnull=True).exists()
    assert groups(workspace) == groups(one_at_a_time(raws))


def test_the_hand_off_queues_jobs_together_and_joins_those_already_queued(workspace):
    from pipeline import stages

    with workspace_context(workspace):
        stages.emit_many(stages.THREAD_CHANGED, workspace_id=workspace.pk, events=[{"thread_id": 1}, {"thread_id": 2}])
        stages.emit_many(stages.THREAD_CHANGED, workspace_id=workspace.pk, events=[{"thread_id": 2}, {"thread_id": 3}])
        jobs = sorted(Job.objects.values_list("task", "payload", "dedupe_key", "status"), key=str)
    assert jobs == [("extract_thread", {"thread_id": n}, f"extract:{n}", "queued") for n in (1, 2, 3)]
    with pytest.raises(ValueError, match="use emit"):
        stages.emit_many(stages.VALUES_CHANGED, workspace_id=workspace.pk, events=[{"thread_id": 1}])
