"""Encrypting CRM credentials at rest with Fernet and ``settings.CRM_CREDENTIALS_KEY``.

``CRM_CREDENTIALS_KEY`` is a urlsafe-base64 32-byte Fernet key from the environment
(``python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'``).
Without it (development) a stable key is derived from ``SECRET_KEY``, so changing the secret
key makes stored credentials unreadable: set ``CRM_CREDENTIALS_KEY`` in production.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialsUnreadable(Exception):
    """The stored secret was encrypted with another key."""


def _fernet() -> Fernet:
    key = settings.CRM_CREDENTIALS_KEY
    if not key:
        digest = hashlib.sha256(f"threadline-crm-credentials:{settings.SECRET_KEY}".encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsUnreadable("the CRM credentials were encrypted with another CRM_CREDENTIALS_KEY") from exc
