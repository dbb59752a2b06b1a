"""The console as its two kinds of users work it, in Chromium, on the demo data.

A workspace admin who is neither a superuser nor staff signs in, finds the policy from
``/admin/`` by clicking, saves a bad value (the error names the key) and a good one that
sends every BANT field and the next step to review. The demo mailbox and deals then arrive
(``seed_demo``), then more deals and mail (``import_deals_csv``, ``manage.py ingest``), and two real ``manage.py
runworker`` processes extract and link them. A reviewer then decides 20 items by keyboard
alone (approvals, edits, rejections, links to deals, skips and one undo), and the item
pages, the queue's filters, the dashboard and the CRM page are checked against what was
done. Page times (the browser's navigation timing) are printed; so are the decisions made
and counted.

    make test PYTEST_ARGS="tests/test_console_journey.py -s"

With ``THREADLINE_SCREENSHOTS=DIR`` it saves the screenshots the README shows (the admin
index as a workspace admin, the queue, an item, an edited item, the dashboard, the CRM page
with a pending write, a thread, a deal) in DIR: ``THREADLINE_SCREENSHOTS=docs/screenshots``.
"""

from __future__ import annotations

import io
import os
import re
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command

from deals.models import ThreadLink
from jobs import db
from jobs.models import Job
from review.models import ReviewItem
from tests.browser import requires_chromium
from tests.workers import RunWorker, worker_env
from workspaces.models import Policy, Workspace
from workspaces.rls import workspace_context

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long journey password"
REVIEWED = ["budget", "authority", "need", "timeline", "next_step"]
DECISIONS = 20
# More deals and mail after the demo's: the journeys' own (tests/journeys), through
# `import_deals_csv` and `ingest`.
MORE_DEALS = Path(__file__).parent / "journeys" / "deals.csv"
MORE_MAIL = [
    Path(__file__).parent / "journeys" / "mail" / "inbox.mbox",
    Path(__file__).parent / "journeys" / "mail" / "eml",
]
LINKS = 3  # deal associations decided (each linked to the deal its page selects)
EDITS = 3  # amounts corrected
# What the reviewer does, in turn, with the other items: a reviewer's ordinary mix.
PLAN = ["approve", "approve", "reject", "skip", "approve", "reject"]


class Timings:
    """The browser's own navigation timing of every page the journey opens, by kind."""

    def __init__(self):
        self.by_kind: dict[str, list[float]] = defaultdict(list)

    def record(self, page) -> None:
        path = page.url.split("?", 1)[0]
        kind = _page_kind(path)
        ms = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return n ? n.responseEnd - n.requestStart : null; }"
        )
        if ms is not None:
            self.by_kind[kind].append(ms)

    def lines(self) -> list[str]:
        out = []
        for kind, values in sorted(self.by_kind.items()):
            values = sorted(values)
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            out.append(
                f"  {kind:<10} {len(values):>3} pages, median {statistics.median(values):.0f} ms, p95 {p95:.0f} ms"
            )
        return out


def _page_kind(path: str) -> str:
    for pattern, kind in (
        (r"/admin/", "admin"),
        (r"/review/items/\d+/$", "item"),
        (r"/review/dashboard/$", "dashboard"),
        (r"/review/$", "queue"),
        (r"/crm/", "crm"),
        (r"/deals/\d+/$", "deal"),
        (r"/threads/\d+/$", "thread"),
    ):
        if re.search(pattern, path):
            return kind
    return "other"


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def drain(workers, timeout: float = 120) -> Counter:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.queue_role():
            statuses = Counter(Job.objects.values_list("status", flat=True))
        if set(statuses) <= {"succeeded", "failed", "cancelled"} and statuses:
            return statuses
        time.sleep(0.2)
    raise AssertionError(f"the queue did not drain: {statuses}\n" + "\n".join(w.tail() for w in workers))


def shoot(page, name: str, *, full_page: bool = True) -> None:
    folder = os.environ.get("THREADLINE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)


def arrived(page, timings: Timings, pattern: str) -> None:
    """Wait for the page a key led to (its URL matches ``pattern``) to load, and time it."""
    page.wait_for_url(re.compile(pattern))
    page.wait_for_load_state("load")
    timings.record(page)


def item_id(url: str) -> int | None:
    found = re.search(r"/review/items/(\d+)/", url)
    return int(found.group(1)) if found else None


def test_admin_sets_the_policy_then_a_reviewer_decides_twenty_items_by_keyboard(page, live_server, tmp_path):
    call_command("seed_demo", "--no-mail", "--password", PASSWORD, stdout=io.StringIO())
    ws = Workspace.objects.get(slug="demo")
    timings = Timings()

    # --- the workspace admin: from the console to the policy, by clicking --------------------
    log_in(page, live_server, "demo-admin")
    timings.record(page)
    page.click("header nav >> text=Admin")
    page.wait_for_url(re.compile(r"/admin/$"))
    timings.record(page)
    assert "You don't have permission" not in page.content()
    shoot(page, "admin-index")
    page.click("#content-main >> a:text-is('Policies')")
    page.click("#result_list tbody th a")  # the workspace's one policy
    timings.record(page)
    page.fill("#id_policy", '{"min_confidence": 1.5}')
    page.click("input[name=_save]")
    error = page.locator(".errorlist").inner_text()
    print(f"\nbad policy: {error!r}")
    assert "min_confidence" in error, error
    good = (
        '{"min_confidence": 0.95, "audit_sample_rate": 0, "always_review_fields": '
        + str(REVIEWED).replace("'", '"')
        + "}"
    )
    page.fill("#id_policy", good)
    page.click("input[name=_save]")
    assert "Policy validated and saved." in page.locator(".messagelist").inner_text()
    with workspace_context(ws):
        assert Policy.objects.get(workspace=ws).policy["always_review_fields"] == REVIEWED
    page.context.clear_cookies()

    # --- the mail and the deals arrive; real workers extract and link ------------------------
    env = worker_env(JOBS_RETRY_BASE_SECONDS="0.1", LOG_LEVEL="WARNING")
    workers = [RunWorker(tmp_path / f"w{n}.log", f"console-{n}", env) for n in (1, 2)]
    try:
        call_command("seed_demo", "--password", PASSWORD, stdout=io.StringIO())
        out = io.StringIO()
        call_command("import_deals_csv", str(MORE_DEALS), "--workspace", "demo", stdout=out)
        call_command("ingest", *map(str, MORE_MAIL), "--workspace", "demo", "--no-progress", stdout=out)
        print("\n" + "\n".join(line for line in out.getvalue().splitlines() if line.strip()))
        jobs = drain(workers)
        with workspace_context(ws):
            open_items = ReviewItem.objects.filter(status="open").count()
        print(f"\njobs {dict(jobs)}; open review items {open_items}")
        assert open_items >= DECISIONS + 4, open_items

        # --- the reviewer: 20 decisions by keyboard alone -------------------------------------
        log_in(page, live_server, "demo-reviewer")
        page.wait_for_url(re.compile(r"/w/demo/review/"))
        timings.record(page)
        shoot(page, "queue", full_page=False)  # the first screen of a long queue
        done: dict[int, str] = {}
        skipped: list[int] = []
        undone: list[int] = []
        edited: dict[int, str] = {}
        plan = iter(PLAN * 10)
        # First the deal associations (the queue filtered by reason, the filter kept in every
        # URL the decisions lead to), then the rest of the queue.
        for query, count in (("?reason=association", LINKS), ("", DECISIONS - LINKS)):
            page.goto(f"{live_server.url}/w/demo/review/{query}")
            timings.record(page)
            target = len(done) + count
            while len(done) < target:
                pk = item_id(page.url)
                if pk is None:  # on the queue: select the first row and open it
                    assert query in page.url
                    page.keyboard.press("j")
                    page.keyboard.press("Enter")
                    arrived(page, timings, r"/review/items/\d+/")
                    continue
                assert query.lstrip("?") in page.url, (query, page.url)
                if len(done) == LINKS:
                    shoot(page, "item")
                money = page.locator("#edit-form input[name=amount]").count() > 0
                if page.locator("form.candidates").count():
                    action = "link"  # to the deal the page selects, the best candidate
                elif money and len(edited) < EDITS:
                    action = "edit"  # the journey edits amounts (Enter in a text area is a new line)
                else:
                    action = next(plan)
                if action == "edit":
                    page.keyboard.press("e")
                    page.keyboard.type("75000")  # the amount is focused with its value selected
                    page.keyboard.press("Enter")
                    edited[pk] = "75,000"
                else:
                    page.keyboard.press({"approve": "a", "link": "a", "reject": "r", "skip": "s"}[action])
                arrived(page, timings, rf"^(?!.*/items/{pk}/)")
                if action == "skip":
                    skipped.append(pk)
                    continue
                done[pk] = action
                if len(done) == LINKS + 2 and not undone:  # a slip: undone at once, then rejected
                    page.keyboard.press("u")
                    arrived(page, timings, rf"/items/{pk}/")
                    assert "Undone" in page.locator(".flash").inner_text()
                    undone.append(pk)
                    del done[pk]
                    edited.pop(pk, None)
                    page.keyboard.press("r")
                    arrived(page, timings, rf"^(?!.*/items/{pk}/)")
                    done[pk] = "reject"

        made = Counter(done.values())
        with workspace_context(ws):
            statuses = {pk: ReviewItem.objects.get(pk=pk).status for pk in done}
            still_skipped = ReviewItem.objects.filter(status="open", skipped_by__len__gt=0).count()
        print(f"decisions standing {len(done)} {dict(made)}, undone {len(undone)}, skips {len(skipped)}")
        print(f"statuses {dict(Counter(statuses.values()))}")
        for pk, action in done.items():
            assert statuses[pk] == ("rejected" if action == "reject" else "approved"), (pk, action, statuses[pk])

        # --- what the pages say ----------------------------------------------------------------
        base = f"{live_server.url}/w/demo/review/"
        edited_pk, edited_text = next(iter(edited.items()))
        page.goto(f"{base}items/{edited_pk}/")
        timings.record(page)
        decided_text = page.locator("#decided-value").inner_text()
        assert edited_text in decided_text, (edited_text, decided_text)
        shoot(page, "item-edited")

        shown = {}
        for status, expect in (
            ("approved", sum(1 for a in done.values() if a != "reject")),
            ("edited", len(edited)),
            ("rejected", made["reject"]),
            ("skipped", still_skipped),
        ):
            page.goto(f"{base}?status={status}")
            timings.record(page)
            page.keyboard.press("j")  # the filter stays in the URL as the reviewer works
            assert f"status={status}" in page.url
            shown[status] = page.locator("tr[data-href]").count()
            assert shown[status] == expect, (status, shown[status], expect)
        print(f"queue filters show {shown}")
        assert shown["edited"] >= 1 and shown["skipped"] >= 1

        page.goto(f"{base}dashboard/")
        timings.record(page)
        row = page.locator("#reviewer-figures tr[data-reviewer='demo-reviewer']")
        counted = {k: row.locator(f"td.{k}").inner_text() for k in ("decided", "median", "undone")}
        print(f"dashboard: {counted} (decisions made {len(done) + len(undone)}, undone {len(undone)})")
        assert int(counted["decided"]) == len(done) + len(undone)
        assert int(counted["undone"]) == len(undone)
        assert counted["median"] != "—"
        shoot(page, "dashboard")

        with workspace_context(ws):
            threads = dict(ReviewItem.objects.filter(pk__in=edited).values_list("pk", "thread_id"))
            linked = set(ThreadLink.objects.filter(thread_id__in=threads.values()).values_list("thread_id", flat=True))
        on_deals = [pk for pk in edited if threads[pk] in linked]
        assert on_deals, "no edited amount is on a thread linked to a deal"
        page.goto(f"{live_server.url}/w/demo/crm/threads/{threads[on_deals[0]]}/")
        timings.record(page)
        pending = page.locator("#pending-writes").inner_text()
        print(f"CRM page of an edited thread, pending: {' '.join(pending.split())[:240]!r}")
        assert "75,000" in pending, pending  # the corrected amount, on its way to the CRM
        shoot(page, "crm-pending")
        page.goto(f"{live_server.url}/w/demo/threads/{threads[on_deals[0]]}/")
        timings.record(page)
        assert "75,000" in page.locator("main").inner_text()  # the thread page lists its values
        shoot(page, "thread")

        page.goto(f"{live_server.url}/w/demo/deals/")
        page.locator("main table a[href*='/deals/']").first.click()
        arrived(page, timings, r"/deals/\d+/$")
        assert "{'amount'" not in page.content()
        shoot(page, "deal")

    finally:
        for worker in workers:
            worker.stop()
    print("page times:\n" + "\n".join(timings.lines()))
