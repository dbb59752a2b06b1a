"""Show how linking would change over past threads under another policy, writing nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from deals import selectors
from deals.models import AssociationCandidate, ThreadLink
from deals.services import thread_link_plan
from threads.models import Thread
from workspaces.models import Workspace
from workspaces.policy import PolicyError, policy_validate
from workspaces.rls import workspace_context
from workspaces.selectors import policy_for

OUTCOMES = ("link", "review", "none", "reviewer")
LABELS = {"link": "auto-linked", "review": "sent to review", "none": "unlinked", "reviewer": "kept (a person chose)"}


class Command(BaseCommand):
    help = (
        "Compare thread-to-deal linking under the workspace's policy and under a policy file "
        "(JSON, validated like a saved policy) over the workspace's threads. Read-only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("--policy", required=True, help="JSON policy file to simulate.")
        parser.add_argument("--limit", type=int, default=None, help="Only the N most recent threads.")
        parser.add_argument("--show", type=int, default=20, help="How many changed threads to list.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['workspace']!r}")
        try:
            simulated_policy = policy_validate(json.loads(Path(options["policy"]).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"cannot read {options['policy']}: {exc}") from exc
        except PolicyError as exc:
            raise CommandError(f"invalid policy: {exc}") from exc
        with workspace_context(workspace):
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")  # the database refuses any write
            result = simulate(
                current_policy=policy_for(workspace_id=workspace.pk),
                simulated_policy=simulated_policy,
                limit=options["limit"],
            )
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, default=str))
        else:
            self._print(result, options["show"])

    def _print(self, result: dict, show: int) -> None:
        p = result["policies"]
        self.stdout.write(
            f"{result['threads']} threads, {result['deals']} deals. "
            f"current: threshold {p['current']['auto_link_threshold']}, margin {p['current']['auto_link_margin']}; "
            f"simulated: threshold {p['simulated']['auto_link_threshold']}, margin {p['simulated']['auto_link_margin']}"
        )
        self.stdout.write(f"{'':24}{'stored now':>12}{'current':>10}{'simulated':>11}{'change':>8}")
        for outcome in OUTCOMES:
            row = [result[col].get(outcome, 0) for col in ("stored", "current", "simulated")]
            self.stdout.write(f"{LABELS[outcome]:<24}{row[0]:>12}{row[1]:>10}{row[2]:>11}{row[2] - row[1]:>+8}")
        self.stdout.write(f"changed threads: {len(result['changed'])}")
        for change in result["changed"][:show]:
            self.stdout.write(
                f"  #{change['thread_id']} {change['subject'][:50]!r}: {change['current']} -> {change['simulated']}"
            )
        self.stdout.write("Nothing was written.")


def simulate(*, current_policy: dict, simulated_policy: dict, limit: int | None = None) -> dict:
    """Counts of outcomes stored now, under the current policy and under the simulated one."""
    deals = selectors.deal_facts_all()
    titles = {d.id: d.title for d in deals}
    threads = Thread.objects.order_by("-last_message_at", "-pk")
    if limit:
        threads = threads[:limit]
    linked = dict(ThreadLink.objects.values_list("thread_id", "deal_id"))
    in_review = set(
        AssociationCandidate.objects.filter(status=AssociationCandidate.Status.OPEN).values_list("thread_id", flat=True)
    )
    counts = {"stored": Counter(), "current": Counter(), "simulated": Counter()}
    changed, total = [], 0
    for thread in threads:
        total += 1
        counts["stored"]["link" if thread.pk in linked else "review" if thread.pk in in_review else "none"] += 1
        if selectors.reviewer_decided(thread_id=thread.pk):
            counts["current"]["reviewer"] += 1
            counts["simulated"]["reviewer"] += 1
            continue
        outcomes = {}
        for name, policy in (("current", current_policy), ("simulated", simulated_policy)):
            _, decision = thread_link_plan(thread=thread, policy=policy, deals=deals)
            counts[name][decision.outcome] += 1
            outcomes[name] = _describe(decision, titles)
        if outcomes["current"] != outcomes["simulated"]:
            changed.append({"thread_id": thread.pk, "subject": thread.subject, **outcomes})
    return {
        "threads": total,
        "deals": len(deals),
        "policies": {
            name: {k: p[k] for k in ("auto_link_threshold", "auto_link_margin")}
            for name, p in (("current", current_policy), ("simulated", simulated_policy))
        },
        **{name: dict(c) for name, c in counts.items()},
        "changed": changed,
    }


def _describe(decision, titles: dict[int, str]) -> str:
    if decision.outcome == "link":
        return f"linked to {titles[decision.best.deal_id]!r} ({decision.best.score:.2f})"
    if decision.outcome == "review":
        return "review of " + ", ".join(f"{titles[c.deal_id]!r} {c.score:.2f}" for c in decision.candidates)
    return "unlinked"
