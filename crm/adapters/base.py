"""The adapter interface and the HTTP discipline every adapter shares.

An adapter lists deals (paged, incremental by last-modified), gets one, applies an action
(``update_deal``, ``create_note``, ``upsert_contact``) carrying our idempotency key on the
CRM record, and finds a write it may already have made (``find_write``) so that a sync
that crashed while "sending" recovers instead of writing twice.

HTTP: every request has a timeout; 429 is retried honouring Retry-After (the CRM refused
it unprocessed); 5xx and network errors are retried only for requests that are idempotent
by themselves (GET, PATCH, search), otherwise raised as ``CrmTransientError`` so the ledger
looks for the write before sending again; any other 4xx is a ``CrmClientError``, recorded
on the ledger row and never retried.

The vendors' Python clients (hubspot-api-client, simple-salesforce) are not used: each
brings its own retry behaviour (urllib3 or requests) that would retry non-idempotent POSTs
and hide Retry-After; one httpx transport gives every adapter the same rules.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import httpx
from django.conf import settings

log = logging.getLogger("crm")


class CrmClientError(Exception):
    """A 4xx other than 429: the request is wrong and sending it again will not help."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


class CrmTransientError(Exception):
    """429/5xx past the retries, a 5xx on a non-idempotent request, or a network error."""


@dataclass
class DealRecord:
    """A deal as the mirror stores it, whichever CRM it came from."""

    crm_deal_id: str
    title: str
    stage: str = ""
    stage_label: str = ""  # the stage as the CRM shows it, when its id is not a label (HubSpot)
    is_closed: bool = False
    amount: Decimal | None = None
    close_date: date | None = None
    owner_user_id: str = ""
    owner_email: str = ""
    primary_domain: str = ""
    contact_emails: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


class CrmAdapter(ABC):
    """The interface. ``apply`` and ``find_write`` return ``{"id": ..., ...}`` of the CRM."""

    name = "base"

    @abstractmethod
    def list_deals(self, *, since: datetime | None = None) -> Iterator[list[DealRecord]]:
        """Deals page by page, only those modified since ``since`` when given."""

    @abstractmethod
    def get_deal(self, deal_id: str) -> DealRecord:
        """One deal by its CRM id."""

    @abstractmethod
    def apply(self, *, action: str, target: str, payload: dict, key: str) -> dict:
        """Perform one write, storing ``key`` on the record; return the CRM's ids."""

    @abstractmethod
    def find_write(self, *, action: str, target: str, payload: dict, key: str) -> dict | None:
        """The write made under ``key`` if the CRM has it (recovery after a crash while sending)."""


# The most requests one ledger row's send makes, recovery included: a look for the write
# (the record with our key's history, or a note search), then the write and its lookup (the
# contact by email, then a PATCH or POST). The lease on a row being sent is derived from it.
SEND_MAX_REQUESTS = 4
# httpx applies the timeout to each phase of an attempt: connect, write and read.
ATTEMPT_PHASES = 3


def request_max_seconds() -> float:
    """The longest one ``Http.request`` can take: every attempt runs into the timeout in each
    phase, and every retry waits the longest wait."""
    attempts = settings.CRM_MAX_RETRIES + 1
    return (
        attempts * ATTEMPT_PHASES * settings.CRM_TIMEOUT_SECONDS
        + settings.CRM_MAX_RETRIES * settings.CRM_RETRY_MAX_SECONDS
    )


class Http:
    """An httpx client with the retry rules above. ``sleep`` is replaceable in tests."""

    def __init__(self, *, base_url: str, headers: dict, sleep=time.sleep):
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=settings.CRM_TIMEOUT_SECONDS)
        self.sleep = sleep
        self.waits: list[float] = []  # seconds slept before retries, for tests and logs

    def request(self, method: str, url: str, *, idempotent: bool, ok_missing: bool = False, **kwargs):
        """The response's JSON (``{}`` when empty); ``None`` on 404 when ``ok_missing``."""
        attempts = settings.CRM_MAX_RETRIES + 1
        for attempt in range(1, attempts + 1):
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if not idempotent or attempt == attempts:
                    raise CrmTransientError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
                self._wait(attempt, None)
                continue
            status = response.status_code
            if status == 404 and ok_missing:
                return None
            if status < 400:
                return response.json() if response.content else {}
            retryable = status == 429 or (status >= 500 and idempotent)
            if not retryable:
                if status >= 500:
                    raise CrmTransientError(f"{method} {url}: HTTP {status}")
                raise CrmClientError(status, _error_message(response))
            if attempt == attempts:
                raise CrmTransientError(f"{method} {url}: HTTP {status} after {attempts} attempts")
            self._wait(attempt, response.headers.get("Retry-After"))
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        seconds = min(2 ** (attempt - 1), settings.CRM_RETRY_MAX_SECONDS)
        if retry_after:
            try:
                seconds = min(max(float(retry_after), 0.0), settings.CRM_RETRY_MAX_SECONDS)
            except ValueError:
                pass  # an HTTP date: keep the backoff
        log.info("crm: retrying in %.2fs (attempt %s)", seconds, attempt)
        self.waits.append(seconds)
        self.sleep(seconds)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, list) and body:  # Salesforce: [{"message", "errorCode"}]
        body = body[0]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("errorCode") or body)[:500]
    return str(body)[:500]
