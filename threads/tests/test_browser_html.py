"""A message whose HTML carries scripts and event handlers renders in Chromium without
running any of them: sanitized (nh3), inside a sandboxed iframe, under a strict CSP."""

from http.server import BaseHTTPRequestHandler

import pytest

from tests.browser import requires_chromium
from tests.loopback import LoopbackServer
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE_TEMPLATE = """<html><body onload="alert('onload'); window.top.pwned = 'onload'">
<p>Quarterly pricing attached.</p>
<script>alert('script'); window.top.pwned = 'script'; fetch('http://127.0.0.1:PORT/steal')</script>
<img src="x" onerror="alert('onerror'); window.top.pwned = 'onerror'">
<a id="js-link" href="javascript:alert('href')">Open the quote</a>
<svg><script>alert('svg')</script></svg>
<iframe src="javascript:alert('iframe')"></iframe>
<div style="background:url(http://127.0.0.1:PORT/track.png)">styled</div>
<img src="http://127.0.0.1:PORT/pixel.gif" alt="tracking pixel">
</body></html>"""


@pytest.fixture
def tracker():
    """A loopback server that records every request the page's content makes to it."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    with LoopbackServer(Handler) as server:
        yield server.port, hits


@pytest.fixture
def hostile_thread(tracker):
    port, _ = tracker
    hostile = HOSTILE_TEMPLATE.replace("PORT", str(port))
    ws = workspace_create(slug="acme", name="Acme Sales")
    user = UserFactory(username="rita")
    user.set_password("a long browser password")
    user.save()
    membership_add(workspace=ws, user=user, role="reviewer")
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws, subject="Quote")
        message = MessageFactory(workspace=ws, thread=thread, html=hostile, text="Quarterly pricing attached.")
    return thread, message


def _log_in(page, live_server):
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "a long browser password")
    page.click("button[type=submit]")
    page.wait_for_url("**/w/acme/review/")


def test_hostile_html_runs_nothing_in_the_thread_page(page, live_server, hostile_thread, tracker):
    thread, message = hostile_thread
    _, hits = tracker
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/w/acme/threads/{thread.pk}/")
    page.locator("details summary").click()
    frame_element = page.locator("iframe.mail")
    assert frame_element.get_attribute("sandbox") == ""  # no allow-scripts, no allow-same-origin
    frame = frame_element.content_frame
    frame.locator("text=Quarterly pricing attached.").wait_for()
    frame.locator("#js-link").click(force=True, no_wait_after=True) if frame.locator("#js-link").count() else None
    page.wait_for_timeout(500)
    assert dialogs == []
    assert page.evaluate("window.pwned") is None
    assert hits == []  # no script fetch, no remote image, no CSS background reached the server


def test_hostile_html_opened_directly_runs_nothing(page, live_server, hostile_thread, tracker):
    _, message = hostile_thread
    _, hits = tracker
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _log_in(page, live_server)
    response = page.goto(f"{live_server.url}/w/acme/threads/messages/{message.pk}/html/")
    csp = response.headers["content-security-policy"]
    assert "script-src" not in csp or "'none'" in csp
    assert "default-src 'none'" in csp
    html = page.content()
    assert "<script" not in html and "onerror" not in html and "onload" not in html and "javascript:" not in html
    page.wait_for_timeout(300)
    assert dialogs == [] and page.evaluate("window.pwned") is None
    assert hits == []
