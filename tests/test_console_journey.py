"""The console as its two kinds of users work it, in Chromium, on the demo data.

A workspace admin who is neither a superuser nor staff signs in, finds the policy from
``/admin/`` by clicking, saves a bad value (the error names the key) and a good one that
sends every BANT field and the next step to review. The demo mailbox and deals then arrive
(``seed_demo``) and two real ``manage.py runworker`` processes extract and link them. A
reviewer then decides 20 items by keyboard alone (approvals, edits, rejections, links to
deals, skips and one undo), and the item pages, the queue's filters, the dashboard and the
CRM page are checked against what was done. Page times (the browser's navigation timing)
are printed; so are the decisions made and counted.

    make test PYTEST_ARGS="tests/test_console_journey.py -s"

With ``THREADLINE_SCREENSHOTS=DIR`` it saves the screenshots the docs show (the admin index
as a workspace admin, an edited item, a deal page, the dashboard) in DIR.
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

from jobs import db
from jobs.models import Job
from review.models import ReviewItem
from tests.browser import requires_chromium
from tests.workers import RunWorker, worker_env
from workspaces.models import AuditEvent, Workspace
from workspaces.rls import workspace_context

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long journey password"
REVIEWED = ["budget", "authority", "need", "timeline", "next_step"]
DECISIONS = 20
# What the reviewer does, in turn, on each field item (an association is linked to the
# deal the page selects): a reviewer's ordinary mix.
PLAN = ["approve", "edit", "approve", "reject", "skip", "approve", "edit", "reject"]


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


def shoot(page, name: str) -> None:
    folder = os.environ.get("THREADLINE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def item_id(url: str) -> int | None:
    found = re.search(r"/review/items/(\d+)/", url)
    return int(found.group(1)) if found else None


def test_admin_sets_the_policy_then_a_reviewer_decides_twenty_items_by_keyboard(page, live_server, tmp_path):
    call_command("seed_demo", "--no-mail", "--password", PASSWORD, stdout=io.StringIO())
    ws = Workspace.objects.get(slug="demo")
    timings = Timings()

    # --- the workspace admin: from the console to the policy, by clicking --------------------
    log_in(page, live_server, "demo-admin")
    page.click("header.topbar nav >> text=Admin")
    page.wait_for_url(re.compile(r"/admin/$"))
    assert "You don't have permission" not in page.content()
    shoot(page, "admin-index-workspace-admin")
    page.click("a:text-is('Policies')")
    page.click("table#result_list tbody tr a")  # the workspace's one policy
    textarea = page.locator("textarea[name=policy]")
    policy = textarea.input_value()
    textarea.fill(policy.replace('"min_confidence": 0.8', '"min_confidence": 1.5'))
    page.click("input[name=_save]")
    error = page.locator(".errorlist").inner_text()
    assert "min_confidence" in error, error
    good = (
        '{"min_confidence": 0.8, "audit_sample_rate": 0, "always_review_fields": '
        + str(REVIEWED).replace("'", '"')
        + "}"
    )
    page.locator("textarea[name=policy]").fill(good)
    page.click("input[name=_save]")
    assert "Policy validated and saved." in page.locator(".messagelist").inner_text()
    with workspace_context(ws):
        assert ws.policy.__class__.objects.get(workspace=ws).policy["always_review_fields"] == REVIEWED
    page.click("form#logout-form button, a:text-is('Log out')")

    # --- the mail and the deals arrive; real workers extract and link ------------------------
    env = worker_env(JOBS_RETRY_BASE_SECONDS="0.1", LOG_LEVEL="WARNING")
    workers = [RunWorker(tmp_path / f"w{n}.log", f"console-{n}", env) for n in (1, 2)]
    try:
        call_command("seed_demo", "--password", PASSWORD, stdout=io.StringIO())
        jobs = drain(workers)
        with workspace_context(ws):
            open_items = ReviewItem.objects.filter(status="open").count()
        print(f"\njobs {dict(jobs)}; open review items {open_items}")
        assert open_items >= DECISIONS + 4, open_items

        # --- the reviewer: 20 decisions by keyboard alone -------------------------------------
        log_in(page, live_server, "demo-reviewer")
        page.wait_for_url(re.compile(r"/w/demo/review/"))
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/review/items/\d+/"))
        done: dict[int, str] = {}
        skipped: list[int] = []
        undone: list[int] = []
        edited_values: dict[int, str] = {}
        plan = iter(PLAN * 10)
        while len(done) < DECISIONS:
            pk = item_id(page.url)
            if pk is None:  # back on the queue: open the first row
                page.keyboard.press("j")
                page.keyboard.press("Enter")
                page.wait_for_url(re.compile(r"/review/items/\d+/"))
                continue
            association = page.locator("form.candidates").count() > 0
            action = "link" if association else next(plan)
            if action == "edit" and page.locator("#edit-form input[name=amount], #edit-form textarea").count() == 0:
                action = "approve"  # edits by keyboard on money and text values
            if action == "edit":
                page.keyboard.press("e")
                if page.locator("#edit-form input[name=amount]").count():
                    page.keyboard.type("75000")
                    edited_values[pk] = "75,000"
                else:
                    page.keyboard.type("Replace the shared inbox by June")
                    edited_values[pk] = "Replace the shared inbox by June"
                page.keyboard.press("Enter")
            else:
                page.keyboard.press({"approve": "a", "link": "a", "reject": "r", "skip": "s"}[action])
            page.wait_for_function(f"() => !location.pathname.includes('/items/{pk}/')")
            if action == "skip":
                skipped.append(pk)
                continue
            done[pk] = action
            if len(done) == 3 and not undone:  # the third decision was a mistake: undo it
                page.keyboard.press("u")
                page.wait_for_url(re.compile(rf"/items/{pk}/"))
                assert "Undone" in page.locator(".flash").inner_text()
                undone.append(pk)
                del done[pk]
                edited_values.pop(pk, None)
                # decided again, this time a rejection
                page.keyboard.press("r")
                page.wait_for_function(f"() => !location.pathname.includes('/items/{pk}/')")
                done[pk] = "reject"

        made = Counter(done.values())
        with workspace_context(ws):
            statuses = {pk: ReviewItem.objects.get(pk=pk).status for pk in done}
            counted = Counter(
                AuditEvent.objects.filter(type__startswith="review_item.", actor__username="demo-reviewer").values_list(
                    "type", flat=True
                )
            )
        print(f"decisions made {dict(made)}, skipped {len(skipped)}, undone {len(undone)}")
        print(f"statuses {dict(Counter(statuses.values()))}; audit {dict(counted)}")
        expected_status = {"approve": "approved", "edit": "edited", "reject": "rejected", "link": "approved"}
        for pk, action in done.items():
            assert statuses[pk] in (expected_status[action], "resolved"), (pk, action, statuses[pk])

        # --- what the pages say ----------------------------------------------------------------
        base = f"{live_server.url}/w/demo/review/"
        edited_pk, edited_text = next(iter(edited_values.items()))
        page.goto(f"{base}items/{edited_pk}/")
        assert edited_text in page.locator("aside.decision").inner_text()
        shoot(page, "item-edited")

        for status, expect in (
            ("rejected", sum(1 for a in done.values() if a == "reject")),
            ("skipped", len(set(skipped) - set(done))),
        ):
            page.goto(f"{base}?status={status}")
            assert f"status={status}" in page.url
            rows = page.locator("tr[data-href]").count()
            print(f"queue ?status={status}: {rows} rows (made {expect})")
            assert rows == expect, (status, rows, expect)

        page.goto(f"{base}dashboard/")
        dashboard = page.locator("main").inner_text()
        shoot(page, "dashboard")
        assert "demo-reviewer" in dashboard
        line = page.locator("[data-reviewer='demo-reviewer']").inner_text()
        print(f"dashboard line: {line!r}")
        assert re.search(rf"\b{len(done)}\b", line), line

        with workspace_context(ws):
            approved = next(ReviewItem.objects.get(pk=pk) for pk, a in done.items() if a in ("approve", "edit"))
        page.goto(f"{live_server.url}/w/demo/crm/threads/{approved.thread_id}/")
        crm = page.locator("main").inner_text()
        assert "No CRM writes." not in crm, crm

        deal_link = page.locator("a[href*='/deals/']").first
        page.goto(f"{live_server.url}/w/demo/deals/")
        page.locator("table a[href*='/deals/']").first.click()
        page.wait_for_url(re.compile(r"/deals/\d+/"))
        assert "{'amount'" not in page.content()
        shoot(page, "deal")
        del deal_link
    finally:
        for worker in workers:
            worker.stop()
    print("page times:\n" + "\n".join(timings.lines()))
