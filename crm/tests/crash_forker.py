"""Tests only: one Django process that forks a child per sync, so that a crash test can kill
a hundred real senders in seconds instead of paying an interpreter and Django start-up
(seconds each here) per kill, as gunicorn's --preload does for its workers.

    python -m crm.tests.crash_forker      # reads "<workspace id> <thread id> <crash point>" lines

Each line forks a child that runs ``crm_sync_thread`` with ``THREADLINE_CRM_CRASH`` set to the
crash point ("-" for none); the child opens its own database connection and HTTP client and,
at the crash point, dies with ``os._exit`` (nothing committed, nothing cleaned up). The parent
never opens a database connection (a forked child must not share one), waits for the child
and prints its exit code (137: killed at the crash point; 0: it finished; 1: an error, whose
traceback goes to standard error). The environment (DATABASE_NAME, HUBSPOT_BASE_URL,
CRM_SEND_LEASE_SECONDS) is the test's.
"""

import os
import sys
import traceback


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connections

    from crm.services import CRASH_ENV, crm_sync_thread

    print("ready", flush=True)
    for line in sys.stdin:
        workspace_id, thread_id, crash = line.split()
        connections.close_all()  # nothing open to share with the child
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if crash != "-":
                    os.environ[CRASH_ENV] = crash
                crm_sync_thread(workspace_id=int(workspace_id), thread_id=int(thread_id))
            except BaseException:  # the parent reports it
                traceback.print_exc()
                code = 1
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    main()
