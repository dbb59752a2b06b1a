"""Raw bytes first, proved by killing real processes mid-parse.

A message whose header holds 600,000 encoded words takes a few seconds to parse (linearly).
``manage.py ingest`` is killed with SIGKILL while it parses; gunicorn, with a 1 s worker
timeout, kills its own worker while the inbound hook parses. Either way the message's raw
bytes are in the database, status ``received``, and parsing them later makes it whole.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.workers import worker_env
from threads.models import Message
from threads.services import inbound_token_rotate, mail_import, messages_reparse
from workspaces.rls import workspace_context
from workspaces.services import workspace_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORDS = 600_000


def slow_mail(tag: str) -> bytes:
    subject = " ".join(["=?utf-8?q?caf=C3=A9?="] * WORDS)
    return (
        f"From: Ana <ana@customer.example>\nTo: rep@team.example\nMessage-ID: <{tag}@x>\n"
        f"Subject: {subject}\n\nOur budget is 60k.\n"
    ).encode()


def _wait_for_received(workspace, message_id: str, proc: subprocess.Popen, timeout: float = 60) -> float:
    """Seconds until the message is stored and not yet parsed (polled every 20 ms)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with workspace_context(workspace):
            status = Message.objects.filter(message_id=message_id).values_list("parse_status", flat=True).first()
        if status == "received":
            return time.monotonic() - started
        assert status is None, f"parsed before it could be killed: {status}"
        assert proc.poll() is None, "the process ended before storing the message"
        time.sleep(0.02)
    raise AssertionError("the message was never stored")


def _assert_kept_and_parsed_later(workspace, message_id: str, raw: bytes) -> None:
    with workspace_context(workspace):
        message = Message.objects.get(message_id=message_id)
        assert message.parse_status == "received" and bytes(message.raw) == raw and message.thread_id is None
    summary = messages_reparse(workspace=workspace, message_pks=[message.pk])
    assert (summary.new, summary.failed) == (1, 0)
    with workspace_context(workspace):
        message.refresh_from_db()
        assert message.parse_status == "parsed" and message.thread_id and "60k" in message.text


def test_ingest_killed_while_parsing_keeps_the_raw_bytes(tmp_path):
    workspace = workspace_create(slug="crash", name="Crash", internal_domains=["team.example"])
    raw = slow_mail("killed")
    path = tmp_path / "slow.eml"
    path.write_bytes(raw)
    command = [sys.executable, "manage.py", "ingest", str(path), "--workspace", "crash", "--no-progress"]
    proc = subprocess.Popen(command, cwd=settings.BASE_DIR, env=worker_env(), stdout=subprocess.PIPE)
    try:
        waited = _wait_for_received(workspace, "killed@x", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"stored after {waited:.2f} s, killed while parsing")
    _assert_kept_and_parsed_later(workspace, "killed@x", raw)
    # Imported again, the file finds its stored bytes: one message, parsed, nothing twice.
    summary = mail_import(workspace=workspace, messages=[(raw, f"file:{path}")])
    assert (summary.read, summary.new, summary.duplicate) == (1, 0, 1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_web_worker_killed_by_its_timeout_keeps_the_inbound_message(tmp_path):
    workspace = workspace_create(slug="hook", name="Hook", internal_domains=["team.example"])
    token = inbound_token_rotate(workspace=workspace)
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--timeout",
        "1",  # a web worker silent for a second is killed, as a 30 s timeout kills a slower one
        "--graceful-timeout",
        "1",
    ]
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(command, cwd=settings.BASE_DIR, env=worker_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.1)
        raw = slow_mail("hook")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/inbound/hook/",
            data=raw,
            headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {token}"},
        )
        answer = None
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = response.status
        except urllib.error.HTTPError as exc:  # a proxy-less gunicorn may still answer 500 for a killed worker
            answer = exc.code
        except (urllib.error.URLError, ConnectionError):  # the worker died mid-request: no answer at all
            answer = "connection closed"
        print(f"gunicorn with a 1 s timeout answered: {answer}")
        assert answer != 201, "parsing finished within a second: the message is too small to show the crash"
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    assert "WORKER TIMEOUT" in (tmp_path / "gunicorn.log").read_text()
    _assert_kept_and_parsed_later(workspace, "hook@x", raw)


@pytest.mark.parametrize("pool", [False, True], ids=["parsed-in-process", "parsed-in-the-pool"])
def test_ingest_killed_mid_batch_keeps_every_raw_message_of_the_batch(tmp_path, pool):
    """An mbox whose one batch holds a message that takes seconds to parse: the batch's raw
    bytes are committed in one statement before parsing starts, so killing ``ingest`` (and its
    parse workers: the whole process group) mid-parse keeps all of them, and importing the
    file again parses each once."""
    from threads.tests.mail import mail

    workspace = workspace_create(slug=f"batch-crash-{int(pool)}", name="Crash", internal_domains=["team.example"])
    raws = [mail(f"before{n}@x") for n in range(30)] + [slow_mail("slow")] + [mail(f"after{n}@x") for n in range(30)]
    path = tmp_path / "box.mbox"
    path.write_bytes(b"".join(b"From x@y Mon Jan  5 09:00:00 2026\n" + raw.rstrip(b"\n") + b"\n\n" for raw in raws))
    env = {**worker_env(), "THREADLINE_INGEST_POOL_MIN": "1" if pool else "100000", "THREADLINE_INGEST_WORKERS": "2"}
    command = [sys.executable, "manage.py", "ingest", str(path), "--workspace", workspace.slug, "--no-progress"]
    proc = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with workspace_context(workspace):
                statuses = list(Message.objects.values_list("parse_status", flat=True))
            if len(statuses) == len(raws):
                break
            assert proc.poll() is None, "the import ended before the batch was stored"
            assert time.monotonic() < deadline, "the batch was never stored"
            time.sleep(0.02)
        time.sleep(0.3)  # well inside the slow message's parse
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with workspace_context(workspace):
        kept = {m.message_id: (bytes(m.raw), m.parse_status) for m in Message.objects.all()}
    assert {status for _, status in kept.values()} == {"received"}, "parsed before it could be killed"
    assert sorted(raw for raw, _ in kept.values()) == sorted(raws)
    summary = mail_import(workspace=workspace, messages=[(raw, "again") for raw in raws])
    assert (summary.read, summary.new, summary.duplicate, summary.failed) == (len(raws), len(raws), 0, 0)
    with workspace_context(workspace):
        assert Message.objects.filter(parse_status="parsed").count() == len(raws)
