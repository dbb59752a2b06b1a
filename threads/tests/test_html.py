"""The HTML sanitizer with hostile mail: links only to http(s), mailto and fragments; no
style that lays the mail over the page."""

import pytest

from threads.html import html_sanitize


@pytest.mark.parametrize(
    "href",
    [
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "DATA:text/html,<script>alert(1)</script>",
        " data:text/html,x",
        "javascript:alert(1)",
        "java\tscript:alert(1)",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "ftp://files.example/x",
        "cid:part1",
        "/accounts/logout/",
        "//evil.example/",
    ],
)
def test_links_lose_every_scheme_but_http_https_mailto(href):
    html = html_sanitize(f'<a href="{href}">Open the quote</a>')
    assert "href" not in html and "Open the quote" in html


@pytest.mark.parametrize(
    "href", ["https://acme.example/q", "http://acme.example/q", "mailto:sam@acme.example", "#part2"]
)
def test_ordinary_links_are_kept(href):
    assert f'href="{href}"' in html_sanitize(f'<a href="{href}">x</a>')


def test_data_urls_stay_only_on_images_and_only_as_images():
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html_sanitize('<img src="data:image/png;base64,iVBORw0KGgo=">')
    assert "src=" not in html_sanitize('<img src="data:text/html,<b>x</b>">')
    assert "cite=" not in html_sanitize('<blockquote cite="data:text/html,x">q</blockquote>')


@pytest.mark.parametrize(
    "style",
    [
        "position: fixed",
        "POSITION:FIXED",
        "position: absolute !important",
        "position: sticky",
        "position: -webkit-sticky",
        "position/**/: fixed",
        "posit\\69 on: fixed",
        "z-index: 2147483647",
        "top: 0",
        "inset: 0",
        "inset-inline-start: 0",
        "margin-top: -900px",
        "margin: -50vh 0 0",
        "transform: translate(-100px, -100px)",
        "-webkit-transform: scale(30)",
        "translate: 0 -500px",
    ],
)
def test_overlay_styles_are_dropped_and_the_rest_kept(style):
    html = html_sanitize(f'<div style="color: red; {style}; font-weight: bold">Sign in again</div>')
    assert html == '<div style="color: red; font-weight: bold">Sign in again</div>'


def test_a_full_page_overlay_keeps_its_text_but_not_its_position():
    hostile = (
        '<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:99999;background:#fff">'
        '<a href="data:text/html,<form action=https://evil.example>">Your session expired: sign in</a></div>'
        "<p>Quarterly pricing attached.</p>"
    )
    html = html_sanitize(hostile)
    assert "fixed" not in html and "z-index" not in html and "data:" not in html
    assert 'style="width:100%; height:100%; background:#fff"' in html
    assert "Quarterly pricing attached." in html


def test_harmless_styles_and_positions_are_kept():
    html = html_sanitize('<p style="margin: 0 auto; padding: 4px; position: relative; color: #333">x</p>')
    assert html == '<p style="margin: 0 auto; padding: 4px; position: relative; color: #333">x</p>'
    # A data: URL's own semicolons do not split the declaration (remote images shown).
    background = "background: url(data:image/png;base64,AAAA); color: red"
    assert html_sanitize(f'<p style="{background}">x</p>', remote_images=True) == f'<p style="{background}">x</p>'
