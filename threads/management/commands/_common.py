"""Shared by the threads management commands."""

from django.core.management.base import CommandError

from workspaces.models import Workspace


def workspace_get(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise CommandError(f"No workspace with slug {slug!r}.")
    return workspace


def summary_lines(summary, *, listed: int = 50) -> list[str]:
    """An import's summary for a terminal: the counts, then each skipped file with its reason."""
    s = summary
    files = f" from {s.files_read} of {s.files_seen} files" if s.files_seen else ""
    lines = [
        f"read {s.read} messages{files}: new {s.new}, duplicate {s.duplicate}, conflict {s.conflict}, "
        f"failed {s.failed}; threads changed {s.threads_changed}; {s.seconds:.1f} seconds"
    ]
    if s.skipped_count:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(s.skipped_by_reason.items()))
        lines.append(f"skipped {s.skipped_count} file{'s' if s.skipped_count != 1 else ''} ({reasons}):")
        lines += [f"  skipped: {entry['reason']}: {entry['path']}" for entry in s.skipped[:listed]]
        if s.skipped_count > listed:
            lines.append(
                f"  … and {s.skipped_count - listed} more, listed in the admin under Mail imports (#{s.import_id})"
            )
    if s.failed:
        lines.append("failed messages are kept with their reason: admin → Messages, filter 'Parse status: Failed'")
    if s.conflict:
        lines.append("conflicts (a Message-ID reused with other content) wait in the admin under Message conflicts")
    return lines
