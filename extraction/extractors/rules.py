"""The offline, deterministic extractor: patterns for each field, evidence by construction.

Every proposal's evidence is the exact span of the reply text it was read from, and its
confidence comes from the strength of the signal (an explicit cue such as "budget" or
"sign-off" scores higher than a bare amount or date). Amounts are parsed by price-parser
(figures) and text2num (numbers in words); dates by dateparser, relative to the message's
own date, with quarters resolved here since dateparser does not know them.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import dateparser
from price_parser import Price
from text_to_num import text2num

from extraction.extractors.base import ExtractionOutput, MessageInput, Proposal
from extraction.schemas import Schema

NAME = "rules"

# --- sentences ---------------------------------------------------------------------------

# Up to . ! or ? followed by white space (so "$1.5M" and "e.g." stay inside), or a line end.
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?]+(?=[^\s.!?]))+[.!?]*")
# Abbreviations that end in a dot but do not end a sentence.
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|approx|vs|Mr|Ms|Mrs|Dr|Inc|Ltd|Corp|Co|St|No)\.$", re.I)


@dataclass(frozen=True)
class Sentence:
    message: MessageInput
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.message.reply_text[self.start : self.end]

    def span(self, start: int | None = None, end: int | None = None) -> dict:
        """Evidence for the whole sentence, or for [start, end) relative to it."""
        s = self.start + (start or 0)
        e = self.start + end if end is not None else self.end
        return {"message_id": self.message.id, "start": s, "end": e, "quote": self.message.reply_text[s:e]}


def sentences(message: MessageInput) -> Iterator[Sentence]:
    text = message.reply_text
    pending_start = None
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        if pending_start is not None:
            start = pending_start
            pending_start = None
        if _ABBREVIATIONS.search(text[start:end]) and end < len(text) and text[end : end + 1] != "\n":
            pending_start = start
            continue
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end - start >= 3:
            yield Sentence(message, start, end)


# --- money -------------------------------------------------------------------------------

_CURRENCY_WORDS = {
    "$": "USD",
    "usd": "USD",
    "dollars": "USD",
    "dollar": "USD",
    "us$": "USD",
    "bucks": "USD",
    "€": "EUR",
    "eur": "EUR",
    "euros": "EUR",
    "euro": "EUR",
    "£": "GBP",
    "gbp": "GBP",
    "pounds": "GBP",
    "pound": "GBP",
    "cad": "CAD",
    "c$": "CAD",
    "aud": "AUD",
    "a$": "AUD",
    "chf": "CHF",
}
_MULTIPLIERS = {
    "k": 1_000,
    "thousand": 1_000,
    "grand": 1_000,
    "m": 1_000_000,
    "mm": 1_000_000,
    "million": 1_000_000,
    "mio": 1_000_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
}
_NUMBER_WORDS = (
    "zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred"
)
_CUR = r"(?:US\$|C\$|A\$|[$€£]|\b(?:USD|EUR|GBP|CAD|AUD|CHF)\b)"
_CUR_AFTER = r"(?:\b(?:USD|EUR|GBP|CAD|AUD|CHF|dollars?|euros?|pounds?|bucks)\b|[€£])"
_MULT = r"(?:k|K|m|M|mm|MM|bn|thousand|million|mio|billion|grand)\b"
_FIGURE = r"\d{1,3}(?:[,.\u00a0 ]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_WORDS = rf"(?:(?:{_NUMBER_WORDS})(?:[\s-]+(?:and[\s-]+)?(?:{_NUMBER_WORDS}))*)"
_AMOUNT = rf"(?P<cur>{_CUR})?\s?(?P<num>{_FIGURE}|{_WORDS})\s?(?P<mult>{_MULT})?\s?(?P<cur2>{_CUR_AFTER})?"
_AMOUNT_RE = re.compile(_AMOUNT, re.I)
_RANGE_RE = re.compile(
    rf"(?:between\s+)?(?P<a>{_AMOUNT.replace('?P<', '?P<a_')})\s*(?:-|–|to|and)\s*(?P<b>{_AMOUNT.replace('?P<', '?P<b_')})",
    re.I,
)
_BUDGET_CUES = re.compile(
    r"\b(budget(?:ed)?|allocated|set aside|earmarked|approved (?:for|up to)|spend(?:ing)?|invest|"
    r"afford|cap(?:ped)?|ceiling|price range|funding|sign off on|pay|up to|no more than|at most)\b",
    re.I,
)
_STRONG_BUDGET = re.compile(r"\b(budget(?:ed)?|allocated|set aside|earmarked|approved)\b", re.I)
_NOT_BUDGET = re.compile(r"\b(employees|people|users|seats|reps|staff|licenses|tickets|emails|hours|percent|%)\b", re.I)


def _amount(groups: dict, prefix: str = "", bare: bool = False) -> tuple[float, str | None] | None:
    num = groups.get(f"{prefix}num")
    if not num:
        return None
    cur = groups.get(f"{prefix}cur") or groups.get(f"{prefix}cur2")
    mult = (groups.get(f"{prefix}mult") or "").lower()
    if re.fullmatch(_FIGURE, num):
        # "10.000" and "1.250.000" group thousands with dots (German, Spanish, French usage);
        # a single dot followed by one, two or four+ digits is a decimal point.
        separator = "," if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", num) else "."
        value = Price.fromstring(num.replace("\u00a0", " "), decimal_separator=separator).amount
        if value is None:
            return None
        value = float(value)
    else:
        try:
            value = float(text2num(re.sub(r"[\s-]+", " ", num.lower()).replace(" and ", " "), "en"))
        except ValueError:
            return None
    if mult:
        value *= _MULTIPLIERS.get(mult, 1)
    currency = _CURRENCY_WORDS.get(cur.lower()) if cur else None
    if currency is None and not mult and not bare:
        return None  # a bare number is not money
    return value, currency


def extract_budget(sentence: Sentence) -> Proposal | None:
    if sentence.message.internal:
        return None  # our own prices are not the buyer's budget
    text = sentence.text
    cue = _BUDGET_CUES.search(text)
    if cue is None and not re.search(_CUR, text):
        return None
    for match in _RANGE_RE.finditer(text):
        groups = match.groupdict()
        low, high = _amount(groups, "a_", bare=True), _amount(groups, "b_", bare=True)
        if not (low and high) or (low[1] is None and high[1] is None and not (groups["a_mult"] or groups["b_mult"])):
            continue
        if (
            groups["a_mult"] is None
            and groups["b_mult"]
            and low[0] < high[0] / _MULTIPLIERS[groups["b_mult"].lower()] * 10
        ):
            low = (low[0] * _MULTIPLIERS[groups["b_mult"].lower()], low[1])  # "35 to 45k" is 35k to 45k
        if high[0] >= low[0] > 0:
            currency = high[1] or low[1] or "USD"
            value = {"min": low[0], "max": high[0], "currency": currency}
            return Proposal("budget", value, _budget_confidence(text, cue, ranged=True), [sentence.span(*match.span())])
    for match in _AMOUNT_RE.finditer(text):
        parsed = _amount(match.groupdict())
        if not parsed or parsed[0] <= 0:
            continue
        if _NOT_BUDGET.match(text[match.end() : match.end() + 12].strip()):
            continue
        value = {"amount": parsed[0], "currency": parsed[1] or "USD"}
        return Proposal("budget", value, _budget_confidence(text, cue), [sentence.span(*match.span())])
    return None


def _budget_confidence(text: str, cue, ranged: bool = False) -> float:
    if _STRONG_BUDGET.search(text):
        return 0.9 if not ranged else 0.85
    if cue is not None:
        return 0.75
    return 0.55


# --- dates -------------------------------------------------------------------------------

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_MONTHS_SHORT = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_MONTH = rf"(?:{_MONTHS}|{_MONTHS_SHORT})\.?"
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_ORDINAL_Q = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": 4}
_SMALL_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "a": 1, "a couple of": 2, "a few": 3}

_DATE_EXPR = re.compile(
    r"(?P<expr>"
    r"(?P<q>(?:the\s+)?(?:end|start|beginning|middle)\s+of\s+(?:the\s+)?(?:this|next|current|following)\s+quarter"
    r"|(?:this|next|the\s+following)\s+quarter"
    r"|(?:end\s+of\s+|by\s+)?Q[1-4](?:\s*(?:of\s+)?(?:FY)?'?\d{2,4})?"
    r"|(?:the\s+)?(?:end\s+of\s+(?:the\s+)?)?(?:first|second|third|fourth|last|1st|2nd|3rd|4th)\s+quarter(?:\s+of\s+\d{4})?)"
    rf"|(?P<md>{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?)"
    rf"|(?P<m>(?:(?:the\s+)?(?:end|start|beginning|middle)\s+of\s+|early\s+|mid-?\s*|late\s+)?{_MONTH}(?:\s+\d{{4}})?)"
    r"|(?P<iso>\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4})"
    r"|(?P<rel>(?:the\s+)?(?:end|start|beginning)\s+of\s+(?:the\s+|this\s+|next\s+)?(?:week|month|year)"
    rf"|(?:this|next)\s+(?:week|month|year|{_WEEKDAY})"
    r"|(?:in|within)\s+(?:the\s+next\s+)?(?:\d+|one|two|three|four|five|six|a|a\s+couple\s+of|a\s+few)\s+(?:days?|weeks?|months?)"
    rf"|{_WEEKDAY}|tomorrow)"
    r")\b",
    re.I,
)
_TIMELINE_STRONG = re.compile(
    r"\b(go[- ]?live|launch|roll[- ]?out|deadline|(?:be|go|live) (?:live )?(?:by|in|before)|in place by|up and running|decide|decision|starting|"
    r"sign(?:ed)? by|contract by|start(?:ing)? (?:on|by|in)|implement(?:ed|ation)? by|kick[- ]?off|"
    r"need (?:it|this|something) (?:by|before)|have to be|must be|target(?:ing)?|timeline|timeframe|by the)\b",
    re.I,
)
_TIMELINE_WEAK = re.compile(r"\b(by|before|until|no later than|in time for)\b", re.I)
_MEETING = re.compile(r"\b(call|meet(?:ing)?|demo|chat|talk|catch up|sync|available|free|works for me)\b", re.I)


def _quarter_end(year: int, quarter: int) -> date:
    month = quarter * 3
    return date(year, month, calendar.monthrange(year, month)[1])


def resolve_date(expr: str, kind: str, base: datetime) -> date | None:
    """A date for a timeline expression, relative to the message's date."""
    text = re.sub(r"\s+", " ", expr.strip().lower())
    today = base.date()
    current_q = (today.month - 1) // 3 + 1
    if kind == "q":
        shift = 1 if re.search(r"\b(next|following)\b", text) else 0
        match = re.search(r"q([1-4])(?:\s*(?:of\s+)?(?:fy)?'?(\d{2,4}))?", text)
        ordinal = re.search(r"\b(first|second|third|fourth|last|1st|2nd|3rd|4th)\s+quarter", text)
        year_match = re.search(r"\b(\d{4})\b", text)
        if match or ordinal:
            quarter = int(match.group(1)) if match else _ORDINAL_Q[ordinal.group(1)]
            year = today.year
            if match and match.group(2):
                year = int(match.group(2)) + (2000 if len(match.group(2)) == 2 else 0)
            elif year_match:
                year = int(year_match.group(1))
            elif quarter < current_q:
                year += 1
        else:
            quarter, year = current_q + shift, today.year
            if quarter > 4:
                quarter, year = quarter - 4, year + 1
        end = _quarter_end(year, quarter)
        if re.search(r"\b(start|beginning)\b", text):
            return date(year, quarter * 3 - 2, 1)
        if "middle" in text:
            return date(year, quarter * 3 - 1, 15)
        return end
    if kind == "rel":
        edge = re.match(r"(?:the )?(end|start|beginning) of (?:the |this |next )?(week|month|year)", text)
        if edge:
            nxt = " next " in f" {text} "
            which, unit = edge.groups()
            return _edge_of(today, unit, which == "end", nxt)
        numbered = re.match(
            r"(?:in|within) (?:the next )?(\d+|one|two|three|four|five|six|a couple of|a few|a) (day|week|month)", text
        )
        if numbered:
            count = int(numbered.group(1)) if numbered.group(1).isdigit() else _SMALL_NUMBERS[numbered.group(1)]
            unit = numbered.group(2)
            if unit == "month":
                month_index = today.month - 1 + count
                year, month = today.year + month_index // 12, month_index % 12 + 1
                return date(year, month, min(today.day, calendar.monthrange(year, month)[1]))
            return today + timedelta(days=count * (7 if unit == "week" else 1))
    if kind == "m":
        month_match = re.search(rf"({_MONTHS}|{_MONTHS_SHORT})", expr, re.I)
        year_match = re.search(r"\b(\d{4})\b", text)
        month = _month_number(month_match.group(1))
        year = int(year_match.group(1)) if year_match else today.year + (1 if month < today.month else 0)
        last = calendar.monthrange(year, month)[1]
        if re.search(r"\b(start|beginning|early)\b", text):
            return date(year, month, 1)
        if re.search(r"\b(middle|mid)\b", text):
            return date(year, month, 15)
        return date(year, month, last)
    parsed = dateparser.parse(
        expr,
        languages=["en"],
        settings={"RELATIVE_BASE": base.replace(tzinfo=None), "PREFER_DATES_FROM": "future", "DATE_ORDER": "MDY"},
    )
    return parsed.date() if parsed else None


def _month_number(name: str) -> int:
    name = name.lower()[:3]
    return [m[:3].lower() for m in _MONTHS.split("|")].index(name) + 1


def _edge_of(today: date, unit: str, end: bool, nxt: bool) -> date:
    if unit == "week":
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=1 if nxt else 0)
        return monday + timedelta(days=4) if end else monday
    if unit == "month":
        year, month = (today.year + (today.month // 12), today.month % 12 + 1) if nxt else (today.year, today.month)
        return date(year, month, calendar.monthrange(year, month)[1]) if end else date(year, month, 1)
    year = today.year + (1 if nxt else 0)
    return date(year, 12, 31) if end else date(year, 1, 1)


def extract_timeline(sentence: Sentence) -> Proposal | None:
    text = sentence.text
    strong = _TIMELINE_STRONG.search(text)
    weak = _TIMELINE_WEAK.search(text)
    if not (strong or weak):
        return None
    if _MEETING.search(text) and not strong:
        return None  # "can we talk on Friday" schedules a call, it is not the buyer's timeline
    base = sentence.message.sent_at or datetime.now()
    for match in _DATE_EXPR.finditer(text):
        kind = next(k for k in ("q", "md", "m", "iso", "rel") if match.group(k))
        resolved = resolve_date(match.group("expr"), kind, base)
        if resolved is None:
            continue
        confidence = 0.85 if strong else 0.65
        if kind == "rel" and re.fullmatch(_WEEKDAY, match.group("expr"), re.I):
            confidence -= 0.15
        value = {"date": resolved.isoformat(), "phrase": match.group("expr")}
        start = strong.start() if strong and strong.start() < match.start() else match.start()
        return Proposal("timeline", value, confidence, [sentence.span(start, match.end())])
    return None


# --- authority ---------------------------------------------------------------------------

_TITLE = (
    r"(?:C[EFOTIRM]O|CRO|CMO|CISO|General Counsel|President|Founder|Co-?founder|Owner|Managing Director|"
    r"(?:S?VP|Vice President|Head|Director|Chief \w+ Officer)(?:\s+(?:of|for)\s+(?-i:[A-Z][\w&]*(?:\s+[A-Z][\w&]*)?))?|"
    r"board|procurement|purchasing|finance team|legal|leadership team|exec team|steering committee)"
)
_NAME = r"(?-i:[A-Z][a-z]+(?:\s+[A-Z][a-z'-]+)?)"
_AUTHORITY_PATTERNS = [
    (
        re.compile(
            rf"(?:sign[- ]?off|approval|sign[- ]?on|green light|blessing|final (?:say|call|decision)|signature|buy[- ]in)\s+"
            rf"(?:from|by|of)\s+(?:our|my|the)\s+(?P<title>{_TITLE})(?:,?\s+(?P<name>{_NAME}))?",
            re.I,
        ),
        0.85,
    ),
    (
        re.compile(
            rf"(?:our|my|the)\s+(?P<title>{_TITLE})(?:,?\s+(?P<name>{_NAME}),?)?\s+"
            r"(?:has|have|needs?|will|would|must|makes?|owns?|signs?|approves?|holds?|controls?)\s+"
            r"(?:to\s+)?(?:the\s+)?(?:final\s+)?(?:sign|approv|decid|decision|call|say|budget|purse|contract)",
            re.I,
        ),
        0.85,
    ),
    (
        re.compile(
            rf"(?P<name>{_NAME}),?\s+(?:our|the)\s+(?P<title>{_TITLE}),?\s+(?:makes|has|owns|will make|signs|approves)",
            re.I,
        ),
        0.85,
    ),
    (
        re.compile(
            r"\b(?P<self>I(?:'m| am))\s+(?:the\s+)?(?:one\s+who\s+)?(?:final\s+)?(?:decision[- ]?maker|budget[- ]?holder|"
            r"economic buyer|sign(?:s|ing)?[- ]?off|approv(?:er|e)|make(?:s)? the (?:final )?(?:call|decision))",
            re.I,
        ),
        0.9,
    ),
    (re.compile(rf"(?:goes|go|escalates?)\s+to\s+(?:our|my|the)\s+(?P<title>{_TITLE})", re.I), 0.75),
    (
        re.compile(
            rf"(?:our|my|the)\s+(?P<title>{_TITLE})(?:,?\s+(?P<name>{_NAME}))?,?\s+who\s+(?:signs|approves|decides|owns|holds|has)",
            re.I,
        ),
        0.8,
    ),
    (
        re.compile(
            rf"(?:final\s+)?(?:approval|sign[- ]?off|decision)\s+(?:comes|will come|has to come)\s+from\s+(?:our|my|the)\s+(?P<title>{_TITLE})"
            rf"(?:,?\s+(?P<name>{_NAME}))?",
            re.I,
        ),
        0.85,
    ),
    (re.compile(rf"(?:our|my|the)\s+(?P<title>{_TITLE})\s+(?:approves|signs|decides|signs off on)\b", re.I), 0.8),
    (
        re.compile(
            r"\b(?P<self>I)(?:'ll| will)?\s+(?:make the (?:final )?(?:call|decision)|decide|sign (?:it )?off|approve)\b",
            re.I,
        ),
        0.8,
    ),
    (
        re.compile(
            r"\b(?:decision|call|budget)\s+(?:is|sits|rests)\s+with\s+(?:our|my|the)\s+"
            rf"(?P<title>{_TITLE})(?:,?\s+(?P<name>{_NAME}))?",
            re.I,
        ),
        0.8,
    ),
]


def extract_authority(sentence: Sentence) -> Proposal | None:
    if sentence.message.internal:
        return None
    for pattern, confidence in _AUTHORITY_PATTERNS:
        match = pattern.search(sentence.text)
        if not match:
            continue
        groups = match.groupdict()
        if groups.get("self"):
            value = {"name": sentence.message.from_name or sentence.message.from_email, "title": None}
        else:
            name = groups.get("name")
            if name and name.split()[0].lower() in {"and", "to", "before", "on", "for", "who", "is", "has", "will"}:
                name = None
            value = {"name": name, "title": _tidy_title(groups.get("title"))}
        return Proposal("authority", value, confidence, [sentence.span(*match.span())])
    return None


def _tidy_title(title: str | None) -> str | None:
    if not title:
        return None
    title = re.sub(r"\s+", " ", title.strip())
    return title.upper() if re.fullmatch(r"c\wo|cro|cmo|ciso", title, re.I) else title


# --- need, next step ---------------------------------------------------------------------

_NEED_STRONG = re.compile(
    r"\b(struggl\w+|pain(?:\s+point)?s?|(?:biggest|main|real)\s+(?:problem|issue|challenge|headache)|"
    r"problem is|challenge is|issue is|frustrat\w+|bottleneck|losing (?:deals|customers|track|time|money)|"
    r"can'?t keep up|falls? through the cracks|drowning|too much time|waste\w* (?:hours|time)|"
    r"error[- ]prone|no visibility|blind spot|manual(?:ly)?\b.*\b(?:hours|every|each|spreadsheet)|spreadsheets?)\b",
    re.I,
)
_NEED_WEAK = re.compile(
    r"\b(we need (?:a|an|to|better)\b(?! (?:decision|answer))|looking for (?:a|an) (?:way|solution|tool|platform)|"
    r"want to (?:stop|reduce|cut|get rid of|automate)|hoping to|goal is to|trying to)\b",
    re.I,
)
_NEXT_STEP = re.compile(
    r"\b(next steps?\b|let'?s (?:schedule|set up|book|get|plan|meet|do|have|move)|"
    r"can we (?:schedule|set up|book|get|hop on|do|have|arrange)|could we (?:schedule|set up|book|do|arrange)|"
    r"I'?ll (?:send|share|set up|schedule|book|loop in|intro|introduce|forward)|"
    r"please send|send (?:over|me|us) (?:the|a)|(?:schedule|book|set up) (?:a|the) (?:call|demo|meeting|workshop|trial|pilot)|"
    r"(?:kick off|start) (?:a|the) (?:pilot|trial|poc|proof of concept)|sign the (?:contract|order form|msa)|"
    r"(?:send|share) (?:the|a|your) (?:proposal|quote|contract|order form|security questionnaire|msa))",
    re.I,
)


def extract_need(sentence: Sentence) -> Proposal | None:
    if sentence.message.internal:
        return None
    strong, weak = _NEED_STRONG.search(sentence.text), _NEED_WEAK.search(sentence.text)
    if not (strong or weak) or sentence.text.rstrip().endswith("?"):
        return None
    return Proposal("need", sentence.text, 0.8 if strong else 0.65, [sentence.span()])


def extract_next_step(sentence: Sentence) -> Proposal | None:
    match = _NEXT_STEP.search(sentence.text)
    if not match:
        return None
    confidence = 0.85 if "next step" in match.group(0).lower() else 0.7
    return Proposal("next_step", sentence.text, confidence, [sentence.span()])


# --- competitors -------------------------------------------------------------------------

_PRODUCT = r"[A-Z][\w.&+-]*(?:\s+(?:[A-Z][\w.&+-]*|CRM|Sales|Cloud|One))*"
_COMPETITOR_CUES = re.compile(
    r"\b(?i:(?:also\s+)?(?:evaluating|looking at|talking to|considering|comparing (?:you )?(?:with|to|against)|"
    r"compared (?:to|with)|trialing|trialling|piloting|demo(?:ed|'d) with|got a quote from|quote from|"
    r"currently (?:use|using|on)|switch(?:ing)? (?:away )?from|replace|replacing|move off|moving off|"
    r"(?:alternative|cheaper than)(?: to)?|shortlist(?:ed)?(?: includes)?|up against))\s+"
    rf"(?P<names>{_PRODUCT}(?:\s*(?:,|and|or|&)\s*{_PRODUCT})*)"
)
_NOT_PRODUCT = {
    "I",
    "We",
    "The",
    "Our",
    "You",
    "Your",
    "It",
    "This",
    "That",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Excel",
    "Threadline",
}


def extract_competitors(sentence: Sentence) -> Proposal | None:
    if sentence.message.internal:
        return None
    match = _COMPETITOR_CUES.search(sentence.text)
    if not match:
        return None
    names = [n.strip().rstrip(".,;:") for n in re.split(r"\s*(?:,|\band\b|\bor\b|&)\s*", match.group("names"))]
    names = [n for n in names if n]
    names = [n for n in names if n.split()[0] not in _NOT_PRODUCT]
    if not names:
        return None
    return Proposal("competitors", names, 0.8, [sentence.span(match.start("names"), match.end("names"))])


# --- the contact ------------------------------------------------------------------------

_JOB = (
    r"(?:S?VP|Vice President|Head|Director|Manager|Chief \w+ Officer|Lead|C[EFOT]O|CRO|Founder|Co-?founder|President)"
    r"(?:\s+(?:of|for)\s+[A-Z][\w&]*(?:\s+(?:and\s+|&\s+)?[A-Z][\w&]*)?)?"
)
_COMPANY = r"[A-Z][\w&-]*(?:\s+[A-Z][\w&-]*)*"
_INTRO = re.compile(
    rf"\b(?i:I'?m|I am|my name is|this is)\s+(?P<name>{_NAME}),?\s+(?:the\s+|our\s+|a\s+)?(?P<title>{_JOB})"
    rf"(?:\s+(?:at|with|here at)\s+(?P<company>{_COMPANY}))?"
)
_ROLE = re.compile(
    rf"\b(?:I'?m|I am|as)\s+(?:the\s+|our\s+)?(?P<title>{_JOB})(?:\s+(?:at|with|here at)\s+(?P<company>{_COMPANY}))?"
)


def extract_contact(messages: list[MessageInput]) -> list[Proposal]:
    """Name, title and company of the first buyer-side sender, grounded in what they wrote."""
    external = [m for m in messages if not m.internal and m.reply_text]
    proposals: list[Proposal] = []
    for message in external:
        for sentence in sentences(message):
            intro = _INTRO.search(sentence.text) or _ROLE.search(sentence.text)
            if intro is None:
                continue
            groups = intro.groupdict()
            if groups.get("name"):
                proposals.append(Proposal("contact_name", groups["name"], 0.85, [sentence.span(*intro.span("name"))]))
            title = groups["title"].strip().rstrip(",")
            proposals.append(
                Proposal(
                    "contact_title",
                    title,
                    0.8,
                    [sentence.span(intro.start("title"), intro.start("title") + len(title))],
                )
            )
            if groups.get("company"):
                proposals.append(Proposal("company", groups["company"], 0.8, [sentence.span(*intro.span("company"))]))
            break
        if proposals:
            break
    keys = {p.field for p in proposals}
    if external and "contact_name" not in keys:
        proposal = _sign_off_name(external[0])
        if proposal:
            proposals.append(proposal)
    if external and "company" not in keys:
        proposal = _company_from_domain(external)
        if proposal:
            proposals.append(proposal)
    return proposals


def _sign_off_name(message: MessageInput) -> Proposal | None:
    """The sender's display name, where their reply text names them (a sign-off, usually)."""
    name = message.from_name.strip().strip('"')
    if not name or "@" in name:
        return None
    text = message.reply_text
    sign_off = len(text.rstrip()) - 60  # a name in the last line or two signs the message
    for candidate, confidence in ((name, 0.85), (name.split()[0], 0.6)):
        index = text.rfind(candidate)
        if index >= 0 and len(candidate) > 1:
            if index >= sign_off:
                confidence = 0.85  # the sender's own name where they sign: as strong as it gets
            evidence = {"message_id": message.id, "start": index, "end": index + len(candidate), "quote": candidate}
            return Proposal("contact_name", name, confidence, [evidence])
    return None  # a name nobody wrote in the thread has no evidence to show


_FREE_MAIL = {
    "gmail",
    "googlemail",
    "yahoo",
    "hotmail",
    "outlook",
    "live",
    "icloud",
    "me",
    "aol",
    "proton",
    "protonmail",
    "gmx",
    "web",
}


def _company_from_domain(messages: list[MessageInput]) -> Proposal | None:
    domain = messages[0].from_email.rpartition("@")[2].lower()
    label = domain.split(".")[0] if domain else ""
    if not label or label in _FREE_MAIL:
        return None
    for message in messages:
        # The company's name as written, not inside an address or a domain ("@acme.com", "acme.com").
        pattern = (
            rf"(?<![@\w.-]){re.escape(label)}[\w&-]*(?![\w.-]*\.[a-z]{{2,}}\b)"
            r"(?:\s+(?-i:Inc|Ltd|GmbH|Corp|LLC|SA|AG)\b\.?)?"
        )
        match = re.search(pattern, message.reply_text, re.I)
        if match:
            return Proposal(
                "company",
                match.group(0),
                0.75,
                [{"message_id": message.id, "start": match.start(), "end": match.end(), "quote": match.group(0)}],
            )
    return None


# --- the extractor -----------------------------------------------------------------------

_PER_SENTENCE = (
    extract_budget,
    extract_timeline,
    extract_authority,
    extract_need,
    extract_next_step,
    extract_competitors,
)


def _all_proposals(messages: list[MessageInput]) -> Iterable[tuple[int, Proposal]]:
    for order, message in enumerate(messages):
        for sentence in sentences(message):
            for extractor in _PER_SENTENCE:
                proposal = extractor(sentence)
                if proposal is not None:
                    yield order, proposal
    for proposal in extract_contact(messages):
        yield len(messages), proposal


STRONG = 0.7


class RulesExtractor:
    """Offline and deterministic. Per field the newest strong signal wins (newer evidence
    supersedes older); where no signal is strong, the strongest one."""

    name = NAME

    def extract(self, messages: list[MessageInput], schema: Schema) -> ExtractionOutput:
        best: dict[str, tuple[bool, float, Proposal]] = {}
        competitors: list[tuple[int, Proposal]] = []
        for order, proposal in _all_proposals(messages):
            if proposal.field not in schema.keys:
                continue
            if proposal.field == "competitors":
                competitors.append((order, proposal))
                continue
            rank = (proposal.confidence >= STRONG, order if proposal.confidence >= STRONG else proposal.confidence)
            if proposal.field not in best or rank >= best[proposal.field][:2]:
                best[proposal.field] = (*rank, proposal)
        proposals = [entry[2] for entry in best.values()]
        if competitors:
            proposals.append(_merge_competitors(competitors))
        proposals.sort(key=lambda p: schema.keys.index(p.field))
        return ExtractionOutput(proposals=proposals, model=NAME)


def _merge_competitors(found: list[tuple[int, Proposal]]) -> Proposal:
    names: list[str] = []
    evidence: list[dict] = []
    for _, proposal in found:
        for name in proposal.value:
            if name.lower() not in {n.lower() for n in names}:
                names.append(name)
        evidence.extend(proposal.evidence)
    return Proposal("competitors", names, max(p.confidence for _, p in found), evidence)
