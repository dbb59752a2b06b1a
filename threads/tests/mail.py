"""Building test mail: small, readable messages written by the team."""

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def mail(
    mid: str | None,
    *,
    subject: str = "Renewal",
    sender: str = "ana@customer.example",
    to: str = "rep@threadline-demo.com",
    refs: list[str] | None = None,
    in_reply_to: str | None = None,
    body: str = "Hello",
    day: int = 0,
    html: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(BASE + timedelta(days=day))
    if mid:
        msg["Message-ID"] = f"<{mid}>"
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()
