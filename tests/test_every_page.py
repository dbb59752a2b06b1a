"""Every page of the app, rendered with strict template variables, sends our CSP.

The URL patterns are read from the resolver: a pattern with no case here fails the test, so
a new page cannot be forgotten. Each case requests its page (with data, so lists are not
empty) as the user who would open it; a template that reads a variable that does not exist
is reported with the template's name (Django's own admin templates rely on missing variables
by design and are left out), and every response must carry a Content-Security-Policy whose
scripts are not 'unsafe-inline'.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import django
import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.pages import build_pages

pytestmark = pytest.mark.django_db

DJANGO_DIR = Path(django.__file__).resolve().parent
MARKER = "INVALID-TEMPLATE-VARIABLE"


class InvalidVariables:
    """``string_if_invalid`` that records each missing variable and the template it is in."""

    def __init__(self):
        self.found: list[tuple[str, str]] = []

    def __contains__(self, key):  # Django asks whether "%s" is in it, then formats
        return key == "%s"

    def __bool__(self):
        return True

    def __mod__(self, variable):
        origin = "?"
        for frame in inspect.stack()[1:]:
            node = frame.frame.f_locals.get("self")
            if frame.function == "render" and getattr(node, "origin", None) is not None:
                origin = node.origin.name
                break
        self.found.append((str(origin), str(variable)))
        return f"{MARKER}[{variable}]"

    def ours(self):
        return sorted({(o, v) for o, v in self.found if not Path(o).resolve().is_relative_to(DJANGO_DIR)})


@pytest.fixture
def invalid(settings):
    recorder = InvalidVariables()
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["OPTIONS"]["string_if_invalid"] = recorder
    settings.TEMPLATES = templates
    return recorder


def _patterns(patterns, namespace=None, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = namespace
            if pattern.namespace:
                ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _patterns(pattern.url_patterns, ns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            name = pattern.name and (f"{namespace}:{pattern.name}" if namespace else pattern.name)
            yield name, prefix + str(pattern.pattern)


def _admin_model_views():
    """admin:<app>_<model>_<view> for every registered model and view."""
    return {
        f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}": (model, view)
        for model in admin.site._registry
        for view in ("changelist", "add", "change", "history", "delete")
    }


# What a list page shows when the data is there (the case would test little otherwise).
NOT_EMPTY = {
    "review:queue": "<tr data-href",
    "threads:list": "Pricing for Acme West",
    "threads:detail": "Thanks Dana!",
    "deals:list": "Acme West renewal",
    "deals:detail": "Acme West renewal",
    "jobs:queue": "extract_thread",
    "crm:thread": 'id="write-',
    "admin:deals_deal_changelist": "Acme West renewal",
}


def _ws(pages, name, **kwargs):
    return reverse(name, kwargs={"workspace_slug": pages.workspace.slug, **kwargs})


# name -> (who, method, url(pages), data): who is "admin" (superuser, workspace admin),
# "reviewer", "viewer" or "anonymous".
def _cases(pages):
    item = pages.items["low_confidence"]
    value_items = {
        f"review:item[{reason}]": ("reviewer", "get", _ws(pages, "review:item", pk=i.pk), None)
        for reason, i in pages.items.items()
    }
    return {
        "home": ("reviewer", "get", "/", None),
        "favicon": ("anonymous", "get", "/favicon.ico", None),
        "workspace-switch": ("admin", "post", "/workspace/switch/", {"workspace": pages.workspace.slug}),
        "login": ("anonymous", "get", reverse("login"), None),
        "login[wrong password]": ("anonymous", "post", reverse("login"), {"username": "rita", "password": "no"}),
        "logout": ("reviewer", "post", reverse("logout"), {}),
        "threads:list": ("reviewer", "get", _ws(pages, "threads:list") + "?q=Acme", None),
        "threads:detail": ("reviewer", "get", _ws(pages, "threads:detail", thread_id=pages.thread.pk), None),
        "threads:message-html": (
            "reviewer",
            "get",
            _ws(pages, "threads:message-html", message_id=pages.message.pk),
            None,
        ),
        "threads:message-html-download": (
            "reviewer",
            "get",
            _ws(pages, "threads:message-html-download", message_id=pages.message.pk),
            None,
        ),
        "threads:message-text": (
            "reviewer",
            "get",
            _ws(pages, "threads:message-text", message_id=pages.message.pk),
            None,
        ),
        "threads:message-raw": (
            "reviewer",
            "get",
            _ws(pages, "threads:message-raw", message_id=pages.message.pk),
            None,
        ),
        "threads:attachment-download": (
            "reviewer",
            "get",
            _ws(pages, "threads:attachment-download", attachment_id=pages.attachment.pk),
            None,
        ),
        "inbound": ("anonymous", "post", reverse("inbound", kwargs={"workspace_slug": pages.workspace.slug}), {}),
        "review:queue": ("reviewer", "get", _ws(pages, "review:queue"), None),
        "review:queue[approved]": ("reviewer", "get", _ws(pages, "review:queue") + "?status=approved", None),
        "review:dashboard": ("reviewer", "get", _ws(pages, "review:dashboard"), None),
        **value_items,
        "review:item[decided]": ("reviewer", "get", _ws(pages, "review:item", pk=pages.decided.pk), None),
        "review:item[viewer]": ("viewer", "get", _ws(pages, "review:item", pk=item.pk), None),
        "review:decide": (
            "reviewer",
            "post",
            _ws(pages, "review:decide", pk=item.pk),
            {"decision": "edit", "version": item.version, "amount": "not money", "currency": "USD"},
        ),
        "review:undo": ("reviewer", "post", _ws(pages, "review:undo", pk=pages.decided.pk), {}),
        "review:associate": (
            "reviewer",
            "post",
            _ws(pages, "review:associate", pk=pages.items["association"].pk),
            {"choice": "none"},
        ),
        # Bulk decisions with nothing selected, and the undo of a batch that does not exist:
        # both say why on the page they return to.
        "review:bulk": ("reviewer", "post", _ws(pages, "review:bulk"), {"action": "approve"}),
        "review:undo-batch": ("reviewer", "post", _ws(pages, "review:undo-batch", batch="no-such-batch"), {}),
        "jobs:queue": ("reviewer", "get", _ws(pages, "jobs:queue"), None),
        "jobs:retry": ("reviewer", "post", _ws(pages, "jobs:retry", job_id=pages.job.pk), {}),
        "jobs:cancel": ("reviewer", "post", _ws(pages, "jobs:cancel", job_id=pages.job.pk), {}),
        "deals:list": ("reviewer", "get", _ws(pages, "deals:list"), None),
        "deals:detail": ("reviewer", "get", _ws(pages, "deals:detail", pk=pages.deal.pk), None),
        "crm:thread": ("reviewer", "get", _ws(pages, "crm:thread", pk=pages.thread.pk), None),
        "crm:deal": ("reviewer", "get", _ws(pages, "crm:deal", pk=pages.deal.pk), None),
        "crm:retry": ("reviewer", "post", _ws(pages, "crm:retry", pk=pages.write.pk), {}),
        # The error pages.
        "404": ("reviewer", "get", _ws(pages, "threads:detail", thread_id=999999), None),
        "404[anonymous]": ("anonymous", "get", "/no/such/page/", None),
        "403": ("viewer", "post", _ws(pages, "jobs:retry", job_id=pages.job.pk), {}),
        # The admin (as a superuser who is the workspace's admin).
        "admin:index": ("admin", "get", reverse("admin:index"), None),
        "admin:login": ("anonymous", "get", reverse("admin:login"), None),
        "admin:threads_inboundtoken_rotate": ("admin", "get", reverse("admin:threads_inboundtoken_rotate"), None),
        "admin:logout": ("admin", "post", reverse("admin:logout"), {}),
        "admin:password_change": ("admin", "get", reverse("admin:password_change"), None),
        "admin:password_change_done": ("admin", "get", reverse("admin:password_change_done"), None),
        "admin:autocomplete": ("admin", "get", reverse("admin:autocomplete"), None),
        "admin:jsi18n": ("admin", "get", reverse("admin:jsi18n"), None),
        "admin:extraction_schemas": ("admin", "get", reverse("admin:extraction_schemas"), None),
        "admin:auth_user_password_change": (
            "admin",
            "get",
            reverse("admin:auth_user_password_change", args=[pages.reviewer.pk]),
            None,
        ),
        "admin:view_on_site": (
            "admin",
            "get",
            reverse("admin:view_on_site", args=[_user_type(), pages.reviewer.pk]),
            None,
        ),
        **{
            f"admin:app_list[{label}]": ("admin", "get", reverse("admin:app_list", args=[label]), None)
            for label in sorted({m._meta.app_label for m in admin.site._registry})
        },
    }


def _user_type():
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(get_user_model()).pk


def _admin_object(pages, model):
    """One object of ``model`` in the pages' workspace, for its change, history and delete pages."""
    from tests.tenancy import factories_by_model
    from workspaces.models import Policy, Workspace
    from workspaces.rls import workspace_context

    label = model._meta.label
    with workspace_context(pages.workspace):
        if model is Workspace:
            return pages.workspace
        if label == "auth.User":
            return pages.reviewer
        if label == "auth.Group":
            from django.contrib.auth.models import Group

            return Group.objects.get_or_create(name="Reviewers")[0]
        if model is Policy:
            return Policy.objects.get(workspace=pages.workspace)
        existing = model.objects.order_by("pk").first()
        if existing is not None:
            return existing
        factory = factories_by_model().get(model)
        assert factory is not None, f"{label}: no object and no factory for its admin change page"
        kwargs = {"workspace": pages.workspace} if any(f.name == "workspace" for f in model._meta.fields) else {}
        return factory(**kwargs)


def _admin_cases(pages):
    cases = {}
    for name, (model, view) in _admin_model_views().items():
        if view in ("changelist", "add"):
            cases[name] = ("admin", "get", reverse(name), None)
            continue
        obj = _admin_object(pages, model)
        cases[name] = ("admin", "get", reverse(name, args=[obj.pk]), None)
    return cases


def _clients(pages):
    clients = {"anonymous": Client()}
    for role in ("admin", "reviewer", "viewer"):
        client = Client()
        client.force_login(getattr(pages, role))
        clients[role] = client
    return clients


def _script_src(csp: str) -> str:
    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";") if part.strip())
    return directives.get("script-src", directives.get("default-src", ""))


def test_every_url_pattern_has_a_case():
    """A new URL pattern fails here until it has a case below (or is one of the admin's
    unnamed redirects and catch-all, which render nothing of their own)."""
    from types import SimpleNamespace

    fake = SimpleNamespace(
        workspace=SimpleNamespace(slug="acme"),
        items={reason: SimpleNamespace(pk=1, version=0) for reason in ("low_confidence", "association")},
        decided=SimpleNamespace(pk=1),
        reviewer=SimpleNamespace(pk=1),
        thread=SimpleNamespace(pk=1),
        message=SimpleNamespace(pk=1),
        attachment=SimpleNamespace(pk=1),
        deal=SimpleNamespace(pk=1),
        job=SimpleNamespace(pk=1),
        write=SimpleNamespace(pk=1),
    )
    covered = {name.split("[")[0] for name in _cases(fake)} | set(_admin_model_views())
    missing = [
        (name, route)
        for name, route in _patterns(get_resolver().url_patterns)
        if not (name is None and route.startswith("admin/")) and name not in covered
    ]
    assert not missing, f"URL patterns without a page case in tests/test_every_page.py: {missing}"


def test_every_page_renders_with_strict_template_variables_and_sends_a_csp(invalid):
    pages = build_pages()
    clients = _clients(pages)
    cases = {**_cases(pages), **_admin_cases(pages)}
    assert len(cases) > 100
    problems = []
    for name, (who, method, url, data) in cases.items():
        client = clients[who]
        found_before = len(invalid.found)
        follow = name != "favicon"  # the redirect is the app's; the SVG is a static file
        if method == "get":
            response = client.get(url, follow=follow)
        else:
            response = client.post(url, data, follow=follow)
        signed_out = name in ("logout", "admin:logout")
        if signed_out:
            client.force_login(getattr(pages, who))
        if response.status_code >= 500:
            problems.append(f"{name}: {url} answered {response.status_code}")
        ours = [(o, v) for o, v in invalid.found[found_before:] if not Path(o).resolve().is_relative_to(DJANGO_DIR)]
        if ours:
            problems.append(f"{name}: {url} reads missing variables {sorted(set(ours))}")
        content = b"".join(response.streaming_content) if response.streaming else response.content
        body = content.decode(errors="replace")
        if name in NOT_EMPTY and NOT_EMPTY[name] not in body:
            problems.append(
                f"{name}: {url} does not show {NOT_EMPTY[name]!r}: the list is empty, the case tests little"
            )
        if not name.startswith("admin") and MARKER in body:
            problems.append(f"{name}: {url} shows {MARKER}")
        csp = response.headers.get("Content-Security-Policy")
        if not csp:
            problems.append(f"{name}: {url} sends no Content-Security-Policy")
        elif (
            "'unsafe-inline'" in _script_src(csp) or "object-src 'none'" not in csp and "default-src 'none'" not in csp
        ):
            problems.append(f"{name}: {url} sends a weak Content-Security-Policy: {csp}")
        logins = (reverse("login"), reverse("admin:login"))
        if who != "anonymous" and not signed_out:
            for chain_url, _ in getattr(response, "redirect_chain", []):
                if chain_url.startswith(logins):
                    problems.append(f"{name}: {url} sent {who} to the login page instead of rendering")
    assert not problems, "\n".join(problems)
    assert invalid.ours() == []


def test_a_missing_variable_is_caught(invalid):
    """The recorder itself: a template reading a variable that does not exist is reported."""
    from django.template import engines

    template = engines["django"].from_string("{% load static %}<p>{{ nothing_here.at_all }}</p>")
    html = template.render({})
    assert MARKER in html
    assert any(v == "nothing_here.at_all" for _, v in invalid.found)
