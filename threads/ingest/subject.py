"""The RFC 5256 base subject: what is left of a subject once reply and forward marks go.

Handles the reply and forward prefixes of many languages (Re, Fwd, AW, SV, WG, 回复 ...),
counters (``Re[2]:``), list tags (``[sales]``), ``[Fwd: ...]`` wrappers and trailing
``(fwd)``. A subject that is nothing but one bracketed blob keeps it.
"""

from __future__ import annotations

import re

RE_PREFIXES = frozenset("re res sv antw ref aw απ השב vá r rif bls odp ynt atb رد 回复 转发 回覆 答复 ответ".split())
FWD_PREFIXES = frozenset(
    "fwd fw rv enc vs doorst vl tr wg πρθ הועבר továbbítás i fs trs vb pd i̇lt yml 回覆 轉寄 转发 wtr".split()
    + ["إعادة توجيه"]
)
PREFIXES = RE_PREFIXES | FWD_PREFIXES

_WS = re.compile(r"\s+")
# A reply or forward mark: a short word, an optional [counter], a colon.
_LEADER = re.compile(r"([^:\[\]\s][^:\[\]]{0,23}?)\s*(?:\[[^\[\]]*\])?\s*:")
_BLOB = re.compile(r"\[[^\[\]]*\]")
_TRAILER = re.compile(r"\(([^()]{2,})\)\s*$")
_WRAPPER = re.compile(r"\[\s*([^:\[\]]{1,24}?)\s*:(.*)\]", re.DOTALL)


def _trim_trailers(s: str) -> str:
    while (m := _TRAILER.search(s)) and m.group(1).strip().lower() in FWD_PREFIXES:
        s = s[: m.start()].rstrip()
    return s


def _strip_leaders(s: str) -> str:
    while True:
        m = _LEADER.match(s)
        if m and m.group(1).strip().lower() in PREFIXES:
            s = s[m.end() :].lstrip()
            continue
        m = _BLOB.match(s)
        if m:
            rest = s[m.end() :].strip()
            # A list tag goes, unless it would leave nothing but another lone blob or nothing.
            if rest and not _BLOB.fullmatch(rest):
                s = rest
                continue
        return s


def base_subject(subject: str | None) -> str:
    """The base subject as written (case kept); compare with ``subject_key``."""
    s = _WS.sub(" ", subject or "").strip()
    while True:
        before = s
        s = _strip_leaders(_trim_trailers(s))
        m = _WRAPPER.fullmatch(s)
        if m and m.group(1).strip().lower() in FWD_PREFIXES:
            s = m.group(2).strip()
        if s == before:
            return s


def subject_key(subject: str | None) -> str:
    """The key subject threading compares: the base subject, case-folded."""
    return base_subject(subject).casefold()[:990]
