"""``manage.py runworker``: a thin command around jobs.worker.Worker."""

from django.core.management.base import BaseCommand, CommandError

from jobs.registry import autodiscover
from jobs.worker import Worker


class Command(BaseCommand):
    help = "Run queued jobs until stopped (SIGTERM: finish the current job, release the rest)."

    def add_arguments(self, parser):
        parser.add_argument("--batch", action="store_true", help="Run the jobs that are due, then exit.")
        parser.add_argument("--max-jobs", type=int, help="Exit after this many jobs.")
        parser.add_argument("--tasks", help="Comma-separated task names to run (default: all registered).")
        parser.add_argument("--prefetch", type=int, help="Jobs claimed per round trip (JOBS_PREFETCH).")
        parser.add_argument("--lease-seconds", type=float, help="Lease length (JOBS_LEASE_SECONDS).")
        parser.add_argument("--poll-seconds", type=float, help="Longest idle wait (JOBS_POLL_SECONDS).")
        parser.add_argument("--shutdown-timeout", type=float, help="Grace for the current job on SIGTERM.")
        parser.add_argument("--no-listen", action="store_true", help="Poll only, no LISTEN (e.g. behind a pooler).")
        parser.add_argument(
            "--batch-max", type=int, help="Most jobs of a batched task run together (JOBS_BATCH_MAX; 1: none)."
        )
        parser.add_argument("--worker-id", help="Name in locked_by and the logs (default host:pid:random).")

    def handle(self, *args, **options):
        registered = autodiscover()
        tasks = registered
        if options["tasks"]:
            tasks = [name.strip() for name in options["tasks"].split(",") if name.strip()]
            unknown = sorted(set(tasks) - set(registered))
            if unknown:
                raise CommandError(f"unknown tasks: {', '.join(unknown)} (registered: {', '.join(registered)})")
        worker = Worker(
            tasks=tasks,
            batch=options["batch"],
            max_jobs=options["max_jobs"],
            prefetch=options["prefetch"],
            lease_seconds=options["lease_seconds"],
            poll_seconds=options["poll_seconds"],
            shutdown_timeout=options["shutdown_timeout"],
            listen=not options["no_listen"],
            worker_id=options["worker_id"],
            batch_max=options["batch_max"],
        )
        worker.run()
