"""Scale bench: the console's pages at 1,000 and at 1,000,000 messages, RLS overhead, queue bloat.

    .venv/bin/python bench/scale.py [--messages 1000000] [--baseline 1000] [--workspaces 50]
                                    [--processes 2] [--churn-seconds 3600] [--samples 30]
                                    [--phases import,extract,pages,rls,bloat] [--resume]
                                    [--fresh] [--import-figures [SIZE=]SECONDS[,RSS_MB]] [--smoke]

A full run takes hours (at 1M: the import 30-60 min, the extraction longer, an hour of churn),
so it goes **phase by phase, and can stop and go on later**. Each size (``--baseline``, then
``--messages``) has its own database, ``threadline_bench_scale_<messages>``, made once and
kept (``--fresh`` drops it first), and a record of what was measured on it,
``var/bench/threadline_bench_scale_<messages>.json`` (a phase's figures are written there
when it finishes, with the run and the code that measured them; long phases also note their
progress there as they go). The tables at the end are printed from these records, each saying
which run and date its figures came from. ``--phases`` picks phases (each runs alone against
a size database that has what it needs); ``--resume`` skips the ones already recorded.

1. **import**: ``--workspaces`` workspaces, a few very large ones holding half of the mail
   (25%, 15%, 10%; the rest share the other half). Each gets mbox files streamed to a
   temporary folder in chunks of ``--chunk`` (threads of 1-30 messages, most short; replies
   quote the message before; customers of many companies and the workspace's own reps write;
   budget, authority, need and timeline sentences for the extractor) and imported through
   the real path, ``manage.py ingest``, ``--processes`` workspaces at a time, largest first.
   Deals (about one per three companies) are saved first through ``deals.services.deals_save``,
   as a CRM sync would, so linking has something to find. The mail is deterministic (a seed
   per workspace), so a stopped import goes on where it stopped: per workspace, the chunks
   already stored are skipped and the chunk that was cut is ingested again (its stored
   messages come back as ingest's duplicates, counted). Every message must be stored exactly
   once. Each importer reports, per chunk, its peak RSS (``getrusage``: itself, and its parse
   workers, which end with each chunk) and its RSS now: the figures show whether memory stays
   flat over hundreds of thousands of messages in one process. A database whose import an
   earlier run finished without a record (main's code before this bench recorded anything)
   is taken as imported; ``--import-figures 1000000=2400`` records that run's import time
   (and optionally ``,RSS_MB``) as read from its log.
2. **extract**: ``--processes`` real ``manage.py runworker --batch`` processes drain the
   queue (``extract_thread`` and everything it leads to: linking, deal facts, readiness, the
   dry-run CRM sync), again until nothing is due; progress every 30 s with jobs due, the rate
   and an estimate of the time left. Stopped, it goes on with what is still due; its
   seconds add up over the runs that did it, and jobs finished before the first record
   (an unrecorded run) are named, not counted as this phase's.
3. **pages**: server time in-process (Django's test client: middleware, queries,
   templates, no network) as a signed-in reviewer of the largest workspace, ``--samples``
   requests each after a warm-up, the sizes interleaved request by request, p50 and p95: the
   review queue, a review item, the threads list (its first page and a page 90% deep, reached
   by its keyset link), a thread search (a company's name), a thread search that matches
   nothing, the deal list and the dashboard. Goal: p95 at the large size at most 1.5 x p95 at
   the baseline.

At the large size only:

4. **rls**: each page's slowest query (captured from one request of the page) as the app
   role under RLS with the workspace set, and as the owner with RLS not forced and every
   tenant table replaced, through ``search_path``, by a view holding the same workspace filter
   as a plain ``WHERE workspace_id = …`` (so the query text and its rows are the same). Both
   connections plan each run (no prepared statements, as Django). Measured in ``--rls-rounds``
   rounds (default 9); in each, a warm-up then N runs as one side and N as the other, the side
   that goes first alternating round by round, N chosen so a side takes at least 0.2 s (at
   least ``--rls-reps``). Each round gives a median per side and their ratio; the figures are
   the medians over the rounds (the ratio: the median of the rounds' ratios, so load that
   changes between rounds weighs on both sides alike). Goal at most 1.1. Beside the round
   trip, the server's own time (planning + execution from ``EXPLAIN (ANALYZE, TIMING OFF)``,
   up to 30 per side and round), which the client's and the scheduler's noise does not reach;
   ``--rls-explain`` logs both plans of a query over the goal. The page's main query is the
   statement slowest by its median over 7 requests (one request's slowest is often chance).
5. **bloat**: ``jobs_job`` size, dead rows and the claim's time before, then after
   ``--churn-seconds`` of enqueue + claim + finish as fast as one process goes while another
   connection holds a snapshot open (so VACUUM can remove nothing), then after
   ``manage.py prune_jobs --older-than 0s`` with the snapshot released, then after VACUUM.

``--smoke`` (300 messages as both sizes, 2 workspaces, chunks of 50, 3 samples, 3 s of churn;
about two minutes) runs every phase and a stop-and-resume: the import is stopped in its
second chunk, resumed (every generated message must then be stored exactly once, the cut
chunk's stored ones counted as duplicates), then its record dropped and given again with
``--import-figures`` as for a database built by main's code. It exits with status 1 when
something is wrong: a message not stored or stored twice, a page not answering 200, no
review item, a query whose rows differ with and without RLS. Never run by the test suite;
CI runs the smoke.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

# This folder holds queue.py, which would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "threadline_bench_scale"  # one database per size: threadline_bench_scale_<messages>
RECORDS = ROOT / "var" / "bench"  # one JSON record per size database, named after it
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DATABASE_NAME"] = os.environ.get("DATABASE_NAME", BENCH_DB) if "--importer" in sys.argv else BENCH_DB
os.environ.setdefault("LOG_LEVEL", "WARNING")

CHUNK = 20_000  # messages per mbox file: the disk holds a few chunks at a time, never the whole mail
LARGE_SHARES = (0.25, 0.15, 0.10)
NOOP_TASK = "bench.scale_noop"
PHASES = ("import", "extract", "pages", "rls", "bloat")
STOPPED_EXIT = 75  # an importer stopped as asked (--stop-after), mid-chunk
STARTED = time.monotonic()


def log(line: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {line}", flush=True)


class BenchFailed(Exception):
    """Something the smoke must catch: the bench exits with status 1 naming it."""


class Stopped(Exception):
    """A phase stopped before its end (asked to, or interrupted); its progress is recorded."""


def _eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


# --- records -----------------------------------------------------------------------------------


def _code_version() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
    return (done.stdout.strip() or "unknown") + ("+changes" if dirty.stdout.strip() else "")


RUN = {"run": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "code": ""}


class Record:
    """What has been measured on one size database, in ``var/bench/<database>.json``: written
    whole (to a temporary file, then renamed) each time a phase finishes or notes progress, so
    a run cut off at any moment leaves the last good record. Runs of different phases of the
    same database may run at once (``--phases pages,rls`` beside ``--phases bloat``): each
    writes under a lock over what is on disk then, taking from its own copy only what it set."""

    def __init__(self, db: str):
        self.db = db
        self.path = RECORDS / f"{db}.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"database": db}
        self._mine: set[tuple[str, str]] = set()  # ("phase" | "progress", name) this run set

    def phase(self, name: str) -> dict | None:
        return self.data.get(name)

    def progress(self, name: str) -> dict:
        self._mine.add(("progress", name))
        return self.data.setdefault("progress", {}).setdefault(name, {})

    def finish(self, name: str, figures: dict) -> None:
        self.data[name] = {**figures, "run": RUN["run"], "code": RUN["code"], "finished": _now()}
        self.data.get("progress", {}).pop(name, None)
        self._mine |= {("phase", name), ("progress", name)}
        self.save()

    def drop(self, name: str) -> None:
        self.data.pop(name, None)
        self._mine.add(("phase", name))
        self.save()

    def save(self) -> None:
        RECORDS.mkdir(parents=True, exist_ok=True)
        with open(RECORDS / f"{self.db}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            disk = json.loads(self.path.read_text()) if self.path.exists() else {"database": self.db}
            for kind, name in self._mine:
                mine = self.data if kind == "phase" else self.data.get("progress", {})
                theirs = disk if kind == "phase" else disk.setdefault("progress", {})
                if name in mine:
                    theirs[name] = mine[name]  # the same object: progress() callers keep theirs
                else:
                    theirs.pop(name, None)
            self.data = disk
            tmp = self.path.with_suffix(f".json.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True, default=str))
            os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.data = {"database": self.db}
        self._mine.clear()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _source(rec: dict | None) -> str:
    if not rec:
        return "not measured"
    return f"run of {rec.get('run', '?')}, code {rec.get('code') or '?'}, finished {rec.get('finished', '?')}"


# --- the mail --------------------------------------------------------------------------------

FIRST = ["dana", "leo", "priya", "sara", "tom", "maya", "omar", "ines", "kai", "lena", "raj", "zoe"]
NAMES = ["Northwind", "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Soylent", "Tyrell"]
TOPICS = ["Pricing", "Renewal", "Security review", "Pilot plan", "Order form", "Integration", "Rollout", "Proposal"]
NEED = [
    "Our biggest problem is that quotes fall through the cracks between sales and ops.",
    "Right now our reps waste hours every week copying notes into the CRM by hand.",
    "We need one place where the whole team sees every customer conversation.",
]
BUDGET = [
    "We have a budget of ${k}k for this year.",
    "We set aside ${k},000 for a new tool in the second half.",
    "The budget we have approved is ${k}k.",
]
AUTHORITY = [
    "I'll need sign-off from our CFO before anything is signed.",
    "Our CEO has the final say on anything over that amount.",
    "The VP of Sales approves purchases like this one.",
]
TIMELINE = ["We want to go live by end of next quarter.", "We need this in place before March 31.", ""]
REP = [
    "Thanks for the details! Next step: I'll send the proposal on Friday.",
    "Happy to help. I'll set up a demo for your team next week.",
    "Great, I will share the order form and the security questionnaire today.",
    "Following up on my last note: does Thursday work for a call?",
]
THREAD_SIZES = list(range(1, 31))
THREAD_WEIGHTS = [1 / n**1.5 for n in THREAD_SIZES]  # mostly 1-4 messages, a long tail to 30


def workspace_counts(total: int, workspaces: int) -> list[int]:
    """Messages per workspace: the first few large (LARGE_SHARES), the rest even; sums to ``total``."""
    large = LARGE_SHARES[: max(0, min(len(LARGE_SHARES), workspaces - 1))]
    rest = (1 - sum(large)) / (workspaces - len(large))
    shares = list(large) + [rest] * (workspaces - len(large))
    counts = [int(total * s) for s in shares]
    counts[0] += total - sum(counts)
    return counts


def company_count(messages: int) -> int:
    return 8 + messages // 400


def company(ws: int, k: int) -> tuple[str, str]:
    """A customer company of workspace ``ws``: its name (searchable) and mail domain."""
    name = f"{NAMES[k % len(NAMES)]}{k}"
    return name, f"{name.lower()}.ws{ws}.example"


def internal_domain(ws: int) -> str:
    return f"ws{ws}.sales.example"


def mail_generate(ws: int, count: int, seed: int):
    """Yield ``count`` mbox entries (bytes, "From " line included) of workspace ``ws``, thread by thread."""
    rnd = random.Random(seed)
    companies = company_count(count)
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    written, thread = 0, 0
    while written < count:
        thread += 1
        size = min(rnd.choices(THREAD_SIZES, THREAD_WEIGHTS)[0], count - written)
        name, domain = company(ws, rnd.randrange(companies))
        customer = f"{rnd.choice(FIRST)}.{rnd.randrange(5)}@{domain}"
        colleague = f"{rnd.choice(FIRST)}.{rnd.randrange(5, 9)}@{domain}"
        rep = f"rep{rnd.randrange(12)}@{internal_domain(ws)}"
        subject = f"{rnd.choice(TOPICS)} for {name} #{thread}"
        when = start + timedelta(minutes=thread * 7 + rnd.randrange(600))
        ids: list[str] = []
        previous = ""
        for n in range(size):
            inside = n % 2 == 1
            sender = rep if inside else (colleague if n % 4 == 2 else customer)
            to = customer if inside else rep
            when += timedelta(hours=rnd.randrange(1, 30))
            if inside:
                body = rnd.choice(REP)
            else:
                parts = [f"Hi,\n\nI'm {sender.split('.')[0].title()}, writing for {name}."]
                parts.append(rnd.choice(NEED))
                if rnd.random() < 0.7:
                    parts.append(rnd.choice(BUDGET).format(k=rnd.randrange(10, 200)))
                if rnd.random() < 0.5:
                    parts.append(rnd.choice(AUTHORITY))
                parts.append(rnd.choice(TIMELINE))
                body = "\n".join(p for p in parts if p) + "\n\nThanks"
            text = f"{body}\n{sender}\n"
            if previous:
                quoted = "\n".join("> " + line for line in previous.splitlines()[:60])
                text += f"\nOn {format_datetime(when - timedelta(hours=1))}, {to} wrote:\n{quoted}\n"
            mid = f"t{thread}.m{n}.ws{ws}@bench.example"
            headers = [
                f"From: {sender}",
                f"To: {to}",
                f"Subject: {'Re: ' if n else ''}{subject}",
                f"Date: {format_datetime(when)}",
                f"Message-ID: <{mid}>",
            ]
            if ids:
                headers.append(f"In-Reply-To: <{ids[-1]}>")
                headers.append("References: " + " ".join(f"<{i}>" for i in ids[-10:]))
            headers += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
            stamp = when.strftime("%a %b %d %H:%M:%S %Y")
            yield f"From {sender} {stamp}\n" + "\n".join(headers) + "\n\n" + text + "\n"
            ids.append(mid)
            previous = text
            written += 1


def _rss_now_kb() -> int:
    """This process's resident set now (kB), from /proc; 0 where there is none."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return 0


def importer_main(folder: str, chunk_size: int, stop_after: int, assignments: list[str]) -> None:
    """One importer process (``--importer``): for each ``ws:slug:count:skip``, the mail is
    generated, its first ``skip`` messages passed over (already stored), and the rest written
    chunk by chunk and each chunk imported by the ``ingest`` command (run in this process, so
    Django starts once per process, not once per chunk). One line per chunk on stdout, with
    this process's peak RSS, its parse workers' (they end with each chunk's import) and its
    RSS now. ``stop_after`` > 0: stop after that many messages of this process, in the middle
    of a chunk, exiting STOPPED_EXIT (the smoke's stop-and-resume)."""
    import io

    import django
    from django.core.management import call_command

    django.setup()
    handled = 0
    for assignment in assignments:
        ws, slug, count, skip = assignment.split(":")
        ws, count, skip = int(ws), int(count), int(skip)
        entries = mail_generate(ws, count, seed=1000 + ws)
        for _ in range(skip):
            next(entries)
        chunk, read = skip // chunk_size, skip
        while read < count:
            chunk += 1
            limit = chunk_size
            stopping = 0 < stop_after < handled + min(chunk_size, count - read)
            if stopping:
                limit = stop_after - handled
            path = Path(folder) / f"{slug}-{chunk}.mbox"
            n = 0
            with open(path, "w", encoding="utf-8") as out:
                for entry in entries:
                    out.write(entry)
                    n += 1
                    if n >= limit:
                        break
            summary = io.StringIO()
            started = time.monotonic()
            call_command("ingest", str(path), workspace=slug, no_progress=True, stdout=summary)
            path.unlink()
            read += n
            handled += n
            text = summary.getvalue()
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            numbers = " ".join(str(_summary_number(text, w)) for w in ("new", "duplicate", "conflict", "failed"))
            print(
                f"chunk {slug} {n} {numbers} {time.monotonic() - started:.2f} {own} {workers} {_rss_now_kb()}",
                flush=True,
            )
            if stopping:
                print(f"stopped after {handled} messages, in chunk {chunk} of {slug}", flush=True)
                sys.exit(STOPPED_EXIT)


def _summary_number(stdout: str, word: str) -> int:
    """A count from ingest's summary line ("read N messages …: new N, duplicate N, …, failed N")."""
    import re

    match = re.search(rf"\b{word} (\d+)", stdout)
    return int(match[1]) if match else 0


def message_ids_generated(ws: int, count: int) -> set[str]:
    """The Message-IDs of workspace ``ws``'s generated mail (the smoke's exactly-once check)."""
    import re

    return {re.search(r"Message-ID: <([^>]+)>", e)[1] for e in mail_generate(ws, count, seed=1000 + ws)}


# --- one size ----------------------------------------------------------------------------------


def use_database(db: str) -> None:
    """Point this process (and the processes it starts) at bench database ``db``."""
    from django.db import connections

    os.environ["DATABASE_NAME"] = db
    connections.close_all()
    connections["default"].settings_dict["NAME"] = db


def database_exists(db: str) -> bool:
    import psycopg

    from bench._benchdb import owner_dsn

    with psycopg.connect(owner_dsn("postgres"), autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone())


def database_drop(db: str) -> None:
    import psycopg
    from django.db import connections

    from bench._benchdb import owner_dsn

    connections.close_all()  # the owner may not end the app role's sessions that DROP DATABASE ends
    with psycopg.connect(owner_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def slugs_of(workspaces: int) -> list[str]:
    return [f"scale-{i:02d}" for i in range(workspaces)]


def workspaces_setup(total: int, workspaces: int) -> list[int]:
    """The workspaces, their deals and the reviewer, made where missing (a stopped run may have
    made some); returns the workspaces' ids, in order."""
    from django.contrib.auth import get_user_model

    from deals.models import Deal
    from deals.services import deals_save
    from workspaces.models import Membership, Workspace
    from workspaces.rls import workspace_context
    from workspaces.services import membership_add, workspace_create

    counts = workspace_counts(total, workspaces)
    ids, made = [], 0
    for i, slug in enumerate(slugs_of(workspaces)):
        ws = Workspace.objects.filter(slug=slug).first()
        if ws is None:
            ws = workspace_create(slug=slug, name=f"Scale {i}", internal_domains=[internal_domain(i)])
        ids.append(ws.pk)
        wanted = range(0, company_count(counts[i]), 3)
        with workspace_context(ws):
            have = Deal.objects.count()
        if have >= len(wanted):
            continue
        made += 1
        deals = []
        for k in wanted:
            name, domain = company(i, k)
            deals.append(
                {
                    "crm_deal_id": f"d{k}",
                    "title": f"{name} rollout",
                    "stage": "qualifiedtobuy",
                    "primary_domain": domain,
                    "contact_emails": [f"{FIRST[k % len(FIRST)]}.0@{domain}"],
                    "owner_email": f"rep{k % 12}@{internal_domain(i)}",
                    "crm_updated_at": datetime(2025, 6, 1, tzinfo=UTC),
                }
            )
        deals_save(workspace_id=ws.pk, crm="csv", deals=deals)
    reviewer, _ = get_user_model().objects.get_or_create(username="scale-reviewer")
    first = Workspace.objects.get(pk=ids[0])
    with workspace_context(first):
        member = Membership.objects.filter(user=reviewer).exists()
    if not member:
        membership_add(workspace=first, user=reviewer, role="reviewer")
    if made:
        log(f"{workspaces} workspaces; deals saved in {made} of them")
    return ids


def phase_import(args, total: int, rec: Record, *, stop_after: int = 0, given: dict | None = None) -> None:
    """Make the size's database if it is not there, and import what is not stored yet."""
    from bench._benchdb import database_recreate

    db = rec.db
    if not database_exists(db):
        if rec.phase("import") or rec.data.get("progress"):
            log(f"{db} is gone: its record ({rec.path.name}) is dropped")
            rec.remove()
        use_database(db)
        database_recreate(db)
    use_database(db)
    from workspaces.models import Workspace

    there = Workspace.objects.filter(slug__startswith="scale-").count()
    if there and there != args.workspaces:
        raise BenchFailed(
            f"{db} was built with {there} workspaces, not {args.workspaces}: "
            f"go on with --workspaces {there}, or start again with --fresh"
        )
    ids = workspaces_setup(total, args.workspaces)
    counts = workspace_counts(total, args.workspaces)
    stored = [_count_all([ws], "threads", "Message") for ws in ids]
    progress = rec.progress("import")
    given_here = (given or {}).get(total)
    if sum(stored) >= total and (rec.phase("import") is None or given_here):
        # Imported by a run that recorded nothing (or its figures are given again).
        threads = _count_all(ids, "threads", "Thread")
        figures = {"messages": total, "stored": sum(stored), "threads": threads, "imported": total}
        if given_here:
            seconds, rss = given_here
            figures |= {"seconds": seconds, "msg_per_s": total / seconds, "source": "given (--import-figures)"}
            if rss:
                figures["rss"] = {"self_peak_mb": rss}
        elif progress:
            figures |= {"seconds": progress.get("seconds"), "source": "progress notes (the end was not recorded)"}
        else:
            figures |= {"seconds": None, "source": "imported by a run that recorded nothing; --import-figures gives it"}
        rec.finish("import", figures)
        log(f"import: {db} holds all {total:,} messages; recorded ({figures['source']})")
        return
    if rec.phase("import"):
        log(f"import: recorded as finished ({_source(rec.phase('import'))}); --fresh imports again")
        return
    if progress.setdefault("chunk", args.chunk) != args.chunk:
        raise BenchFailed(
            f"{db}: its import was begun with chunks of {progress['chunk']}, not {args.chunk}: "
            f"go on with --chunk {progress['chunk']} (the stored chunks are skipped whole)"
        )
    progress.setdefault("stored_at_start", sum(stored))
    progress.setdefault("seconds", 0.0)
    progress.setdefault("segments", [])
    seconds_before = progress["seconds"]
    # Stored but not parsed (an importer killed between the two): ingest parses them now, as new.
    unparsed = _count_all(ids, "threads", "Message", parse_status="received")
    skips = [s // args.chunk * args.chunk if s < c else c for s, c in zip(stored, counts, strict=True)]
    left = total - sum(skips)
    if sum(stored):
        log(
            f"import goes on: {sum(stored):,} of {total:,} messages stored; {left:,} to ingest "
            f"({sum(stored) - sum(skips):,} of them stored already, in cut chunks: ingest must find them duplicates)"
        )
    else:
        log(f"importing {total:,} messages into {args.workspaces} workspaces, {args.processes} at a time")
    # Largest first, each to the importer with the least mail so far (greedy balance).
    loads: list[list] = [[0, []] for _ in range(args.processes)]
    for i in sorted(range(args.workspaces), key=lambda i: -counts[i]):
        if skips[i] >= counts[i]:
            continue
        lightest = min(loads, key=lambda load: load[0])
        lightest[0] += counts[i] - skips[i]
        lightest[1].append(f"{i}:{slugs_of(args.workspaces)[i]}:{counts[i]}:{skips[i]}")
    lock = threading.Lock()
    done = {"n": 0, "new": 0, "duplicate": 0, "conflict": 0, "failed": 0, "last": time.monotonic()}
    importers: list[dict] = []
    started = time.monotonic()

    def note() -> None:
        progress["seconds"] = seconds_before + time.monotonic() - started
        rec.save()

    def follow(proc, mine: dict) -> None:
        for line in proc.stdout:
            parts = line.split()
            if len(parts) != 11 or parts[0] != "chunk":
                continue
            with lock:
                n = int(parts[2])
                done["n"] += n
                for k, key in enumerate(("new", "duplicate", "conflict", "failed")):
                    done[key] += int(parts[3 + k])
                own, workers, now = (int(p) / 1024 for p in parts[8:11])
                mine["messages"] += n
                mine.setdefault("self_peak_mb_first_chunk", own)
                mine.update(self_peak_mb=own, workers_peak_mb=workers, self_now_mb=now)
                note()
                if time.monotonic() - done["last"] > 10 or done["n"] == left:
                    done["last"] = time.monotonic()
                    elapsed = time.monotonic() - started
                    rate = done["n"] / elapsed if elapsed else 0
                    peak = max(m.get("self_peak_mb", 0) for m in importers)
                    log(
                        f"  imported {done['n']:,} / {left:,} messages ({rate:,.0f}/s, ETA {_eta((left - done['n']) / rate if rate else float('nan'))}; "
                        f"last chunk of {parts[1]}; importer RSS now {now:,.0f} MB, peak {peak:,.0f} MB, "
                        f"parse workers' peak {workers:,.0f} MB)"
                    )

    stopped = False
    with tempfile.TemporaryDirectory(prefix="threadline-scale-") as tmp:
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--importer", tmp, str(args.chunk), str(stop_after), *load[1]],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for load in loads
            if load[1]
        ]
        importers += [{"messages": 0} for _ in procs]
        followers = [
            threading.Thread(target=follow, args=pair, daemon=True) for pair in zip(procs, importers, strict=True)
        ]
        for t in followers:
            t.start()
        try:
            for p, t in zip(procs, followers, strict=True):
                err = p.stderr.read()
                p.wait()
                t.join()
                if p.returncode == STOPPED_EXIT:
                    stopped = True
                elif p.returncode != 0:
                    raise BenchFailed(f"an importer exited {p.returncode}: {err[-3000:]}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            with lock:
                progress["segments"].append(
                    {"run": RUN["run"], "seconds": time.monotonic() - started, "importers": importers, **done}
                )
                del progress["segments"][-1]["last"]
                note()
    after = [_count_all([ws], "threads", "Message") for ws in ids]
    # A re-read chunk's stored messages must come back as duplicates: not stored twice, not conflicts.
    again = sum(s - k for s, k in zip(stored, skips, strict=True)) - unparsed
    if done["conflict"]:
        raise BenchFailed(f"ingest found {done['conflict']} conflicts: the generated mail was not the same again")
    if not stopped and done["duplicate"] != again:
        raise BenchFailed(
            f"{again} stored and parsed messages were ingested again, and ingest found {done['duplicate']} "
            "duplicates: it must find each one a duplicate"
        )
    if stopped:
        log(f"import stopped as asked: {sum(after):,} of {total:,} messages stored; --resume goes on")
        raise Stopped("import")
    threads = _count_all(ids, "threads", "Thread")
    seconds = progress["seconds"]
    imported = total - progress["stored_at_start"]
    segments = progress["segments"]
    log(
        f"import: {imported:,} messages in {seconds:.0f} s ({imported / seconds:,.0f}/s) over {len(segments)} run(s): "
        f"new {sum(s['new'] for s in segments):,}, duplicate {sum(s['duplicate'] for s in segments):,}, "
        f"failed {sum(s['failed'] for s in segments):,}, stored {sum(after):,}, {threads:,} threads"
    )
    if sum(after) != total:
        raise BenchFailed(f"{total - sum(after)} of {total} generated messages were not stored")
    every = [i for s in segments for i in s["importers"] if i.get("messages")]
    rss = {
        "self_peak_mb_first_chunk": max(i["self_peak_mb_first_chunk"] for i in every),
        "self_peak_mb": max(i["self_peak_mb"] for i in every),
        "workers_peak_mb": max(i["workers_peak_mb"] for i in every),
        "most_messages_in_one_process": max(i["messages"] for i in every),
    }
    log(
        f"  importers' peak RSS: {rss['self_peak_mb_first_chunk']:,.0f} MB after their first chunk, "
        f"{rss['self_peak_mb']:,.0f} MB at the end (up to {rss['most_messages_in_one_process']:,} messages in one "
        f"process); parse workers' peak {rss['workers_peak_mb']:,.0f} MB"
    )
    rec.finish(
        "import",
        {
            "messages": total,
            "stored": sum(after),
            "threads": threads,
            "imported": imported,
            "seconds": seconds,
            "msg_per_s": imported / seconds,
            "runs": len(segments),
            "duplicate": sum(s["duplicate"] for s in segments),
            "rss": rss,
            "source": "measured",
        },
    )


def _count_all(workspace_ids: list[int], app: str, model: str, **filters) -> int:
    from django.apps import apps

    from workspaces.rls import workspace_context

    cls = apps.get_model(app, model)
    total = 0
    for ws in workspace_ids:
        with workspace_context(ws):
            total += cls.objects.filter(**filters).count()
    return total


def _jobs_state(workspace_ids: list[int]) -> tuple[int, int]:
    """(jobs due or running, jobs finished) over the workspaces."""
    from django.db.models import Count, Q
    from django.utils import timezone

    from jobs.models import Job
    from workspaces.rls import workspace_context

    now = timezone.now()
    due = Q(status="queued", run_after__lte=now) | Q(status="running")
    finished = Q(status__in=["succeeded", "failed"])
    total_due = total_finished = 0
    for ws in workspace_ids:
        with workspace_context(ws):
            row = Job.objects.aggregate(due=Count("pk", filter=due), finished=Count("pk", filter=finished))
        total_due += row["due"]
        total_finished += row["finished"]
    return total_due, total_finished


def workspace_ids_of(workspaces: int) -> list[int]:
    from workspaces.models import Workspace

    there = Workspace.objects.filter(slug__startswith="scale-").count()
    if there != workspaces:
        raise BenchFailed(f"the database holds {there} bench workspaces, not {workspaces}: give --workspaces {there}")

    ids = dict(Workspace.objects.filter(slug__in=slugs_of(workspaces)).values_list("slug", "pk"))
    missing = [s for s in slugs_of(workspaces) if s not in ids]
    if missing:
        raise BenchFailed(f"workspaces {', '.join(missing[:5])} are missing: run the import phase first")
    return [ids[s] for s in slugs_of(workspaces)]


def phase_extract(args, total: int, rec: Record, *, given: dict | None = None) -> None:
    """Real ``runworker --batch`` processes until no job is due; seconds add up over stopped runs.
    ``given``: {size: (seconds, None)} read from an unrecorded run's log (``--extract-figures``),
    taken for jobs that finished before the first record."""
    db = rec.db
    if not database_exists(db) or not rec.phase("import"):
        raise BenchFailed(f"{db}: its import is not recorded as finished: run --phases import first")
    use_database(db)
    ids = workspace_ids_of(args.workspaces)
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    progress = rec.progress("extract")
    due, finished = _jobs_state(ids)
    if "finished_at_start" not in progress:
        progress.update(finished_at_start=finished, seconds=0.0, runs=0)
        if finished:
            log(f"  {finished:,} jobs had finished before this phase was first recorded (an unrecorded run)")
    progress["runs"] += 1
    seconds_before = progress["seconds"]
    started = time.monotonic()
    finished_here = finished
    log(f"extracting: {due:,} jobs due or running, {finished - progress['finished_at_start']:,} finished so far")

    def note() -> None:
        progress["seconds"] = seconds_before + time.monotonic() - started
        rec.save()

    rounds = 0
    try:
        while due and rounds < 20:
            rounds += 1
            workers = [
                subprocess.Popen(
                    [sys.executable, "manage.py", "runworker", "--batch", "--worker-id", f"scale-{rounds}-{n}"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for n in range(args.processes)
            ]
            try:
                last = time.monotonic()
                while any(w.poll() is None for w in workers):
                    time.sleep(0.2)
                    if time.monotonic() - last > args.progress_seconds and any(w.poll() is None for w in workers):
                        last = time.monotonic()
                        due, finished = _jobs_state(ids)
                        rate = (finished - finished_here) / (time.monotonic() - started)
                        note()
                        log(
                            f"  extracting: {due:,} jobs due or running, {finished - progress['finished_at_start']:,} "
                            f"finished ({rate:,.1f}/s in this run; ETA of those due {_eta(due / rate if rate else float('nan'))})"
                        )
            finally:
                for w in workers:
                    if w.poll() is None:
                        w.terminate()
                        w.wait()
            for w in workers:
                err = w.stderr.read()
                if w.returncode != 0:
                    raise BenchFailed(f"runworker exited {w.returncode}: {err[-2000:]}")
            due, finished = _jobs_state(ids)
    except KeyboardInterrupt:
        note()
        log("extraction stopped: its progress is recorded; --resume goes on with what is due")
        raise Stopped("extract") from None
    note()
    failed = _count_all(ids, "jobs", "Job", status="failed")
    if failed:
        log(f"  note: {failed} jobs failed for good (see the jobs page of the bench database)")
    jobs = finished - progress["finished_at_start"]
    items = _count_all(ids, "review", "ReviewItem")
    links = _count_all(ids, "deals", "ThreadLink")
    threads = _count_all(ids, "threads", "Thread")
    seconds = progress["seconds"]
    before = progress["finished_at_start"]
    source = "measured"
    if before and (given or {}).get(total):
        # The unrecorded run's jobs and time (from its log) plus what this phase did after it.
        seconds, source = seconds + given[total][0], "given (--extract-figures) plus measured"
        jobs, before = jobs + before, 0
    elif before and not jobs:
        seconds, source = None, "extracted by a run that recorded nothing; --extract-figures gives its time"
    log(
        f"extraction: {jobs:,} jobs in {_f(seconds, 0).strip()} s over {progress['runs']} run(s); "
        f"{items:,} review items, {links:,} thread links ({source})"
    )
    from bench._benchdb import vacuum

    vacuum(db)
    rec.finish(
        "extract",
        {
            "jobs": jobs,
            "jobs_before_record": before,
            "seconds": seconds,
            "source": source,
            "runs": progress["runs"],
            "failed": failed,
            "items": items,
            "links": links,
            "threads": threads,
        },
    )


def size_info(total: int, workspaces: int, rec: Record) -> dict:
    """What the measurements need of a size's database: it must be imported and extracted."""
    from django.contrib.auth import get_user_model

    from workspaces.models import Workspace

    db = rec.db
    if not database_exists(db):
        raise BenchFailed(f"there is no database {db}: run the import and extract phases first")
    if not rec.phase("extract"):
        raise BenchFailed(f"{db}: its extraction is not recorded as finished: run --phases extract first")
    use_database(db)
    workspace = Workspace.objects.filter(slug="scale-00").first()
    reviewer = get_user_model().objects.filter(username="scale-reviewer").first()
    if workspace is None or reviewer is None:
        raise BenchFailed(f"{db}: no workspace scale-00 or no scale-reviewer: run the import phase first")
    return {
        "db": db,
        "messages": total,
        "slug": workspace.slug,
        "workspace_id": workspace.pk,
        "reviewer": reviewer,
        "workspace_messages": _count_all([workspace.pk], "threads", "Message"),
        "workspace_threads": _count_all([workspace.pk], "threads", "Thread"),
    }


# --- pages ------------------------------------------------------------------------------------

SKIP_MAIN = ("set_config", "django_session", "auth_user", "workspaces_membership", "SAVEPOINT", "RELEASE")
DEEP = 0.9  # how deep in the threads list the deep page is


def page_urls(info: dict) -> dict[str, str]:
    """The pages measured, for the largest workspace of a size's database (in use)."""
    from urllib.parse import urlencode

    from review.models import ReviewItem
    from threads.models import Thread
    from threads.selectors import ThreadCursor
    from workspaces.rls import workspace_context

    name, _domain = company(0, 3)
    slug = info["slug"]
    with workspace_context(info["workspace_id"]):
        ids = list(ReviewItem.objects.filter(status="open").order_by("created_at").values_list("pk", flat=True))
        # The page a reader reaches 90% of the way down by the "Older" links: its cursor is the
        # thread just before it (the link of the page before).
        depth = int(info["workspace_threads"] * DEEP) // 50 * 50
        before_it = Thread.objects.order_by("-last_message_at", "-id")[max(0, depth - 1) : max(1, depth)].first()
    if not ids:
        raise BenchFailed(f"{info['db']}: {slug} has no open review item after extraction: no item page to measure")
    deep = f"?{urlencode({'after': ThreadCursor.of(before_it).encode()})}" if before_it else ""
    return {
        "review queue": f"/w/{slug}/review/",
        "review item": f"/w/{slug}/review/items/{ids[len(ids) // 2]}/",
        "threads list": f"/w/{slug}/threads/",
        f"threads list, {DEEP:.0%} deep": f"/w/{slug}/threads/{deep}",
        "thread search": f"/w/{slug}/threads/?q={name}",
        "thread search, no match": f"/w/{slug}/threads/?q=no-such-company",
        "deal list": f"/w/{slug}/deals/",
        "dashboard": f"/w/{slug}/review/dashboard/",
    }


def _client(info: dict):
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(info["reviewer"])
    return client


def _main_query(client, url: str, requests: int = 1) -> tuple[int, str]:
    """(statements of a request, the page's slowest SELECT not of the session or auth) of
    ``url``. The slowest is the statement (by its place in the request) with the greatest
    median time over ``requests`` requests: at a fraction of a millisecond each, one
    request's slowest is often chance (the policy's one-row fetch, say)."""
    from django.db import connection

    runs: list[list[tuple[float, str]]] = []
    for _ in range(requests):
        captured: list[tuple[float, str]] = []
        with connection.execute_wrapper(_capture(captured)):
            _get(client, url)
        runs.append(captured)
    last = runs[-1]
    if any(len(r) != len(last) for r in runs):  # not the same statements each time: the last request's
        runs = [last]
    candidates = [
        (statistics.median(r[i][0] for r in runs), q)
        for i, (_t, q) in enumerate(last)
        if _uncommented(q).upper().startswith(("SELECT", "WITH")) and not any(s in q for s in SKIP_MAIN)
    ]
    return len(last), (max(candidates)[1] if candidates else "")


def _uncommented(sql: str) -> str:
    """The statement after its leading ``--`` comment lines (the named queries of sql/ files)."""
    lines = sql.lstrip().splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines).lstrip()


def pages_main_queries(info: dict) -> dict[str, str]:
    """Each page's slowest query (by its median over 7 requests, after two warm-ups)."""
    use_database(info["db"])
    client = _client(info)
    out = {}
    for page, url in page_urls(info).items():
        for _ in range(2):
            _get(client, url)
        out[page] = _main_query(client, url, requests=7)[1]
    return out


def pages_measure(infos: list[dict], samples: int) -> list[dict]:
    """p50, p95 (ms) and query count of each page, for each size.

    The sizes are measured interleaved (a request at one size, then at the next) so that a
    change in the machine's load, shared with other work, weighs on every size alike."""
    urls, clients = [], []
    for info in infos:
        use_database(info["db"])
        urls.append(page_urls(info))
        clients.append(_client(info))
    out: list[dict] = [{} for _ in infos]
    for page in urls[0]:
        times: list[list[float]] = [[] for _ in infos]
        for n, info in enumerate(infos):
            use_database(info["db"])
            for _ in range(2):
                _get(clients[n], urls[n][page])
            out[n][page] = {
                "queries": _main_query(clients[n], urls[n][page])[0],
                "rows": _rows(_get(clients[n], urls[n][page])),
            }
        for _ in range(samples):
            for n, info in enumerate(infos):
                use_database(info["db"])
                started = time.perf_counter()
                _get(clients[n], urls[n][page])
                times[n].append((time.perf_counter() - started) * 1000)
        for n in range(len(infos)):
            out[n][page].update(p50=statistics.median(times[n]), p95=_p95(times[n]))
        log(
            f"  {page:<24} "
            + "  ".join(
                f"{_k(i['messages'])}: p50 {o[page]['p50']:.1f} ms p95 {o[page]['p95']:.1f} ms"
                for i, o in zip(infos, out, strict=True)
            )
            + f"  ({out[-1][page]['queries']} queries; rows shown "
            + " / ".join(str(o[page]["rows"]) for o in out)
            + ")"
        )
    return out


def _capture(into: list):
    """A Django execute wrapper noting each statement's time and its SQL with the values in."""

    def wrapper(execute, sql, params, many, context):
        started = time.perf_counter()
        result = execute(sql, params, many, context)
        elapsed = time.perf_counter() - started
        cursor = context["cursor"]
        into.append((elapsed, context["connection"].ops.last_executed_query(cursor, sql, params)))
        return result

    return wrapper


def _get(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise BenchFailed(f"{url} answered {response.status_code}, not 200")
    return response


def _rows(response) -> int:
    """The table rows a page shows (its body's <tr>s): a page of 50 renders more than one of 3."""
    return response.content.count(b"<tr") - response.content.count(b"<thead")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(len(ordered) * 0.95) - 1))]


# --- row-level security --------------------------------------------------------------------------


def rls_overhead(
    queries: dict[str, str], db: str, workspace_id: int, rounds: int, min_reps: int, *, explain: bool = False
) -> list[dict]:
    """Per page's main query: plain ms, RLS ms (medians over the rounds of each round's
    median), the ratio (median of the rounds' ratios), rows, runs per side per round.
    ``explain``: the plans of both sides of a query over the goal, in the log."""
    import psycopg
    from psycopg import sql as pgsql

    from bench._benchdb import app_dsn, owner_dsn

    results = []
    # prepare_threshold=None: every run is planned, as Django's queries are (none is prepared).
    with (
        psycopg.connect(app_dsn(db), prepare_threshold=None) as app,
        psycopg.connect(owner_dsn(db), prepare_threshold=None) as owner,
    ):
        tenant_tables = [
            r[0]
            for r in owner.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity AND EXISTS "
                "(SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id')"
            ).fetchall()
        ]
        owner.rollback()

        def under_rls(sql: str, reps: int) -> tuple:
            app.execute("SELECT set_config('app.workspace_id', %s, true)", [str(workspace_id)])
            try:
                return _timed(app, sql, reps)
            finally:
                app.rollback()

        def plain(sql: str, reps: int) -> tuple:
            for table in tenant_tables:
                owner.execute(
                    pgsql.SQL("ALTER TABLE public.{} NO FORCE ROW LEVEL SECURITY").format(pgsql.Identifier(table))
                )
            owner.execute("CREATE SCHEMA bench_plain")
            for table in tenant_tables:
                owner.execute(
                    pgsql.SQL(
                        "CREATE VIEW bench_plain.{t} AS SELECT * FROM public.{t} WHERE workspace_id = {ws}"
                    ).format(t=pgsql.Identifier(table), ws=pgsql.Literal(int(workspace_id)))
                )
            owner.execute("SET LOCAL search_path = bench_plain, public")
            try:
                return _timed(owner, sql, reps)
            finally:
                owner.rollback()  # FORCE comes back, the views go

        for page, sql in queries.items():
            if not sql:
                continue
            _rows, once, _server = under_rls(sql, 3)
            reps = max(min_reps, min(1000, int(0.2 / max(statistics.median(once) / 1000, 1e-5))))
            medians: dict[str, list[float]] = {"rls": [], "plain": [], "rls_server": [], "plain_server": []}
            ratios, server_ratios, rows = [], [], {}
            for r in range(rounds):
                sides = [("rls", under_rls), ("plain", plain)]
                for side, measure in sides if r % 2 == 0 else sides[::-1]:
                    rows[side], times, server = measure(sql, reps)
                    medians[side].append(statistics.median(times))
                    medians[f"{side}_server"].append(statistics.median(server))
                ratios.append(medians["rls"][-1] / medians["plain"][-1])
                server_ratios.append(medians["rls_server"][-1] / medians["plain_server"][-1])
            if rows["rls"] != rows["plain"]:
                raise BenchFailed(
                    f"{page}: its main query returns {rows['rls']} rows under RLS, {rows['plain']} without"
                )
            results.append(
                {
                    "page": page,
                    "plain_ms": statistics.median(medians["plain"]),
                    "rls_ms": statistics.median(medians["rls"]),
                    "ratio": statistics.median(ratios),
                    "plain_server_ms": statistics.median(medians["plain_server"]),
                    "rls_server_ms": statistics.median(medians["rls_server"]),
                    "server_ratio": statistics.median(server_ratios),
                    "rows": rows["rls"],
                    "reps": reps,
                    "rounds": rounds,
                }
            )
            r = results[-1]
            if explain and max(r["ratio"], r["server_ratio"]) > 1.1:
                for side, measure in (("RLS", under_rls), ("plain", plain)):
                    _rows, lines = measure(sql, 0)
                    log(f"  EXPLAIN of {page}, {side}:\n" + "\n".join(f"      {line}" for line in lines))
            log(
                f"  {page:<30} plain {r['plain_ms']:.3f} ms, RLS {r['rls_ms']:.3f} ms: {r['ratio']:.2f}; "
                f"server {r['plain_server_ms']:.3f} / {r['rls_server_ms']:.3f} ms: {r['server_ratio']:.2f} ({reps} x {rounds})"
            )
    return results


def _timed(conn, sql: str, reps: int) -> tuple:
    """(rows, round-trip ms of ``reps`` runs, server ms of a few more: planning + execution as
    EXPLAIN (ANALYZE, TIMING OFF) reports them, free of the client's and the scheduler's noise).
    ``reps`` 0: the lines of EXPLAIN (ANALYZE, BUFFERS) ``sql``."""
    if not reps:
        return 0, [row[0] for row in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()]
    rows = len(conn.execute(sql).fetchall())  # warm
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        conn.execute(sql).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    server = []
    for _ in range(max(3, min(reps, 30))):
        plan = conn.execute(f"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY, FORMAT JSON) {sql}").fetchone()[0]
        plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
        server.append(plan["Planning Time"] + plan["Execution Time"])
    return rows, times, server


# --- queue bloat -----------------------------------------------------------------------------------


def queue_bloat(db: str, workspace_id: int, churn_seconds: float) -> list[tuple[str, dict]]:
    """jobs_job before churn, after churn under a held snapshot, after prune_jobs, after VACUUM."""
    import psycopg

    from bench._benchdb import owner_dsn
    from jobs.registry import task
    from jobs.services import enqueue
    from jobs.worker import Worker
    from workspaces.rls import workspace_context

    use_database(db)

    @task(NOOP_TASK, max_attempts=1, timeout=30)
    def _noop(payload, *, job):
        return None

    def batch(n: int) -> None:
        with workspace_context(workspace_id):
            for _ in range(n):
                enqueue(NOOP_TASK, workspace=workspace_id, payload={})

    def drain() -> int:
        return Worker(tasks=[NOOP_TASK], batch=True, listen=False, prefetch=10).run()

    def state() -> dict:
        with psycopg.connect(owner_dsn(db), autocommit=True) as conn:
            size = conn.execute("SELECT pg_total_relation_size('jobs_job')").fetchone()[0]
            conn.execute("SELECT pg_stat_force_next_flush()")
            live, dead = conn.execute(
                "SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'jobs_job'"
            ).fetchone()
        batch(60)
        worker = Worker(tasks=[NOOP_TASK], batch=True, listen=False, prefetch=1)
        times = []
        for _ in range(50):
            started = time.perf_counter()
            claimed = worker.claim(1)
            times.append((time.perf_counter() - started) * 1000)
            if not claimed:
                raise BenchFailed("the claim found no job although 60 were queued")
            worker.run_job(claimed[0])
        drain()
        return {"mb": size / 2**20, "live": live, "dead": dead, "p50": statistics.median(times), "p95": _p95(times)}

    rows = [("before churn", state())]
    held = psycopg.connect(owner_dsn(db))
    held.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    held.execute("SELECT count(*) FROM workspaces_workspace").fetchone()  # the snapshot is taken and kept
    log(f"  churn for {churn_seconds:.0f} s with a snapshot held open")
    started = last = time.monotonic()
    jobs = 0
    while time.monotonic() - started < churn_seconds:
        batch(100)
        jobs += drain()
        if time.monotonic() - last > 30:
            last = time.monotonic()
            log(f"    {jobs:,} jobs churned ({jobs / (last - started):,.0f}/s)")
    rows.append((f"after {jobs:,} jobs of churn, snapshot held", state()))
    held.rollback()
    held.close()
    done = subprocess.run(
        [sys.executable, "manage.py", "prune_jobs", "--older-than", "0s"], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BenchFailed(f"prune_jobs exited {done.returncode}: {done.stderr[-2000:]}")
    log(f"  prune_jobs: {done.stdout.strip()}")
    rows.append(("after prune_jobs (snapshot released)", state()))
    with psycopg.connect(owner_dsn(db), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) jobs_job")
    rows.append(("after prune_jobs and VACUUM", state()))
    return rows


# --- the run -----------------------------------------------------------------------------------------


def _import_figures(values: list[str], default_size: int) -> dict[int, tuple[float, float | None]]:
    """``[SIZE=]SECONDS[,RSS_MB]`` each: an import's (or extraction's) time, and importer peak
    RSS, read from a log."""
    given = {}
    for value in values:
        size, _, rest = value.rpartition("=")
        seconds, _, rss = rest.partition(",")
        try:
            given[int(size.replace(",", "").replace("_", "")) if size else default_size] = (
                float(seconds),
                float(rss) if rss else None,
            )
        except ValueError:
            sys.exit(
                f"scale bench: --import-figures/--extract-figures want [SIZE=]SECONDS, e.g. 1000000=2400, not {value!r}"
            )
        if float(seconds) <= 0:
            sys.exit(f"scale bench: figures {value!r}: the seconds must be more than 0")
    return given


def main() -> None:
    if sys.argv[1:2] == ["--importer"]:  # a child of the import phase (importer_main)
        importer_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000, help="The large size (default 1,000,000).")
    parser.add_argument("--baseline", type=int, default=1_000, help="The small size (default 1,000).")
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2, help="Imports and workers at a time (default 2).")
    parser.add_argument("--samples", type=int, default=30, help="Requests per page after the warm-up.")
    parser.add_argument("--rls-rounds", type=int, default=9, help="Rounds of the RLS comparison (default 9).")
    parser.add_argument("--rls-reps", type=int, default=10, help="Least runs of a query per side and round.")
    parser.add_argument(
        "--rls-explain", action="store_true", help="Log EXPLAIN ANALYZE of both sides of a query over the goal."
    )
    parser.add_argument("--churn-seconds", type=float, default=3600, help="Queue churn (default an hour).")
    parser.add_argument("--chunk", type=int, default=CHUNK, help=f"Messages per mbox chunk (default {CHUNK:,}).")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"Comma-separated phases to run, of {', '.join(PHASES)} (default all); the tables print what is recorded.",
    )
    parser.add_argument("--resume", action="store_true", help="Skip the phases already recorded as finished.")
    parser.add_argument("--fresh", action="store_true", help="Drop the sizes' databases and records first.")
    parser.add_argument(
        "--import-figures",
        action="append",
        default=[],
        metavar="[SIZE=]SECONDS[,RSS_MB]",
        help="Record the import time of a size (default --messages) whose database an earlier run imported "
        'without a record, as read from its log ("import: … in N s"); repeatable.',
    )
    parser.add_argument(
        "--extract-figures",
        action="append",
        default=[],
        metavar="[SIZE=]SECONDS",
        help="The extraction time of the jobs an earlier run finished without a record, as read from its log "
        '("extraction: N jobs in S s"), added to what the extract phase then does; repeatable.',
    )
    parser.add_argument("--stop-after", type=int, default=0, help=argparse.SUPPRESS)  # importers stop mid-chunk
    parser.add_argument("--progress-seconds", type=float, default=30, help=argparse.SUPPRESS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="Every phase and a stop-and-resume of the import: 300 messages, 2 workspaces, chunks of 50.",
    )
    args = parser.parse_args()
    if args.smoke:
        args.messages = args.baseline = 300  # one size: every phase once
        args.workspaces, args.chunk, args.fresh, args.resume = 2, 50, True, False
        args.samples, args.rls_reps, args.rls_rounds, args.churn_seconds = 3, 2, 3, 3
        args.phases, args.progress_seconds, args.rls_explain = ",".join(PHASES), 5, True
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in args.phases if p not in PHASES]
    if unknown:
        sys.exit(f"scale bench: no phase {', '.join(unknown)}; the phases are {', '.join(PHASES)}")
    if args.workspaces < 1 or args.baseline < args.workspaces or args.messages < args.baseline:
        sys.exit("scale bench: need 1 <= --workspaces <= --baseline <= --messages")
    args.given = _import_figures(args.import_figures, args.messages)
    args.given_extract = _import_figures(args.extract_figures, args.messages)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C: progress is noted
    try:
        run(args)
    except BenchFailed as exc:
        sys.exit(f"scale bench failed: {exc}")
    except (Stopped, KeyboardInterrupt) as exc:
        sys.exit(f"scale bench stopped ({exc or 'interrupted'}); what finished is recorded: --resume goes on")


def run(args) -> None:
    import django

    django.setup()
    RUN["code"] = _code_version()
    sizes = sorted({args.baseline, args.messages})
    recs = {total: Record(f"{BENCH_DB}_{total}") for total in sizes}
    if args.fresh:
        for rec in recs.values():
            database_drop(rec.db)
            rec.remove()

    def wanted(phase: str, rec: Record) -> bool:
        if phase not in args.phases:
            return False
        if args.resume and rec.phase(phase):
            log(f"{phase} of {rec.db}: recorded ({_source(rec.phase(phase))}), skipped")
            return False
        return True

    for total in sizes:
        rec = recs[total]
        if wanted("import", rec) or (total in args.given and "import" in args.phases):
            log(f"== import, {total:,} messages")
            if args.smoke:
                smoke_stop_and_resume(args, total, rec)
            else:
                phase_import(args, total, rec, stop_after=args.stop_after, given=args.given)
        if wanted("extract", rec):
            log(f"== extract, {total:,} messages")
            phase_extract(args, total, rec, given=args.given_extract)
    large = recs[args.messages]
    if "pages" in args.phases and not (args.resume and all(r.phase("pages") for r in recs.values())):
        infos = [size_info(total, args.workspaces, recs[total]) for total in sizes]
        log(
            "== pages of the largest workspace, "
            + ", ".join(f"{i['workspace_messages']:,} of {i['messages']:,} messages" for i in infos)
            + " (sizes interleaved):"
        )
        measured = pages_measure(infos, args.samples)
        for info, pages in zip(infos, measured, strict=True):
            recs[info["messages"]].finish(
                "pages",
                {"pages": pages, "samples": args.samples, "interleaved_with": sizes, **_of(info)},
            )
    if wanted("rls", large):
        info = size_info(args.messages, args.workspaces, large)
        log("== row-level security: each page's slowest query, plain filter vs RLS")
        queries = pages_main_queries(info)
        rows = rls_overhead(
            queries, info["db"], info["workspace_id"], args.rls_rounds, args.rls_reps, explain=args.rls_explain
        )
        large.finish("rls", {"queries": rows, **_of(info)})
    if wanted("bloat", large):
        info = size_info(args.messages, args.workspaces, large)
        log("== queue table under churn")
        bloat = queue_bloat(info["db"], info["workspace_id"], args.churn_seconds)
        large.finish("bloat", {"rows": bloat, "churn_seconds": args.churn_seconds})
    tables_print(recs, sizes, args)


def _of(info: dict) -> dict:
    return {"workspace_messages": info["workspace_messages"], "workspace_threads": info["workspace_threads"]}


def smoke_stop_and_resume(args, total: int, rec: Record) -> None:
    """The import stopped in its second chunk and resumed; then, as for a database built by
    main's code, its record dropped and the figures given by hand: nothing is imported again."""
    from threads.models import Message
    from workspaces.rls import workspace_context

    try:
        phase_import(args, total, rec, stop_after=args.chunk + args.chunk // 2)
        raise BenchFailed("the import was asked to stop in its second chunk, and did not")
    except Stopped:
        pass
    part = rec.progress("import")
    if not part.get("segments") or rec.phase("import"):
        raise BenchFailed("the stopped import left no progress note, or was recorded as finished")
    phase_import(args, total, rec)
    done = rec.phase("import")
    if not done or done["duplicate"] == 0 or done["runs"] != 2:
        raise BenchFailed(
            f"the resumed import found no duplicates in the cut chunk, or did not record two runs: {done}"
        )
    for i, ws in enumerate(workspace_ids_of(args.workspaces)):
        with workspace_context(ws):
            ids = list(Message.objects.values_list("message_id", flat=True))
        expected = message_ids_generated(i, workspace_counts(total, args.workspaces)[i])
        if len(ids) != len(set(ids)) or set(ids) != expected:
            raise BenchFailed(
                f"workspace {i}: {len(ids)} stored, {len(set(ids))} distinct, {len(expected)} generated, "
                f"{len(expected - set(ids))} missing: not every message stored exactly once"
            )
    log(f"  stop and resume: every one of {total:,} messages stored exactly once; {done['duplicate']} found duplicates")
    rec.drop("import")  # as a database built by main's code: imported, nothing recorded
    phase_import(args, total, rec, given={total: (done["seconds"], None)})
    again = rec.phase("import")
    if not again or again.get("source") != "given (--import-figures)":
        raise BenchFailed(f"an imported database without a record did not take the given figures: {again}")


def tables_print(recs: dict, sizes: list[int], args) -> None:
    small, large = args.baseline, args.messages
    s, L = _k(small), _k(large)
    print()
    print(
        "size      | messages  | threads  | import s | msg/s  | importer RSS MB: 1st chunk, end, workers | jobs     | extract s | review items"
    )
    print(
        "----------|-----------|----------|----------|--------|------------------------------------------|----------|-----------|-------------"
    )
    for total in sizes:
        imp, ext = recs[total].phase("import") or {}, recs[total].phase("extract") or {}
        rss = imp.get("rss") or {}
        memory = ", ".join(
            f"{rss[k]:,.0f}" if rss.get(k) else "?"
            for k in ("self_peak_mb_first_chunk", "self_peak_mb", "workers_peak_mb")
        )
        jobs = (
            f"{ext['jobs']:,}" + (f" (+{ext['jobs_before_record']:,})" if ext.get("jobs_before_record") else "")
            if ext
            else "?"
        )
        print(
            f"{_k(total):<9} | {total:>9,} | {_n(imp.get('threads') or ext.get('threads'))} | {_f(imp.get('seconds'), 8)} | "
            f"{_f(imp.get('msg_per_s'), 6)} | {memory:<40} | {jobs:>8} | {_f(ext.get('seconds'), 9)} | {_n(ext.get('items'), 11)}"
        )
    for total in sizes:
        for phase in ("import", "extract"):
            rec = recs[total].phase(phase)
            extra = f"; {rec['source']}" if rec and rec.get("source", "measured") != "measured" else ""
            if rec and rec.get("jobs_before_record"):
                extra += "; (+N): jobs finished before the phase was recorded, their time not counted"
            print(f"  {phase} at {_k(total)}: {_source(rec)}{extra}")
    pages = {total: (recs[total].phase("pages") or {}) for total in sizes}
    if all(pages.values()):
        print()
        print(
            f"{'page':<24} | {'queries':>7} | {'rows ' + s + '/' + L:>11} | {'p50 ' + s:>9} | {'p95 ' + s:>9} "
            f"| {'p50 ' + L:>9} | {'p95 ' + L:>9} | p95 {L}/{s} (goal <= 1.5)"
        )
        print("-" * 25 + "|---------|-------------" + "|-----------" * 4 + "|-------------------------")
        for page, big in pages[large]["pages"].items():
            little = pages[small]["pages"].get(page)
            if not little:
                print(
                    f"{page:<24} | {big['queries']:>7} | {'?':>11} | {'?':>9} | {'?':>9} | {big['p50']:>9.1f} "
                    f"| {big['p95']:>9.1f} | ?"
                )
                continue
            rows = f"{little.get('rows', '?')}/{big.get('rows', '?')}"
            print(
                f"{page:<24} | {big['queries']:>7} | {rows:>11} | {little['p50']:>9.1f} | {little['p95']:>9.1f} "
                f"| {big['p50']:>9.1f} | {big['p95']:>9.1f} | {big['p95'] / little['p95']:>6.2f}"
            )
        runs = {pages[t]["run"] for t in sizes}
        together = "measured together, interleaved" if len(runs) == 1 else "NOT measured in one run"
        print(f"  pages: {_source(pages[large])} ({together})")
    else:
        print(f"\npages: not measured at {' and '.join(_k(t) for t in sizes if not pages[t])} (--phases pages)")
    rls = recs[large].phase("rls")
    print()
    if rls:
        print(
            f"main query of the page at {L:<10}| rows  | plain ms | RLS ms | RLS / plain (goal <= 1.1) "
            "| server: plain ms | RLS ms | RLS / plain"
        )
        print(
            "-------------------------------------|-------|----------|--------|---------------------------"
            "|------------------|--------|------------"
        )
        for q in rls["queries"]:
            server = (
                f"{q['plain_server_ms']:>16.3f} | {q['rls_server_ms']:>6.3f} | {q['server_ratio']:>6.2f}"
                if "server_ratio" in q
                else f"{'?':>16} | {'?':>6} | ?"
            )
            print(
                f"{q['page']:<37}| {q['rows']:>5} | {q['plain_ms']:>8.3f} | {q['rls_ms']:>6.3f} | {q['ratio']:>25.2f} "
                f"| {server}"
            )
        print(
            f"  RLS: {_source(rls)}; medians of {rls['queries'][0]['rounds'] if rls['queries'] else '?'} interleaved rounds"
        )
    else:
        print("RLS overhead: not measured (--phases rls)")
    bloat = recs[large].phase("bloat")
    print()
    if bloat:
        print(
            "jobs_job                                      | size MB | live rows | dead rows | claim p50 ms | claim p95 ms"
        )
        print(
            "----------------------------------------------|---------|-----------|-----------|--------------|-------------"
        )
        for label, r in bloat["rows"]:
            print(
                f"{label:<46}| {r['mb']:>7.1f} | {r['live']:>9,} | {r['dead']:>9,} | {r['p50']:>12.2f} | {r['p95']:>11.2f}"
            )
        print(f"  bloat: {_source(bloat)}")
    else:
        print("queue bloat: not measured (--phases bloat)")


def _f(value, width: int) -> str:
    return f"{value:>{width},.0f}" if isinstance(value, int | float) and value == value else f"{'?':>{width}}"


def _n(value, width: int = 8) -> str:
    return f"{value:>{width},}" if isinstance(value, int) else f"{'?':>{width}}"


def _k(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


if __name__ == "__main__":
    main()
