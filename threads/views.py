"""Thread list, thread page, a message's HTML frame, downloads, and the HTTP inbound endpoint."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, transaction
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from threads.highlight import marks_parse, text_marked
from threads.html import CSP_IMAGES, CSP_STRICT, html_sanitize
from threads.ingest.sniff import not_mail_reason
from threads.models import InboundToken
from threads.panels import thread_panels
from threads.selectors import (
    CursorInvalid,
    ThreadCursor,
    attachment_get,
    body_display_limit,
    is_cut,
    message_column,
    message_html_head,
    message_text_whole,
    thread_get,
    thread_messages,
    thread_page,
)
from threads.services import StoredNotProcessed, message_ingest
from workspaces.models import Workspace
from workspaces.rls import workspace_context

logger = logging.getLogger(__name__)
PAGE_SIZE = 50
_DUMMY_HASH = hashlib.sha256(b"no token").hexdigest()


@login_required
@require_GET
def thread_list_view(request, workspace_slug):
    """Keyset pages (``?after=`` older, ``?before=`` newer: a cursor of the sort key and id, see
    ``thread_page``), so a deep page costs what the first does; no COUNT(*) over a large table."""
    query = request.GET.get("q", "")[:200]
    try:
        after = ThreadCursor.decode(request.GET["after"]) if request.GET.get("after") else None
        before = ThreadCursor.decode(request.GET["before"]) if request.GET.get("before") else None
    except CursorInvalid as exc:
        return HttpResponseBadRequest(f"Bad page link: {exc}. Open the thread list again from its first page.")
    page = thread_page(workspace_id=request.workspace.pk, query=query, after=after, before=before, size=PAGE_SIZE)
    context = {
        "threads": page.threads,
        "query": query,
        "next_cursor": page.next.encode() if page.next else "",
        "previous_cursor": page.previous.encode() if page.previous else "",
        "deep": after is not None or before is not None,
    }
    return render(request, "threads/thread_list.html", {**context, "nav": "threads"})


@login_required
@require_GET
def thread_detail_view(request, workspace_slug, thread_id):
    thread = thread_get(thread_id=thread_id)
    if thread is None:
        raise Http404("No such thread")
    rows = thread_messages(thread=thread)
    marks = marks_parse(request.GET.getlist("mark"))
    for message in rows:
        # Evidence spans are offsets in the reply text: only a shown reply can be marked.
        spans = marks.get(message.pk) if message.body_part == "reply" else None
        message.body_pieces = text_marked(message.body_head, spans, message_id=message.pk) if spans else None
    # Not "messages": that name belongs to the flash messages every page shows.
    return render(
        request,
        "threads/thread_detail.html",
        {
            "thread": thread,
            "thread_messages": rows,
            "thread_panels": thread_panels(thread=thread),
            "display_limit": body_display_limit(),
            "nav": "threads",
        },
    )


_CUT_NOTE = (
    '<p style="background:#fff4e5;padding:.5em;font:14px system-ui,sans-serif">This HTML was cut: '
    "showing the first {shown:,} characters of {size}. The whole HTML is a download on the thread page.</p>"
)


@login_required
@require_GET
def message_html_view(request, workspace_slug, message_id):
    """The message's HTML, sanitized, for a sandboxed iframe, with a strict CSP. A big HTML is
    cut before sanitizing (in SQL: the rest is never loaded), and the frame says so."""
    limit = body_display_limit()
    found = message_html_head(message_id=message_id, limit=limit)
    if found is None or not found[0]:
        raise Http404("No HTML")
    head, size = found
    images = request.GET.get("images") == "1"
    body = html_sanitize(head, remote_images=images)
    note = _CUT_NOTE.format(shown=limit, size=filesizeformat(size)) if is_cut(head, limit=limit, octets=size) else ""
    page = f'<!doctype html><meta charset="utf-8"><base target="_blank">{note}{body}'
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = (CSP_IMAGES if images else CSP_STRICT) + "; frame-ancestors 'self'"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _guarded(response):
    """Headers for content the browser must never run or render as a page of ours."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _download(data: bytes, *, filename: str, content_type: str) -> FileResponse:
    # Loaded whole inside the request's transaction: the row-level-security context ends with
    # it, before a streamed response would be read.
    response = FileResponse(io.BytesIO(data), as_attachment=True, filename=filename, content_type=content_type)
    return _guarded(response)


@login_required
@require_GET
def message_text_view(request, workspace_slug, message_id):
    """The whole plain text of a message (``?part=reply``: its reply), as text/plain."""
    text = message_text_whole(message_id=message_id, part=request.GET.get("part", "text"))
    if text is None:
        raise Http404("No such message")
    return _guarded(HttpResponse(text, content_type="text/plain; charset=utf-8"))


@login_required
@require_GET
def message_html_download_view(request, workspace_slug, message_id):
    """The whole HTML as sent, unsanitized: only ever a download, never rendered here."""
    html = message_column(message_id=message_id, column="html")
    if not html:
        raise Http404("No HTML")
    return _download(html.encode(), filename=f"message-{message_id}.html", content_type="application/octet-stream")


@login_required
@require_GET
def message_raw_view(request, workspace_slug, message_id):
    """The message exactly as received (RFC 5322 bytes), as an .eml download."""
    raw = message_column(message_id=message_id, column="raw")
    if raw is None:
        raise Http404("No such message")
    return _download(bytes(raw), filename=f"message-{message_id}.eml", content_type="message/rfc822")


@login_required
@require_GET
def attachment_download_view(request, workspace_slug, attachment_id):
    """A stored attachment, always as an opaque download whatever type it declares."""
    attachment = attachment_get(attachment_id=attachment_id)
    if attachment is None or not attachment.file:
        raise Http404("Attachment not stored")
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404("Attachment file missing") from None
    name = PurePosixPath(attachment.filename.replace("\\", "/")).name or f"attachment-{attachment.pk}"
    response = FileResponse(handle, as_attachment=True, filename=name, content_type="application/octet-stream")
    return _guarded(response)


def _not_stored(reason: str) -> JsonResponse:
    response = JsonResponse({"error": "not stored", "detail": reason[:500]}, status=503)
    response["Retry-After"] = "60"
    return response


def _unauthorized(reason: str) -> JsonResponse:
    response = JsonResponse({"error": "unauthorized", "detail": reason}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="threadline-inbound"'
    return response


@csrf_exempt
@transaction.non_atomic_requests
@require_POST
def inbound_view(request, workspace_slug):
    """One raw message/rfc822 per POST, authenticated by the workspace's bearer token.

    Outside any request transaction (see ``OWN_TRANSACTIONS`` in workspaces/middleware.py):
    the raw bytes are committed before parsing starts, so a worker killed mid-parse (a web
    server's timeout) loses nothing; the message waits as ``received``.
    """
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    workspace = Workspace.objects.filter(slug=workspace_slug).first()
    stored = None
    if workspace is not None:
        with workspace_context(workspace):
            stored = InboundToken.objects.filter(workspace=workspace).values_list("token_sha256", flat=True).first()
    given = hashlib.sha256(token.encode()).hexdigest()
    if not hmac.compare_digest(stored or _DUMMY_HASH, given) or not stored or not token:
        return _unauthorized("a valid 'Authorization: Bearer <token>' header is required")
    if request.content_type != "message/rfc822":
        return JsonResponse(
            {"error": "unsupported media type", "detail": "send one raw message as Content-Type: message/rfc822"},
            status=415,
        )
    limit = settings.THREADLINE_INBOUND_MAX_BYTES
    too_big = JsonResponse({"error": "too large", "detail": f"the limit is {limit} bytes"}, status=413)
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
            return too_big
    except ValueError:
        pass
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return too_big
    if not raw:
        return JsonResponse({"error": "empty body", "detail": "send one raw message as the body"}, status=400)
    reason = not_mail_reason(raw)
    if reason:  # nothing is stored of what is not mail
        return JsonResponse({"error": "not mail", "detail": reason}, status=422)
    try:
        result = message_ingest(workspace=workspace, raw=raw, source="inbound")
    except StoredNotProcessed as exc:  # the raw bytes are committed: say so rather than 500
        logger.exception("inbound message stored but not processed")
        return JsonResponse(
            {
                "status": "received",
                "message_id": exc.message_id,
                "detail": "stored; processing did not finish, an operator can retry it (admin: Parse again)",
            },
            status=202,
        )
    except DatabaseError as exc:  # nothing was stored: the sender should try again
        logger.exception("inbound message could not be stored")
        return _not_stored(f"{type(exc).__name__}: {exc}")
    if result.status == "failed" and result.message_pk is None:  # not stored: the sender should try again
        return _not_stored(result.reason)
    body = {"status": result.status, "message_id": result.message_id, "thread_id": result.thread_id}
    if result.reason:
        body["detail"] = result.reason
    # 201: a new message; 202: stored, but kept as failed or as a conflict for an operator; 200: already there.
    status = {"new": 201, "failed": 202, "conflict": 202}.get(result.status, 200)
    if result.status == "skipped":
        return JsonResponse({"error": "not mail", "detail": result.reason}, status=422)
    return JsonResponse(body, status=status)
