"""Web throughput of the review console: a real gunicorn on loopback, concurrent HTTP clients.

    python bench/web.py [--clients 20] [--workers 2] [--threads 1] [--seconds 10] [--items 10000]
    python bench/web.py --smoke      # a few seconds: 3 clients, a small workspace, checks only

1. Creates its own database (threadline_bench_web, on the same server as the app's), migrates
   it and fills two workspaces with fixed SQL (every row carries its workspace, so row-level
   security checks it): the measured one with ``--items`` review items over threads of five
   messages each (a paragraph or two per message, the evidence spans inside them, an audit
   event per opened item, a third of the items already decided), and a second one as big
   beside it that row-level security must keep out.
2. Starts ``gunicorn config.wsgi`` (``--workers`` sync workers, or gthread with ``--threads``)
   on 127.0.0.1 at a free port, with the production settings (no DEBUG).
3. Signs ``--clients`` reviewers in through the real login form (httpx), then hands each
   one's session cookie to wrk (Debian's ``wrk``, compiled, with ``bench/web.lua``): one wrk
   thread and one keep-alive connection per reviewer, requesting one page at a time as fast
   as the server answers (closed loop), for a second of warm-up and then ``--seconds``: a
   static file (WhiteNoise: the HTTP floor), the login page (the whole middleware stack:
   session, user, transaction, workspace context; the framework floor), the review queue
   and review items (each reviewer opens its own items, which claims them). Every response
   is checked as it arrives. The load generator runs on the same cores as the server, so its
   CPU share (its CPU seconds over the wall seconds) is printed beside the figures, with the
   server's CPU per request (gunicorn's workers and their PostgreSQL backends).
4. Prints requests/s, p50 and p95 per page, and each page's p95 as a ratio to the login
   page's, measured in the same run. Goal: queue and item p95 <= 150 ms with 20 clients on
   2 workers.

``--smoke`` checks correctness only (exit status 1 on any failure): every response is a 200
and holds what the page must show (50 queue rows, the evidence highlighted on an item, the
login form), and the database holds what was populated. It never judges speed.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This folder holds queue.py, which would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "threadline_bench_web"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DATABASE_NAME"] = BENCH_DB
os.environ.setdefault("LOG_LEVEL", "WARNING")

SLUG = "bench-web"
NOISE_SLUG = "bench-web-noise"
PASSWORD = "bench-web-password-1"  # the bench's own throwaway accounts, in its own database
MESSAGES_PER_THREAD = 5
ITEMS_PER_THREAD = 5


class BenchFailure(Exception):
    """What the bench saw that is wrong (a status, a missing piece of a page)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, checks only")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn --threads (gthread above 1)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per page")
    parser.add_argument("--items", type=int, default=10_000, help="review items in the measured workspace")
    parser.add_argument("--reuse", action="store_true", help="keep the database a previous run populated")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.seconds, args.items = 3, 1.0, 500
    try:
        run(args)
    except BenchFailure as exc:
        print(f"bench/web.py FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


def run(args) -> None:
    started = time.perf_counter()
    if not args.reuse:
        from bench._benchdb import database_recreate

        database_recreate(BENCH_DB)
    import django

    django.setup()
    if args.reuse:
        reviewers, item_ids = _populated(clients=args.clients)
    else:
        reviewers, item_ids = _populate(items=args.items, clients=args.clients)
        print(f"populated {args.items} items x 2 workspaces in {time.perf_counter() - started:.0f} s", flush=True)
    port = _free_port()
    server = _gunicorn(port, workers=args.workers, threads=args.threads)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, server)
        cookies = _sign_in(base, reviewers)
        slices = [item_ids[i :: len(cookies)] for i in range(len(cookies))]
        pages = {
            "static file": ("static", ["/static/threadline.css"] * len(cookies)),
            "login page": ("login", ["/accounts/login/"] * len(cookies)),
            "queue": ("queue", [f"/w/{SLUG}/review/"] * len(cookies)),
            "item": ("item", [" ".join(f"/w/{SLUG}/review/items/{pk}/" for pk in ids) for ids in slices]),
        }
        results = {}
        for name, (check, paths) in pages.items():
            results[name] = _drive(
                base, server, cookies, paths, check, seconds=args.seconds, warmup=0 if args.smoke else 1.0
            )
            r = results[name]
            print(
                f"  {name:<12} {r['count']:>6} requests  {r['rate']:>7.1f} req/s  p50 {r['p50']:>6.1f} ms  "
                f"p95 {r['p95']:>6.1f} ms  client CPU {r['client_share']:.0%}  "
                f"server CPU/request {r['server_ms']:.1f} ms + PostgreSQL {r['postgres_ms']:.1f} ms",
                flush=True,
            )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    if args.smoke:
        print(f"bench/web.py --smoke: ok ({time.perf_counter() - started:.0f} s)")
        return
    reference = results["login page"]["p95"]
    kind = f"gthread, {args.threads} threads" if args.threads > 1 else "sync"
    print(
        f"\n{args.clients} clients (wrk), {args.workers} gunicorn workers ({kind}), {args.items} review items "
        f"(and as many in another workspace), {args.seconds:.0f} s per page, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print(
        "page         | req/s  | p50 ms | p95 ms | p95 ratio to login page | client CPU | server CPU ms/req "
        "(gunicorn + PostgreSQL)"
    )
    print("-------------|--------|--------|--------|-------------------------|------------|------------------")
    for name, r in results.items():
        print(
            f"{name:<12} | {r['rate']:>6.1f} | {r['p50']:>6.1f} | {r['p95']:>6.1f} | {r['p95'] / reference:>23.2f} | "
            f"{r['client_share']:>10.0%} | {r['server_ms']:.1f} + {r['postgres_ms']:.1f}"
        )
    goal = all(results[name]["p95"] <= 150 for name in ("queue", "item"))
    print(f"\ngoal (queue and item p95 <= 150 ms): {'met' if goal else 'not met'}")


# --- the server -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn(port: int, *, workers: int, threads: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "DATABASE_NAME": BENCH_DB, "DJANGO_DEBUG": "false"}
    return subprocess.Popen(command, cwd=ROOT, env=env)


def _wait_until_up(base: str, server: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchFailure(f"gunicorn exited with status {server.returncode} before it answered")
        try:
            httpx.get(base + "/static/threadline.css", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise BenchFailure("gunicorn did not answer within 60 s")


def _sign_in(base: str, reviewers: list[str]) -> list[str]:
    """Each reviewer signed in through the login form (CSRF token and all); returns each one's
    Cookie header (session and CSRF cookies) for wrk."""
    import httpx

    cookies = []
    for username in reviewers:
        with httpx.Client(base_url=base, timeout=30) as client:
            form = client.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
            if form.status_code != 200 or not token:
                raise BenchFailure(f"the login page answered {form.status_code} without a CSRF token")
            done = client.post(
                "/accounts/login/",
                data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
            )
            if done.status_code != 302 or "sessionid" not in client.cookies:
                raise BenchFailure(f"signing in {username} failed: {done.status_code}")
            cookies.append("; ".join(f"{name}={value}" for name, value in client.cookies.items()))
    return cookies


# --- the clients ------------------------------------------------------------------------------

LUA = Path(__file__).resolve().parent / "web.lua"
_RESULT = re.compile(r"^RESULT (.*)$", re.M)


def _wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise BenchFailure("wrk is not installed (the load generator): apt-get install wrk")
    return found


def _drive(base: str, server, cookies: list[str], paths: list[str], check: str, *, seconds: float, warmup: float):
    """wrk with one thread and one connection per client, for ``warmup`` (discarded) and then
    ``seconds``; every response checked by bench/web.lua. Returns the figures of the measured
    run: requests/s, p50 and p95 ms, the client's CPU share, the server's CPU per request."""
    with tempfile.NamedTemporaryFile("w", suffix=".clients", delete=False) as listing:
        for cookie, line in zip(cookies, paths, strict=True):
            listing.write(f"{cookie}\t{line}\n")
    try:
        if warmup:
            _wrk_run(base, listing.name, check, clients=len(cookies), seconds=warmup)
        server_cpu, postgres_cpu = _server_cpu(server)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = _wrk_run(base, listing.name, check, clients=len(cookies), seconds=seconds)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_after, postgres_after = _server_cpu(server)
    finally:
        os.unlink(listing.name)
    count = result["requests"]
    if not count:
        raise BenchFailure("no request finished in the measured time")
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "count": count,
        "rate": count / (result["duration_us"] / 1e6),
        "p50": result["p50_us"] / 1000,
        "p95": result["p95_us"] / 1000,
        "client_share": client_cpu / wall,
        "server_ms": (server_after - server_cpu) / count * 1000,
        "postgres_ms": (postgres_after - postgres_cpu) / count * 1000,
    }


def _wrk_run(base: str, listing: str, check: str, *, clients: int, seconds: float) -> dict:
    command = [_wrk(), "-t", str(clients), "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s"]
    command += ["-s", str(LUA), base, "--", listing, check]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = _RESULT.search(done.stdout)
    if done.returncode != 0 or not found:
        raise BenchFailure(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
    fields = dict(part.split("=", 1) for part in found.group(1).split(" ", 6))
    if int(fields["errors"]):
        raise BenchFailure(f"{fields['errors']} connection errors or timeouts ({check})")
    if int(fields["failures"]):
        raise BenchFailure(f"{fields['failures']} failed responses, the first: {fields['problem']}")
    return {key: int(fields[key]) for key in ("requests", "duration_us", "p50_us", "p95_us")}


def _server_cpu(server) -> tuple[float, float]:
    """CPU seconds so far of gunicorn's workers and of the PostgreSQL backends serving the
    bench's database (persistent connections: one per worker thread)."""
    import psutil

    def cpu(process) -> float:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    workers = sum(cpu(child) for child in psutil.Process(server.pid).children(recursive=True))
    backends = 0.0
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and BENCH_DB in " ".join(process.info["cmdline"] or []):
            backends += cpu(process)
    return workers, backends


# --- the database -----------------------------------------------------------------------------


def _populate(*, items: int, clients: int) -> tuple[list[str], list[int]]:
    """Both workspaces; returns the measured one's reviewers and, for the item page, open items
    (those nobody holds), oldest first."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from bench._benchdb import vacuum
    from review.models import ReviewItem
    from workspaces.models import Workspace
    from workspaces.rls import workspace_context
    from workspaces.services import membership_add, workspace_create

    user_model = get_user_model()
    reviewers = [f"reviewer-{n}" for n in range(clients)]
    # One hash for all the accounts: PBKDF2 costs a third of a second each, by design.
    hashed = user_model(username="x")
    hashed.set_password(PASSWORD)
    threads = max(1, items // ITEMS_PER_THREAD)
    for slug in (SLUG, NOISE_SLUG):
        workspace = workspace_create(slug=slug, name=slug)
        names = reviewers if slug == SLUG else [f"noise-reviewer-{n}" for n in range(2)]
        for name in names:
            user = user_model.objects.create(username=name, password=hashed.password)
            membership_add(workspace=workspace, user=user, role="reviewer")
        with workspace_context(workspace), connection.cursor() as cursor:
            cursor.execute(_POPULATE_SQL, {"ws": workspace.pk, "threads": threads, "per_thread": MESSAGES_PER_THREAD})
    vacuum(BENCH_DB)
    with workspace_context(Workspace.objects.get(slug=SLUG)):
        total = ReviewItem.objects.count()
    if total != threads * ITEMS_PER_THREAD:
        raise BenchFailure(f"populated {total} review items, expected {threads * ITEMS_PER_THREAD}")
    return _populated(clients=clients)


def _populated(*, clients: int) -> tuple[list[str], list[int]]:
    """The measured workspace's reviewers and its open items, oldest first."""
    from review.models import ReviewItem
    from workspaces.models import Workspace
    from workspaces.rls import workspace_context

    with workspace_context(Workspace.objects.get(slug=SLUG)):
        ids = list(ReviewItem.objects.filter(status="open").order_by("created_at").values_list("pk", flat=True))
    if len(ids) < clients:
        raise BenchFailure(f"{len(ids)} open items, fewer than the {clients} clients")
    return [f"reviewer-{n}" for n in range(clients)], ids


# One statement per table. Messages: five per thread, a few hundred characters each; each
# item's evidence is a span of its message found with position(), so the highlight is real.
_POPULATE_SQL = """
INSERT INTO threads_thread (workspace_id, subject, base_subject, primary_contact_email, status, participants,
                            message_count, first_message_at, last_message_at, created_at, updated_at)
SELECT %(ws)s, 'Re: Pricing for account ' || n, 'pricing for account ' || n, 'buyer' || n || '@customer.example',
       'open', ARRAY['buyer' || n || '@customer.example', 'rep@seller.example'], %(per_thread)s,
       now() - n * interval '1 hour', now() - n * interval '1 hour' + interval '4 days',
       now() - n * interval '1 hour', now()
FROM generate_series(1, %(threads)s) AS n;

INSERT INTO threads_message (workspace_id, thread_id, message_id, in_reply_to, in_reply_to_json, references_json,
                             related_ids, participants, subject, base_subject, from_email, from_name, to_json, cc_json,
                             sent_at, text, html, reply_text, headers_json, raw, raw_sha256, raw_size, parse_status,
                             parse_error, source, folder, created_at)
SELECT t.workspace_id, t.id, 'bench-' || t.id || '-' || k || '@customer.example',
       CASE WHEN k > 1 THEN 'bench-' || t.id || '-' || (k - 1) || '@customer.example' ELSE '' END, '[]', '[]',
       '{}', t.participants, t.subject, t.base_subject,
       CASE WHEN k %% 2 = 1 THEN t.primary_contact_email ELSE 'rep@seller.example' END,
       CASE WHEN k %% 2 = 1 THEN 'Maria Lopez' ELSE 'Sam Rep' END,
       '[]', '[]', t.first_message_at + k * interval '10 hours', body.text, '', body.text, '{}',
       convert_to(body.text, 'UTF8'), md5(body.text) || md5(body.text), length(body.text), 'parsed', '', 'bench',
       'INBOX', t.created_at + k * interval '1 second'
FROM threads_thread t, generate_series(1, %(per_thread)s) AS k,
     LATERAL (SELECT 'Hi Sam,' || chr(10) || chr(10) ||
                     'Thanks for the call on ' || to_char(t.first_message_at, 'FMDay') || '. ' ||
                     repeat('We went through the proposal with the team and have a few questions about the rollout, '
                            || 'the onboarding plan and the support terms. ', 2) || chr(10) || chr(10) ||
                     'Our budget is $' || (20 + k * 5) || ',000 for this year, and Dana Smith, our CFO, signs off. '
                     || 'We need the pilot live by the end of Q' || (1 + k %% 4) || ' and are also looking at '
                     || 'Gong and Clari.' || chr(10) || chr(10) ||
                     repeat('Could you send the security questionnaire and a draft order form before then? ', 2) ||
                     chr(10) || chr(10) || 'Best,' || chr(10) || 'Maria' AS text) AS body
WHERE t.workspace_id = %(ws)s;

INSERT INTO extraction_extractionrun (workspace_id, thread_id, schema_id, schema_version, extractor, model, status, error,
                                      messages_seen, prompt_tokens, completion_tokens, cost_usd, created_at)
SELECT t.workspace_id, t.id, 'sales_bant', 1, 'rules', 'rules', 'succeeded', '', %(per_thread)s, 0, 0, 0, now()
FROM threads_thread t WHERE t.workspace_id = %(ws)s;

-- One value per message: budget, authority, need, timeline, competitors in turn.
INSERT INTO extraction_fieldvalue (workspace_id, run_id, thread_id, field_key, field_value_json, confidence,
                                   evidence_json, grounded, status, created_at)
SELECT r.workspace_id, r.id, r.thread_id, f.key, f.value, 0.55 + (m.id %% 30) / 100.0,
       jsonb_build_array(jsonb_build_object('message_id', m.id, 'start', position(f.quote IN m.reply_text) - 1,
                                            'end', position(f.quote IN m.reply_text) - 1 + length(f.quote),
                                            'quote', f.quote)),
       true, 'proposed', m.created_at
FROM extraction_extractionrun r
JOIN threads_message m ON m.thread_id = r.thread_id
CROSS JOIN LATERAL (
  SELECT * FROM (VALUES
    (1, 'budget', jsonb_build_object('amount', substring(m.reply_text FROM 'budget is \\$([0-9]+),000')::int * 1000,
                                     'currency', 'USD'),
        'budget is $' || substring(m.reply_text FROM 'budget is \\$([0-9,]+)')),
    (2, 'authority', '{"name": "Dana Smith", "title": "CFO"}'::jsonb, 'Dana Smith, our CFO, signs off'),
    (3, 'need', '"the pilot live"'::jsonb, 'We need the pilot live'),
    (4, 'timeline', jsonb_build_object('date', '2026-09-30', 'phrase', 'end of Q3'), 'by the end of Q'),
    (0, 'competitors', '["Gong", "Clari"]'::jsonb, 'Gong and Clari')
  ) AS v(slot, key, value, quote)
  WHERE v.slot = (substring(m.message_id FROM '-([0-9]+)@')::int %% 5)
) AS f
WHERE r.workspace_id = %(ws)s;

INSERT INTO review_reviewitem (workspace_id, thread_id, field_value_id, reason, status, subject_key, skipped_by,
                               payload_json, version, created_at, resolved_at)
SELECT v.workspace_id, v.thread_id, v.id,
       (ARRAY['low_confidence', 'always_review', 'ungrounded', 'conflict', 'audit_sample'])[1 + v.id %% 5],
       CASE WHEN v.id %% 3 = 0 THEN 'approved' ELSE 'open' END, 'value:' || v.id, '{}',
       jsonb_build_object('field', v.field_key, 'proposed_value', v.field_value_json, 'confidence', v.confidence,
                          'evidence', v.evidence_json, 'grounded', true, 'other_values', '[]'::jsonb)
         || CASE WHEN v.id %% 3 = 0 THEN jsonb_build_object('last_decision', jsonb_build_object('decision', 'approve'))
                 ELSE '{}'::jsonb END,
       CASE WHEN v.id %% 3 = 0 THEN 1 ELSE 0 END, v.created_at,
       CASE WHEN v.id %% 3 = 0 THEN now() - interval '1 day' END
FROM extraction_fieldvalue v WHERE v.workspace_id = %(ws)s;

-- The audit log: every item was opened, a third approved.
INSERT INTO workspaces_auditevent (workspace_id, thread_id, type, data_json, created_at)
SELECT i.workspace_id, i.thread_id, 'review_item.opened',
       jsonb_build_object('review_item_id', i.id, 'reason', i.reason, 'subject', i.subject_key,
                          'field', i.payload_json->'field'), i.created_at
FROM review_reviewitem i WHERE i.workspace_id = %(ws)s
UNION ALL
SELECT i.workspace_id, i.thread_id, 'review_item.approved', jsonb_build_object('review_item_id', i.id), i.resolved_at
FROM review_reviewitem i WHERE i.workspace_id = %(ws)s AND i.status = 'approved';
"""


if __name__ == "__main__":
    sys.exit(main())
