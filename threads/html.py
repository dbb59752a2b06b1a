"""Email HTML made safe to show: nh3 sanitizing, remote images only when the reader asks."""

from __future__ import annotations

import re

import nh3

_CSS_URL = re.compile(r"url\s*\([^)]*\)", re.I)

# Shown inside <iframe sandbox> with this policy: no scripts, no plugins, no forms, no fetches.
CSP_STRICT = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
CSP_IMAGES = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:; base-uri 'none'; form-action 'none'"
)

_TAGS = nh3.ALLOWED_TAGS | {"font", "center"}
_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "align", "width", "height", "bgcolor", "color", "dir"},
    "font": {"color", "face", "size"},
    "td": {"colspan", "rowspan", "align", "valign", "width", "bgcolor"},
    "table": {"border", "cellpadding", "cellspacing", "width", "align", "bgcolor"},
}


def html_sanitize(html: str, *, remote_images: bool = False) -> str:
    """Sanitized HTML; unless ``remote_images``, image sources other than data: are dropped."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src" and not remote_images and not value.startswith("data:"):
            return None
        if attribute == "style" and not remote_images and "url(" in value.lower():
            return _CSS_URL.sub("none", value)  # a background image is a tracking pixel too
        return value

    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer nofollow",
    )
