"""``manage.py prune_jobs --older-than 7d``: delete finished jobs to keep the queue table small."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from jobs.models import Job
from jobs.services import jobs_prune

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if not match:
        raise CommandError(f"--older-than {text!r}: use a number and a unit, e.g. 7d, 12h, 30m")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = "Delete succeeded and cancelled jobs (and with --include-failed, failed ones) finished before then."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", default="7d", help="Age of finished jobs to delete (7d, 12h, 30m).")
        parser.add_argument("--include-failed", action="store_true", help="Delete failed jobs too.")

    def handle(self, *args, **options):
        statuses = [Job.Status.SUCCEEDED, Job.Status.CANCELLED]
        if options["include_failed"]:
            statuses.append(Job.Status.FAILED)
        deleted = jobs_prune(older_than=parse_age(options["older_than"]), statuses=statuses)
        self.stdout.write(f"deleted {deleted} jobs finished more than {options['older_than']} ago")
