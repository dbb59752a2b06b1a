"""``manage.py jobs_status``: queue depth per status and task, oldest queued job, failures."""

from django.core.management.base import BaseCommand

from jobs import db
from jobs.models import Job
from jobs.selectors import jobs_failed_list, jobs_running_list, queue_stats


class Command(BaseCommand):
    help = "Show the job queue of every workspace: depth per status and task, lag, failures."

    def add_arguments(self, parser):
        parser.add_argument("--failed", type=int, default=10, help="How many failed jobs to list.")

    def handle(self, *args, **options):
        # The queue role sees every workspace's jobs (jobs/sql/queue_role.sql); read-only here.
        with db.queue_role():
            stats, failed, running = queue_stats(), jobs_failed_list(limit=options["failed"]), jobs_running_list()
        statuses = Job.Status.values
        self.stdout.write(f"{'task':<32}" + "".join(f"{s:>11}" for s in statuses))
        for task, counts in stats.by_task.items():
            self.stdout.write(f"{task:<32}" + "".join(f"{counts[s]:>11}" for s in statuses))
        self.stdout.write(f"{'total':<32}" + "".join(f"{stats.by_status[s]:>11}" for s in statuses))
        self.stdout.write(
            f"oldest queued job: {_age(stats.oldest_queued_age)}; "
            f"longest wait of a due job: {_age(stats.oldest_due_wait)}"
        )
        for job in running:
            self.stdout.write(
                f"running  #{job.pk} {job.task} ws={job.workspace_id} attempt {job.attempts} "
                f"by {job.locked_by}, lease until {job.lease_expires_at:%H:%M:%S}"
            )
        for job in failed:
            error = (job.last_error.splitlines() or [""])[0][:100]
            when = f"{job.finished_at:%Y-%m-%d %H:%M}"
            self.stdout.write(
                f"failed   #{job.pk} {job.task} ws={job.workspace_id} at {when} after {job.attempts} attempts: {error}"
            )


def _age(delta) -> str:
    return "-" if delta is None else f"{delta.total_seconds():.1f}s"
