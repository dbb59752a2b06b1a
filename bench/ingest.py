"""Ingestion benchmark: never run by the test suite.

    python bench/ingest.py [--messages 20000] [--workers N]
    python bench/ingest.py --smoke                      # seconds; exits 1 if anything is off
    python bench/ingest.py --rss-check --messages 1000000   # peak RSS at a quarter, half and the full size

1. Generates an mbox of N messages (threads of 1-6 replies) in a temporary file, streamed,
   and reads it three ways in the same run: a bare ``email.message_from_bytes`` loop, a
   single-process loop of the project's own ``message_parse``, and the full import
   (``mail_import``: raw bytes stored, parsed, threaded, audited, extraction handed off) into a
   fresh workspace. Prints each in messages per second and ``ratio to message_parse: X``
   (the references over the first 5,000 messages, measured before and after the import and
   averaged, since the load of a shared machine drifts)
   (goal: at least 0.75), then checks the import: every message stored once, parsed, in the
   thread the generator made, and one extraction job per thread. Peak RSS is printed.
2. Imports one message with a 30 MB attachment in a fresh process and prints its peak RSS
   next to the RSS before the import, so one can see memory stays flat.

``--smoke``: 600 messages with the parse pool forced on (and a re-import that must find only
duplicates), no attachment: checks correctness, not speed, and exits non-zero if the import
loses, duplicates or misthreads a message. ``--rss-check``: the import alone in a fresh
process at N/4, N/2 and N messages, each printing its peak RSS (flat means about equal).
"""

from __future__ import annotations

import argparse
import email
import itertools
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

# This folder holds queue.py, which would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "threadline_bench_ingest"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DATABASE_NAME"] = BENCH_DB  # its own database: the development one is untouched

# The reference loops read this many messages (the first of the mbox), before and after the import.
REFERENCE_SAMPLE = 5_000
COMPANIES = ["northwind.example", "acme.example", "globex.example", "initech.example", "umbrella.example"]
TOPICS = ["Pricing", "Renewal", "Security review", "Pilot plan", "Order form", "Integration", "Timeline"]


def generate_mbox(path: Path, count: int, seed: int = 7) -> int:
    """Write ``count`` messages to ``path`` (streamed); returns how many threads they make."""
    rnd = random.Random(seed)
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    written = 0
    with open(path, "wb") as out:
        thread = 0
        while written < count:
            thread += 1
            company = rnd.choice(COMPANIES)
            customer = f"buyer{thread % 500}@{company}"
            rep = f"rep{thread % 20}@threadline-demo.com"
            subject = f"{rnd.choice(TOPICS)} #{thread}"
            ids: list[str] = []
            for n in range(min(rnd.randint(1, 6), count - written)):
                msg = EmailMessage()
                sender, recipient = (customer, rep) if n % 2 == 0 else (rep, customer)
                msg["From"], msg["To"] = sender, recipient
                msg["Subject"] = subject if n == 0 else f"Re: {subject}"
                msg["Date"] = format_datetime(start + timedelta(hours=thread, minutes=n * 37))
                mid = f"t{thread}.m{n}@bench.example"
                msg["Message-ID"] = f"<{mid}>"
                if ids:
                    msg["In-Reply-To"] = f"<{ids[-1]}>"
                    msg["References"] = " ".join(f"<{i}>" for i in ids)
                body = " ".join(
                    rnd.choice(["budget", "seats", "decision", "timeline", "next", "week"]) for _ in range(80)
                )
                msg.set_content(f"Hi,\n\n{body}\n\nBest,\n{sender}\n\nOn Monday someone wrote:\n> earlier text\n")
                ids.append(mid)
                raw = msg.as_bytes().replace(b"\r\n", b"\n")
                out.write(f"From {sender} Mon Jan  5 09:00:00 2026\n".encode() + raw.rstrip(b"\n") + b"\n\n")
                written += 1
    return thread


def _workspace(prefix: str):
    from workspaces.services import workspace_create

    return workspace_create(
        slug=f"{prefix}-{int(time.time() * 1000)}", name=f"Benchmark {prefix}", internal_domains=["threadline-demo.com"]
    )


def _cleanup(workspace) -> None:
    """The bench's rows go (the audit log is append-only and stays)."""
    from django.db import connection

    from workspaces.rls import workspace_context

    with workspace_context(workspace), connection.cursor() as cursor:
        for table in ("threads_attachment", "threads_messagereference", "threads_message", "threads_thread"):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
    try:
        with workspace_context(workspace), connection.cursor() as cursor:
            cursor.execute("DELETE FROM jobs_job")
    except Exception as exc:  # the app role may not delete jobs: they wait, unrun, in that workspace
        print(f"(bench jobs left queued: {type(exc).__name__})")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_rss() -> str:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return f"peak RSS {own:.0f} MB (largest parse worker {workers:.0f} MB)"


def _check(workspace, *, count: int, threads: int) -> list[str]:
    """What is wrong with the imported workspace (empty: nothing)."""
    from django.db import connection

    from workspaces.rls import workspace_context

    problems = []
    with workspace_context(workspace), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT message_id), count(*) FILTER (WHERE parse_status <> 'parsed'),"
            " count(*) FILTER (WHERE thread_id IS NULL), count(DISTINCT thread_id) FROM threads_message"
        )
        stored, distinct, unparsed, unthreaded, thread_count = cursor.fetchone()
        # The generator's thread of a message is the part of its id before the first dot.
        cursor.execute(
            "SELECT count(*) FROM (SELECT thread_id FROM threads_message GROUP BY thread_id"
            " HAVING count(DISTINCT split_part(message_id, '.', 1)) > 1) AS mixed"
        )
        mixed = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT split_part(message_id, '.', 1) FROM threads_message GROUP BY 1"
            " HAVING count(DISTINCT thread_id) > 1) AS split"
        )
        split = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM threads_message m"
            " WHERE m.thread_id = t.id) OR t.message_count <> (SELECT count(*) FROM threads_message m"
            " WHERE m.thread_id = t.id)) FROM threads_thread t"
        )
        thread_rows, wrong_counts = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), count(DISTINCT payload->>'thread_id') FROM jobs_job WHERE task = 'extract_thread'"
        )
        jobs, job_threads = cursor.fetchone()
    if (stored, distinct) != (count, count):
        problems.append(f"{stored} messages stored ({distinct} distinct), {count} generated")
    if unparsed or unthreaded:
        problems.append(f"{unparsed} not parsed, {unthreaded} without a thread")
    if (thread_count, thread_rows) != (threads, threads):
        problems.append(f"{thread_count} threads in use, {thread_rows} thread rows, {threads} generated")
    if mixed or split or wrong_counts:
        problems.append(f"{mixed} threads mix conversations, {split} conversations split, {wrong_counts} bad counts")
    if (jobs, job_threads) != (threads, threads):
        problems.append(f"{jobs} extraction jobs for {job_threads} threads, {threads} expected")
    return problems


def _import(path: Path, label: str):
    from threads.ingest.sources import mbox_iter
    from threads.services import mail_import

    workspace = _workspace(label)
    started = time.perf_counter()
    summary = mail_import(workspace=workspace, messages=mbox_iter(path), label=label)
    return workspace, summary, time.perf_counter() - started


def bench_throughput(count: int, *, smoke: bool = False) -> int:
    import django

    django.setup()
    from django.conf import settings

    from threads.ingest.parse import ParseBudget, message_parse
    from threads.ingest.sources import mbox_iter

    if smoke:  # the pool path, at a size that runs in seconds
        settings.THREADLINE_INGEST_POOL_MIN = 100
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mbox"
        threads = generate_mbox(path, count)
        size_mb = path.stat().st_size / 1e6
        sample = min(count, REFERENCE_SAMPLE)

        def loop(read) -> float:
            """msg/s of ``read`` over the first ``sample`` messages of the mbox."""
            started = time.perf_counter()
            messages = itertools.islice(mbox_iter(path), sample)
            done = sum(1 for raw, _ in messages if read(raw) is not None)
            return done / (time.perf_counter() - started)

        def parse_one(raw):
            return message_parse(raw, ParseBudget())

        # The references are measured before and after the import and averaged: on a shared
        # machine the load drifts, and one figure taken before would hold the import to another
        # moment's machine.
        bare_before, parse_before = loop(email.message_from_bytes), loop(parse_one)
        workspace, summary, ours = _import(path, "bench")
        bare_after, parse_after = loop(email.message_from_bytes), loop(parse_one)
        problems = _check(workspace, count=count, threads=threads)
        if (summary.read, summary.new, summary.failed) != (count, count, 0):
            problems.append(f"summary read {summary.read}, new {summary.new}, failed {summary.failed}")
        if summary.batches_one_by_one:
            problems.append(f"{summary.batches_one_by_one} batches fell back to one message at a time (see the log)")
        if smoke:
            from threads.services import mail_import

            again = mail_import(workspace=workspace, messages=mbox_iter(path), label="bench again")
            if (again.read, again.new, again.duplicate) != (count, 0, count):
                problems.append(f"re-import: read {again.read}, new {again.new}, duplicate {again.duplicate}")
        _cleanup(workspace)
    workers = settings.THREADLINE_INGEST_WORKERS
    print(f"mbox: {count} messages in {threads} threads, {size_mb:.1f} MB; parse workers: {workers or 'one per core'}")
    bare, parse, rate = (bare_before + bare_after) / 2, (parse_before + parse_after) / 2, summary.new / ours
    print(f"references over the first {sample:,} messages, before and after the import")
    print("| reading | msg/s | before | after |\n|---|---:|---:|---:|")
    print(f"| bare email.message_from_bytes loop | {bare:,.0f} | {bare_before:,.0f} | {bare_after:,.0f} |")
    print(f"| message_parse loop (one process) | {parse:,.0f} | {parse_before:,.0f} | {parse_after:,.0f} |")
    print(f"| threadline import (store, parse, thread, audit, hand-off) | {rate:,.0f} | {ours:.1f} s | |")
    print(f"ratio to message_parse: {rate / parse:.2f}")
    print(f"ratio to bare stdlib loop: {rate / bare:.3f}")
    print(_peak_rss())
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print("check: every message stored once, parsed, in its thread; one extraction job per thread")
    return 1 if problems else 0


def bench_rss_only(count: int) -> None:
    """The import alone (this process generates, then imports): its peak RSS."""
    import django

    django.setup()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mbox"
        generate_mbox(path, count)
        before = _rss_mb()
        workspace, summary, seconds = _import(path, "bench-rss")
        _cleanup(workspace)
    print(
        f"| {count:,} | {summary.new / seconds:,.0f} | {before:.0f} MB | "
        + resource.getrusage(resource.RUSAGE_SELF).ru_maxrss.__truediv__(1024).__format__(".0f")
        + f" MB | {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB |",
        flush=True,
    )


def bench_attachment() -> None:
    import django

    django.setup()
    from threads.services import message_ingest

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "buyer@acme.example", "rep@threadline-demo.com", "Signed contract"
    msg["Message-ID"] = f"<big.{time.time_ns()}@bench.example>"
    msg.set_content("The signed contract is attached.")
    msg.add_attachment(os.urandom(30 * 1024 * 1024), maintype="application", subtype="pdf", filename="contract.pdf")
    raw = msg.as_bytes()
    del msg
    workspace = _workspace("bench-att")
    before = _rss_mb()
    started = time.perf_counter()
    message_ingest(workspace=workspace, raw=raw, source="bench", enqueue_extraction=False)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _cleanup(workspace)
    print(f"30 MB attachment ({len(raw) / 1e6:.1f} MB message): imported in {seconds:.2f} s")
    print(f"RSS before import {before:.0f} MB (raw message in memory), peak RSS {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--smoke", action="store_true", help="a few hundred messages; exit 1 if the import is wrong")
    parser.add_argument("--rss-check", action="store_true", help="peak RSS of the import at N/4, N/2 and N")
    parser.add_argument("--rss-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--attachment-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help="parse worker processes (THREADLINE_INGEST_WORKERS)")
    args = parser.parse_args()
    if args.workers is not None:
        os.environ["THREADLINE_INGEST_WORKERS"] = str(args.workers)
    if args.attachment_only:
        bench_attachment()
        return
    if args.rss_only:
        bench_rss_only(args.messages)
        return
    # Made once here; the fresh processes started below (--rss-only, --attachment-only) use it.
    from bench._benchdb import database_recreate

    database_recreate(BENCH_DB)
    if args.rss_check:
        print("| messages | import msg/s | RSS before | peak RSS | largest parse worker |\n|---:|---:|---:|---:|---:|")
        for count in (max(args.messages // 4, 1), max(args.messages // 2, 1), args.messages):
            subprocess.run([sys.executable, __file__, "--rss-only", "--messages", str(count)], check=True)
        return
    if args.smoke:
        sys.exit(bench_throughput(600, smoke=True))
    failed = bench_throughput(args.messages)
    # A fresh process, so the peak RSS is the attachment's alone.
    subprocess.run([sys.executable, __file__, "--attachment-only"], check=True)
    sys.exit(failed)


if __name__ == "__main__":
    main()
