"""Scale bench: the console's pages at 1,000 and at 1,000,000 messages, RLS overhead, queue bloat.

    .venv/bin/python bench/scale.py [--messages 1000000] [--baseline 1000] [--workspaces 50]
                                    [--processes 2] [--churn-seconds 3600] [--smoke]

For each size (``--baseline``, then ``--messages``) in its own database
(``threadline_bench_scale``, dropped and created on the server the settings point at):

1. **Mail**: ``--workspaces`` workspaces, a few very large ones holding half of the mail
   (25%, 15%, 10%; the rest share the other half). Each gets mbox files streamed to a
   temporary folder in chunks (threads of 1-30 messages, most short; replies quote the
   message before; customers of many companies and the workspace's own reps write; budget,
   authority, need and timeline sentences for the extractor) and imported through the real
   path, ``manage.py ingest``, ``--processes`` workspaces at a time, largest first. Deals
   (about one per three companies) are saved first through ``deals.services.deals_save``,
   as a CRM sync would, so linking has something to find. Every message must be stored.
2. **Extraction**: ``--processes`` real ``manage.py runworker --batch`` processes drain the
   queue (``extract_thread`` and everything it leads to: linking, deal facts, readiness,
   the dry-run CRM sync), again until nothing is due.
3. **Pages**: server time in-process (Django's test client: middleware, queries,
   templates, no network) as a signed-in reviewer of the largest workspace, ``--samples``
   requests each after a warm-up, p50 and p95: the review queue, a review item, the threads
   list, a thread search (a company's name), a thread search that matches nothing (the
   worst case: every row looked at), the deal list and the dashboard. Goal: p95 at the
   large size at most 1.5 x p95 at the baseline.

At the large size only:

4. **Row-level security**: each page's slowest query (as captured from the page) is run
   ``--rls-reps`` times as the app role under RLS with the workspace set, and as the owner
   with RLS not forced and every tenant table replaced, through ``search_path``, by a view
   holding the same workspace filter as a plain ``WHERE workspace_id = …`` (so the query text
   and its rows are the same). Ratio RLS / plain; goal at most 1.1.
5. **Queue bloat**: ``jobs_job`` size, dead rows and the claim's time before, then after
   ``--churn-seconds`` of enqueue + claim + finish as fast as one process goes while another
   connection holds a snapshot open (so VACUUM can remove nothing), then after
   ``manage.py prune_jobs --older-than 0s`` with the snapshot released, then after VACUUM.

Full size takes long: generation is cheap, the import runs at the speed of ``ingest`` and
the extraction at that of the workers. ``--smoke`` (300 messages as both sizes, 2
workspaces, 3 samples, 3 s of churn; about a minute) runs every phase once and exits with status 1 when
something is wrong: a message not stored, a page not answering 200, no review item, a query
whose rows differ with and without RLS. Never run by the test suite; CI runs the smoke.
"""

from __future__ import annotations

import argparse
import os
import random
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DATABASE_NAME"] = os.environ.get("DATABASE_NAME", BENCH_DB) if "--importer" in sys.argv else BENCH_DB
os.environ.setdefault("LOG_LEVEL", "WARNING")

CHUNK = 20_000  # messages per mbox file: the disk holds a few chunks at a time, never the whole mail
LARGE_SHARES = (0.25, 0.15, 0.10)
NOOP_TASK = "bench.scale_noop"
STARTED = time.monotonic()


def log(line: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {line}", flush=True)


class BenchFailed(Exception):
    """Something the smoke must catch: the bench exits with status 1 naming it."""


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


def importer_main(folder: str, assignments: list[str]) -> None:
    """One importer process (``--importer``): for each ``ws:slug:count``, the mail is generated
    chunk by chunk and each chunk imported by the ``ingest`` command (run in this process, so
    Django starts once per process, not once per chunk). One line per chunk on stdout."""
    import io

    import django
    from django.core.management import call_command

    django.setup()
    for assignment in assignments:
        ws, slug, count = assignment.split(":")
        ws, count = int(ws), int(count)
        entries = mail_generate(ws, count, seed=1000 + ws)
        chunk, read = 0, 0
        while read < count:
            chunk += 1
            path = Path(folder) / f"{slug}-{chunk}.mbox"
            n = 0
            with open(path, "w", encoding="utf-8") as out:
                for entry in entries:
                    out.write(entry)
                    n += 1
                    if n >= CHUNK:
                        break
            summary = io.StringIO()
            started = time.monotonic()
            call_command("ingest", str(path), workspace=slug, no_progress=True, stdout=summary)
            path.unlink()
            read += n
            text = summary.getvalue()
            print(
                f"chunk {slug} {n} {_summary_number(text, 'new')} {_summary_number(text, 'failed')} "
                f"{time.monotonic() - started:.2f}",
                flush=True,
            )


def _summary_number(stdout: str, word: str) -> int:
    """A count from ingest's summary line ("read N messages …: new N, duplicate N, …, failed N")."""
    import re

    match = re.search(rf"\b{word} (\d+)", stdout)
    return int(match[1]) if match else 0


# --- one size ----------------------------------------------------------------------------------


def use_database(db: str) -> None:
    """Point this process (and the processes it starts) at bench database ``db``."""
    from django.db import connections

    os.environ["DATABASE_NAME"] = db
    connections.close_all()
    connections["default"].settings_dict["NAME"] = db


def reused(total: int, workspaces: int) -> dict | None:
    """What the measurements need of a size's database left by an earlier run (``--reuse``),
    or None when there is none to reuse. Import and extraction figures are not known again."""
    import psycopg
    from django.contrib.auth import get_user_model

    from bench._benchdb import owner_dsn
    from workspaces.models import Workspace

    db = f"{BENCH_DB}_{total}"
    with psycopg.connect(owner_dsn("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone():
            return None
    use_database(db)
    workspace = Workspace.objects.filter(slug="scale-00").first()
    reviewer = get_user_model().objects.filter(username="scale-reviewer").first()
    if workspace is None or reviewer is None or Workspace.objects.count() != workspaces:
        return None
    ids = list(Workspace.objects.order_by("pk").values_list("pk", flat=True))
    log(f"reusing {db} (import and extraction figures are those of the run that built it)")
    return {
        "db": db,
        "messages": total,
        "threads": _count_all(ids, "threads", "Thread"),
        "slug": workspace.slug,
        "workspace_id": workspace.pk,
        "import_seconds": float("nan"),
        "extract_seconds": float("nan"),
        "jobs": _count_all(ids, "jobs", "Job", status__in=["succeeded", "failed"]),
        "items": _count_all(ids, "review", "ReviewItem"),
        "reviewer": reviewer,
        "workspace_messages": _count_all([workspace.pk], "threads", "Message"),
    }


def populate(total: int, workspaces: int, processes: int) -> dict:
    """Workspaces, deals, mail, extraction in a database of their own; returns what the measurements need."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from bench._benchdb import database_recreate
    from deals.services import deals_save
    from workspaces.services import membership_add, workspace_create

    db = f"{BENCH_DB}_{total}"
    connections.close_all()  # the owner may not end the app role's sessions that DROP DATABASE ends
    use_database(db)
    database_recreate(db)
    counts = workspace_counts(total, workspaces)
    slugs = [f"scale-{i:02d}" for i in range(workspaces)]
    workspace_ids = []
    deal_total = 0
    for i, slug in enumerate(slugs):
        ws = workspace_create(slug=slug, name=f"Scale {i}", internal_domains=[internal_domain(i)])
        workspace_ids.append(ws.pk)
        deals = []
        for k in range(0, company_count(counts[i]), 3):
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
        deal_total += len(deals)
    reviewer = get_user_model().objects.create_user(username="scale-reviewer", password=None)
    from workspaces.models import Workspace

    membership_add(workspace=Workspace.objects.get(slug=slugs[0]), user=reviewer, role="reviewer")
    log(f"{workspaces} workspaces, {deal_total} deals; importing {total:,} messages, {processes} at a time")

    # Largest first, each to the importer with the least mail so far (greedy balance).
    loads: list[list] = [[0, []] for _ in range(processes)]
    for i in sorted(range(workspaces), key=lambda i: -counts[i]):
        lightest = min(loads, key=lambda load: load[0])
        lightest[0] += counts[i]
        lightest[1].append(f"{i}:{slugs[i]}:{counts[i]}")
    lock = threading.Lock()
    done = {"n": 0, "new": 0, "failed": 0, "last": time.monotonic()}
    started = time.monotonic()

    def follow(proc) -> None:
        for line in proc.stdout:
            parts = line.split()
            if len(parts) != 6 or parts[0] != "chunk":
                continue
            with lock:
                done["n"] += int(parts[2])
                done["new"] += int(parts[3])
                done["failed"] += int(parts[4])
                if time.monotonic() - done["last"] > 10 or done["n"] == total:
                    done["last"] = time.monotonic()
                    rate = done["n"] / (time.monotonic() - started)
                    log(f"  imported {done['n']:,} / {total:,} messages ({rate:,.0f}/s; last chunk of {parts[1]})")

    with tempfile.TemporaryDirectory(prefix="threadline-scale-") as tmp:
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--importer", tmp, *load[1]],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for load in loads
            if load[1]
        ]
        followers = [threading.Thread(target=follow, args=(p,), daemon=True) for p in procs]
        for t in followers:
            t.start()
        for p, t in zip(procs, followers, strict=True):
            err = p.stderr.read()
            p.wait()
            t.join()
            if p.returncode != 0:
                raise BenchFailed(f"an importer exited {p.returncode}: {err[-3000:]}")
    import_seconds = time.monotonic() - started
    new, failed = done["new"], done["failed"]
    stored = _count_all(workspace_ids, "threads", "Message")
    threads = _count_all(workspace_ids, "threads", "Thread")
    log(
        f"import: {total:,} messages in {import_seconds:.0f} s ({total / import_seconds:,.0f}/s): "
        f"new {new:,}, failed {failed:,}, stored {stored:,}, {threads:,} threads"
    )
    if stored != total:
        raise BenchFailed(f"{total - stored} of {total} generated messages were not stored")

    started = time.monotonic()
    jobs = extract(workspace_ids, processes)
    extract_seconds = time.monotonic() - started
    items = _count_all(workspace_ids, "review", "ReviewItem")
    links = _count_all(workspace_ids, "deals", "ThreadLink")
    log(f"extraction: {jobs:,} jobs in {extract_seconds:.0f} s; {items:,} review items, {links:,} thread links")

    from bench._benchdb import vacuum

    vacuum(db)
    return {
        "db": db,
        "messages": total,
        "threads": threads,
        "slug": slugs[0],
        "workspace_id": workspace_ids[0],
        "import_seconds": import_seconds,
        "extract_seconds": extract_seconds,
        "jobs": jobs,
        "items": items,
        "reviewer": reviewer,
        "workspace_messages": counts[0],
    }


def _count_all(workspace_ids: list[int], app: str, model: str, **filters) -> int:
    from django.apps import apps

    from workspaces.rls import workspace_context

    cls = apps.get_model(app, model)
    total = 0
    for ws in workspace_ids:
        with workspace_context(ws):
            total += cls.objects.filter(**filters).count()
    return total


def _jobs_due(workspace_ids: list[int]) -> int:
    from django.db.models import Q
    from django.utils import timezone

    now = timezone.now()
    due = Q(status="queued", run_after__lte=now) | Q(status="running")
    from jobs.models import Job
    from workspaces.rls import workspace_context

    total = 0
    for ws in workspace_ids:
        with workspace_context(ws):
            total += Job.objects.filter(due).count()
    return total


def extract(workspace_ids: list[int], processes: int) -> int:
    """Real ``runworker --batch`` processes until no job is due; returns the jobs that finished."""
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    finished_before = _count_all(workspace_ids, "jobs", "Job", status__in=["succeeded", "failed"])
    rounds = 0
    while _jobs_due(workspace_ids) and rounds < 20:
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
            for n in range(processes)
        ]
        last = time.monotonic()
        while any(w.poll() is None for w in workers):
            time.sleep(0.2)
            if time.monotonic() - last > 15 and any(w.poll() is None for w in workers):
                last = time.monotonic()
                log(f"  extracting: {_jobs_due(workspace_ids):,} jobs due or running")
        for w in workers:
            err = w.stderr.read()
            if w.returncode != 0:
                raise BenchFailed(f"runworker exited {w.returncode}: {err[-2000:]}")
    failed = _count_all(workspace_ids, "jobs", "Job", status="failed")
    if failed:
        log(f"  note: {failed} jobs failed for good (see the jobs page of the bench database)")
    return _count_all(workspace_ids, "jobs", "Job", status__in=["succeeded", "failed"]) - finished_before


# --- pages ------------------------------------------------------------------------------------

SKIP_MAIN = ("set_config", "django_session", "auth_user", "workspaces_membership", "SAVEPOINT", "RELEASE")


def pages_measure(infos: list[dict], samples: int) -> list[dict]:
    """p50, p95 (ms), query count and the slowest query of each page, for each size.

    The sizes are measured interleaved (a request at one size, then at the next) so that a
    change in the machine's load, shared with other work, weighs on every size alike."""
    from django.test import Client

    from review.models import ReviewItem
    from workspaces.rls import workspace_context

    name, _domain = company(0, 3)
    urls, clients = [], []
    for info in infos:
        use_database(info["db"])
        slug = info["slug"]
        with workspace_context(info["workspace_id"]):
            ids = list(ReviewItem.objects.filter(status="open").order_by("created_at").values_list("pk", flat=True))
        if not ids:
            raise BenchFailed(f"{info['db']}: {slug} has no open review item after extraction: no item page to measure")
        urls.append(
            {
                "review queue": f"/w/{slug}/review/",
                "review item": f"/w/{slug}/review/items/{ids[len(ids) // 2]}/",
                "threads list": f"/w/{slug}/threads/",
                "thread search": f"/w/{slug}/threads/?q={name}",
                "thread search, no match": f"/w/{slug}/threads/?q=no-such-company",
                "deal list": f"/w/{slug}/deals/",
                "dashboard": f"/w/{slug}/review/dashboard/",
            }
        )
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(info["reviewer"])
        clients.append(client)
    out: list[dict] = [{} for _ in infos]
    for page in urls[0]:
        times: list[list[float]] = [[] for _ in infos]
        for n, info in enumerate(infos):
            use_database(info["db"])
            for _ in range(2):
                _get(clients[n], urls[n][page])
            captured: list[tuple[float, str]] = []
            from django.db import connection

            with connection.execute_wrapper(_capture(captured)):
                _get(clients[n], urls[n][page])
            queries = [
                (t, q)
                for t, q in captured
                if q.lstrip().upper().startswith(("SELECT", "WITH")) and not any(s in q for s in SKIP_MAIN)
            ]
            out[n][page] = {"queries": len(captured), "main": max(queries)[1] if queries else ""}
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
            + f"  ({out[-1][page]['queries']} queries)"
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


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(len(ordered) * 0.95) - 1))]


# --- row-level security --------------------------------------------------------------------------


def rls_overhead(pages: dict, db: str, workspace_id: int, reps: int) -> list[tuple[str, float, float, int]]:
    """(page, plain ms, RLS ms, rows) per page's main query: median of ``reps`` runs, three rounds."""
    import psycopg
    from psycopg import sql as pgsql

    from bench._benchdb import app_dsn, owner_dsn

    results = []
    with psycopg.connect(app_dsn(db)) as app, psycopg.connect(owner_dsn(db)) as owner:
        tenant_tables = [
            r[0]
            for r in owner.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity AND EXISTS "
                "(SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id')"
            ).fetchall()
        ]
        owner.rollback()
        for page, row in pages.items():
            sql = row["main"]
            if not sql:
                continue
            rls, plain, rows_rls, rows_plain = [], [], 0, 0
            for _ in range(3):
                app.execute("SELECT set_config('app.workspace_id', %s, true)", [str(workspace_id)])
                rows_rls, times = _timed(app, sql, reps)
                rls += times
                app.rollback()
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
                rows_plain, times = _timed(owner, sql, reps)
                plain += times
                owner.rollback()  # FORCE comes back, the views go
            if rows_rls != rows_plain:
                raise BenchFailed(f"{page}: its main query returns {rows_rls} rows under RLS, {rows_plain} without")
            results.append((page, statistics.median(plain), statistics.median(rls), rows_rls))
    return results


def _timed(conn, sql: str, reps: int) -> tuple[int, list[float]]:
    rows = len(conn.execute(sql).fetchall())  # warm
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        conn.execute(sql).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return rows, times


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


def main() -> None:
    if sys.argv[1:2] == ["--importer"]:  # a child of the import phase (importer_main)
        importer_main(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000, help="The large size (default 1,000,000).")
    parser.add_argument("--baseline", type=int, default=1_000, help="The small size (default 1,000).")
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2, help="Imports and workers at a time (default 2).")
    parser.add_argument("--samples", type=int, default=30, help="Requests per page after the warm-up.")
    parser.add_argument("--rls-reps", type=int, default=10, help="Runs of each query per round (three rounds).")
    parser.add_argument("--churn-seconds", type=float, default=3600, help="Queue churn (default an hour).")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Measure the databases an earlier run of these sizes left (after a change to the pages), no import.",
    )
    parser.add_argument("--smoke", action="store_true", help="Every phase once: 300 messages, 2 workspaces.")
    args = parser.parse_args()
    if args.smoke:
        args.messages = args.baseline = 300  # one size: every phase once
        args.workspaces = 2
        args.samples, args.rls_reps, args.churn_seconds = 3, 2, 3
    if args.workspaces < 1 or args.baseline < args.workspaces or args.messages < args.baseline:
        sys.exit("scale bench: need 1 <= --workspaces <= --baseline <= --messages")
    try:
        run(args)
    except BenchFailed as exc:
        sys.exit(f"scale bench failed: {exc}")


def run(args) -> None:
    import django

    django.setup()
    infos = []
    for total in sorted({args.baseline, args.messages}):
        log(f"== {total:,} messages")
        info = reused(total, args.workspaces) if args.reuse else None
        infos.append(info or populate(total, args.workspaces, args.processes))
    log(
        "pages of the largest workspace, "
        + ", ".join(f"{i['workspace_messages']:,} of {i['messages']:,} messages" for i in infos)
        + " (sizes interleaved):"
    )
    measured = pages_measure(infos, args.samples)
    sizes = {i["messages"]: (i, m) for i, m in zip(infos, measured, strict=True)}
    small, large = args.baseline, args.messages
    info = sizes[large][0]
    log("row-level security: each page's slowest query, plain filter vs RLS")
    rls = rls_overhead(sizes[large][1], info["db"], info["workspace_id"], args.rls_reps)
    log("queue table under churn")
    bloat = queue_bloat(info["db"], info["workspace_id"], args.churn_seconds)

    print()
    print("size      | messages  | threads  | import s | msg/s  | jobs     | extract s | review items")
    print("----------|-----------|----------|----------|--------|----------|-----------|-------------")
    for total, (i, _pages) in sizes.items():
        print(
            f"{_k(total):<9} | {i['messages']:>9,} | {i['threads']:>8,} | {i['import_seconds']:>8.0f} | "
            f"{i['messages'] / i['import_seconds']:>6.0f} | {i['jobs']:>8,} | {i['extract_seconds']:>9.0f} | "
            f"{i['items']:>11,}"
        )
    s, L = _k(small), _k(large)
    print()
    print(
        f"{'page':<24} | {'queries':>7} | {'p50 ' + s:>9} | {'p95 ' + s:>9} | {'p50 ' + L:>9} | {'p95 ' + L:>9} "
        f"| p95 {L}/{s} (goal <= 1.5)"
    )
    print("-" * 25 + "|---------" + "|-----------" * 4 + "|-------------------------")
    for page, big in sizes[large][1].items():
        little = sizes[small][1][page]
        print(
            f"{page:<24} | {big['queries']:>7} | {little['p50']:>9.1f} | {little['p95']:>9.1f} | {big['p50']:>9.1f} | "
            f"{big['p95']:>9.1f} | {big['p95'] / little['p95']:>6.2f}"
        )
    print()
    print(f"main query of the page at {L:<10}| rows  | plain ms | RLS ms | RLS / plain (goal <= 1.1)")
    print("-------------------------------------|-------|----------|--------|--------------------------")
    for page, plain, under, rows in rls:
        print(f"{page:<37}| {rows:>5} | {plain:>8.2f} | {under:>6.2f} | {under / plain:>6.2f}")
    print()
    print(
        "jobs_job                                      | size MB | live rows | dead rows | claim p50 ms | claim p95 ms"
    )
    print(
        "----------------------------------------------|---------|-----------|-----------|--------------|-------------"
    )
    for label, r in bloat:
        print(
            f"{label:<46}| {r['mb']:>7.1f} | {r['live']:>9,} | {r['dead']:>9,} | {r['p50']:>12.2f} | {r['p95']:>11.2f}"
        )


def _k(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


if __name__ == "__main__":
    main()
