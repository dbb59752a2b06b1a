"""Journeys: the product as an operator runs it, end to end, checked in the database.

Only what an operator uses drives these tests: the management commands ``ingest``,
``import_deals_csv``, ``crm_connect`` (token on stdin) and ``sync_deals`` (run with
``call_command``: their own argument parsing and code, in the test process, since a Python
start per command would cost more than the journey), two real ``manage.py runworker``
processes per test on the test database, and the review services for a person's decisions.
HubSpot is the loopback server of crm/tests/crm_servers.py, filled like a portal by
tests/journeys/hubspot.py; ``HUBSPOT_BASE_URL`` points the commands and the workers at it.
The mail (tests/journeys/mail: an mbox and .eml files) and the deals
(tests/journeys/deals.csv) are the team's own fixtures: Fernhill (fernhill.io) sells to
ten accounts.

    make test PYTEST_ARGS="tests/test_journeys.py -s"

The mailbox holds ten threads: six that belong to one deal each (a contact on the deal
writes from the deal's domain), two from people nobody knows at Halcyon Foods, where two
deals are open (a person must choose), and two from strangers (left alone). Each test
prints its figures and collects every expectation that does not hold before failing, so
one run shows everything that breaks between the parts.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command

from crm.models import CrmWriteLog
from crm.tests.crm_servers import TOKEN
from deals.models import AssociationCandidate, Deal, DealFact, DealReadiness, ThreadLink
from extraction.models import FieldValue
from jobs import db
from jobs.models import Job
from review.models import ReviewItem
from review.services import review_item_resolve
from tests.journeys.hubspot import PortalHubSpot, portal_from_csv
from tests.workers import RunWorker, worker_env
from threads.models import Message, Thread
from workspaces.policy import policy_defaults
from workspaces.rls import workspace_context
from workspaces.services import membership_add, policy_update, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HERE = Path(__file__).parent / "journeys"
MAIL = [HERE / "mail" / "inbox.mbox", HERE / "mail" / "eml"]
DEALS_CSV = HERE / "deals.csv"
SLUG = "fernhill"

BANT = {"budget", "authority", "need", "timeline"}
# Thread subject -> the deal it belongs to, and the BANT keys its mail states.
CLEAR = {
    "Support inbox automation - recap and next steps": ("Kestrel Pay - Support inbox automation", BANT),
    "Clinic scheduling pilot - where we landed": ("Brightmoor Health - Clinic scheduling pilot", BANT),
    "EU rollout of the shipment inbox": ("Oakridge Logistics - EU rollout", BANT),
    "Claims desk email triage - questions before we proceed": ("Tidewater Insurance - Claims desk triage", BANT),
    "Renewal for 2027": ("Pinecrest Retail - 2027 renewal", BANT - {"budget"}),
    "Moving our sales seats call": ("Quarry Labs - Sales team seats", set()),
}
AMBIGUOUS = {"Pricing question from our Budapest office", "Our service desk and your platform"}
HALCYON = {"Halcyon Foods - Invoice capture", "Halcyon Foods - Consumer care pilot"}
UNMATCHED = {"Partnership idea for the Nordics", "Inbound: email tool for a small agency"}
FRAMEWORKS = ("bant", "meddic")

# The default policy, without random audit samples (they would add review items by chance).
DEFAULT = {"audit_sample_rate": 0}
# Policy accepts what the extractor is fairly sure of, budget included: no person involved.
AUTO_ACCEPT = {"audit_sample_rate": 0, "min_confidence": 0.5, "always_review_fields": []}


# --- the operator's processes ----------------------------------------------------------


class Journey:
    """One workspace, two workers, and the operator's commands, all on the test database."""

    def __init__(self, log_dir: Path, settings, monkeypatch):
        self.log_dir = log_dir
        self.settings = settings
        self.monkeypatch = monkeypatch
        self.workers: list[RunWorker] = []
        self.env = worker_env(JOBS_RETRY_BASE_SECONDS="0.1", LOG_LEVEL="WARNING")
        self.ws = None
        self.timings: list[str] = []  # each command and each wait for the queue, in seconds

    def start(self, *, policy: dict, hubspot: PortalHubSpot | None = None, workers: int = 2) -> None:
        if hubspot is not None:  # the CRM of the commands and of the workers
            self.settings.HUBSPOT_BASE_URL = self.env["HUBSPOT_BASE_URL"] = hubspot.base_url
        self.ws = workspace_create(slug=SLUG, name="Fernhill Software", internal_domains=["fernhill.io"])
        policy_update(workspace=self.ws, document={**policy_defaults(), **policy})
        self.workers = [RunWorker(self.log_dir / f"w{n}.log", f"journey-{n}", self.env) for n in range(1, workers + 1)]

    def manage(self, *args: str, stdin: str | None = None) -> str:
        """``manage.py ARGS``: the command's own argument parsing and code, in this process
        (a Python start per command would cost more than the journey itself)."""
        started = time.monotonic()
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        out = io.StringIO()
        call_command(*args, stdout=out)
        self.timings.append(f"{args[0]} {time.monotonic() - started:.1f}")
        return out.getvalue().strip()

    def ingest(self, *paths: Path) -> str:
        return self.manage("ingest", *map(str, paths or MAIL), "--workspace", SLUG, "--no-progress")

    def import_csv(self) -> str:
        return self.manage("import_deals_csv", str(DEALS_CSV), "--workspace", SLUG)

    def connect_hubspot(self) -> str:
        return self.manage("crm_connect", "--workspace", SLUG, "--crm", "hubspot", stdin=TOKEN + "\n")

    def sync_deals(self) -> str:
        return self.manage("sync_deals", "--workspace", SLUG)

    def drain(self, timeout: float = 60) -> list[Job]:
        """Wait until no job is queued or running (each step queues the next before it ends)."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            with db.queue_role():
                jobs = list(Job.objects.order_by("id"))
            if all(j.status in ("succeeded", "failed", "cancelled") for j in jobs):
                self.timings.append(f"drain {time.monotonic() - started:.1f}")
                return jobs
            time.sleep(0.1)
        pending = [(j.task, j.status, j.attempts) for j in jobs if j.status not in ("succeeded", "failed")]
        raise AssertionError(f"the queue did not drain in {timeout}s: {pending}\n" + self.worker_logs())

    def worker_logs(self) -> str:
        return "\n".join(w.tail() for w in self.workers)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def journey(tmp_path, settings, monkeypatch):
    started = Journey(tmp_path, settings, monkeypatch)
    yield started
    started.stop()


@pytest.fixture
def portal():
    """The loopback HubSpot holding the CSV's deals with their companies and contacts."""
    with PortalHubSpot() as server:
        portal_from_csv(server, DEALS_CSV)
        yield server


# --- what the database says ----------------------------------------------------------------


@dataclass
class Snapshot:
    threads: dict[int, str]  # id -> subject
    messages: int
    deals: dict[str, dict]  # title -> crm, domain, contacts
    links: dict[str, tuple]  # subject -> (deal title, linked_by, confidence, reason)
    candidates: dict[str, list[tuple]]  # subject -> [(status, {deal titles}, [scores])]
    association_items: dict[str, list[str]]  # subject -> statuses
    review_items: Counter
    facts: dict[str, dict[str, dict]]  # deal title -> key -> current fact
    facts_total: int
    readiness: dict[tuple[str, str], tuple]  # (deal title, framework) -> (score, missing)
    accepted_threads: set[str]  # subjects with an accepted or verified value
    ledger: list[dict]
    jobs: Counter = field(default_factory=Counter)

    def counts(self) -> dict:
        return {
            "threads": len(self.threads),
            "messages": self.messages,
            "deals": len(self.deals),
            "links": sorted((s, d, by, c) for s, (d, by, c, _) in self.links.items()),
            "candidates": sorted((s, c[0], tuple(sorted(c[1]))) for s, cs in self.candidates.items() for c in cs),
            "review items": dict(self.review_items),
            "facts": self.facts_total,
            "current facts": {d: sorted(k) for d, k in self.facts.items()},
            "readiness": dict(self.readiness),
            "ledger": sorted((r["key"], r["status"], r["hash"]) for r in self.ledger),
        }


def snapshot(ws) -> Snapshot:
    with workspace_context(ws):
        threads = {t.pk: t.subject for t in Thread.objects.all()}
        deals = {
            d.pk: {"title": d.title, "crm": d.crm, "domain": d.primary_domain, "contacts": sorted(d.contact_emails)}
            for d in Deal.objects.all()
        }
        title = {pk: d["title"] for pk, d in deals.items()}
        links = {
            threads[link.thread_id]: (title[link.deal_id], link.linked_by, link.link_confidence, link.link_reason)
            for link in ThreadLink.objects.all()
        }
        candidates: dict[str, list[tuple]] = {}
        for c in AssociationCandidate.objects.order_by("pk"):
            candidates.setdefault(threads[c.thread_id], []).append(
                (c.status, {title[r["deal_id"]] for r in c.candidates_json}, [r["score"] for r in c.candidates_json])
            )
        association_items: dict[str, list[str]] = {}
        for item in ReviewItem.objects.filter(reason=ReviewItem.Reason.ASSOCIATION):
            association_items.setdefault(threads[item.thread_id], []).append(item.status)
        review_items = Counter(ReviewItem.objects.values_list("reason", "status"))
        facts: dict[str, dict[str, dict]] = {}
        for f in DealFact.objects.filter(status=DealFact.Status.CURRENT):
            facts.setdefault(title[f.deal_id], {})[f.key] = {
                "value": f.value_json,
                "confirmed": f.confirmed,
                "threads": {e.get("thread_id") for e in f.evidence_json},
            }
        readiness = {
            (title[r.deal_id], r.framework): (round(r.readiness_score, 4), sorted(r.missing_keys))
            for r in DealReadiness.objects.all()
        }
        accepted = set(
            FieldValue.objects.filter(status__in=[FieldValue.Status.ACCEPTED, FieldValue.Status.VERIFIED]).values_list(
                "thread_id", flat=True
            )
        )
        ledger = [
            {
                "thread": threads.get(w.thread_id),
                "action": w.action,
                "status": w.status,
                "crm": w.crm,
                "key": w.idempotency_key,
                "hash": w.payload_hash,
            }
            for w in CrmWriteLog.objects.order_by("pk")
        ]
        snap = Snapshot(
            threads=threads,
            messages=Message.objects.count(),
            deals={d["title"]: d for d in deals.values()},
            links=links,
            candidates=candidates,
            association_items=association_items,
            review_items=review_items,
            facts=facts,
            facts_total=DealFact.objects.count(),
            readiness=readiness,
            accepted_threads={threads[t] for t in accepted},
            ledger=ledger,
        )
    with db.queue_role():
        snap.jobs = Counter(Job.objects.values_list("task", "status"))
    return snap


def report(name: str, journey: Journey, snap: Snapshot, hubspot: PortalHubSpot | None = None) -> None:
    """The figures, for ``pytest -s``."""
    out = [f"\n=== {name}", "seconds: " + ", ".join(journey.timings)]
    journey.timings.clear()
    out.append(
        f"threads {len(snap.threads)}, messages {snap.messages}, deals {len(snap.deals)}, links {len(snap.links)}, "
        f"association candidates {sum(len(c) for c in snap.candidates.values())}, "
        f"current facts {sum(len(k) for k in snap.facts.values())} (all {snap.facts_total}), "
        f"readiness rows {len(snap.readiness)}, ledger rows {len(snap.ledger)}"
    )
    out.append("jobs: " + ", ".join(f"{t} {s} x{n}" for (t, s), n in sorted(snap.jobs.items())))
    out.append("review items: " + ", ".join(f"{r}/{s} x{n}" for (r, s), n in sorted(snap.review_items.items())))
    for subject in sorted(snap.threads.values()):
        if subject in snap.links:
            deal, by, confidence, _ = snap.links[subject]
            line = f"link {by} {confidence:.2f} -> {deal}"
        elif subject in snap.candidates:
            line = "; ".join(
                f"candidate {status}: " + ", ".join(sorted(deals)) + f" (scores {scores})"
                for status, deals, scores in snap.candidates[subject]
            )
        else:
            line = "unlinked"
        out.append(f"  {subject[:48]:48} {line}")
    for (deal, framework), (score, missing) in sorted(snap.readiness.items()):
        out.append(f"  readiness {deal[:40]:40} {framework:6} {score:.2f} missing {missing}")
    per_thread = Counter((r["thread"], r["action"], r["status"]) for r in snap.ledger)
    for (thread, action, status), n in sorted(per_thread.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        out.append(f"  ledger {str(thread)[:48]:48} {action} {status} x{n}")
    if hubspot is not None:
        keys = {r["key"]: r for r in snap.ledger}
        notes = Counter(
            keys.get(n["properties"].get("threadline_idempotency_key"), {}).get("thread")
            for n in hubspot.notes.values()
        )
        out.append(f"  hubspot writes per key -> keys: {dict(Counter(hubspot.writes.values()))}")
        out.append(f"  hubspot notes per thread: {dict(notes)}")
    print("\n".join(out))


# --- expectations ------------------------------------------------------------------------


class Expect:
    """Every expectation of a journey is checked; the test fails at the end with all that did not hold."""

    def __init__(self, name: str):
        self.name = name
        self.failed: list[str] = []

    def __call__(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failed.append(what)
        return ok

    def done(self) -> None:
        if self.failed:
            print(f"--- {self.name}: {len(self.failed)} expectations failed:\n  " + "\n  ".join(self.failed))
        assert not self.failed, f"{self.name}: {len(self.failed)} expectations failed:\n" + "\n".join(self.failed)


def expect_jobs_succeeded(expect: Expect, journey: Journey, snap: Snapshot) -> None:
    bad = {k: n for k, n in snap.jobs.items() if k[1] != "succeeded"}
    expect(not bad, f"every job succeeded, got {bad}\n{journey.worker_logs()}" if bad else "")


def expect_mirror(expect: Expect, snap: Snapshot, *, crm: str) -> None:
    """The mirror holds every deal with what linking needs: the customer's domain and people."""
    with DEALS_CSV.open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    expect(len(snap.deals) == len(rows), f"{len(rows)} deals mirrored, got {len(snap.deals)}")
    for row in rows:
        deal = snap.deals.get(row["title"])
        if not expect(deal is not None, f"deal {row['title']!r} mirrored"):
            continue
        expect(deal["crm"] == crm, f"{row['title']}: crm {crm!r}, got {deal['crm']!r}")
        expect(
            deal["domain"] == row["primary_domain"],
            f"{row['title']}: primary_domain {row['primary_domain']!r}, got {deal['domain']!r}",
        )
        contacts = sorted(row["contact_emails"].split(";"))
        expect(deal["contacts"] == contacts, f"{row['title']}: contact_emails {contacts}, got {deal['contacts']}")


def expect_outcome(expect: Expect, snap: Snapshot, *, budget: bool) -> None:
    """Clear threads linked to their deal, ambiguous ones with a person, strangers left alone,
    facts and readiness for the deals whose threads state BANT values. ``budget``: whether
    budget values stand (auto-accepted, or approved by a person)."""
    subjects = set(snap.threads.values())
    expected_subjects = set(CLEAR) | AMBIGUOUS | UNMATCHED
    expect(subjects == expected_subjects, f"threads {sorted(expected_subjects)}, got {sorted(subjects)}")
    for subject, (deal, _) in CLEAR.items():
        link = snap.links.get(subject)
        if expect(link is not None, f"clear thread {subject!r} linked to {deal!r}, got no link"):
            expect(link[0] == deal, f"clear thread {subject!r} linked to {deal!r}, got {link[0]!r}")
            expect(link[1] == "auto" and link[2] >= 0.75, f"{subject!r}: auto link at >= 0.75, got {link[1:3]}")
        expect(subject not in snap.candidates, f"clear thread {subject!r}: no association candidate")
    for subject in AMBIGUOUS:
        expect(subject not in snap.links, f"ambiguous thread {subject!r}: no link, got {snap.links.get(subject)}")
        candidates = snap.candidates.get(subject, [])
        open_ones = [c for c in candidates if c[0] == "open"]
        expect(
            len(candidates) == 1 and len(open_ones) == 1 and open_ones[0][1] == HALCYON,
            f"ambiguous thread {subject!r}: one open candidate with both Halcyon deals, got {candidates}",
        )
        expect(
            snap.association_items.get(subject) == ["open"],
            f"ambiguous thread {subject!r}: one open association review item, got {snap.association_items.get(subject)}",
        )
    for subject in UNMATCHED:
        expect(subject not in snap.links, f"unmatched thread {subject!r}: no link, got {snap.links.get(subject)}")
        expect(subject not in snap.candidates, f"unmatched thread {subject!r}: no candidate")
        expect(subject not in snap.association_items, f"unmatched thread {subject!r}: no association item")

    wanted = {}
    for subject, (deal, keys) in CLEAR.items():
        keys = keys if budget else keys - {"budget"}
        if keys:
            wanted[deal] = (subject, keys)
    expect(set(snap.facts) == set(wanted), f"facts for {sorted(wanted)}, got facts for {sorted(snap.facts)}")
    for deal, (subject, keys) in wanted.items():
        facts = snap.facts.get(deal, {})
        expect(set(facts) == keys, f"{deal}: current facts {sorted(keys)}, got {sorted(facts)}")
        thread_ids = {pk for pk, s in snap.threads.items() if s == subject}
        for key, fact in facts.items():
            expect(fact["threads"] == thread_ids, f"{deal}: {key} fact's evidence from its thread")
        for framework in FRAMEWORKS:
            row = snap.readiness.get((deal, framework))
            if expect(row is not None, f"{deal}: a {framework} readiness row"):
                expect(row[0] > 0, f"{deal}: {framework} readiness above 0, got {row[0]}")
        bant = snap.readiness.get((deal, "bant"))
        if bant is not None:
            expect(bant[1] == sorted(BANT - keys), f"{deal}: BANT missing {sorted(BANT - keys)}, got {bant[1]}")
    others = {d for d, _ in snap.readiness} - set(wanted)
    expect(not others, f"no readiness rows for deals without facts, got {sorted(others)}")


def expect_ledger(expect: Expect, snap: Snapshot, *, status: str, crm: str) -> None:
    """Every thread with accepted values has its writes on the ledger: the contact, and for a
    linked thread its deal and one note."""
    with_rows = {r["thread"] for r in snap.ledger}
    expect(
        with_rows == snap.accepted_threads,
        f"ledger rows for every thread with accepted values: missing {sorted(snap.accepted_threads - with_rows)}, "
        f"extra {sorted(with_rows - snap.accepted_threads)}",
    )
    statuses = Counter(r["status"] for r in snap.ledger)
    expect(set(statuses) <= {status}, f"every ledger row {status!r}, got {dict(statuses)}")
    expect({r["crm"] for r in snap.ledger} <= {crm}, f"every ledger row for crm {crm!r}")
    for subject in snap.accepted_threads:
        actions = Counter(r["action"] for r in snap.ledger if r["thread"] == subject)
        expect(actions["upsert_contact"] == 1, f"{subject!r}: one upsert_contact row, got {actions['upsert_contact']}")
        if subject in snap.links:
            expect(actions["create_note"] == 1, f"{subject!r}: one create_note row, got {actions['create_note']}")
            deal_values = 1 if CLEAR.get(subject, ("", set()))[1] else 0  # amount, close date, description
            expect(
                actions["update_deal"] == deal_values,
                f"{subject!r}: {deal_values} update_deal row, got {actions['update_deal']}",
            )
        else:
            expect(not actions["create_note"] and not actions["update_deal"], f"{subject!r}: unlinked, no deal writes")


# --- the journeys ------------------------------------------------------------------------


def test_mail_first_then_deals_from_csv(journey):
    journey.start(policy=DEFAULT)
    print("\n" + journey.ingest())
    journey.drain()
    before = snapshot(journey.ws)
    print(journey.import_csv())
    journey.drain()
    snap = snapshot(journey.ws)
    report("1. mail first, then deals from CSV", journey, snap)

    expect = Expect("mail first, CSV deals second")
    expect(not before.links and not before.candidates, "no deals yet: nothing linked")
    expect_jobs_succeeded(expect, journey, snap)
    expect_mirror(expect, snap, crm="csv")
    expect_outcome(expect, snap, budget=False)
    expect.done()


def test_mail_first_then_deals_from_hubspot_sync(journey, portal):
    journey.start(policy={**DEFAULT, "crm": "hubspot"}, hubspot=portal)
    print("\n" + journey.connect_hubspot())
    print(journey.ingest())
    journey.drain()
    print(journey.sync_deals())
    journey.drain()
    snap = snapshot(journey.ws)
    report("2. mail first, then deals from the HubSpot mirror sync", journey, snap)

    expect = Expect("mail first, HubSpot deals second")
    expect_jobs_succeeded(expect, journey, snap)
    expect_mirror(expect, snap, crm="hubspot")
    expect_outcome(expect, snap, budget=False)
    expect.done()


def test_deals_first_then_mail_from_csv(journey):
    journey.start(policy=DEFAULT)
    print("\n" + journey.import_csv())
    journey.drain()
    print(journey.ingest())
    journey.drain()
    snap = snapshot(journey.ws)
    report("3. deals from CSV first, then mail", journey, snap)

    expect = Expect("CSV deals first, mail second")
    expect_jobs_succeeded(expect, journey, snap)
    expect_mirror(expect, snap, crm="csv")
    expect_outcome(expect, snap, budget=False)
    expect.done()


def maildirpp_store(root: Path) -> dict[str, int]:
    """The journey's mail as Dovecot keeps it: INBOX at the root, what Fernhill sent in .Sent,
    the .eml files in .Customers.Accounts, with Dovecot's own files beside them."""
    from threads.ingest.parse import message_parse
    from threads.ingest.sources import MailWalk

    counts: Counter = Counter()
    for n, item in enumerate(MailWalk(MAIL)):
        sent = message_parse(item.raw).from_email.endswith("@fernhill.io")
        folder = ".Sent" if sent else ".Customers.Accounts" if item.source.startswith("file:") else ""
        box = root / folder if folder else root
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        (box / ("cur" if n % 2 else "new") / f"{1700000000 + n}.M{n}P1.host:2,S").write_bytes(item.raw)
        counts[folder.lstrip(".").replace(".", "/") or "INBOX"] += 1
        if folder:
            (box / "maildirfolder").write_bytes(b"")
    (root / "dovecot-uidlist").write_bytes(b"3 V1700000000 N1\n")
    (root / "dovecot.index.log").write_bytes(b"\x01\x02\x00\x00" * 8)
    return dict(counts)


def test_deals_first_then_mail_from_a_maildirpp_store(journey, tmp_path):
    """The same mail kept as Dovecot keeps it: every message read, its folder kept, and the
    stages after ingest (extraction, linking, facts) come out as from the mbox."""
    store = tmp_path / "Maildir"
    folders = maildirpp_store(store)
    journey.start(policy=DEFAULT)
    print("\n" + journey.import_csv())
    journey.drain()
    out = journey.ingest(store)
    print(out)
    journey.drain()
    snap = snapshot(journey.ws)
    report("3b. deals from CSV first, then mail from a Maildir++ store", journey, snap)

    expect = Expect("CSV deals first, mail from Maildir++ second")
    total = sum(folders.values())
    # Beside the messages: dovecot-uidlist, dovecot.index.log and a maildirfolder in each dot-folder.
    expect(f"read {total} messages from {total} of {total + 4} files" in out, f"every message read: {out}")
    expect("skipped 4 files (mail store index 4)" in out, "Dovecot's files listed as skipped")
    with workspace_context(journey.ws):
        stored = Counter(Message.objects.values_list("folder", flat=True))
    expect(stored == Counter(folders), f"folders kept: {dict(stored)} vs {folders}")
    expect_jobs_succeeded(expect, journey, snap)
    expect_mirror(expect, snap, crm="csv")
    expect_outcome(expect, snap, budget=False)
    expect.done()


def test_both_twice_change_nothing(journey):
    """Deals and mail, a reviewer approves the budgets (so the ledger has rows), then the
    same deals and the same mail again: nothing changes."""
    journey.start(policy={**DEFAULT, "undo_window_seconds": 0})
    reviewer = UserFactory(username="rita")
    membership_add(workspace=journey.ws, user=reviewer, role="reviewer")
    print("\n" + journey.import_csv())
    print(journey.ingest())
    journey.drain()
    with workspace_context(journey.ws, user=reviewer):
        budgets = list(ReviewItem.objects.filter(status="open", field_value__field_key="budget"))
        for item in budgets:
            review_item_resolve(item_id=item.pk, reviewer=reviewer, decision="approve", version=item.version)
    journey.drain()
    once = snapshot(journey.ws)
    report("4a. deals, mail, budgets approved by a person", journey, once)

    print(journey.import_csv())
    print(journey.ingest())
    journey.drain()
    twice = snapshot(journey.ws)
    report("4b. the same deals and the same mail again", journey, twice)

    expect = Expect("both twice")
    expect(len(budgets) == 6, f"six budget values waited for a person, got {len(budgets)}")
    expect_jobs_succeeded(expect, journey, twice)
    expect_outcome(expect, once, budget=True)
    expect(bool(once.ledger), "the approvals put the threads' writes on the ledger (dry run)")
    for name, first in once.counts().items():
        again = twice.counts()[name]
        expect(again == first, f"{name} unchanged by the second import: {first} -> {again}")
    expect.done()


def test_auto_accepted_values_reach_the_ledger_in_dry_run(journey):
    journey.start(policy=AUTO_ACCEPT)
    print("\n" + journey.import_csv())
    print(journey.ingest())
    journey.drain()
    snap = snapshot(journey.ws)
    report("5a. auto-accept, dry run: no person involved", journey, snap)

    expect = Expect("auto-accepted values, dry run")
    expect_jobs_succeeded(expect, journey, snap)
    expect_outcome(expect, snap, budget=True)
    for_a_person = {k: n for k, n in snap.review_items.items() if k[0] != "association"}
    expect(not for_a_person, f"no value waits for a person, got {for_a_person}")
    expect(len(snap.accepted_threads) >= 8, f"values accepted on most threads, got {sorted(snap.accepted_threads)}")
    expect_ledger(expect, snap, status="dry_run", crm="dry_run")
    expect.done()


def test_auto_accepted_values_reach_hubspot_in_sync_mode(journey, portal):
    journey.start(policy={**AUTO_ACCEPT, "crm": "hubspot", "crm_mode": "sync"}, hubspot=portal)
    print("\n" + journey.connect_hubspot())
    print(journey.sync_deals())
    journey.drain()
    print(journey.ingest())
    journey.drain()
    snap = snapshot(journey.ws)
    report("5b. auto-accept, sync to the loopback HubSpot: no person involved", journey, snap, hubspot=portal)

    expect = Expect("auto-accepted values, HubSpot sync")
    expect_jobs_succeeded(expect, journey, snap)
    expect_mirror(expect, snap, crm="hubspot")
    expect_outcome(expect, snap, budget=True)
    expect_ledger(expect, snap, status="sent", crm="hubspot")
    keys = {r["key"]: r for r in snap.ledger}
    expect(bool(keys), "writes reached the ledger")
    expect(set(portal.writes) == set(keys), f"the server saw exactly the ledger's keys, got {len(portal.writes)}")
    twice = {k: n for k, n in portal.writes.items() if n != 1}
    expect(not twice, f"each key written once at the server, got {twice}")
    notes = Counter(
        keys.get(n["properties"].get("threadline_idempotency_key"), {}).get("thread") for n in portal.notes.values()
    )
    linked_with_values = {s for s in snap.links if s in snap.accepted_threads}
    expect(
        notes == Counter(linked_with_values),
        f"one note per linked thread with values ({len(linked_with_values)}), got {dict(notes)}",
    )
    expect.done()


def test_two_quick_approvals_on_a_thread_write_each_key_once_with_four_workers(journey, portal):
    """Two reviewers' approvals on one thread, well under a second apart, for every thread
    with two values waiting; four workers, HubSpot taking 0.3 s per write. The two decisions
    share one CRM sync per thread (due after the later one's undo window), so each key
    reaches HubSpot once and each thread gets one note."""
    journey.start(
        policy={
            **DEFAULT,
            "crm": "hubspot",
            "crm_mode": "sync",
            "undo_window_seconds": 1,
            "always_review_fields": sorted(BANT),  # several values per thread wait for a person
        },
        hubspot=portal,
        workers=4,
    )
    rita, rob = UserFactory(username="rita"), UserFactory(username="rob")
    for person in (rita, rob):
        membership_add(workspace=journey.ws, user=person, role="reviewer")
    print("\n" + journey.connect_hubspot())
    print(journey.sync_deals())
    journey.drain()
    print(journey.ingest())
    journey.drain()
    portal.write_delay = 0.3
    notes_before, writes_before = set(portal.notes), Counter(portal.writes)
    with db.queue_role():
        last_job = Job.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    pairs = []
    with workspace_context(journey.ws):
        open_values = ReviewItem.objects.filter(status="open", field_value__isnull=False).order_by("thread_id", "pk")
        by_thread: dict[int, list[ReviewItem]] = {}
        for item in open_values:
            by_thread.setdefault(item.thread_id, []).append(item)
        pairs = [items[:2] for thread_id, items in sorted(by_thread.items()) if len(items) >= 2]
    gaps = []
    for first, second in pairs:
        started = time.monotonic()
        with workspace_context(journey.ws, user=rita):
            review_item_resolve(item_id=first.pk, reviewer=rita, decision="approve", version=first.version)
        time.sleep(0.2)
        with workspace_context(journey.ws, user=rob):
            review_item_resolve(item_id=second.pk, reviewer=rob, decision="approve", version=second.version)
        gaps.append(time.monotonic() - started)
    journey.drain(timeout=120)
    snap = snapshot(journey.ws)
    report("6. two approvals per thread under a second apart, four workers, 0.3 s per CRM write", journey, snap, portal)
    with db.queue_role():
        syncs = Counter(
            Job.objects.filter(workspace_id=journey.ws.pk, task="crm_sync_thread", pk__gt=last_job).values_list(
                "payload__thread_id", flat=True
            )
        )
    keys = {r["key"]: r for r in snap.ledger}
    twice = {k: n for k, n in portal.writes.items() if n != 1}
    decided = {first.thread_id for first, _ in pairs}
    subjects = {t: s for t, s in snap.threads.items()}
    linked = {subjects[t] for t in decided if subjects[t] in snap.links}
    notes = Counter(
        keys.get(n["properties"].get("threadline_idempotency_key"), {}).get("thread")
        for note_id, n in portal.notes.items()
        if note_id not in notes_before
    )
    new_writes = sum(portal.writes.values()) - sum(writes_before.values())
    print(
        f"threads with two approvals {len(pairs)} ({len(linked)} linked), longest gap {max(gaps, default=0):.2f} s; "
        f"ledger keys {len(keys)}, writes at HubSpot {sum(portal.writes.values())} ({new_writes} after the "
        f"approvals), keys written twice {len(twice)}; notes after the approvals {dict(notes)}; "
        f"crm_sync_thread jobs per decided thread {sorted(syncs[t] for t in decided)}"
    )

    expect = Expect("two approvals, four workers")
    expect(len(pairs) >= 5, f"at least five threads with two values waiting, got {len(pairs)}")
    expect(max(gaps, default=0) < 1, f"approvals under a second apart, got {max(gaps, default=0):.2f} s")
    expect_jobs_succeeded(expect, journey, snap)
    expect(bool(keys) and set(portal.writes) == set(keys), "the server saw exactly the ledger's keys")
    expect(not twice, f"each key written once at the server, got {twice}")
    expect(bool(linked), "some of the decided threads are linked to a deal (so they write notes)")
    expect(notes == Counter(linked), f"one new note per decided linked thread ({len(linked)}), got {dict(notes)}")
    expect(
        all(syncs[t] == 1 for t in decided),
        f"the two decisions share one CRM sync job per thread, got {[syncs[t] for t in decided]}",
    )
    expect({r["status"] for r in snap.ledger} == {"sent"}, "every ledger row sent")
    expect.done()
