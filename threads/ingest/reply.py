"""``reply_text``: what the sender of a message wrote, without quoted history or signature.

Two kinds of history are cut:

* blocks that forward the original unquoted: Outlook's "-----Original Message-----" and
  "From: / Sent:" header blocks (English, German, French, Spanish, Dutch, Italian,
  Portuguese), cut at their first line wherever they are;
* ``>`` quoting with its attribution line ("On ... wrote:", "Am ... schrieb ...:",
  "Le ... a écrit :", "El ... escribió:" ...), cut only when nothing new follows it, so
  answers written between quoted lines stay readable with the lines they answer.

Then a trailing signature goes: a block after a blank line starting with ``--``, ``__``,
``-Name`` or a "Sent from my ..." line. Every regular expression reads one line of bounded
length, so no input makes this slow.
"""

from __future__ import annotations

import re

MAX_LINE = 1000
MAX_SIGNATURE_LINES = 15

# Attribution lines written above a quotation, in the languages we support.
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"On\s.{1,400}\swrote\s?:"  # English
    r"|Am\s.{1,400}\sschrieb.{0,200}:"  # German
    r"|Le\s.{1,400}\sa\s+écrit\s?:"  # French
    r"|El\s.{1,400}\sescribió\s?:"  # Spanish
    r"|Op\s.{1,400}\sschreef.{0,200}:"  # Dutch
    r"|Il\s.{1,400}\sha\s+scritto\s?:"  # Italian
    r"|Em\s.{1,400}\sescreveu\s?:"  # Portuguese
    r"|.{1,300}<[^<>\s]+@[^<>\s]+>\s?(?:wrote|schrieb|a\s+écrit|escribió)\s?:"
    r")\s*$",
    re.IGNORECASE,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Originalnachricht|Message d'origine"
    r"|Mensaje original|Oorspronkelijk bericht|Messaggio originale|Mensagem original|Forwarded message"
    r"|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado)\s*[-_=*]{2,}\s*$",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"^\s*\*?(?:From|Von|De|Van|Da|Från|Fra)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_SENT = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Date d'envoi|Enviado|Fecha|Verzonden|Inviato|Data|Skickat|Sendt)"
    r"\s*:\*?\s*\S",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"^\s*[-_=*]{3,}\s*$")
_QUOTED = re.compile(r"^\s*>")
_SIGNATURE_START = re.compile(
    r"^(?:--\s*|__+\s*|-\w.{0,60}"
    r"|Sent from my \w+(?:\s+\w+){0,4}\s*"
    r"|Von meinem \w+(?:\s+\w+){0,4} gesendet\s*"
    r"|Envoyé de mon \w+(?:\s+\w+){0,4}\s*"
    r"|Enviado desde mi \w+(?:\s+\w+){0,4}\s*)$"
)


def _outlook_cut(lines: list[str]) -> int:
    """Where an unquoted forwarded original starts, or len(lines)."""
    for i, line in enumerate(lines):
        if _ORIGINAL_MESSAGE.match(line[:MAX_LINE]):
            return i
        if _HEADER_FROM.match(line[:MAX_LINE]) and any(_HEADER_SENT.match(x[:MAX_LINE]) for x in lines[i + 1 : i + 5]):
            return i
    return len(lines)


def _blank(line: str) -> bool:
    return not line.strip()


def _pop_blank(lines: list[str]) -> None:
    while lines and (_blank(lines[-1]) or _SEPARATOR.match(lines[-1][:MAX_LINE])):
        lines.pop()


def _pop_quote(lines: list[str]) -> bool:
    if not lines or not _QUOTED.match(lines[-1][:MAX_LINE]):
        return False
    while lines and (_QUOTED.match(lines[-1][:MAX_LINE]) or _blank(lines[-1])):
        lines.pop()
    for span in (1, 2, 3):  # an attribution line that the sender's client wrapped
        if len(lines) >= span and _ATTRIBUTION.match(" ".join(x.strip()[:MAX_LINE] for x in lines[-span:])):
            del lines[-span:]
            break
    return True


def _pop_signature(lines: list[str]) -> bool:
    start = max(0, len(lines) - MAX_SIGNATURE_LINES - 1)
    for i in range(len(lines) - 1, start, -1):
        if _SIGNATURE_START.match(lines[i][:MAX_LINE]) and _blank(lines[i - 1]):
            if any(_QUOTED.match(x[:MAX_LINE]) for x in lines[i:]):
                return False
            del lines[i:]
            return True
    return False


# Forwarding prefixes (English, German, French, Spanish, Portuguese, Dutch, Italian, Swedish).
_FORWARD_SUBJECT = re.compile(r"^\s*(?:\[[^\]]{0,80}\]\s*)*(?:fwd?|fw|wg|tr|rv|enc|doorst|i|vb)\s*:", re.IGNORECASE)


def is_forward(subject: str) -> bool:
    """Whether a subject marks its message as a forward ("Fwd:", "FW:", "WG:", "TR:", "RV:" ...)."""
    return bool(_FORWARD_SUBJECT.match(subject or ""))


def reply_text(text: str, *, forwarded: bool = False) -> str:
    """The new text of a message body (plain text; HTML is converted before).

    In a forward, the forwarded message is news to the thread (a boss's approval, a
    customer's mail passed on), not history: only a trailing signature is cut.
    """
    if not text:
        return ""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    if forwarded:
        _pop_blank(lines)
        _pop_signature(lines)
        return "\n".join(lines).strip()
    del lines[_outlook_cut(lines) :]
    while True:
        _pop_blank(lines)
        if not (_pop_quote(lines) or _pop_signature(lines)):
            break
    result = "\n".join(lines).strip("\n")
    return result.strip() if result.strip() else ""
