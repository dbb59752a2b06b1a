"""Evidence marked in a message's text, for links that land on the quote they cite.

A link to the thread page carries the spans it cites, ``?mark=<message id>:<start>:<end>``
(offsets in the message's reply text, as every evidence span is), and lands on
``#mark-<message id>-<start>``: the page wraps each span in ``<mark>`` with that id
(the cited start, before trimming).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

MAX_MARKS = 20


@dataclass(frozen=True)
class Piece:
    text: str
    mark_id: str = ""  # set on a highlighted piece


def span_trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the white space at its ends: a highlight covers words, not the
    line break or the spaces an extractor's span ran on to."""
    start, end = max(0, start), min(len(text), end)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def marks_parse(values: list[str]) -> dict[int, list[tuple[int, int]]]:
    """``message:start:end`` parameters by message; anything malformed is ignored."""
    marks: dict[int, list[tuple[int, int]]] = {}
    for raw in values[:MAX_MARKS]:
        parts = raw.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue
        message_id, start, end = map(int, parts)
        if end > start:
            marks.setdefault(message_id, []).append((start, end))
    return marks


def text_cut(text: str, spans: list[tuple[int, int]], *, offset: int = 0) -> list[tuple[int, int, int | None]]:
    """``text`` cut into plain and marked pieces: ``(start, end, cited)`` in ``text``'s own
    offsets, ``cited`` (the first cited start of a marked piece, None for a plain one) in the
    message's. ``text`` is the piece of the message that starts at ``offset``; the spans are
    offsets in the whole message, clipped to the piece, trimmed and merged where they overlap."""
    merged: list[list[int]] = []  # [start, end, the first cited start]
    local = sorted((span_trimmed(text, s - offset, e - offset), s) for s, e in spans)
    for (start, end), cited in local:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, cited])
    pieces: list[tuple[int, int, int | None]] = []
    position = 0
    for start, end, cited in merged:
        if start > position:
            pieces.append((position, start, None))
        pieces.append((start, end, cited))
        position = end
    if position < len(text):
        pieces.append((position, len(text), None))
    return pieces


def text_marked(text: str, spans: list[tuple[int, int]], *, message_id: int) -> list[Piece]:
    """``text`` cut into plain and marked pieces (overlapping spans merged, ends trimmed)."""
    return [
        Piece(text[start:end], f"mark-{message_id}-{cited}" if cited is not None else "")
        for start, end, cited in text_cut(text, spans)
    ]


def evidence_query(evidence: list[dict]) -> tuple[str, str]:
    """The query string and fragment of a link to a thread page that marks ``evidence``
    (``[{message_id, start, end}]``) and lands on its first span, or ("", "") without spans."""
    spans = [
        (e["message_id"], e["start"], e["end"])
        for e in evidence or []
        if isinstance(e, dict) and all(isinstance(e.get(k), int) for k in ("message_id", "start", "end"))
    ]
    if not spans:
        return "", ""
    query = urlencode([("mark", f"{m}:{s}:{e}") for m, s, e in spans])
    return query, f"mark-{spans[0][0]}-{spans[0][1]}"
