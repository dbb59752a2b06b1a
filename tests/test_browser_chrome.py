"""The console's chrome in Chromium: no CSP violation on any page (the admin's own scripts
still work), error pages with a way back, the favicon, every page fitting a 390 px screen,
and hostile mail that can no longer lay itself over the message frame."""

import re

import pytest

from tests.browser import requires_chromium
from tests.pages import PASSWORD, build_pages
from tests.test_every_page import _admin_cases
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.rls import workspace_context

pytestmark = [requires_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any script of the page (Playwright's init scripts are not subject to its CSP).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@pytest.fixture
def pages():
    return build_pages()


@pytest.fixture
def watched(chromium):
    """A page whose CSP violations, console errors and failed responses are recorded."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.problems = []
    # Error pages answer 404 and 403 on purpose (Chromium logs "Failed to load resource" for
    # those documents); anything else the page loads must be found.
    page.on(
        "console",
        lambda msg: (
            page.problems.append(f"console {msg.type}: {msg.text}")
            if (msg.type == "error" and not msg.text.startswith("Failed to load resource"))
            or "Content Security Policy" in msg.text
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            page.problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    yield page
    context.close()


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def violations(page):
    return page.evaluate("window.__csp || []")


def console_urls(pages):
    slug, ws = pages.workspace.slug, f"/w/{pages.workspace.slug}"
    assert slug
    return [
        f"{ws}/review/",
        f"{ws}/review/?reason=conflict",
        f"{ws}/review/items/{pages.items['low_confidence'].pk}/",
        f"{ws}/review/items/{pages.items['association'].pk}/",
        f"{ws}/review/dashboard/",
        f"{ws}/threads/",
        f"{ws}/threads/{pages.thread.pk}/",
        f"{ws}/deals/",
        f"{ws}/deals/{pages.deal.pk}/",
        f"{ws}/crm/threads/{pages.thread.pk}/",
        f"{ws}/crm/deals/{pages.deal.pk}/",
        f"{ws}/jobs/",
    ]


def test_no_page_reports_a_csp_violation_and_the_admin_scripts_still_work(watched, live_server, pages):
    page = watched
    page.goto(f"{live_server.url}/accounts/login/")
    assert violations(page) == []
    log_in(page, live_server, "boss")  # a superuser who is the workspace's admin
    seen = {}
    for url in console_urls(pages) + ["/no/such/page/"]:
        response = page.goto(f"{live_server.url}{url}")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        seen[url] = violations(page)
    # The keyboard script runs under the policy: "?" opens the help on the queue.
    page.goto(f"{live_server.url}/w/acme/review/")
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    # The CRM page's status filter sends its form on change (a data- attribute, no onchange=).
    page.goto(f"{live_server.url}/w/acme/crm/threads/{pages.thread.pk}/")
    page.locator("select[name=status]").select_option("failed")
    page.wait_for_url(re.compile(r"status=failed"))
    # The admin: the index, the schemas page, and every model's change list, add and change pages.
    admin_urls = ["/admin/", "/admin/extraction/extractionrun/schemas/", "/admin/password_change/"] + [
        url for name, (_, _, url, _) in _admin_cases(pages).items() if name.endswith(("_changelist", "_add", "_change"))
    ]
    assert len(admin_urls) > 50
    for url in admin_urls:
        page.goto(f"{live_server.url}{url}")
        seen[url] = violations(page)
    page.goto(f"{live_server.url}/admin/deals/deal/")
    rows = page.locator("#result_list tbody input.action-select")
    assert rows.count() >= 2
    page.locator("#action-toggle").check()  # actions.js: select every row
    assert all(rows.nth(n).is_checked() for n in range(rows.count()))
    assert re.search(rf"{rows.count()} of {rows.count()} selected", page.locator(".action-counter").inner_text())
    seen["/admin/deals/deal/ (actions)"] = violations(page)
    assert {url: found for url, found in seen.items() if found} == {}
    assert page.problems == []


def test_error_pages_lead_back_in_the_browser(watched, live_server, pages):
    page = watched
    log_in(page, live_server, "rita")
    response = page.goto(f"{live_server.url}/w/acme/threads/999999/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "This page does not exist"
    page.get_by_role("link", name="Back to the Acme Sales review queue").click()
    page.wait_for_url(re.compile(r"/w/acme/review/$"))
    assert page.locator("tr[data-href]").count() > 0
    # A form sent after its CSRF cookie is gone (signed out in another tab, cookies cleared).
    page.goto(f"{live_server.url}/w/acme/review/items/{pages.items['low_confidence'].pk}/")
    page.context.clear_cookies()
    page.locator("form[data-action] button, .actions button").first.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "This form has expired"
    page.get_by_role("link", name="Sign in again").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))
    assert violations(page) == [] and page.problems == []


def test_the_favicon_loads_and_nothing_404s(watched, live_server, pages):
    page = watched
    icons = []
    page.on("response", lambda r: icons.append((r.url, r.status)) if "favicon" in r.url else None)
    log_in(page, live_server, "rita")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href == "/static/favicon.svg"
    response = page.goto(f"{live_server.url}/favicon.ico")
    assert response.status == 200 and response.url.endswith("/static/favicon.svg")
    assert all(status in (200, 301, 304) for _, status in icons), icons
    assert page.problems == []


def test_every_console_page_fits_a_390px_screen(chromium, live_server, pages):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        widths = {"login": page.evaluate("document.documentElement.scrollWidth")}
        log_in(page, live_server, "rita")
        for url in console_urls(pages) + ["/w/acme/threads/999999/"]:
            page.goto(f"{live_server.url}{url}")
            widths[url] = page.evaluate("document.documentElement.scrollWidth")
        too_wide = {url: width for url, width in widths.items() if width > 390}
        assert too_wide == {}
        # The navigation is all there, wrapped rather than cut.
        page.goto(f"{live_server.url}/w/acme/review/")
        for name in ("Queue", "Dashboard", "Threads", "Deals", "Jobs"):
            box = page.locator(".topbar nav").get_by_role("link", name=name, exact=True).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, name
    finally:
        context.close()


def test_hostile_mail_cannot_cover_the_message_frame(page, live_server, pages):
    hostile = (
        '<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:2147483647;background:#fff">'
        '<a href="data:text/html,<h1>Sign in</h1>">Your session expired: sign in again</a></div>'
        '<p style="margin:0">Quarterly pricing attached.</p>'
    )
    with workspace_context(pages.workspace):
        thread = ThreadFactory(workspace=pages.workspace, subject="Overlay")
        MessageFactory(workspace=pages.workspace, thread=thread, html=hostile, text="Quarterly pricing attached.")
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/w/acme/threads/{thread.pk}/")
    if page.locator("details summary").count():
        page.locator("details summary").first.click()
    frame = page.locator("iframe.mail").content_frame
    text = frame.locator("text=Quarterly pricing attached.")
    text.wait_for()
    overlay = frame.locator("text=Your session expired: sign in again")
    assert overlay.evaluate("el => getComputedStyle(el.parentElement).position") == "static"
    assert overlay.get_attribute("href") is None  # the data: link is gone
    # What is under the pricing paragraph is the paragraph, not the overlay.
    on_top = text.evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " return document.elementFromPoint(r.left + 5, r.top + r.height / 2) === el; }"
    )
    assert on_top


def test_the_admin_workspace_switcher_still_switches_on_change(watched, live_server, pages):
    from workspaces.services import membership_add, workspace_create

    membership_add(workspace=workspace_create(slug="globex", name="Globex"), user=pages.admin, role="admin")
    page = watched
    log_in(page, live_server, "boss")
    page.goto(f"{live_server.url}/admin/")
    page.locator("#workspace-select").select_option("globex")  # no button: autosubmit.js sends it
    page.wait_for_load_state()
    assert "Now working in Globex." in page.locator(".messagelist").inner_text()
    assert page.locator(".tl-workspace").inner_text() == "· Globex"
    assert violations(page) == [] and page.problems == []
