"""Evidence grounding: a quote must be found in the message text it claims to come from.

A span is ``{message_id, start, end, quote}`` with offsets into the message's reply_text.
``span_ground`` accepts it where it stands (exactly, or equal once whitespace is folded),
otherwise re-anchors it where the quote is found in that message (or, failing that, in
another message of the thread), otherwise reports it ungrounded.
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")


def _fold(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _find_folded(text: str, quote: str) -> tuple[int, int] | None:
    """Offsets of ``quote`` in ``text`` allowing any run of whitespace where the quote has one."""
    words = _fold(quote).split(" ")
    if not words or words == [""]:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(pattern, text)
    if match is None:
        match = re.search(pattern, text, re.IGNORECASE)
    return (match.start(), match.end()) if match else None


def span_ground(span: dict, texts: dict[int, str]) -> dict | None:
    """The span, checked or re-anchored, with ``grounded`` set; None if found nowhere."""
    quote = str(span.get("quote") or "")
    if not _fold(quote):
        return None
    message_id = span.get("message_id")
    text = texts.get(message_id)
    if text is not None:
        start, end = span.get("start"), span.get("end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(text):
            if text[start:end] == quote or _fold(text[start:end]) == _fold(quote):
                start, end = _trimmed(text, start, end)
                return {
                    "message_id": message_id,
                    "start": start,
                    "end": end,
                    "quote": text[start:end],
                    "grounded": "exact",
                }
        found = _find_folded(text, quote)
        if found:
            return _anchored(message_id, text, found)
    for other_id, other_text in texts.items():
        if other_id != message_id:
            found = _find_folded(other_text, quote)
            if found:
                return _anchored(other_id, other_text, found)
    return None


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without white space at its ends: evidence is words, and a highlight of it
    should not run on into the spaces or line break after them."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _anchored(message_id: int, text: str, found: tuple[int, int]) -> dict:
    start, end = found
    return {"message_id": message_id, "start": start, "end": end, "quote": text[start:end], "grounded": "reanchored"}


def evidence_ground(evidence: list[dict], texts: dict[int, str]) -> tuple[list[dict], bool]:
    """Ground every span; return the spans kept and whether all of them were found."""
    grounded = [span_ground(span, texts) for span in evidence]
    kept = [g for g in grounded if g is not None]
    return kept, bool(evidence) and len(kept) == len(evidence)
