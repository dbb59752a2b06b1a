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


# Attributes whose value is a URL. Links may only go to http(s) and mailto (or a fragment):
# a data: link opens a page the sender wrote, javascript: runs one. Only an <img> may carry a
# data: URL, and only an image.
_URL_ATTRIBUTES = {"href", "src", "cite", "longdesc", "background", "action", "poster", "usemap", "srcset"}
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f]+")
# Style declarations that let mail lay itself over the page (a fake sign-in box, a
# full-frame link): positioning, stacking, offsets, negative margins and transforms.
_OVERLAY_PROPERTIES = {
    "position",
    "z-index",
    "top",
    "right",
    "bottom",
    "left",
    "inset",
    "transform",
    "translate",
    "scale",
}
_NEGATIVE = re.compile(r"(^|[\s(,])-\s*(\d|\.\d)")
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.S)


def _url_kept(tag: str, attribute: str, value: str) -> bool:
    url = _NOT_IN_URL.sub("", value).lower()
    if tag == "img" and attribute == "src" and url.startswith("data:"):
        return url.startswith("data:image/")
    return url.startswith(_LINK_SCHEMES) or url.startswith("#")


def _declarations(style: str) -> list[str]:
    """The declarations of a style attribute, split on the semicolons outside parentheses
    (a data: URL in ``url(...)`` has its own)."""
    parts, depth, current = [], 0, []
    for char in style:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _overlay(declaration: str) -> bool:
    name, _, value = declaration.partition(":")
    name = name.strip().lower()
    if "\\" in declaration or not value:  # CSS escapes could spell any property or value
        return True
    if name.startswith("-"):  # vendor prefixes: -webkit-transform, -webkit-sticky...
        name = name.split("-", 2)[-1]
    if name in _OVERLAY_PROPERTIES or name.startswith("inset-"):
        return name != "position" or value.strip().lower().split("!")[0].strip() not in ("static", "relative")
    if name.startswith("margin"):
        return bool(_NEGATIVE.search(value))
    return False


def _style_clean(style: str) -> str:
    style = _CSS_COMMENT.sub("", style)
    return "; ".join(d for d in _declarations(style) if not _overlay(d))


def html_sanitize(html: str, *, remote_images: bool = False) -> str:
    """Sanitized HTML; unless ``remote_images``, image sources other than data: are dropped.
    Links keep only http(s), mailto and fragment URLs; styles lose what could overlay the page."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute in _URL_ATTRIBUTES and not _url_kept(tag, attribute, value):
            return None
        if tag == "img" and attribute == "src" and not remote_images and not value.startswith("data:"):
            return None
        if attribute == "style":
            if not remote_images and "url(" in value.lower():
                value = _CSS_URL.sub("none", value)  # a background image is a tracking pixel too
            return _style_clean(value) or None
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
