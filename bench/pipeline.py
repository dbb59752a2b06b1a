"""Pipeline bench: how fast real workers take imported threads through the whole flow.

    .venv/bin/python bench/pipeline.py [--threads 2000] [--workspaces 4] [--processes 2]
                                       [--compare] [--smoke]

1. **Mail**: ``--workspaces`` workspaces, each with deals saved first (``deals_save``, as a CRM
   sync would: about one per three customer companies) and mail of realistic shape (the
   scale bench's generator: threads of 1-30 messages, replies quoting, budget, authority,
   need and timeline sentences) imported through the real path (``manage.py ingest``), in a
   database of its own (``threadline_bench_pipeline``). ``--threads`` in all.
2. **Drain**: a copy of that database (``CREATE DATABASE ... TEMPLATE``) is drained by
   ``--processes`` real ``manage.py runworker --batch`` processes until nothing is due:
   extraction, linking, deal facts, readiness and the dry-run CRM sync. Printed: threads/s
   and jobs/s of the pipeline, end to end (first worker started to last one done).
   With ``--compare`` (and in the smoke) a second copy is drained with batching off
   (``JOBS_BATCH_MAX=1``: every job alone, as before batching), and the two results must be
   the same (values, links, facts, readiness, CRM writes, review items).
3. **Reference**, in the same run: the rules extractor alone, in this process, over the same
   threads' messages (read beforehand), in threads/s; the ratio pipeline / extractor says
   how much of the extractor's own speed the whole pipeline keeps.

Checks (always; the smoke exits 1 when one fails): every job succeeded, none is left due;
every thread has a succeeded extraction run; every thread with accepted values has its CRM
dry-run writes; every deal that a thread with accepted values is linked to has facts and a
readiness row per framework of the policy; the linking outcome of every thread is what
``thread_link_plan`` decides for it now.

``--smoke``: 40 threads in 2 workspaces, both modes; seconds. Checks correctness, not speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# This folder holds queue.py, which would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "threadline_bench_pipeline"  # the imported state; each drain runs in a copy of it
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench import scale  # noqa: E402  (the generator; importing it points DATABASE_NAME at its database)

os.environ["DATABASE_NAME"] = BENCH_DB  # so point it back at ours, before Django starts


class BenchFailed(Exception):
    pass


def log(line: str) -> None:
    print(line, flush=True)


def mail_for(ws: int, threads: int) -> list[str]:
    """The generator's first ``threads`` threads of workspace ``ws`` (mbox entries)."""
    entries, first_of_thread = [], 0
    for entry in scale.mail_generate(ws, threads * 40, seed=2000 + ws):
        if "\nIn-Reply-To:" not in entry:
            first_of_thread += 1
            if first_of_thread > threads:
                break
        entries.append(entry)
    return entries


def use_database(db: str) -> None:
    from django.db import connections

    os.environ["DATABASE_NAME"] = db
    connections.close_all()
    connections["default"].settings_dict["NAME"] = db


def populate(threads: int, workspaces: int) -> list[int]:
    """The imported state, in BENCH_DB: workspaces, deals, mail; returns the workspace ids."""
    from django.core.management import call_command

    from bench._benchdb import database_recreate
    from deals.services import deals_save
    from workspaces.services import workspace_create

    use_database(BENCH_DB)
    from django.db import connections

    connections.close_all()
    database_recreate(BENCH_DB)
    per = [threads // workspaces + (1 if i < threads % workspaces else 0) for i in range(workspaces)]
    ids, mail = [], []
    for i, count in enumerate(per):
        ws = workspace_create(slug=f"pipe-{i:02d}", name=f"Pipeline {i}", internal_domains=[scale.internal_domain(i)])
        ids.append(ws.pk)
        entries = mail_for(i, count)
        mail.append((ws.slug, entries))
        deals = []
        for k in range(0, scale.company_count(len(entries)), 3):
            name, domain = scale.company(i, k)
            deals.append(
                {
                    "crm_deal_id": f"d{k}",
                    "title": f"{name} rollout",
                    "stage": "qualifiedtobuy",
                    "primary_domain": domain,
                    "contact_emails": [f"{scale.FIRST[k % len(scale.FIRST)]}.0@{domain}"],
                    "owner_email": f"rep{k % 12}@{scale.internal_domain(i)}",
                    "crm_updated_at": datetime(2025, 6, 1, tzinfo=UTC),
                }
            )
        deals_save(workspace_id=ws.pk, crm="csv", deals=deals)
    # The deals' relink jobs find no thread yet: run them before the mail arrives, so that the
    # drain measures the pipeline after import only.
    _drain(BENCH_DB, 1, batch_max=None, tasks="relink_deals")
    use_database(BENCH_DB)
    with tempfile.TemporaryDirectory(prefix="threadline-pipeline-") as tmp:
        for slug, entries in mail:
            path = Path(tmp) / f"{slug}.mbox"
            path.write_text("".join(entries), encoding="utf-8")
            with open(os.devnull, "w") as quiet:
                call_command("ingest", str(path), workspace=slug, no_progress=True, stdout=quiet)
    return ids


def clone(source: str, target: str) -> None:
    import psycopg
    from django.db import connections

    from bench._benchdb import owner_dsn

    connections.close_all()
    with psycopg.connect(owner_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')


def _count(db: str, workspace_ids: list[int], model, *conditions, **filters) -> int:
    from workspaces.rls import workspace_context

    use_database(db)
    total = 0
    for ws in workspace_ids:
        with workspace_context(ws):
            total += model.objects.filter(*conditions, **filters).count()
    return total


def _due(db: str, workspace_ids: list[int]) -> int:
    from django.db.models import Q
    from django.utils import timezone

    from jobs.models import Job

    return _count(db, workspace_ids, Job, Q(status="queued", run_after__lte=timezone.now()) | Q(status="running"))


def _drain(db: str, processes: int, *, batch_max: int | None, tasks: str | None = None, workspace_ids=None) -> float:
    """Real ``runworker --batch`` processes, round after round until no job is due; seconds taken."""
    env = {**os.environ, "LOG_LEVEL": "WARNING", "DATABASE_NAME": db}
    if batch_max is not None:
        env["JOBS_BATCH_MAX"] = str(batch_max)
    started = time.monotonic()
    for rounds in range(1, 21):
        command = [sys.executable, "manage.py", "runworker", "--batch"]
        if tasks:
            command += ["--tasks", tasks]
        workers = [
            subprocess.Popen(
                [*command, "--worker-id", f"pipe-{rounds}-{n}"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(processes)
        ]
        for w in workers:
            err = w.stderr.read()
            w.wait()
            if w.returncode != 0:
                raise BenchFailed(f"runworker exited {w.returncode}: {err[-2000:]}")
        if workspace_ids is None or not _due(db, workspace_ids):
            break
    return time.monotonic() - started


def outcome(db: str, workspace_ids: list[int]) -> dict:
    """What the pipeline made, comparable across runs (no ids that depend on the order of work)."""
    from crm.models import CrmWriteLog
    from deals.models import AssociationCandidate, DealFact, DealReadiness, ThreadLink
    from extraction.models import ExtractionRun, FieldValue
    from jobs.models import Job
    from review.models import ReviewItem
    from workspaces.rls import workspace_context

    use_database(db)
    result: dict = {}
    for ws in workspace_ids:
        with workspace_context(ws):
            result[ws] = {
                "runs": sorted(
                    ExtractionRun.objects.values_list("thread_id", "status", "messages_seen").order_by("thread_id")
                ),
                "values": sorted(
                    (t, k, repr(v), s, g)
                    for t, k, v, s, g in FieldValue.objects.values_list(
                        "thread_id", "field_key", "field_value_json", "status", "grounded"
                    )
                ),
                "links": sorted(ThreadLink.objects.values_list("thread_id", "deal_id", "link_confidence")),
                "candidates": sorted(AssociationCandidate.objects.values_list("thread_id", "status")),
                "facts": sorted(
                    (d, k, repr(v), s)
                    for d, k, v, s in DealFact.objects.values_list("deal_id", "key", "value_json", "status")
                ),
                "readiness": sorted(DealReadiness.objects.values_list("deal_id", "framework", "readiness_score")),
                # A note's timestamp is its newest value's creation time, which differs between
                # two drains of the same mail: the payloads are compared without it.
                "crm": sorted(
                    (t, a, g, s, json.dumps({k: v for k, v in p.items() if k != "timestamp"}, sort_keys=True))
                    for t, a, g, s, p in CrmWriteLog.objects.values_list(
                        "thread_id", "action", "target", "status", "payload_json"
                    )
                ),
                # The audit sample is a draw keyed by the value's id, which depends on the order
                # of work: left out of the comparison.
                "review": sorted(
                    ReviewItem.objects.exclude(reason="audit_sample").values_list("reason", "status", "thread_id")
                ),
                "jobs": sorted(Job.objects.values_list("task", "status").distinct()),
                "job_count": Job.objects.filter(status="succeeded").count(),
            }
    return result


def check(db: str, workspace_ids: list[int]) -> list[str]:
    """What must hold after a drain; the problems found, named."""
    from crm.models import CrmWriteLog
    from deals.models import AssociationCandidate, DealFact, DealReadiness, ThreadLink
    from deals.services import thread_link_plan
    from extraction.models import ExtractionRun, FieldValue
    from jobs.models import Job
    from threads.models import Thread
    from workspaces.rls import workspace_context
    from workspaces.selectors import policy_for

    use_database(db)
    problems = []
    for ws in workspace_ids:
        with workspace_context(ws):
            policy = policy_for(workspace_id=ws)
            not_ok = Job.objects.exclude(status="succeeded").values_list("task", "status", "last_error")[:5]
            for task, status, error in not_ok:
                problems.append(f"workspace {ws}: a {task} job is {status}: {error[:300]}")
            threads = list(Thread.objects.order_by("pk"))
            extracted = set(ExtractionRun.objects.filter(status="succeeded").values_list("thread_id", flat=True))
            accepted = set(FieldValue.objects.filter(status="accepted").values_list("thread_id", flat=True))
            written = set(CrmWriteLog.objects.filter(status="dry_run").values_list("thread_id", flat=True))
            links = dict(ThreadLink.objects.values_list("thread_id", "deal_id"))
            open_candidates = set(
                AssociationCandidate.objects.filter(status="open").values_list("thread_id", flat=True)
            )
            for thread in threads:
                if thread.pk not in extracted:
                    problems.append(f"workspace {ws}: thread {thread.pk} has no succeeded extraction run")
                if thread.pk in accepted and thread.pk not in written:
                    problems.append(f"workspace {ws}: thread {thread.pk} has accepted values but no CRM dry-run write")
                _facts, decision = thread_link_plan(thread=thread, policy=policy)
                if decision.outcome == "link" and links.get(thread.pk) != decision.best.deal_id:
                    problems.append(
                        f"workspace {ws}: thread {thread.pk} should link to deal {decision.best.deal_id}, "
                        f"is linked to {links.get(thread.pk)}"
                    )
                if decision.outcome != "link" and thread.pk in links:
                    problems.append(
                        f"workspace {ws}: thread {thread.pk} is linked though linking says {decision.outcome}"
                    )
                if decision.outcome == "review" and thread.pk not in open_candidates:
                    problems.append(f"workspace {ws}: thread {thread.pk} has no open association candidate")
            deals_with_values = {links[t] for t in accepted if t in links}
            with_facts = set(DealFact.objects.filter(status="current").values_list("deal_id", flat=True))
            frameworks = set(policy["readiness_frameworks"])
            for deal_id in sorted(deals_with_values):
                fv = FieldValue.objects.filter(
                    thread_id__in=[t for t, d in links.items() if d == deal_id],
                    status="accepted",
                    field_key__in=["budget", "authority", "need", "timeline"],
                )
                if fv.exists() and deal_id not in with_facts:
                    problems.append(f"workspace {ws}: deal {deal_id} has accepted BANT values but no facts")
                if fv.exists():
                    have = set(DealReadiness.objects.filter(deal_id=deal_id).values_list("framework", flat=True))
                    if have != frameworks:
                        problems.append(
                            f"workspace {ws}: deal {deal_id} has readiness for {sorted(have)}, not {sorted(frameworks)}"
                        )
    return problems


def reference(db: str, workspace_ids: list[int]) -> tuple[int, float]:
    """The rules extractor alone over every thread's messages (read first): threads, seconds."""
    from extraction.extractors.rules import RulesExtractor
    from extraction.schemas import schema_get
    from extraction.selectors import thread_inputs
    from threads.models import Thread
    from workspaces.rls import workspace_context
    from workspaces.selectors import policy_for

    use_database(db)
    work = []
    for ws in workspace_ids:
        with workspace_context(ws):
            schema = schema_get(policy_for(workspace_id=ws)["schema"])
            work += [(thread_inputs(thread=t), schema) for t in Thread.objects.order_by("pk")]
    extractor = RulesExtractor()
    started = time.perf_counter()
    for inputs, schema in work:
        extractor.extract(inputs, schema)
    return len(work), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2000, help="Threads in all (default 2,000).")
    parser.add_argument("--workspaces", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2, help="runworker processes (default 2).")
    parser.add_argument("--compare", action="store_true", help="Also drain with batching off; results must match.")
    parser.add_argument("--smoke", action="store_true", help="40 threads, 2 workspaces, both modes; exit 1 if wrong.")
    args = parser.parse_args()
    if args.smoke:
        args.threads, args.workspaces, args.compare = 40, 2, True
    try:
        run(args)
    except BenchFailed as exc:
        sys.exit(f"pipeline bench failed: {exc}")


def run(args) -> None:
    import django

    django.setup()
    from threads.models import Thread

    log(f"importing {args.threads:,} threads into {args.workspaces} workspaces (deals first)")
    started = time.monotonic()
    ids = populate(args.threads, args.workspaces)
    threads = _count(BENCH_DB, ids, Thread)
    log(f"  {threads:,} threads imported in {time.monotonic() - started:.0f} s")
    modes = [("batched", None)] + ([("one job at a time", 1)] if args.compare else [])
    rows, outcomes = [], {}
    for label, batch_max in modes:
        db = f"{BENCH_DB}_run"
        clone(BENCH_DB, db)
        from jobs.models import Job

        before = _count(db, ids, Job, status="succeeded")
        log(f"draining ({label}) with {args.processes} runworker processes")
        seconds = _drain(db, args.processes, batch_max=batch_max, workspace_ids=ids)
        jobs = _count(db, ids, Job, status="succeeded") - before
        problems = check(db, ids)
        if problems:
            raise BenchFailed(f"{label}: {len(problems)} problems, the first: " + "; ".join(problems[:5]))
        outcomes[label] = outcome(db, ids)
        rows.append((label, threads, jobs, seconds))
    if args.compare:
        a, b = outcomes["batched"], outcomes["one job at a time"]
        for ws in ids:
            for key in a[ws]:
                if key != "job_count" and a[ws][key] != b[ws][key]:
                    only_a = sorted(set(a[ws][key]) - set(b[ws][key]))[:3]
                    only_b = sorted(set(b[ws][key]) - set(a[ws][key]))[:3]
                    raise BenchFailed(
                        f"workspace {ws}: {key} differ between batched and one at a time: "
                        f"only batched {only_a}, only one at a time {only_b}"
                    )
        log("  batched and one-at-a-time drains made the same values, links, facts, readiness, CRM writes, items")
    ref_threads, ref_seconds = reference(BENCH_DB, ids)
    ref_rate = ref_threads / ref_seconds
    load = os.getloadavg()
    print()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        "mode               | threads | jobs   | seconds | threads/s | jobs/s | rules extractor alone threads/s | ratio"
    )
    print(
        "-------------------|---------|--------|---------|-----------|--------|---------------------------------|------"
    )
    for label, n, jobs, seconds in rows:
        print(
            f"{label:<19}| {n:>7,} | {jobs:>6,} | {seconds:>7.1f} | {n / seconds:>9.1f} | {jobs / seconds:>6.1f} | "
            f"{ref_rate:>31.1f} | {n / seconds / ref_rate:>5.3f}"
        )
    from django.db import connections

    connections.close_all()
    clone_name = f"{BENCH_DB}_run"
    import psycopg

    from bench._benchdb import owner_dsn

    with psycopg.connect(owner_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{clone_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
