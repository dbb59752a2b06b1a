"""Ingestion benchmark: never run by the test suite.

    python bench/ingest.py [--messages 10000]

1. Generates an mbox of N messages (threads of 1-6 replies) in a temporary folder, imports
   it into a fresh workspace, and prints messages per second beside a bare
   ``email.message_from_bytes`` loop over the same file, as a ratio.
2. Imports one message with a 30 MB attachment in a fresh process and prints its peak RSS
   next to the RSS before the import, so one can see memory stays flat.
"""

from __future__ import annotations

import argparse
import email
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

COMPANIES = ["northwind.example", "acme.example", "globex.example", "initech.example", "umbrella.example"]
TOPICS = ["Pricing", "Renewal", "Security review", "Pilot plan", "Order form", "Integration", "Timeline"]


def generate_mbox(path: Path, count: int, seed: int = 7) -> None:
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


def _workspace(prefix: str):
    from workspaces.services import workspace_create

    return workspace_create(
        slug=f"{prefix}-{int(time.time() * 1000)}", name=f"Benchmark {prefix}", internal_domains=["threadline-demo.com"]
    )


def _cleanup(workspace) -> None:
    from threads.models import Message, Thread
    from workspaces.rls import workspace_context

    with workspace_context(workspace):
        Message.objects.all().delete()
        Thread.objects.all().delete()


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def bench_throughput(count: int) -> None:
    import django

    django.setup()
    from threads.ingest.sources import mbox_iter
    from threads.services import mail_import

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mbox"
        generate_mbox(path, count)
        size_mb = path.stat().st_size / 1e6
        started = time.perf_counter()
        parsed = sum(1 for raw, _ in mbox_iter(path) if email.message_from_bytes(raw) is not None)
        bare = time.perf_counter() - started
        workspace = _workspace("bench")
        started = time.perf_counter()
        summary = mail_import(workspace=workspace, messages=mbox_iter(path), label="bench")
        ours = time.perf_counter() - started
        _cleanup(workspace)
    print(f"mbox: {count} messages, {size_mb:.1f} MB")
    print(f"bare email.message_from_bytes loop: {parsed / bare:,.0f} msg/s ({bare:.2f} s)")
    print(f"threadline import (store, parse, thread): {summary.new / ours:,.0f} msg/s ({ours:.2f} s)")
    print(f"ratio threadline / bare: {bare / ours:.3f} (threadline is {ours / bare:.1f}x slower)")


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
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--attachment-only", action="store_true")
    args = parser.parse_args()
    if args.attachment_only:
        bench_attachment()
        return
    bench_throughput(args.messages)
    # A fresh process, so the peak RSS is the attachment's alone.
    subprocess.run([sys.executable, __file__, "--attachment-only"], check=True)


if __name__ == "__main__":
    main()
