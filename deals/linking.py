"""Thread-to-deal scoring: signals, weights and the decision, as pure functions.

Nothing here touches the database: ``ThreadFacts`` and ``DealFacts`` are plain values the
services build, so every scenario can be tested (and simulated under another policy)
without writing anything.

Each signal is a number in 0..1, or ``None`` when it cannot say anything for this thread
(the domain signal for a thread whose outside people all write from personal mail
domains): a ``None`` signal's weight leaves the denominator, so a gmail.com contact is
judged on the signals that can speak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rapidfuzz import fuzz

WEIGHTS: dict[str, float] = {
    "domain": 0.30,  # an outside participant's domain is the deal's primary domain
    "contact": 0.40,  # an outside participant is a known contact of the deal
    "subject": 0.15,  # the thread's subject is like the deal's title (rapidfuzz)
    "stage": 0.10,  # the deal is open, and active near the thread's time
    "owner": 0.05,  # the deal's owner took part in the thread
}
# Below this a deal is not a candidate at all; a thread with no candidate stays unlinked.
CANDIDATE_MIN_SCORE = 0.35
# How many candidates a person is shown.
MAX_CANDIDATES = 5
RECENT_DAYS, STALE_DAYS = 30, 365

PERSONAL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "web.de",
        "mail.com",
        "yandex.com",
        "fastmail.com",
    }
)


@dataclass(frozen=True)
class ThreadFacts:
    subject: str
    participants: frozenset[str]  # lower-cased addresses of everyone in From/To/Cc
    internal_domains: frozenset[str]
    last_message_at: datetime | None = None

    @property
    def outside(self) -> frozenset[str]:
        return frozenset(p for p in self.participants if domain_of(p) not in self.internal_domains)


@dataclass(frozen=True)
class DealFacts:
    id: int
    title: str
    is_closed: bool = False
    primary_domain: str = ""
    contact_emails: frozenset[str] = frozenset()
    owner_email: str = ""
    active_at: datetime | None = None  # crm_updated_at, else close_date
    stage: str = ""  # the stage by its label, for people choosing between candidates


@dataclass(frozen=True)
class Candidate:
    deal_id: int
    score: float
    signals: dict[str, float | None] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"deal_id": self.deal_id, "score": self.score, "signals": self.signals}


@dataclass(frozen=True)
class Decision:
    outcome: str  # "link" | "review" | "none"
    candidates: tuple[Candidate, ...] = ()

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def signals_for(thread: ThreadFacts, deal: DealFacts) -> dict[str, float | None]:
    outside = thread.outside
    business = {domain_of(p) for p in outside} - PERSONAL_DOMAINS
    domain = deal.primary_domain.lower()
    contacts = {c.lower() for c in deal.contact_emails}
    return {
        "domain": (1.0 if domain and domain in business else 0.0) if business else None,
        "contact": 1.0 if outside & contacts else 0.0,
        "subject": round(fuzz.token_set_ratio(thread.subject.casefold(), deal.title.casefold()) / 100, 4),
        "stage": _stage(thread, deal),
        "owner": 1.0 if deal.owner_email and deal.owner_email.lower() in thread.participants else 0.0,
    }


def _stage(thread: ThreadFacts, deal: DealFacts) -> float:
    """0 for a closed deal; an open one 1.0 when active within a month of the thread, down to 0.5 after a year."""
    if deal.is_closed:
        return 0.0
    if thread.last_message_at is None or deal.active_at is None:
        return 0.75
    days = abs((thread.last_message_at - deal.active_at).total_seconds()) / 86400
    if days <= RECENT_DAYS:
        return 1.0
    return round(max(0.5, 1.0 - 0.5 * (days - RECENT_DAYS) / (STALE_DAYS - RECENT_DAYS)), 4)


def score(signals: dict[str, float | None]) -> float:
    """The weighted mean of the signals that can speak."""
    speaking = {name: value for name, value in signals.items() if value is not None}
    total = sum(WEIGHTS[name] for name in speaking)
    if not total:
        return 0.0
    return round(sum(WEIGHTS[name] * value for name, value in speaking.items()) / total, 4)


def candidates_for(thread: ThreadFacts, deals: list[DealFacts]) -> list[Candidate]:
    """Deals worth considering, best first (ties by deal id, so a re-run orders them alike)."""
    scored = []
    for deal in deals:
        signals = signals_for(thread, deal)
        if not signals["domain"] and not signals["contact"] and not signals["owner"]:
            continue  # a title alone never makes a candidate: nobody of that deal is in the thread
        value = score(signals)
        if value >= CANDIDATE_MIN_SCORE:
            scored.append(Candidate(deal_id=deal.id, score=value, signals=signals))
    scored.sort(key=lambda c: (-c.score, c.deal_id))
    return scored[:MAX_CANDIDATES]


def decide(candidates: list[Candidate], *, threshold: float, margin: float) -> Decision:
    """One clear candidate links; any other candidates go to a person; none leaves the thread alone."""
    if not candidates:
        return Decision("none")
    best = candidates[0]
    runner_up = candidates[1].score if len(candidates) > 1 else 0.0
    if best.score >= threshold and best.score - runner_up >= margin:
        return Decision("link", tuple(candidates))
    return Decision("review", tuple(candidates))


def reason_text(candidate: Candidate, thread: ThreadFacts, deal: DealFacts, runner_up: float | None) -> str:
    """The reason a link carries: each signal that spoke, in words, with its score."""
    parts = []
    signals = candidate.signals
    if signals.get("domain"):
        parts.append(f"a participant's domain is {deal.primary_domain} (domain 1.00)")
    if signals.get("contact"):
        known = sorted(thread.outside & {c.lower() for c in deal.contact_emails})
        parts.append(f"{', '.join(known)} is a contact on the deal (contact 1.00)")
    if signals.get("subject"):
        parts.append(f"subject like the deal title (subject {signals['subject']:.2f})")
    if signals.get("stage"):
        parts.append(f"open deal, recent activity (stage {signals['stage']:.2f})")
    if signals.get("owner"):
        parts.append(f"the deal owner {deal.owner_email} took part (owner 1.00)")
    if signals.get("domain") is None:
        parts.append("domain not counted: personal mail domains only")
    tail = f"; runner-up {runner_up:.2f}" if runner_up is not None else "; no other candidate"
    return f"score {candidate.score:.2f}: " + "; ".join(parts) + tail
