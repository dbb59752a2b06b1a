"""Server time of the review console's queue and item pages at 1,000 and 100,000 review items.

Each scale has another workspace with as many rows beside it (row-level security must
keep them out cheaply). Pages are requested in-process through Django's test client, so the
figure is the server's time (middleware, queries, templates), not the network's. The ratio
of the 100,000-item figures to the 1,000-item ones is what matters: keyset pagination and
the (workspace, status, created_at) index should keep it near 1.

Run: `.venv/bin/python bench/console.py` (about two minutes; uses its own database,
threadline_bench_console, on the same server). `--smoke`: 100 and 1,000 items, a few
requests per page, in seconds; it fails (exit status 1) if a page does not answer 200.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# This folder holds queue.py, which would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "threadline_bench_console"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DATABASE_NAME"] = BENCH_DB
os.environ.setdefault("LOG_LEVEL", "WARNING")

REQUESTS = 60
SCALES = (1_000, 100_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="Seconds: 100 and 1,000 items, 5 requests a page.")
    args = parser.parse_args()
    global REQUESTS, SCALES
    if args.smoke:
        REQUESTS, SCALES = 5, (100, 1_000)
    from bench._benchdb import database_recreate

    database_recreate(BENCH_DB)
    import django

    django.setup()
    from django.test import Client

    results = {}
    for scale in SCALES:
        slug = _populate(scale)
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(_reviewer(slug))
        item_id = _middle_item(slug)
        pages = {
            "queue": f"/w/{slug}/review/",
            "queue, filtered": f"/w/{slug}/review/?reason=low_confidence&sort=oldest",
            "item": f"/w/{slug}/review/items/{item_id}/",
        }
        for name, url in pages.items():
            results[(scale, name)] = _time(client, url)
        print(
            f"  {scale:>7} items: " + ", ".join(f"{n} p50 {results[(scale, n)][0]:.1f} ms" for n in pages), flush=True
        )
    small_n, large_n = (f"@{n // 1000}k" if n >= 1000 else f"@{n}" for n in SCALES)
    heads = [f"p50 ms {small_n}", f"p95 ms {small_n}", f"p50 ms {large_n}", f"p95 ms {large_n}"]
    print(
        f"\n{'page':<16} | " + " | ".join(f"{h:>12}" for h in heads) + f" | ratio p50 ({large_n[1:]} / {small_n[1:]})"
    )
    print("-" * 17 + "|--------------" * 4 + "|----------------------")
    for name in ("queue", "queue, filtered", "item"):
        small, large = results[(SCALES[0], name)], results[(SCALES[1], name)]
        print(
            f"{name:<16} | {small[0]:>12.1f} | {small[1]:>12.1f} | {large[0]:>12.1f} | {large[1]:>12.1f} | {large[0] / small[0]:>10.2f}"
        )


def _time(client, url: str) -> tuple[float, float]:
    for _ in range(5):
        response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"console bench: {url} answered {response.status_code}, not 200")
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            sys.exit(f"console bench: {url} answered {response.status_code}, not 200")
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def _populate(scale: int) -> str:
    """Two workspaces of ``scale`` review items each (threads of ten items); returns the measured one."""
    from django.db import connection

    from workspaces.rls import workspace_context
    from workspaces.services import membership_add, workspace_create
    from workspaces.tests.factories import UserFactory

    slugs = (f"bench-{scale}", f"noise-{scale}")
    for slug in slugs:
        workspace = workspace_create(slug=slug, name=slug)
        membership_add(workspace=workspace, user=UserFactory(username=f"reviewer-{slug}"), role="reviewer")
        with workspace_context(workspace), connection.cursor() as cursor:
            cursor.execute(_POPULATE_SQL, {"ws": workspace.pk, "threads": scale // 10, "items": scale})
    from bench._benchdb import vacuum

    vacuum(BENCH_DB)
    return slugs[0]


# One statement per table; every row carries the workspace, so row-level security checks it.
_POPULATE_SQL = """
INSERT INTO threads_thread (workspace_id, subject, base_subject, primary_contact_email, status, participants,
                            message_count, first_message_at, last_message_at, created_at, updated_at)
SELECT %(ws)s, 'Bench thread ' || n, 'bench thread ' || n, 'buyer' || n || '@example.com', 'open',
       ARRAY['buyer' || n || '@example.com'], 1,
       now(), now(), now() - n * interval '1 minute', now()
FROM generate_series(1, %(threads)s) AS n;

INSERT INTO threads_message (workspace_id, thread_id, message_id, in_reply_to, in_reply_to_json, references_json,
                             related_ids, subject, base_subject, participants, from_email, from_name, to_json, cc_json,
                             sent_at, text, html, reply_text, headers_json, raw, raw_sha256, raw_size, parse_status,
                             parse_error, source, folder, created_at)
SELECT t.workspace_id, t.id, 'bench-' || t.id || '@example.com', '', '[]', '[]', '{}', t.subject, t.base_subject,
       t.participants, t.primary_contact_email, 'Buyer', '[]', '[]', now(), 'Our budget is $40,000 for this year.', '',
       'Our budget is $40,000 for this year.', '{}', 'x'::bytea, repeat('0', 64), 1, 'parsed', '', 'bench', '', now()
FROM threads_thread t WHERE t.workspace_id = %(ws)s;

INSERT INTO extraction_extractionrun (workspace_id, thread_id, schema_id, schema_version, extractor, model, status, error,
                                      messages_seen, prompt_tokens, completion_tokens, cost_usd, created_at)
SELECT t.workspace_id, t.id, 'sales_bant', 1, 'rules', 'rules', 'succeeded', '', 1, 0, 0, 0, now()
FROM threads_thread t WHERE t.workspace_id = %(ws)s;

INSERT INTO extraction_fieldvalue (workspace_id, run_id, thread_id, field_key, field_value_json, confidence,
                                   evidence_json, grounded, status, created_at)
SELECT r.workspace_id, r.id, r.thread_id, 'budget', '{"amount": 40000, "currency": "USD"}', 0.6,
       '[]', true, 'proposed', now()
FROM extraction_extractionrun r, generate_series(1, 10) AS k WHERE r.workspace_id = %(ws)s;

INSERT INTO review_reviewitem (workspace_id, thread_id, field_value_id, subject_key, skipped_by, reason, status,
                               payload_json, version, created_at)
SELECT v.workspace_id, v.thread_id, v.id, 'field_value:' || v.id, '{}',
       (ARRAY['low_confidence', 'always_review', 'ungrounded', 'conflict', 'audit_sample'])[1 + v.id %% 5],
       CASE WHEN v.id %% 3 = 0 THEN 'approved' ELSE 'open' END,
       jsonb_build_object('field', 'budget', 'proposed_value', v.field_value_json, 'confidence', 0.6, 'evidence', '[]'::jsonb),
       0, now() - (v.id %% 100000) * interval '1 second'
FROM extraction_fieldvalue v WHERE v.workspace_id = %(ws)s;
"""


def _reviewer(slug: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=f"reviewer-{slug}")


def _middle_item(slug: str) -> int:
    from review.models import ReviewItem
    from workspaces.models import Workspace
    from workspaces.rls import workspace_context

    workspace = Workspace.objects.get(slug=slug)
    with workspace_context(workspace):
        ids = ReviewItem.objects.filter(status="open").order_by("created_at").values_list("pk", flat=True)
        return ids[len(ids) // 2]


if __name__ == "__main__":
    main()
