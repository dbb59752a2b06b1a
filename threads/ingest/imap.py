"""Reading an IMAP mailbox over TLS, incrementally by UID.

UIDs only mean something within one UIDVALIDITY: when the server announces a new one, the
mailbox is read again from the start, and dedupe makes the repeated messages no-ops. Each
message is fetched outside any database transaction.
"""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: str
    mailbox: str = "INBOX"
    ca_file: str = ""

    @property
    def key(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.mailbox}"


class ImapMailbox:
    """An open, read-only mailbox: ``uidvalidity`` and ``messages_after(uid)``."""

    def __init__(self, account: ImapAccount, *, timeout: float = 60.0):
        context = ssl.create_default_context(cafile=account.ca_file or None)
        self.conn = imaplib.IMAP4_SSL(account.host, account.port, ssl_context=context, timeout=timeout)
        self.conn.login(account.user, account.password)
        typ, _ = self.conn.select(_quote(account.mailbox), readonly=True)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"cannot select {account.mailbox}")
        _, values = self.conn.response("UIDVALIDITY")
        self.uidvalidity = int(values[0]) if values and values[0] else 0

    def uids_after(self, uid: int) -> list[int]:
        typ, data = self.conn.uid("SEARCH", None, f"UID {uid + 1}:*")
        if typ != "OK" or not data or not data[0]:
            return []
        # "n:*" always matches the highest UID, even when it is below n.
        return sorted(u for u in (int(x) for x in data[0].split()) if u > uid)

    def fetch(self, uid: int) -> bytes | None:
        typ, data = self.conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if typ != "OK":
            return None
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        return None

    def messages_after(self, uid: int) -> Iterator[tuple[int, bytes]]:
        for next_uid in self.uids_after(uid):
            raw = self.fetch(next_uid)
            if raw is not None:
                yield next_uid, raw

    def close(self) -> None:
        try:
            self.conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'
